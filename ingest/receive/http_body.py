"""Read an OTLP/HTTP request body within the size limits, and undo its Content-Encoding.

Two limits, as the spec asks: ``max_request_bytes`` on the wire (checked against
``Content-Length`` before reading anything, and counted while streaming a chunked body that
has none) and ``max_decompressed_bytes`` after decompression, enforced *while* inflating: the
inflater is never asked for more than the limit plus one byte, so a gzip bomb costs at most the
limit in memory before it is refused.

Encodings: identity, gzip (several members allowed), deflate (zlib-wrapped as the Python
exporter sends it, or raw), zstd. Anything else is 400, as the OTLP spec says.

Memory is admitted before it is used (``ingest.receive.admission``): the request's ticket takes the
declared length (and what decoding that many bytes will build) before a byte is read, grows
chunk by chunk for a body without Content-Length, and grows step by step (``_STEP`` of output)
while a body inflates, so eight compressed bodies cannot all inflate to 64 MiB at once.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Callable

import zstandard
from starlette.requests import Request

from ingest.errors import BadRequest, PayloadTooLarge, UnsupportedEncoding
from ingest.receive.admission import Ticket
from schemas.settings import Settings

IDENTITY = "identity"
GZIP = "gzip"
DEFLATE = "deflate"
ZSTD = "zstd"
_ALIASES = {"x-gzip": GZIP}
SUPPORTED = (IDENTITY, GZIP, DEFLATE, ZSTD)

#: Compressed bodies above this are inflated in a worker thread, off the event loop.
THREAD_THRESHOLD = 1 << 20
_ZSTD_READ = 1 << 20
#: Inflate in steps of this much output, admitting each step before the next.
_STEP = 4 << 20

#: Told the size of each piece of output as decompression produces it (may raise to stop).
OnOutput = Callable[[int], None]


def _ignore(_: int) -> None:
    return None


def content_encoding(header: str | None) -> str:
    """The one encoding named by a Content-Encoding header (``identity`` when absent)."""
    names = [n.strip().lower() for n in (header or "").split(",")]
    names = [_ALIASES.get(n, n) for n in names if n and n != IDENTITY]
    if not names:
        return IDENTITY
    if len(names) > 1:
        raise UnsupportedEncoding(f"stacked Content-Encodings are not supported: {header!r}")
    name = names[0]
    if name not in SUPPORTED:
        raise UnsupportedEncoding(
            f"unsupported Content-Encoding {name!r}; use one of {', '.join(SUPPORTED)}"
        )
    return name


async def read_body(request: Request, settings: Settings, ticket: Ticket, weight: float) -> bytes:
    """The decompressed body of ``request``, or an ``IngestError`` (400 / 413 / 503).

    ``ticket`` is made to hold the body and ``weight`` times its decompressed size (what
    decoding it will build) before the bytes are read or inflated.
    """
    encoding = content_encoding(request.headers.get("content-encoding"))
    limit = settings.max_request_bytes
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise BadRequest(f"invalid Content-Length {declared!r}")
        if int(declared) > limit:
            raise PayloadTooLarge(
                f"request body of {int(declared)} bytes exceeds the limit of {limit} bytes"
            )
    # a wire byte costs itself, plus what decoding it builds when nothing inflates it first
    per_wire_byte = 1 + weight if encoding == IDENTITY else 1.0
    await ticket.take(int(int(declared or 0) * per_wire_byte))
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        if not chunk:
            continue
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body exceeds the limit of {limit} bytes")
        if declared is None:
            ticket.grow(int(len(chunk) * per_wire_byte))
        chunks.append(chunk)
    # one chunk (the common case for small bodies) is used as is, without a copy
    body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    del chunks
    if encoding == IDENTITY:
        return decompress(body, encoding, settings.max_decompressed_bytes)

    def admit(nbytes: int) -> None:
        ticket.grow(int(nbytes * (1 + weight)))

    if len(body) > THREAD_THRESHOLD:
        return await asyncio.to_thread(
            decompress, body, encoding, settings.max_decompressed_bytes, admit
        )
    return decompress(body, encoding, settings.max_decompressed_bytes, admit)


def decompress(body: bytes, encoding: str, limit: int, on_output: OnOutput = _ignore) -> bytes:
    """``body`` decoded from ``encoding``; 413 as soon as the output would exceed ``limit``.

    ``on_output`` hears of every piece of output before the next is made (admission)."""
    if not body:
        return body
    if encoding == IDENTITY:
        if len(body) > limit:
            raise _too_large(limit)
        return body
    if encoding == GZIP:
        return _inflate(body, 16 + zlib.MAX_WBITS, limit, "gzip", on_output, several_members=True)
    if encoding == DEFLATE:
        if not _looks_like_zlib(body):
            return _inflate(body, -zlib.MAX_WBITS, limit, "deflate", on_output)
        try:
            return _inflate(body, zlib.MAX_WBITS, limit, "deflate", on_output)
        except BadRequest as zlib_error:
            try:  # a raw deflate stream can start like a zlib header by chance
                return _inflate(body, -zlib.MAX_WBITS, limit, "deflate", on_output)
            except BadRequest:
                raise zlib_error from None
    if encoding == ZSTD:
        return _unzstd(body, limit, on_output)
    raise UnsupportedEncoding(f"unsupported Content-Encoding {encoding!r}")


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"decompressed request body exceeds the limit of {limit} bytes")


def _looks_like_zlib(data: bytes) -> bool:
    """RFC 1950 header: method 8 (deflate), window <= 32K, header checksum a multiple of 31."""
    return (
        len(data) >= 2
        and data[0] & 0x0F == 8
        and data[0] >> 4 <= 7
        and ((data[0] << 8) | data[1]) % 31 == 0
    )


def _inflate(
    data: bytes,
    wbits: int,
    limit: int,
    what: str,
    on_output: OnOutput,
    *,
    several_members: bool = False,
) -> bytes:
    parts: list[bytes] = []
    total = 0
    while True:
        inflater = zlib.decompressobj(wbits)
        pending: bytes = data
        while True:  # one member, ``_STEP`` of output at a time
            try:
                part = inflater.decompress(pending, min(_STEP, limit - total + 1))
            except zlib.error as exc:
                raise BadRequest(f"{what} body cannot be decompressed: {exc}") from None
            total += len(part)
            if total > limit:
                raise _too_large(limit)
            if part:
                on_output(len(part))
                parts.append(part)
            pending = inflater.unconsumed_tail
            if inflater.eof or (not pending and not part):
                break
        if not inflater.eof:
            raise BadRequest(f"{what} body is truncated")
        data = inflater.unused_data
        if not data:
            break
        if not several_members:
            raise BadRequest(f"{len(data)} unexpected bytes after the end of the {what} stream")
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _unzstd(data: bytes, limit: int, on_output: OnOutput) -> bytes:
    # max_window_size bounds what a frame header can make the decoder allocate
    dctx = zstandard.ZstdDecompressor(max_window_size=max(8 << 20, min(limit, 128 << 20)))
    try:
        # pass 1: measure with bounded memory (frames may not declare their size)
        total = 0
        with dctx.stream_reader(data, read_across_frames=True) as reader:
            while chunk := reader.read(_ZSTD_READ):
                total += len(chunk)
                if total > limit:
                    raise _too_large(limit)
                on_output(len(chunk))
        # pass 2: the output is now known to fit; decode frame by frame to catch truncation
        parts: list[bytes] = []
        while data:
            frame = dctx.decompressobj()
            parts.append(frame.decompress(data))
            if not frame.eof:
                raise BadRequest("zstd body is truncated")
            data = frame.unused_data
    except zstandard.ZstdError as exc:
        raise BadRequest(f"zstd body cannot be decompressed: {exc}") from None
    return parts[0] if len(parts) == 1 else b"".join(parts)
