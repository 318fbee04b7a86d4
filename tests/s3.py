"""An S3-compatible store for tests: moto's server on a free port of this machine.

``moto[server]`` answers the S3 API (conditional puts included: ``If-None-Match: *`` gets
412, as on S3), so a lake at ``s3://<bucket>/<prefix>`` behaves here as on an object store:
delta-rs commits with conditional puts, pyarrow writes data files, DuckDB reads them through
httpfs. Receivers started as child processes get the endpoint through the standard ``AWS_*``
variables (``env``).

``shared()`` is the one server of a test run: started on first use (the ``s3`` fixture, or
every lake of ``TASKLAKE_TEST_LAKE=s3``: ``tests.lakes.new_lake``), stopped when the run ends.
"""

from __future__ import annotations

import atexit
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

BUCKET = "tasklake-tests"


@dataclass(frozen=True)
class S3:
    endpoint: str
    bucket: str

    @property
    def env(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ALLOW_HTTP": "true",
        }

    def lake(self, name: str = "") -> str:
        """A fresh lake URI in the bucket."""
        return f"s3://{self.bucket}/{name or 'lake'}-{uuid.uuid4().hex[:8]}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def moto_s3() -> Iterator[S3]:
    """moto's S3 server, with a bucket; the ``AWS_*`` variables set in this process too.

    The server is a child process, not a thread of this one: a delta-rs call that keeps the
    GIL while it waits for S3 (``DeltaTable.history``) would otherwise wait for a server
    that cannot run until it returns."""
    import boto3

    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,  # moto's access log
    )
    s3 = S3(f"http://127.0.0.1:{port}", BUCKET)
    try:
        with environ(s3.env):
            _wait_until_listening(server, port)
            boto3.client("s3").create_bucket(Bucket=s3.bucket)
            yield s3
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@contextmanager
def environ(env: Mapping[str, str]) -> Iterator[None]:
    """``env`` set in this process while the block runs; the previous values back after."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _wait_until_listening(server: subprocess.Popen[bytes], port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"moto's server exited {server.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError("moto's server did not start listening")


class _Shared:
    """The run's one server, once started (and how to stop it)."""

    lock = threading.Lock()
    store: S3 | None = None
    stack: ExitStack | None = None


def shared() -> S3:
    """The run's one moto server (started on the first call; ``stop_shared`` or the end of
    the process stops it). The ``AWS_*`` variables point at it from then on, so receivers
    and other child processes started later reach it too."""
    with _Shared.lock:
        if _Shared.store is None:
            stack = ExitStack()
            _Shared.store = stack.enter_context(moto_s3())
            _Shared.stack = stack
            atexit.register(stop_shared)
        return _Shared.store


def stop_shared() -> None:
    """Stop the shared server, if it was started (idempotent)."""
    with _Shared.lock:
        stack, _Shared.stack, _Shared.store = _Shared.stack, None, None
    if stack is not None:
        stack.close()
