"""The server ``tasklake demo`` starts when it is given none: ``tasklake serve`` as a child
process over a throwaway lake in a temporary directory, removed when the demo ends."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType


def port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def any_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class ThrowawayServer:
    """``with ThrowawayServer() as url:`` a healthy ``tasklake serve`` at ``url``; its lake
    is deleted on exit."""

    def __init__(self, http_port: int = 4318, grpc_port: int = 4317) -> None:
        self.http_port = http_port if port_free(http_port) else any_port()
        self.grpc_port = grpc_port if port_free(grpc_port) else any_port()
        self.dir = Path(tempfile.mkdtemp(prefix="tasklake-demo-"))
        self.lake = self.dir / "lake"
        self.log = self.dir / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def __enter__(self) -> str:
        cmd = [
            sys.executable, "-m", "service.cli", "serve", "--lake", str(self.lake),
            "--http-port", str(self.http_port), "--grpc-port", str(self.grpc_port),
        ]  # fmt: skip
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                text = self.log.read_text(errors="replace")
                self.close()
                raise RuntimeError(f"tasklake serve exited {self.proc.returncode}:\n{text}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as answer:
                    if answer.status == 200:
                        return self.url
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.1)
        self.close()
        raise RuntimeError("tasklake serve did not become healthy in 120 s")

    def wait(self) -> None:
        """Serve until the server ends or the user interrupts (Ctrl-C)."""
        assert self.proc is not None
        self.proc.wait()

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
