"""The native fast path against the Python reference: the very same batch, or the same error.

Every comparison runs the same bytes through ``Normalizer(native=False)`` (the reference) and
``Normalizer(native=True)`` and requires ``RecordBatch.equals`` on the whole batch, or equal
exception types. Both normalizers are long-lived across a test's requests, as in a converter,
so warm caches are compared too.
"""

from __future__ import annotations

import contextlib
import gc
import os
import random
import subprocess
import sys
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

import ingest.convert.native
from bench.workload import Workload, request_bytes
from ingest.convert.normalize import Normalizer
from ingest.lake.parquet import write_parquet
from ingest.receive.validate import validate_traces
from schemas.settings import PriceOverride, Settings
from tests.ingest.native_requests import Adversary, ld, mutate, vi
from tests.ingest.normalize_helpers import CASES, load_case, rows

pytestmark = pytest.mark.skipif(
    not ingest.convert.native.available(), reason="native extension not built"
)

TRACE_CASES = sorted(p.stem for p in CASES.glob("*.json") if not p.stem.startswith("logs"))
INGESTED_AT_MS = 1_772_442_100_000

#: Overrides whose coefficients are integers (priced in C) and fractions (priced by Python).
ODD_PRICES = (
    PriceOverride(model="acme-large*", input=Decimal("2.50"), output=Decimal("10")),
    PriceOverride(
        model="gpt-4o",
        provider="openai",
        input=Decimal("0.3333333333333333333"),
        output=Decimal("1.1"),
        cache_read=Decimal("0.1"),
        effective_from=date(2026, 1, 1),
    ),
    PriceOverride(
        model="claude-*", input=Decimal("3"), output=Decimal("15"), reasoning=Decimal("20")
    ),
)
CUSTOM = replace(
    Settings(),
    correlation_keys=("session.id", "correlation.id"),
    role_keys=("gen_ai.agent.name",),
    team_keys=("team.id", "enduser.id"),
    prices=ODD_PRICES,
)


class Pair:
    """A reference and a fast normalizer over the same settings."""

    def __init__(self, settings: Settings | None = None) -> None:
        settings = settings or Settings()
        self.ref = Normalizer(settings, native=False)
        self.fast = Normalizer(settings, native=True)
        assert self.ref.native is None and self.fast.native is not None

    def same(self, body: bytes) -> pa.RecordBatch | None:
        """Assert both give the same batch (returned) or raise the same type (None)."""
        try:
            expected = self.ref.normalize_bytes(body, INGESTED_AT_MS)
        except Exception as exc:
            with pytest.raises(type(exc)):
                self.fast.normalize_bytes(body, INGESTED_AT_MS)
            return None
        got = self.fast.normalize_bytes(body, INGESTED_AT_MS)
        if not got.equals(expected):
            got.validate(full=True)
            diff = [
                f.name
                for f in expected.schema
                if not got.column(f.name).equals(expected.column(f.name))
            ]
            raise AssertionError(f"native batch differs in {diff}")
        got.validate(full=True)
        return got

    def stats(self) -> dict[str, int]:
        assert self.fast.native is not None
        return self.fast.native.stats()


@pytest.fixture(scope="module")
def pair() -> Pair:
    return Pair()


# ----------------------------------------------------------------------------- realistic input


@pytest.mark.parametrize("case", TRACE_CASES)
def test_every_case_file_normalizes_identically(pair: Pair, case: str) -> None:
    batch = pair.same(load_case(case).SerializeToString())
    assert batch is not None and batch.num_rows > 0


def test_case_files_with_custom_keys_and_odd_prices() -> None:
    custom = Pair(CUSTOM)
    for case in TRACE_CASES:
        assert custom.same(load_case(case).SerializeToString()) is not None


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bench_workload_identically_and_all_natively(seed: int) -> None:
    p = Pair()
    bodies = request_bytes(Workload(spans_per_request=512, seed=seed), 4)
    for body in bodies:
        assert p.same(body) is not None
    stats = p.stats()
    # the realistic workload never leaves the fast path: no fallback, no span resolved by Python
    assert (stats["native"], stats["odd"], stats["errors"]) == (4, 0, 0)
    assert stats["python_spans"] == 0 and stats["python_prices"] == 0
    assert stats["spans"] == 4 * 512


def test_parquet_files_are_byte_identical(pair: Pair, tmp_path: Path) -> None:
    body = request_bytes(Workload(spans_per_request=300, seed=9), 1)[0]
    expected = pair.ref.normalize_bytes(body, INGESTED_AT_MS)
    got = pair.fast.normalize_bytes(body, INGESTED_AT_MS)
    write_parquet(pa.Table.from_batches([expected]), tmp_path / "ref.parquet", fsync=False)
    write_parquet(pa.Table.from_batches([got]), tmp_path / "fast.parquet", fsync=False)
    assert (tmp_path / "ref.parquet").read_bytes() == (tmp_path / "fast.parquet").read_bytes()


def test_empty_and_spanless_requests(pair: Pair) -> None:
    for body in (b"", ld(1, b""), ld(1, ld(2, ld(1, b"")))):
        batch = pair.same(body)
        assert batch is not None and batch.num_rows == 0


# ----------------------------------------------------------------------------- adversarial


def _adversarial(seeds: range, settings: Settings | None = None) -> Pair:
    p = Pair(settings)
    for seed in seeds:
        p.same(Adversary(seed).request())
    return p


def test_adversarial_requests() -> None:
    p = _adversarial(range(300))
    stats = p.stats()
    # most requests must really take the fast path, or this test proves little
    assert stats["native"] > 0.8 * stats["requests"]
    # spans with JSON, markers or usage values that are not counts (flagged) resolve in Python
    assert stats["python_spans"] > 50 and stats["spans"] > 2 * stats["python_spans"]


def test_adversarial_requests_with_custom_keys_and_odd_prices() -> None:
    p = _adversarial(range(1000, 1200), CUSTOM)
    assert p.stats()["python_prices"] > 0


def test_mutated_requests_never_crash_and_agree() -> None:
    """Truncated, bit-flipped, spliced bodies: never a crash, always the reference's answer."""
    p = Pair()
    rng = random.Random(5)
    bases = [load_case(c).SerializeToString() for c in TRACE_CASES]
    bases += request_bytes(Workload(spans_per_request=24, seed=4), 3)
    bases += [Adversary(seed).request() for seed in range(2000, 2030)]
    for _ in range(2500):
        p.same(mutate(rng, rng.choice(bases)))
    stats = p.stats()
    assert stats["odd"] > 0 and stats["native"] > 0


def test_invalid_utf8_raises_like_the_reference(pair: Pair) -> None:
    span = ld(1, b"\x01" * 16) + ld(2, b"\x02" * 8)
    for bad in (
        span + ld(5, b"\xff"),  # span name
        span + ld(9, ld(1, b"k") + ld(2, ld(1, b"\xc0\x80"))),  # attribute value
        span + ld(9, ld(1, b"\xed\xa0\x80") + ld(2, vi(3, 1))),  # attribute key
    ):
        body = ld(1, ld(2, ld(2, bad)))
        assert pair.same(body) is None
        with pytest.raises(DecodeError):
            pair.fast.normalize_bytes(body, 0)


def test_caches_reset_when_full() -> None:
    """Past the key limit the C caches are dropped between requests; output unchanged."""
    p = Pair()
    span = (
        ld(1, b"\x01" * 16)
        + ld(2, b"\x02" * 8)
        + b"".join(ld(9, ld(1, f"key.{i}".encode()) + ld(2, vi(3, i))) for i in range(10_050))
    )
    body = ld(1, ld(2, ld(2, span)))
    workload = request_bytes(Workload(spans_per_request=16, seed=1), 1)[0]
    for b in (workload, body, workload, body):
        assert p.same(b) is not None
    assert p.stats()["resets"] >= 1
    assert p.fast.native is not None
    p.fast.native.reset()
    assert p.same(workload) is not None


# ----------------------------------------------------------------------------- regressions


@pytest.mark.parametrize("native", [False, True])
def test_a_repeated_key_field_does_not_poison_later_attributes(native: bool) -> None:
    """A KeyValue may carry its key twice (upb takes the last). The Python path used to
    memoize routing under the *first* key's bytes, so every later canonical attribute of
    that key was read under the wrong key, for every later request of the process."""
    normalizer = Normalizer(Settings(), native=native)
    span = ld(1, b"\x01" * 16) + ld(2, b"\x02" * 8) + vi(7, 1)
    odd = ld(9, ld(1, b"embedding.model_name") + ld(1, b"other.key") + ld(2, ld(1, b"m1")))
    fine = ld(9, ld(1, b"embedding.model_name") + ld(2, ld(1, b"m2")))
    first = rows(normalizer.normalize_bytes(ld(1, ld(2, ld(2, span + odd))), 0))[0]
    assert first["attributes"] == [("other.key", "m1")] and first["request_model"] is None
    second = rows(normalizer.normalize_bytes(ld(1, ld(2, ld(2, span + fine))), 0))[0]
    assert second["request_model"] == "m2"
    assert ("request_model", "embedding.model_name") in second["source_keys"]


# ----------------------------------------------------------------------------- the switch


def test_pure_python_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ingest.convert.native.PURE_ENV, "1")
    assert Normalizer(Settings()).native is None
    monkeypatch.setenv(ingest.convert.native.PURE_ENV, "0")
    assert Normalizer(Settings()).native is not None
    monkeypatch.delenv(ingest.convert.native.PURE_ENV)
    assert Normalizer(Settings()).native is not None


def test_the_choice_is_logged_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(ingest.convert.native.LOGGED, "done", False)
    with caplog.at_level("INFO", logger="ingest.convert.native"):
        Normalizer(Settings())
        Normalizer(Settings())
    messages = [r.getMessage() for r in caplog.records if r.name == "ingest.convert.native"]
    assert messages == ["span normalization: native fast path (ingest.convert.native._fastpath)"]


# ----------------------------------------------------------------------------- memory


def _rss_kib() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def leak_probe() -> None:
    """Print the RSS growth (KiB) over ~2,000 requests after a warm-up (run in a subprocess)."""
    rng = random.Random(3)
    bodies = request_bytes(Workload(spans_per_request=32, seed=1), 6)
    bodies += [Adversary(seed).request() for seed in range(30)]
    bodies += [mutate(rng, rng.choice(bodies)) for _ in range(30)]
    normalizer = Normalizer(Settings(), native=True)

    def loop(times: int) -> None:
        for _ in range(times):
            for body in bodies:
                # the reference raises on some mutated bodies too
                with contextlib.suppress(Exception):
                    normalizer.normalize_bytes(body, 0)

    loop(4)  # caches and allocator pools reach their working size
    gc.collect()
    before = _rss_kib()
    loop(30)
    gc.collect()
    print(_rss_kib() - before)


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs /proc")
def test_no_leak_over_thousands_of_requests() -> None:
    """Native, Python-resolved, fallback and raising requests, over and over: RSS stays flat.

    Measured in a fresh process: in the test process, other tests' garbage moves RSS more."""
    root = Path(__file__).resolve().parents[2]
    probe = "from tests.ingest.test_native import leak_probe; leak_probe()"
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=root, capture_output=True, text=True, check=True
    )
    assert int(out.stdout.strip().splitlines()[-1]) < 1024


# ----------------------------------------------------------------------------- the validator


def test_native_validator_agrees_with_validate_traces() -> None:
    """``count_valid_spans`` says "all N valid" only when ``validate_traces`` accepts all N."""
    rng = random.Random(8)
    bodies = request_bytes(Workload(spans_per_request=64, seed=3), 3)
    bodies += [load_case(c).SerializeToString() for c in TRACE_CASES]
    bodies += [Adversary(seed, broken=0.0).request() for seed in range(3000, 3300)]
    bodies += [mutate(rng, rng.choice(bodies)) for _ in range(1500)]
    vouched = 0
    for body in bodies:
        try:
            request = ExportTraceServiceRequest.FromString(body)
        except DecodeError:
            continue  # the receiver answers 400 before validating
        accepted, rejected, _ = validate_traces(request)
        count = ingest.convert.native.count_valid_spans(body)
        if count is not None:
            assert (count, rejected) == (accepted, 0)
            vouched += 1
        elif body in bodies[:3]:
            raise AssertionError("the realistic workload must be vouched for natively")
    assert vouched > 100


def test_an_interrupt_in_a_callback_is_not_swallowed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Callback errors send the request to the Python path; an interrupt must not vanish."""
    normalizer = Normalizer(Settings(), native=True)
    body = request_bytes(Workload(spans_per_request=4, seed=6), 1)[0]

    def interrupted(raw: bytes) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(normalizer, "_resource", interrupted)
    assert normalizer.native is not None
    fresh = ingest.convert.native.FastPath(normalizer)  # binds the patched callback
    with pytest.raises(KeyboardInterrupt):
        fresh.batch(body, 0)
