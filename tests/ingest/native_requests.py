"""Adversarial OTLP trace requests, written as raw protobuf, for the native-vs-Python tests.

The encoder below writes what the OTel SDKs never send but a wire may carry: every AnyValue
kind nested, NaN/inf/-0.0, huge and negative ints, empty strings vs absent fields, duplicate
keys, unknown fields, reordered and repeated fields, non-canonical encodings (a bool of 2, an
AnyValue with two members, long varints), events, links, missing resources and scopes, ids of
any length, and now and then something invalid (non-UTF-8 text, a wrong wire type). Attribute
keys and values are drawn from every convention ``ingest.convert.routing`` reads (JSON included), so
both the native resolution and its Python fallbacks are exercised. Deterministic per seed.
"""

from __future__ import annotations

import json
import random
import struct

from ingest.convert.routing import routing_table
from schemas.settings import Settings

_MASK64 = (1 << 64) - 1


def varint(n: int) -> bytes:
    n &= _MASK64
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def tag(field: int, wire_type: int) -> bytes:
    return varint(field << 3 | wire_type)


def ld(field: int, payload: bytes) -> bytes:
    """A length-delimited field."""
    return tag(field, 2) + varint(len(payload)) + payload


def vi(field: int, n: int) -> bytes:
    return tag(field, 0) + varint(n)


def fixed64(field: int, n: int) -> bytes:
    return tag(field, 1) + struct.pack("<Q", n & _MASK64)


def fixed32(field: int, n: int) -> bytes:
    return tag(field, 5) + struct.pack("<I", n & 0xFFFFFFFF)


def double(field: int, x: float) -> bytes:
    return tag(field, 1) + struct.pack("<d", x)


#: Keys whose spans the fast path hands to Python whole (JSON and marker attributes).
SPECIAL_KEYS = [
    "metadata",
    "langfuse.observation.usage_details",
    "langfuse.observation.cost_details",
    "traceloop.span.kind",
    "traceloop.entity.name",
    "telemetry.sdk.name",
]
ROUTED_KEYS = sorted(set(routing_table(Settings())) - set(SPECIAL_KEYS))
OTHER_KEYS = [
    "service.name",
    "http.route",
    "server.port",
    "code.line.number",
    "gen_ai.request.temperature",
    "gen_ai.response.finish_reasons",
    "exception.type",
    "exception.message",
    "",
    "k",
    "ключ",
]
TEXTS = [
    "",
    "x",
    "chat",
    "CHAT",
    "embeddings",
    "execute_tool",
    "invoke_agent",
    "LLM",
    "EMBEDDING",
    "unknown",
    "openai",
    "anthropic",
    "Anthropic",
    "az.ai.openai",
    "openlit",
    "agent",
    "tool",
    "workflow",
    "gpt-4o",
    "gpt-4o-2024-08-06",
    "gpt-4o-mini",
    "claude-sonnet-4-5",
    "text-embedding-3-small",
    "acme-large-1",
    "no-such-model",
    "42",
    " 17 ",
    "-3",
    "12.5",
    "1e3",
    "NaN",
    "0.25",
    "true",
    "☃ snow",
    "a" * 200,
    "tab\there",
]
JSONS = [
    json.dumps({"correlation.id": "c-meta", "task.id": 7, "workflow.role": None}),
    json.dumps({"team.id": ["x"], "workflow.id": "wf-json", "workflow.version": 2.5}),
    json.dumps({"input": 100, "output": 20, "input_cache_read": 30, "output_reasoning": 5}),
    json.dumps({"prompt_tokens": 50, "completion_tokens": 9, "total_tokens": 59}),
    json.dumps({"prompt_tokens": 5, "prompt_tokens_details": {"cached_tokens": 2}, "total": 7}),
    json.dumps({"total": 0.5}),
    json.dumps({"input": 0.1, "output": "0.2"}),
    json.dumps({"total": -1}),
    "{",
    "[]",
    "null",
]
INTS = [0, 1, 2, -1, 127, 128, 300, 16384, 2**31, 2**53, 2**53 + 1, 2**63 - 1, -(2**63), 9_999]
DOUBLES = [
    0.0,
    -0.0,
    0.2,
    1.5,
    0.1 + 0.2,
    1e16,
    1e-7,
    5e-324,
    1.7976931348623157e308,
    123456789.0,
    float("nan"),
    float("inf"),
    float("-inf"),
    2.0**53,
    -12.75,
]


class Adversary:
    """Random raw requests; ``broken`` is the chance that a request carries something invalid
    (non-UTF-8 text, a wrong wire type, a dropped count that overflows)."""

    def __init__(self, seed: int, broken: float = 0.1) -> None:
        self.rng = random.Random(seed)
        self._breaks_left = 1 if self.rng.random() < broken else 0

    def breaks(self) -> bool:
        """Whether to break the request here: at most once, at a random place."""
        if self._breaks_left and self.chance(0.05):
            self._breaks_left = 0
            return True
        return False

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def text(self) -> bytes:
        r = self.rng
        if self.chance(0.05):
            return "".join(r.choice('abcé☃\x00"\\\n') for _ in range(r.randint(0, 12))).encode()
        return r.choice(TEXTS).encode()

    def bad_utf8(self) -> bytes:
        return self.rng.choice(
            [b"\xff", b"a\xc0\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82"]
        )

    # ------------------------------------------------------------------ values

    def anyvalue(self, depth: int = 0, key: str = "") -> bytes:
        r = self.rng
        json_key = key == "metadata" or key.endswith(("usage_details", "cost_details"))
        if json_key and self.chance(0.8):
            return ld(1, r.choice(JSONS).encode())
        kinds = ["str", "str", "int", "int", "double", "bool", "bytes", "array", "kvlist", "none"]
        if depth > 2:
            kinds = kinds[:7]
        kind = r.choice(kinds)
        if self.chance(0.04):
            kind = "weird"
        if kind == "str":
            if self.breaks():
                return ld(1, self.bad_utf8())
            return ld(1, self.text())
        if kind == "int":
            return vi(3, r.choice(INTS) if self.chance(0.6) else r.randint(-5, 20000))
        if kind == "double":
            return double(4, r.choice(DOUBLES) if self.chance(0.7) else r.uniform(-1e6, 1e6))
        if kind == "bool":
            return vi(2, r.randint(0, 1))
        if kind == "bytes":
            return ld(7, r.randbytes(r.randint(0, 6)))
        if kind == "array":
            return ld(5, b"".join(ld(1, self.anyvalue(depth + 1)) for _ in range(r.randint(0, 3))))
        if kind == "kvlist":
            return ld(6, b"".join(ld(1, self.keyvalue(depth + 1)) for _ in range(r.randint(0, 3))))
        if kind == "none":
            return b""
        # non-canonical but valid: upb decides, and so must the fast path's fallback
        return r.choice(
            [
                vi(2, 2),  # a bool of 2
                tag(2, 0) + b"\x81\x00",  # a two-byte bool varint
                tag(3, 0) + b"\x85\x80\x00",  # an int with a non-minimal varint
                ld(1, b"first") + ld(1, b"second"),  # a member twice: the last wins
                ld(1, b"text") + vi(3, 9),  # two members: the last wins
                vi(3, 5) + vi(15, 1),  # an unknown field inside
                vi(3, 1) + tag(4, 0) + b"\x01",  # double_value with a wrong wire type
            ]
        )

    def key(self) -> str:
        r = self.rng
        if self.chance(0.04):
            return r.choice(SPECIAL_KEYS)
        if self.chance(0.6):
            return r.choice(ROUTED_KEYS)
        return r.choice(OTHER_KEYS)

    def routed_value(self, key: str) -> bytes:
        """A value of the kind the convention reading ``key`` expects, mostly."""
        r = self.rng
        if "token" in key or key.endswith(("_tokens", ".prompt", ".completion", ".total")):
            if self.chance(0.05):  # not a count: the span is flagged, by Python
                return r.choice(
                    [vi(3, r.choice(INTS)), double(4, r.choice([-1.0, float("nan")])), vi(2, 1)]
                )
            return r.choice(
                [
                    vi(3, r.randint(0, 5000)),
                    vi(3, r.choice([n for n in INTS if 0 <= n <= 2**53])),
                    ld(1, str(r.randint(0, 900)).encode()),
                    double(4, r.choice([12.0, 12.5])),
                ]
            )
        if "cost" in key:
            return r.choice([double(4, r.random()), ld(1, b"0.75"), vi(3, 2), double(4, -1.0)])
        return self.anyvalue(key=key)

    def keyvalue(self, depth: int = 0, key: str | None = None) -> bytes:
        k = self.key() if key is None else key
        value = self.routed_value(k) if depth == 0 and self.chance(0.7) else self.anyvalue(depth, k)
        kb = k.encode()
        if self.breaks():
            kb = self.bad_utf8()
        if self.chance(0.03):  # value first
            return ld(2, value) + ld(1, kb)
        if self.chance(0.02):  # key only
            return ld(1, kb)
        if self.chance(0.02):  # an unknown field
            return ld(1, kb) + ld(2, value) + vi(7, 1)
        if self.chance(0.01):  # the key twice
            return ld(1, b"first") + ld(1, kb) + ld(2, value)
        return ld(1, kb) + ld(2, value)

    def attributes(self, field: int, most: int) -> list[bytes]:
        r = self.rng
        kvs = [ld(field, self.keyvalue()) for _ in range(r.randint(0, most))]
        if kvs and self.chance(0.2):  # duplicate keys
            kvs.append(r.choice(kvs))
        if self.chance(0.3):  # a coherent model call
            model = r.choice(["gpt-4o", "claude-sonnet-4-5", "acme-large-1", "no-such-model"])
            kvs += [
                ld(field, ld(1, b"gen_ai.operation.name") + ld(2, ld(1, b"chat"))),
                ld(field, ld(1, b"gen_ai.request.model") + ld(2, ld(1, model.encode()))),
                ld(field, ld(1, b"gen_ai.usage.input_tokens") + ld(2, vi(3, r.randint(0, 9000)))),
                ld(field, ld(1, b"gen_ai.usage.output_tokens") + ld(2, vi(3, r.randint(0, 900)))),
            ]
            r.shuffle(kvs)
        return kvs

    # ------------------------------------------------------------------ messages

    def span_id(self, size: int) -> bytes:
        r = self.rng
        if self.chance(0.1):
            return r.choice([b"", b"\x00" * size, r.randbytes(size // 2), r.randbytes(size + 1)])
        return r.randbytes(size)

    def event(self) -> bytes:
        r = self.rng
        name = b"exception" if self.chance(0.6) else self.text()
        attrs = self.attributes(3, 3)
        if self.chance(0.7):
            attrs.append(
                ld(3, ld(1, b"exception.type") + ld(2, ld(1, r.choice([b"", b"TimeoutError"]))))
            )
            r.shuffle(attrs)
        fields = [fixed64(1, r.randint(0, 2**63)), ld(2, name), *attrs, vi(4, r.randint(0, 3))]
        return b"".join(fields)

    def link(self) -> bytes:
        r = self.rng
        fields = [
            ld(1, self.span_id(16)),
            ld(2, self.span_id(8)),
            ld(3, r.choice([b"", b"k=v"])),
            *self.attributes(4, 3),
            vi(5, r.randint(0, 2)),
            fixed32(6, r.choice([0, 1, 0x301])),
        ]
        return b"".join(f for f in fields if self.chance(0.85))

    def status(self) -> bytes:
        r = self.rng
        parts = []
        if self.chance(0.5):
            parts.append(ld(2, r.choice([b"", b"upstream timeout", "é".encode()])))
        if self.chance(0.8):
            parts.append(vi(3, r.choice([0, 1, 2, 2, 7, -1, 300])))
        if self.chance(0.05):
            parts.append(vi(9, 1))
        r.shuffle(parts)
        return b"".join(parts)

    def span(self) -> bytes:
        r = self.rng
        start = r.choice([1_772_442_000_000_000_000 + r.randint(0, 10**12), 0, 2**64 - 1, 2**63])
        end = r.choice([start + r.randint(0, 10**10), 0, start, 2**64 - 1])
        fields = [
            ld(1, self.span_id(16)),
            ld(2, self.span_id(8)),
            ld(3, r.choice([b"", b"vendor=1"])),
            ld(4, self.span_id(8) if self.chance(0.7) else b""),
            ld(5, self.text()),
            vi(6, r.choice([0, 1, 2, 3, 5, 200, -1])),
            fixed64(7, start),
            fixed64(8, end),
            *self.attributes(9, 16),
            vi(10, r.choice([0, 0, 3, 2**32 - 1 if self.breaks() else 2**31])),
            vi(12, r.choice([0, 1])),
            vi(14, r.choice([0, 2])),
            fixed32(16, r.choice([0, 1, 0x101, 0x301])),
        ]
        fields = [f for f in fields if self.chance(0.9)]
        if self.chance(0.5):
            fields.append(ld(15, self.status()))
        if self.chance(0.15):
            fields += [ld(11, self.event()) for _ in range(r.randint(1, 3))]
        if self.chance(0.1):
            fields += [ld(13, self.link()) for _ in range(r.randint(1, 2))]
        if self.chance(0.05):  # unknown fields
            fields.append(r.choice([vi(17, 5), ld(99, b"xx"), fixed32(40, 1), fixed64(1000, 2)]))
        if self.chance(0.05):  # a singular field twice: the last wins
            fields.append(ld(5, b"renamed"))
        if self.chance(0.2):
            r.shuffle(fields)
        if self.breaks():
            fields.append(
                r.choice([ld(5, self.bad_utf8()), tag(6, 2) + b"\x00", tag(7, 0) + b"\x01"])
            )
        return b"".join(fields)

    def resource(self) -> bytes:
        r = self.rng
        kvs = self.attributes(1, 5)
        if self.chance(0.3):
            kvs.append(ld(1, ld(1, b"service.name") + ld(2, ld(1, b"svc"))))
        if self.chance(0.2):
            kvs.append(ld(1, ld(1, b"telemetry.sdk.name") + ld(2, ld(1, b"openlit"))))
        return b"".join([*kvs, vi(2, r.choice([0, 1]))])

    def scope(self) -> bytes:
        r = self.rng
        name = r.choice([b"", b"openlit.otel.tracing", b"opentelemetry.instrumentation.openai"])
        return b"".join([ld(1, name), ld(2, r.choice([b"", b"1.0"])), *self.attributes(3, 2)])

    def request(self) -> bytes:
        r = self.rng
        out = []
        for _ in range(r.randint(0, 3)):
            rs = []
            if self.chance(0.85):
                rs.append(ld(1, self.resource()))
            for _ in range(r.randint(0, 3)):
                ss = []
                if self.chance(0.85):
                    ss.append(ld(1, self.scope()))
                ss += [ld(2, self.span()) for _ in range(r.randint(0, 6))]
                if self.chance(0.3):
                    ss.append(ld(3, b"https://opentelemetry.io/schemas/1.37.0"))
                if self.chance(0.2):
                    r.shuffle(ss)
                rs.append(ld(2, b"".join(ss)))
            if self.chance(0.3):
                rs.append(ld(3, b"https://opentelemetry.io/schemas/1.30.0"))
            if self.chance(0.2):
                r.shuffle(rs)
            out.append(ld(1, b"".join(rs)))
        if self.chance(0.03):
            out.append(vi(5, 1))  # an unknown top-level field
        return b"".join(out)


def mutate(rng: random.Random, body: bytes) -> bytes:
    """A truncated, bit-flipped, spliced or shuffled copy of ``body``."""
    if not body:
        return rng.randbytes(rng.randint(0, 8))
    data = bytearray(body)
    how = rng.randrange(5)
    if how == 0:
        return bytes(data[: rng.randrange(len(data))])
    if how == 1:
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
        return bytes(data)
    if how == 2:
        i = rng.randrange(len(data))
        data[i : i + rng.randint(1, 3)] = rng.randbytes(rng.randint(0, 3))
        return bytes(data)
    if how == 3:
        i = rng.randrange(len(data))
        j = rng.randrange(len(data))
        return bytes(data[:i] + data[j : j + rng.randint(1, 20)] + data[i:])
    i = rng.randrange(len(data))
    data[i] = rng.choice([0x00, 0x7F, 0x80, 0xFF, 0x0A, 0x12])
    return bytes(data)
