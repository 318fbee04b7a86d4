from __future__ import annotations

import gzip
import tracemalloc
import zlib

import pytest
import zstandard

from ingest.errors import BadRequest, PayloadTooLarge, UnsupportedEncoding
from ingest.receive.http_body import content_encoding, decompress

PAYLOAD = b"".join(b"span %d of an agent trace; " % i for i in range(20_000))  # ~540 KB
LIMIT = 1 << 20


def raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


def zstd_stream(data: bytes) -> bytes:
    """A zstd frame that does not declare its size, as streaming encoders write it."""
    compressor = zstandard.ZstdCompressor().compressobj()
    return compressor.compress(data) + compressor.flush()


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "identity"),
        ("", "identity"),
        ("identity", "identity"),
        ("GZIP", "gzip"),
        ("x-gzip", "gzip"),
        (" deflate ", "deflate"),
        ("zstd", "zstd"),
        ("gzip, identity", "gzip"),
    ],
)
def test_content_encoding_names(header: str | None, expected: str) -> None:
    assert content_encoding(header) == expected


@pytest.mark.parametrize("header", ["br", "compress", "snappy", "gzip, zstd"])
def test_unknown_or_stacked_encoding_is_a_400(header: str) -> None:
    with pytest.raises(UnsupportedEncoding) as info:
        content_encoding(header)
    assert info.value.http_status == 400


@pytest.mark.parametrize(
    ("encoding", "body"),
    [
        ("identity", PAYLOAD),
        ("gzip", gzip.compress(PAYLOAD)),
        ("deflate", zlib.compress(PAYLOAD)),  # zlib-wrapped: the Python exporter
        ("deflate", raw_deflate(PAYLOAD)),  # raw RFC 1951
        ("zstd", zstandard.ZstdCompressor().compress(PAYLOAD)),
        ("zstd", zstd_stream(PAYLOAD)),
    ],
    ids=["identity", "gzip", "deflate-zlib", "deflate-raw", "zstd", "zstd-stream"],
)
def test_each_encoding_decodes(encoding: str, body: bytes) -> None:
    assert decompress(body, encoding, LIMIT) == PAYLOAD


def test_several_gzip_members_and_zstd_frames_are_concatenated() -> None:
    half = PAYLOAD[:1000]
    assert decompress(gzip.compress(half) + gzip.compress(half), "gzip", LIMIT) == half * 2
    frame = zstandard.ZstdCompressor().compress(half)
    assert decompress(frame + frame, "zstd", LIMIT) == half * 2


def test_empty_body_stays_empty() -> None:
    for encoding in ("identity", "gzip", "deflate", "zstd"):
        assert decompress(b"", encoding, LIMIT) == b""


@pytest.mark.parametrize(
    ("encoding", "body", "needle"),
    [
        ("gzip", gzip.compress(PAYLOAD)[:-20], "truncated"),
        ("gzip", b"not gzip at all", "cannot be decompressed"),
        ("gzip", gzip.compress(PAYLOAD) + b"trailing", "cannot be decompressed"),
        ("deflate", zlib.compress(PAYLOAD)[:-20], "truncated"),
        ("deflate", zlib.compress(PAYLOAD) + b"xx", "unexpected bytes"),
        ("deflate", b"\xff\xff\xff\xff", "cannot be decompressed"),
        ("zstd", zstd_stream(PAYLOAD)[:-10], "truncated"),
        ("zstd", b"not zstd", "cannot be decompressed"),
    ],
)
def test_corrupt_bodies_are_bad_requests(encoding: str, body: bytes, needle: str) -> None:
    with pytest.raises(BadRequest) as info:
        decompress(body, encoding, LIMIT)
    assert needle in info.value.message


@pytest.mark.parametrize("encoding", ["identity", "gzip", "deflate", "zstd"])
def test_limit_is_exact(encoding: str) -> None:
    data = bytes(1000)
    body = {
        "identity": data,
        "gzip": gzip.compress(data),
        "deflate": zlib.compress(data),
        "zstd": zstd_stream(data),
    }[encoding]
    assert decompress(body, encoding, 1000) == data
    with pytest.raises(PayloadTooLarge) as info:
        decompress(body, encoding, 999)
    assert info.value.http_status == 413


def bomb(encoding: str, size: int) -> bytes:
    """``size`` zero bytes, compressed: a few hundred KB that inflate to ``size``."""
    chunk = bytes(1 << 20)
    if encoding == "zstd":
        zc = zstandard.ZstdCompressor().compressobj()
        return b"".join(zc.compress(chunk) for _ in range(size >> 20)) + zc.flush()
    wbits = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}[encoding]
    compressor = zlib.compressobj(1, zlib.DEFLATED, wbits)
    return b"".join(compressor.compress(chunk) for _ in range(size >> 20)) + compressor.flush()


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "zstd"])
def test_bomb_is_refused_without_inflating_it(encoding: str) -> None:
    """64 MiB of zeros against a 1 MiB limit: refused, and memory never held the output."""
    body = bomb(encoding, 64 << 20)
    assert len(body) < LIMIT
    tracemalloc.start()
    try:
        with pytest.raises(PayloadTooLarge):
            decompress(body, encoding, LIMIT)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * LIMIT
