"""A full disk against the real server: writes are refused with 503 + Retry-After, /readyz says
why, and everything comes back by itself once there is room, without losing or duplicating an
acknowledged span. The WAL's space is reclaimed as it is converted.

The disk fills two ways. The seam (``ingest.diskfaults``, ``TASKLAKE_TEST_FULL_DISKS``) makes
writes fail with ENOSPC at the OS-call edge and runs everywhere, CI included. Where this process
may mount (root with CAP_SYS_ADMIN), the WAL also lives on a real 32 MiB tmpfs that a filler
file fills to the last block.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ingest.diskfaults import ENV
from tests.e2e.harness import Server
from tests.ingest.crash_driver import lake_span_ids, numbered_request
from tests.waiting import eventually

WAL_DIR = "_wal"  # where a local lake keeps its write-ahead log by default

SPANS = 500  # per request: ~80 KiB, more than a tmpfs page


@dataclass
class Disk:
    """Fills and empties the disk under a server."""

    fill: Callable[[], None]
    empty: Callable[[], None]


def _post(server: Server, first: int) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=30)
    body = numbered_request(first, SPANS).SerializeToString()
    conn.request(
        "POST", "/v1/traces", body=body, headers={"Content-Type": "application/x-protobuf"}
    )
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


def _get(server: Server, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(server.url + path, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _metric(server: Server, name: str) -> float:
    _, text = _get(server, "/metrics")
    for line in text.splitlines():
        if line.startswith(f"tasklake_{name} "):
            return float(line.split()[1])
    raise AssertionError(f"no metric {name}")


@contextlib.contextmanager
def _tmpfs(path: Path, size: str) -> Iterator[bool]:
    """A tmpfs of ``size`` at ``path`` while inside; False when this process may not mount."""
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        check=False,
    )
    try:
        yield done.returncode == 0
    finally:
        if done.returncode == 0:
            subprocess.run(["umount", "-l", str(path)], check=False)


def _filler(directory: Path) -> Disk:
    filler = directory / "filler"

    def fill() -> None:
        with open(filler, "wb", buffering=0) as fh:
            for block in (1 << 20, 4096):  # megabytes, then the last blocks
                with contextlib.suppress(OSError):
                    while fh.write(bytes(block)):
                        pass

    return Disk(fill, filler.unlink)


@contextlib.contextmanager
def _server_on_a_disk(tmp_path: Path, how: str) -> Iterator[tuple[Server, Disk]]:
    lake = tmp_path / "lake"
    if how == "seam":
        faults = tmp_path / "faults"
        faults.mkdir()
        server = Server(lake=lake, log=tmp_path / "server.log", env={ENV: str(faults)})
        disk = Disk((faults / "wal").touch, (faults / "wal").unlink)
        with contextlib.closing(_Stopping(server.start())):
            yield server, disk
        return
    with _tmpfs(lake / WAL_DIR, "32m") as mounted:
        if not mounted:
            pytest.skip("mounting a tmpfs needs root with CAP_SYS_ADMIN; the seam variant ran")
        server = Server(lake=lake, log=tmp_path / "server.log")
        with contextlib.closing(_Stopping(server.start())):
            yield server, _filler(lake / WAL_DIR)


class _Stopping:
    def __init__(self, server: Server) -> None:
        self.server = server

    def close(self) -> None:
        self.server.stop()


@pytest.mark.parametrize("how", ["seam", "tmpfs"])
def test_a_full_wal_disk_refuses_writes_until_it_has_room_again(tmp_path: Path, how: str) -> None:
    with _server_on_a_disk(tmp_path, how) as (server, disk):
        assert _post(server, 0).status == 200
        disk.fill()
        refused = [_post(server, first) for first in range(10_000, 14_000, SPANS)]
        assert {r.status for r in refused} == {503}, [r.status for r in refused]
        assert all(r.headers["Retry-After"] for r in refused)
        status, body = _get(server, "/readyz")
        assert status == 503, body
        reasons = json.loads(body)["reasons"]
        assert any("refuses writes" in r and "No space left" in r for r in reasons), reasons
        assert _metric(server, "wal_refusing_lanes") >= 1
        assert _metric(server, "wal_write_failures") >= 1
        disk.empty()  # no request needed: the server notices by itself
        assert eventually(lambda: _get(server, "/readyz")[0] == 200, timeout=15)
        assert _metric(server, "wal_refusing_lanes") == 0
        assert _post(server, 20_000).status == 200
        acknowledged = {n: 1 for n in [*range(SPANS), *range(20_000, 20_000 + SPANS)]}
        assert eventually(lambda: lake_span_ids(server.target) == acknowledged, timeout=30)


def test_a_full_lake_keeps_data_in_the_wal_and_publishes_it_once_there_is_room(
    tmp_path: Path,
) -> None:
    faults = tmp_path / "faults"
    faults.mkdir()
    server = Server(lake=tmp_path / "lake", log=tmp_path / "server.log", env={ENV: str(faults)})
    with contextlib.closing(_Stopping(server.start())):
        (faults / "lake").touch()
        assert all(_post(server, first).status == 200 for first in range(0, 4 * SPANS, SPANS))
        assert eventually(lambda: _metric(server, "lake_publish_failing_lanes") >= 1, timeout=15)
        status, body = _get(server, "/readyz")
        assert status == 200, body  # data is still accepted: the WAL holds it
        assert any("cannot publish" in w for w in json.loads(body)["warnings"]), body
        assert lake_span_ids(server.target) == {}
        (faults / "lake").unlink()
        assert eventually(
            lambda: lake_span_ids(server.target) == {n: 1 for n in range(4 * SPANS)}, timeout=30
        )
        assert _metric(server, "lake_publish_failing_lanes") == 0
        assert _metric(server, "lake_publish_failures") >= 1
        assert json.loads(_get(server, "/readyz")[1])["warnings"] == []


def _wal_bytes_on_disk(lake: Path) -> int:
    """The WAL on this machine's disk (there for an S3 lake too: ``Server.lake``)."""
    return sum(p.stat().st_blocks * 512 for p in (lake / WAL_DIR).rglob("*.wal") if p.is_file())


def test_converted_wal_space_is_reclaimed_well_before_a_segment_fills(tmp_path: Path) -> None:
    """Default 64 MiB segments, two lanes, 60 MiB of sustained ingest the converters keep up
    with: the log on disk beyond what still waits for conversion stays a few MiB per lane. It
    used to keep every converted byte until a lane had written a whole segment (all 60 MiB)."""
    server = Server(lake=tmp_path / "lake", log=tmp_path / "server.log", args=["--lanes", "2"])
    body = numbered_request(0, 8000).SerializeToString()  # ~1.3 MiB
    sent = 0
    peak = 0
    with contextlib.closing(_Stopping(server.start())):
        conn = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=30)
        while sent < 60 << 20:
            conn.request(
                "POST", "/v1/traces", body=body, headers={"Content-Type": "application/x-protobuf"}
            )
            response = conn.getresponse()
            response.read()
            assert response.status == 200
            sent += len(body)
            kept = _wal_bytes_on_disk(server.lake) - _metric(server, "backlog_bytes")
            peak = max(peak, int(kept))
            time.sleep(0.15)  # ~9 MiB/s: sustained, within what two converters convert
        conn.close()
        assert eventually(lambda: _metric(server, "backlog_bytes") == 0, timeout=60)
        assert _post(server, 10**6).status == 200  # the next group rolls, the old one goes
        assert eventually(lambda: _wal_bytes_on_disk(server.lake) <= 16 << 20, timeout=30)
        after = _wal_bytes_on_disk(server.lake)
    print(f"converted WAL kept on disk: peak {peak >> 20} MiB, after {after >> 20} MiB")
    assert peak <= 24 << 20, peak  # lanes x segment size: 128 MiB
