"""The runtime end to end in-process: lanes, converter processes, locks, crash recovery."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from ingest.runtime import IngestRuntime, LakeLocked
from ingest.wal.log import KIND_TRACES
from tests.ingest.crash_driver import (
    acknowledged,
    driver_settings,
    lake_span_ids,
    numbered_request,
)
from tests.ingest.stub_handler import SPAN_HANDLERS
from tests.lakes import local_dir, new_lake
from tests.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]


def _send(runtime: IngestRuntime, first: int, requests: int, per: int = 50) -> None:
    async def go() -> None:
        for i in range(requests):
            req = numbered_request(first + i * per, per)
            await runtime.exporter.export_traces(req, req.SerializeToString())

    asyncio.run(go())


def test_acknowledged_spans_are_queryable_and_stop_drains(lake: str) -> None:
    settings = replace(driver_settings(lake), compaction_interval=0)
    runtime = IngestRuntime(settings, handlers=SPAN_HANDLERS).start()
    try:
        assert runtime.wait_ready(60)
        _send(runtime, 0, 20)
        assert runtime.wait_caught_up(60)
        assert lake_span_ids(lake) == {n: 1 for n in range(1000)}
        _send(runtime, 1000, 4)
        stats = runtime.stats()
        assert stats["spans_acknowledged"] == 1200 and stats["ready"]
        assert len(stats["lanes"]) == 2 and all(lane["converter_alive"] for lane in stats["lanes"])
        assert sum(lane["wal_fsyncs"] for lane in stats["lanes"]) >= 1
        assert stats["quarantined_records"] == 0
        # a record no converter can read (validation never lets one through: a bug) is
        # counted at the top level, where /metrics exports it
        asyncio.run(runtime.exporter._append(KIND_TRACES, [[b"\xff\xff not protobuf"]]))
        assert eventually(lambda: runtime.stats()["quarantined_records"] == 1)
    finally:
        runtime.stop()
    # stop converted what was still waiting
    assert lake_span_ids(lake) == {n: 1 for n in range(1200)}
    assert runtime.stats()["ready"] is False


def test_second_process_with_the_same_writer_id_is_refused(lake: str) -> None:
    settings = replace(driver_settings(lake), compaction_interval=0, lanes=1)
    first = IngestRuntime(settings, handlers=SPAN_HANDLERS).start()
    try:
        code = (
            "import sys; from dataclasses import replace\n"
            "from ingest.runtime import IngestRuntime, LakeLocked\n"
            "from tests.ingest.crash_driver import driver_settings\n"
            f"s = replace(driver_settings({lake!r}, wal_dir={settings.wal_dir!r}), lanes=1)\n"
            "try:\n    IngestRuntime(s).start()\n"
            "except LakeLocked as e:\n    print(e); sys.exit(7)\n"
        )
        proc = subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 7, proc.stderr
        assert "writer id 'crash'" in proc.stdout and "--writer-id" in proc.stdout
        # another writer id shares the lake fine
        other = IngestRuntime(replace(settings, writer_id="other"), handlers=SPAN_HANDLERS)
        other.start()
        try:
            assert first.wait_ready(60) and other.wait_ready(60)
            _send(first, 0, 4)
            _send(other, 10_000, 4)
        finally:
            other.stop()
    finally:
        first.stop()
    ids = lake_span_ids(lake)
    assert ids == {n: 1 for n in [*range(200), *range(10_000, 10_200)]}
    with pytest.raises(LakeLocked):
        held = IngestRuntime(settings, handlers=SPAN_HANDLERS).start()
        try:
            IngestRuntime(settings, handlers=SPAN_HANDLERS).start()
        finally:
            held.stop()


def _start_driver(
    lake: str, acks: Path, first: int, env: dict[str, str], *extra: str
) -> tuple[subprocess.Popen[str], list[int]]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.ingest.crash_driver",
            lake,
            str(acks),
            str(first),
            "--wal-dir",
            str(local_dir(lake) / "_wal"),
            *extra,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("READY"), line
    return proc, [int(p) for p in line.split()[1:]]


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # a zombie waiting for its (dead) parent's reaper counts as gone
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] == "Z"
    except FileNotFoundError:
        return True


def test_kill_9_during_sustained_ingest_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    """kill -9 at random moments, once inside a flush (files half written, no manifest),
    once with manifests waiting for their commit; after each restart every acknowledged span
    is in the lake exactly once."""
    lake, acks = new_lake(tmp_path), tmp_path / "acks.txt"
    rng = random.Random(7)
    rounds = [
        ("random", {}),
        ("inside-flush", {"TASKLAKE_TEST_FLUSH_SLEEP": "0.2"}),
        ("manifest-waiting", {"TASKLAKE_TEST_COMMIT_SLEEP": "0.5"}),
        ("random", {}),
    ]
    for i, (how, env) in enumerate(rounds):
        proc, pids = _start_driver(lake, acks, i * 10_000_000, env)

        def grown(before: int = len(acknowledged(acks))) -> bool:
            return len(acknowledged(acks)) > before + 2000

        assert eventually(grown)
        if how == "inside-flush":  # a flush takes 0.2 s a file: land inside one
            time.sleep(rng.uniform(0.1, 0.3))
        elif how == "manifest-waiting":
            assert eventually(lambda: any(local_dir(lake).glob("_wal/*/outbox/*.json")), 60)
        else:
            time.sleep(rng.uniform(0.0, 0.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()

        # the converters notice their parent is gone and exit: no orphans
        def all_gone(started: list[int] = pids) -> bool:
            return all(_gone(pid) for pid in started)

        assert eventually(all_gone), pids
    proc, _ = _start_driver(lake, acks, 0, {}, "--drain")
    assert proc.stdout is not None and proc.stdout.readline().startswith("DRAINED")
    assert proc.wait(120) == 0
    proc.stdout.close()

    acked = acknowledged(acks)
    in_lake = lake_span_ids(lake)
    assert len(acked) > 6000
    duplicates = {n: c for n, c in in_lake.items() if c > 1}
    assert duplicates == {}
    missing = set(acked) - set(in_lake)
    assert missing == set()
