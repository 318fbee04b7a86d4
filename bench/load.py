"""OTLP load from client processes: 512-span protobuf requests over keep-alive HTTP.

Requests are realistic agent spans (``bench.workload``), generated once (it takes a while)
into a cache file under ``bench/out``; each client process reads it, says it is ready, and all
start together when the last one is (on a busy machine spawning takes seconds: a fixed lead
time would eat into the timed window). A client runs closed-loop (as fast as it is answered),
paced (requests scheduled at a rate: latency without queueing behind itself) or sends every
body of its share once.
"""

from __future__ import annotations

import http.client
import multiprocessing as mp
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.workload import request_bodies

SPANS_PER_REQUEST = 512
HEADERS = {"Content-Type": "application/x-protobuf"}
CACHE = Path(__file__).parent / "out"


def _cache_file(n: int) -> Path:
    return CACHE / f"ingest-bodies-{n}x{SPANS_PER_REQUEST}.bin"


def write_cache(n: int = 1000) -> Path:
    """``n`` distinct requests (unique span ids throughout), generated once."""
    path = _cache_file(n)
    if not path.exists():
        bodies = request_bodies(n_requests=n, spans_per_request=SPANS_PER_REQUEST, seed=7)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(b"".join(len(b).to_bytes(4, "little") + b for b in bodies))
        tmp.replace(path)
    return path


def read_cache(path: Path) -> list[bytes]:
    data = path.read_bytes()
    bodies, i = [], 0
    while i < len(data):
        size = int.from_bytes(data[i : i + 4], "little")
        bodies.append(data[i + 4 : i + 4 + size])
        i += 4 + size
    return bodies


@dataclass(frozen=True)
class Load:
    """What one client process does (small, so it pickles cheaply)."""

    port: int
    cache: Path
    index: int
    clients: int
    mode: str  # "closed" (as fast as answered), "paced" (scheduled), "once" (each body once)
    seconds: float = 0.0  # how long a closed or paced client sends
    rate: float = 0.0  # requests/s of this client when paced


@dataclass(frozen=True)
class Sent:
    acked_spans: int
    refused: int
    latencies: list[float]  # seconds, sorted


def _client(load: Load, out: mp.Queue, go: Any) -> None:  # type: ignore[type-arg]
    bodies = read_cache(load.cache)[load.index :: load.clients]
    conn = http.client.HTTPConnection("127.0.0.1", load.port, timeout=120)
    acked = refused = 0
    latencies: list[float] = []
    out.put(None)  # ready
    go.wait()
    start = time.time()
    until = start + load.seconds
    k = 0
    while True:
        if load.mode == "once" and k >= len(bodies):
            break
        if load.mode == "closed" and time.time() >= until:
            break
        if load.mode == "paced":
            due = start + k / load.rate
            if due >= until:
                break
            time.sleep(max(0.0, due - time.time()))
        t0 = time.monotonic()
        conn.request("POST", "/v1/traces", body=bodies[k % len(bodies)], headers=HEADERS)
        resp = conn.getresponse()
        resp.read()
        latencies.append(time.monotonic() - t0)
        if resp.status == 200:
            acked += SPANS_PER_REQUEST
        else:
            refused += 1
        k += 1
    conn.close()
    out.put((acked, refused, latencies))


def drive(loads: list[Load], on_start: Callable[[], None] | None = None) -> Sent:
    """Run one client process per load, all starting at once (``on_start`` is called just
    before); wait for all of them."""
    ctx = mp.get_context("spawn")
    out: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    go = ctx.Event()
    procs = [ctx.Process(target=_client, args=(load, out, go)) for load in loads]
    for p in procs:
        p.start()
    for _ in procs:
        out.get()
    if on_start is not None:
        on_start()
    go.set()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
    return Sent(
        acked_spans=sum(r[0] for r in results),
        refused=sum(r[1] for r in results),
        latencies=sorted(x for r in results for x in r[2]),
    )


def clients(
    ports: list[int],
    cache: Path,
    n: int,
    *,
    mode: str,
    seconds: float = 0.0,
    rate: float = 0.0,
) -> list[Load]:
    """``n`` loads spread round-robin over ``ports``, each with its own share of the bodies;
    ``rate``: requests/s of all of them together when paced."""
    return [
        Load(ports[i % len(ports)], cache, i, n, mode, seconds, rate / n if rate else 0.0)
        for i in range(n)
    ]
