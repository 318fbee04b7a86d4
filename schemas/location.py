"""Where the lake lives: a local directory or an S3-compatible bucket, seen by every engine.

A lake is a URI: a plain path or ``file://`` (the default, ``./lake``) or ``s3://bucket/prefix``
on any S3-compatible store. Its tables (``spans/``, ``signals/``, ``costs/``) are Delta tables
under it. Three engines reach it, each configured here so they cannot disagree:

- **delta-rs** (``deltalake``) commits and lists table versions; for S3 it reads the standard
  ``AWS_*`` variables itself (credentials, ``AWS_REGION``, ``AWS_ENDPOINT_URL``, and its own
  ``AWS_ALLOW_HTTP`` for a plain-HTTP endpoint such as a local MinIO or moto server);
- **pyarrow** writes and reads data files (``filesystem()``), built from the same variables;
- **DuckDB** reads data files of a pinned version (``configure_duckdb``): local paths as they
  are; S3 through the ``httpfs`` extension (the ``duckdb-extension-httpfs`` wheel, loaded from
  its file: nothing is downloaded) with a secret made from the same variables.

Commits on S3 rely on conditional puts (``If-None-Match``), which S3 and its compatibles
answer: no lock service is involved.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

import pyarrow.fs as pafs

S3_SCHEMES = ("s3", "s3a")


class SqlConnection(Protocol):
    def execute(self, query: str, parameters: Any = None, /) -> object: ...


class LakeLocationError(ValueError):
    """A lake setting that names no usable location."""


@dataclass(frozen=True)
class LakeLocation:
    """A parsed lake URI: ``root`` is an absolute local path, or ``s3://bucket/prefix``."""

    root: str
    local: bool

    @classmethod
    def parse(cls, lake: str | os.PathLike[str]) -> LakeLocation:
        text = os.fspath(lake).strip()
        if not text:
            raise LakeLocationError("lake: empty; give a directory or s3://bucket/prefix")
        parsed = urlparse(text)
        if parsed.scheme in S3_SCHEMES:
            if not parsed.netloc:
                raise LakeLocationError(f"lake: {text!r} names no bucket (s3://bucket/prefix)")
            prefix = parsed.path.strip("/")
            return cls(f"s3://{parsed.netloc}/{prefix}".rstrip("/"), local=False)
        if parsed.scheme == "file":
            return cls(str(Path(parsed.path).resolve()), local=True)
        if parsed.scheme and len(parsed.scheme) > 1:  # "C:" style drives are not schemes
            raise LakeLocationError(
                f"lake: unsupported scheme {parsed.scheme!r}; use a path, file:// or s3://"
            )
        return cls(str(Path(text).resolve()), local=True)

    def uri(self, *parts: str) -> str:
        """The URI of ``parts`` under the lake (a path for a local lake)."""
        if not parts:
            return self.root
        return "/".join([self.root.rstrip("/"), *(p.strip("/") for p in parts)])

    @property
    def path(self) -> Path:
        """The local directory of a local lake."""
        if not self.local:
            raise LakeLocationError(f"{self.root} is not a local lake")
        return Path(self.root)

    # ------------------------------------------------------------------ pyarrow

    def filesystem(self) -> tuple[pafs.FileSystem, str]:
        """A pyarrow filesystem and the lake's root in it (``bucket/prefix`` on S3)."""
        if self.local:
            return pafs.LocalFileSystem(), self.root
        parsed = urlparse(self.root)
        return s3_filesystem(), f"{parsed.netloc}{parsed.path}".rstrip("/")

    def fs_path(self, uri: str) -> str:
        """A URI under the lake as a path of ``filesystem()`` (S3: ``bucket/key``)."""
        if self.local:
            return uri
        return uri.split("://", 1)[1]


# ---------------------------------------------------------------------- S3 from AWS_* variables


@dataclass(frozen=True)
class S3Settings:
    """The standard variables, read once per call (tests start servers and set them late)."""

    key_id: str | None
    secret: str | None
    session_token: str | None
    region: str
    endpoint: str | None  # scheme://host:port, when not AWS itself

    @classmethod
    def from_env(cls) -> S3Settings:
        env = os.environ
        endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or None
        return cls(
            key_id=env.get("AWS_ACCESS_KEY_ID"),
            secret=env.get("AWS_SECRET_ACCESS_KEY"),
            session_token=env.get("AWS_SESSION_TOKEN"),
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
            endpoint=endpoint,
        )

    @property
    def endpoint_host(self) -> str | None:
        if not self.endpoint:
            return None
        parsed = urlparse(self.endpoint)
        return parsed.netloc or parsed.path

    @property
    def use_ssl(self) -> bool:
        return not (self.endpoint or "").startswith("http://")


def s3_filesystem() -> pafs.S3FileSystem:
    s3 = S3Settings.from_env()
    options: dict[str, Any] = {"region": s3.region}
    if s3.key_id and s3.secret:
        options.update(access_key=s3.key_id, secret_key=s3.secret)
        if s3.session_token:
            options["session_token"] = s3.session_token
    if s3.endpoint_host:
        options.update(endpoint_override=s3.endpoint_host, scheme="https" if s3.use_ssl else "http")
    return pafs.S3FileSystem(**options)


# ---------------------------------------------------------------------- DuckDB


def _extension_file(name: str) -> Path:
    """The extension shipped in the ``duckdb-extension-<name>`` wheel for this DuckDB."""
    import importlib

    import duckdb

    module = importlib.import_module(f"duckdb_extension_{name}")
    base = Path(module.__file__ or "").parent / "extensions" / f"v{duckdb.__version__}"
    found = base / f"{name}.duckdb_extension"
    if not found.exists():
        raise LakeLocationError(
            f"the DuckDB {name} extension for DuckDB {duckdb.__version__} is not installed"
            f" ({found}); install duckdb-extension-{name}=={duckdb.__version__}"
        )
    return found


def load_extension(con: SqlConnection, name: str) -> None:
    """LOAD a DuckDB extension from its wheel (never from the network)."""
    path = str(_extension_file(name)).replace("'", "''")
    con.execute(f"LOAD '{path}'")


def configure_duckdb(con: SqlConnection, location: LakeLocation) -> None:
    """Let ``con`` read the lake's data files (S3: httpfs and a secret from AWS_*)."""
    if location.local:
        return
    load_extension(con, "httpfs")
    s3 = S3Settings.from_env()
    parts = [f"TYPE s3, REGION '{_quote(s3.region)}'"]
    if s3.key_id and s3.secret:
        parts.append(f"KEY_ID '{_quote(s3.key_id)}', SECRET '{_quote(s3.secret)}'")
        if s3.session_token:
            parts.append(f"SESSION_TOKEN '{_quote(s3.session_token)}'")
    if s3.endpoint_host:
        parts.append(
            f"ENDPOINT '{_quote(s3.endpoint_host)}', URL_STYLE 'path',"
            f" USE_SSL {'true' if s3.use_ssl else 'false'}"
        )
    con.execute(f"CREATE OR REPLACE SECRET tasklake_lake ({', '.join(parts)})")


def _quote(text: str) -> str:
    return text.replace("'", "''")
