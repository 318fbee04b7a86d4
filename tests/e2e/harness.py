"""Run the real ``tasklake serve`` as a child process and read its lake, for end-to-end tests
and benchmarks."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from schemas.delta import is_vanished_file_error
from tests.lakes import connect, is_local, new_lake


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Server:
    """A ``tasklake serve`` child process on free ports over ``lake`` — or, given ``uri``
    (``s3://...``), over that object-store lake, with its WAL and store under ``lake``.

    With ``TASKLAKE_TEST_LAKE=s3`` a server given no ``uri`` takes ``new_lake``'s S3 lake for
    ``lake`` (the same one each time, so a restart finds its data) unless ``local``: tests
    read it through ``target``."""

    lake: Path
    log: Path
    args: Sequence[str] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    uri: str | None = None
    local: bool = False  # keep the lake in ``lake`` whatever TASKLAKE_TEST_LAKE says
    http_port: int = field(default_factory=free_port)
    grpc_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        if self.uri is None and not self.local:
            lake = new_lake(self.lake.parent, self.lake.name)
            if not is_local(lake):
                self.uri = lake

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def target(self) -> str:
        """The lake as settings name it: the object-store URI, else the directory."""
        return self.uri or str(self.lake)

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def start(self, timeout: float = 60.0) -> Server:
        cmd = [
            sys.executable,
            "-m",
            "service.cli",
            "serve",
            "--lake",
            self.target,
            *(
                ("--wal-dir", str(self.lake / "_wal"), "--store-dir", str(self.lake / "_store"))
                if self.uri
                else ()
            ),
            "--http-port",
            str(self.http_port),
            "--grpc-port",
            str(self.grpc_port),
            *self.args,
        ]
        # the caller's own TASKLAKE_* settings must not leak into a test server
        env = {k: v for k, v in os.environ.items() if not k.startswith("TASKLAKE_")}
        env.update(self.env)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"tasklake exited {self.proc.returncode}:\n{self.log_text()}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as r:
                    if r.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.05)
        self.kill()
        raise TimeoutError(f"tasklake did not become healthy:\n{self.log_text()}")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self, timeout: float = 60.0) -> int:
        """Graceful stop (SIGTERM): drains every acknowledged span into Parquet."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def kill(self) -> None:
        """``kill -9``: no drain, no goodbye."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def query(lake: Path | str, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Run ``sql`` over the lake's views pinned to the newest versions, in a fresh in-memory
    DuckDB (and again should a vacuum have removed a file of that version)."""
    for attempt in range(20):
        con = connect(lake)
        try:
            return con.execute(sql, list(params)).fetchall()
        except duckdb.Error as exc:
            if not is_vanished_file_error(exc) or attempt == 19:
                raise
        finally:
            con.close()
    raise AssertionError("unreachable")


def wait_for(
    lake: Path | str, sql: str, expected: Any, timeout: float = 15.0, params: Sequence[Any] = ()
) -> Any:
    """Poll ``sql`` (one value) until it equals ``expected``; return the last value seen."""
    deadline = time.monotonic() + timeout
    value: Any = None
    while time.monotonic() < deadline:
        value = query(lake, sql, params)[0][0]
        if value == expected:
            return value
        time.sleep(0.1)
    return value


class NumberedPoster(threading.Thread):
    """Posts numbered batches (``body(first)`` holds items first..first+per_request-1) over
    one keep-alive connection until the server dies under it; ``acked`` is the first number
    of every batch answered 200. ``check`` sees each 200 answer's body."""

    def __init__(
        self,
        port: int,
        start_id: int,
        *,
        path: str,
        content_type: str,
        per_request: int,
        body: Callable[[int], bytes],
        check: Callable[[bytes], None] | None = None,
    ) -> None:
        super().__init__(daemon=True)
        self.port, self.next_id, self.path = port, start_id, path
        self.content_type, self.per_request = content_type, per_request
        self.body, self.check = body, check
        self.acked: list[int] = []

    def run(self) -> None:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            while True:
                first = self.next_id
                self.next_id += self.per_request
                conn.request(
                    "POST",
                    self.path,
                    body=self.body(first),
                    headers={"Content-Type": self.content_type},
                )
                resp = conn.getresponse()
                answer = resp.read()
                if resp.status == 200:
                    if self.check is not None:
                        self.check(answer)
                    self.acked.append(first)
        except (OSError, http.client.HTTPException):
            return  # the server died under us


def post_until_acknowledged(
    port: int, body: bytes, content_type: str, deadline: float, path: str = "/v1/traces"
) -> list[int]:
    """POST ``body`` until it is answered 200, sleeping Retry-After after each 503, like an
    exporter; every status seen, in order (anything but 200 or 503 ends it)."""
    statuses: list[int] = []
    while time.monotonic() < deadline:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        try:
            conn.request("POST", path, body=body, headers={"Content-Type": content_type})
            response = conn.getresponse()
            response.read()
        finally:
            conn.close()
        statuses.append(response.status)
        if response.status != 503:
            return statuses
        time.sleep(int(response.headers.get("Retry-After") or 1))
    return statuses
