"""Token counts and reported costs as emitters send them: numbers, numeric strings, JSON.

Shared by ``ingest.convert.routing`` (per attribute) and ``ingest.convert.normalize`` (per span).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

INCLUSIVE: Final = "inclusive"
LANGFUSE_EXCLUSIVE: Final = "exclusive:langfuse-usage-details"


#: Larger counts are not token counts (and could overflow int64 sums).
MAX_TOKENS: Final = 2**53


def token_count(value: object) -> int | None:
    """A count in [0, 2^53] from an int, a finite double or a numeric string; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value <= MAX_TOKENS else None
    if isinstance(value, float):
        return round(value) if 0 <= value <= MAX_TOKENS else None
    if isinstance(value, str):
        text = value.strip()
        try:
            return token_count(int(text))
        except ValueError:
            try:
                return token_count(float(text))
            except ValueError:
                return None
    return None


def money(value: object) -> float | None:
    """A non-negative finite USD amount from a number or a numeric string; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        x = float(value)
    elif isinstance(value, str):
        try:
            x = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return x if math.isfinite(x) and x >= 0 else None


class JsonCache:
    """Parsed JSON objects by text: the same metadata JSON repeats on every span of a trace."""

    def __init__(self, limit: int = 10_000) -> None:
        self._cache: dict[str, dict[str, Any] | None] = {}
        self._limit = limit

    def object(self, text: str) -> dict[str, Any] | None:
        try:
            return self._cache[text]
        except KeyError:
            pass
        try:
            obj = json.loads(text)
        except ValueError:
            obj = None
        result = obj if isinstance(obj, dict) else None
        if len(self._cache) >= self._limit:
            self._cache.clear()
        self._cache[text] = result
        return result


def langfuse_cost(obj: Mapping[str, Any]) -> float | None:
    """``total`` of Langfuse ``cost_details``, else the sum of its parts."""
    if "total" in obj:
        return money(obj["total"])
    parts = [m for m in (money(v) for v in obj.values()) if m is not None]
    return sum(parts) if parts else None


@dataclass(frozen=True)
class Usage:
    """Inclusive counts of one model call and how they were read."""

    input: int | None
    output: int | None
    cache_read: int | None
    cache_write: int | None
    reasoning: int | None
    total: int | None
    basis: str
    #: Buckets whose value is not a count (negative, too large, not a number): the call is
    #: then flagged and not priced from tokens (``ingest.convert.routing``), never priced on the
    #: rest.
    invalid: tuple[str, ...] = ()


_CACHE_READ = ("cache_read", "cached")
_CACHE_WRITE = ("cache_creation", "cache_write")


def langfuse_usage(obj: Mapping[str, Any]) -> Usage | None:
    """Langfuse ``usage_details`` -> inclusive counts.

    Langfuse buckets are exclusive: ``input`` (``output``) is what is left once every
    ``input_*`` (``output_*``) detail bucket was subtracted (its LangChain handler does exactly
    that), so the whole is the sum of the buckets; cache and reasoning buckets are named by
    their parts (``input_cache_read``, ``cache_read_input_tokens``, ``output_reasoning``...).
    OpenAI-shaped usage (``prompt_tokens``, ``prompt_tokens_details``), which Langfuse passes
    through, is already inclusive.
    """
    invalid: list[str] = []

    def count(parent: object, key: str) -> int | None:
        raw = parent.get(key) if isinstance(parent, dict) else None
        n = token_count(raw)
        if n is None and raw is not None:
            invalid.append(key)
        return n

    if "prompt_tokens" in obj or "completion_tokens" in obj:
        return Usage(
            input=count(obj, "prompt_tokens"),
            output=count(obj, "completion_tokens"),
            cache_read=count(obj.get("prompt_tokens_details"), "cached_tokens"),
            cache_write=None,
            reasoning=count(obj.get("completion_tokens_details"), "reasoning_tokens"),
            total=count(obj, "total_tokens"),
            basis=INCLUSIVE,
            invalid=tuple(invalid),
        )
    inp = out = read = write = reasoning = None
    total = None
    for key in obj:
        low = key.lower()
        is_read = any(m in low for m in _CACHE_READ)
        is_write = any(m in low for m in _CACHE_WRITE)
        is_total = low in ("total", "total_tokens")
        is_input = low in ("input", "input_tokens") or low.startswith("input_")
        is_output = low in ("output", "output_tokens") or low.startswith("output_")
        if not (is_total or is_input or is_output or is_read or is_write):
            continue
        n = count(obj, key)
        if n is None:
            continue
        if is_total:
            total = n
            continue
        if is_input or is_read or is_write:
            inp = (inp or 0) + n
        else:
            out = (out or 0) + n
        if is_read:
            read = (read or 0) + n
        elif is_write:
            write = (write or 0) + n
        elif "reasoning" in low:
            reasoning = (reasoning or 0) + n
    if inp is None and out is None and not invalid:
        return None
    return Usage(inp, out, read, write, reasoning, total, LANGFUSE_EXCLUSIVE, tuple(invalid))
