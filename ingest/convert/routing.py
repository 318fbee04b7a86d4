"""Which typed column each span attribute fills, decided per distinct attribute and per span.

A ``Router`` turns the tables of ``ingest.convert.conventions`` and the configured attribution keys
into a routing table. Each distinct (key, value) is examined once (``Router.entry``): what it
contributes to which column, at which rank, with which value, and whether that value is
exactly the attribute's (so the attribute may leave ``attributes``). Per span, ``resolve``
keeps the best-ranked contribution per column and applies the span-level rules: the response
model falls back to the request model, tokens count only on leaf model calls, exclusive input
is made inclusive, free-form JSON attribution and Langfuse JSON usage are read.

A usage attribute whose value is not a count in [0, 2^53] (negative, too large, not a number)
fills no column and stays in ``attributes`` as sent; it makes its span a model call whose
``usage_basis`` is ``invalid:<key>[,<key>...]`` and which is not priced from tokens (``unpriced``,
or ``reported`` when the emitter reported a cost): never dropped silently, never half-priced.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import filterfalse
from operator import itemgetter
from typing import Any, Final

from ingest.convert import conventions as cv
from ingest.convert.usage import (
    INCLUSIVE,
    MAX_TOKENS,
    JsonCache,
    Usage,
    langfuse_cost,
    langfuse_usage,
    money,
    token_count,
)
from schemas.settings import Settings

#: (column, rank, value, exact, source key, special, extra, pair). ``special`` is None for a
#: ready value; else the value is the attribute's text, to be read per span (JSON, markers).
#: ``pair`` numbers the (column, source key) pair (``Router.pair``), so ``source_keys`` is
#: built by index instead of per string.
Contrib = tuple[str, int, Any, bool, str, str | None, Any, int]
#: An attribute: (key, text, type code, routing). Routing is None for an attribute no typed
#: column reads ("cold"), else (ready contributions, special ones or None).
Routing = tuple[tuple[Contrib, ...], tuple[Contrib, ...] | None]
Entry = tuple[str, str, str, Routing | None]

# how a route reads its attribute
STR: Final = "str"
OP: Final = "op"
PROV: Final = "prov"
TOK: Final = "tok"
COST: Final = "cost"
META: Final = "meta"
LFUSAGE: Final = "lfusage"
LFCOST: Final = "lfcost"
MARK: Final = "mark"
BADTOK: Final = "badtok"
INVALID_USAGE: Final = "invalid:"

# marker "columns" (never stored)
SDK: Final = "_sdk"
TLKIND: Final = "_tlkind"
TLENTITY: Final = "_tlentity"

TOKEN_COLUMNS: Final = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "total_tokens",
)
_TOKEN_SET: Final = frozenset(TOKEN_COLUMNS)
#: Filled on leaf model calls only.
MODEL_ONLY: Final = frozenset({*TOKEN_COLUMNS, "reported_cost_usd"})

Route = tuple[str, int, str, Any]  # (column, rank, how, extra)
#: (input, output, cache read, cache write, reasoning) tokens of a model call.
Counts = tuple[int | None, int | None, int | None, int | None, int | None]
#: What pricing a model call needs: (provider, model, counts, reported cost).
PriceArgs = tuple[str | None, str | None, Counts, float | None]

_MODEL_CALLS: Final = cv.MODEL_CALL_OPERATIONS
_EXACT: Final = itemgetter(3)
_SOURCE: Final = itemgetter(4)


def routing_table(settings: Settings) -> dict[str, tuple[Route, ...]]:
    """Attribute key -> every (column, rank, how, extra) it may fill."""
    routes: dict[str, list[Route]] = {}

    def add(key: str, column: str, rank: int, how: str, extra: Any = None) -> None:
        routes.setdefault(key, []).append((column, rank, how, extra))

    for rank, (key, mapping) in enumerate(cv.OPERATION_SOURCES):
        add(key, "operation", rank, OP, mapping)
    for rank, key in enumerate(cv.PROVIDER_KEYS):
        add(key, "provider", rank, PROV)
    for column, keys in cv.STRING_FIELDS.items():
        for rank, key in enumerate(keys):
            add(key, column, rank, STR)
    for column, keys in cv.TOKEN_FIELDS.items():
        for rank, key in enumerate(keys):
            add(key, column, rank, TOK)
    add(cv.LANGFUSE_USAGE_KEY, "input_tokens", 1000, LFUSAGE)
    for rank, key in enumerate(cv.REPORTED_COST_KEYS):
        add(key, "reported_cost_usd", rank, LFCOST if key == cv.LANGFUSE_COST_KEY else COST)
    attribution: dict[str, Sequence[str]] = {
        "correlation_id": settings.correlation_keys,
        "task_id": settings.task_keys,
        "workflow": (*settings.workflow_keys, *cv.WORKFLOW_EXTRA_KEYS),
        "workflow_version": settings.version_keys,
        "team": settings.team_keys,
        "role": settings.role_keys,
    }
    for column, configured in attribution.items():
        for rank, (key, in_json) in enumerate(cv.attribution_candidates(configured)):
            if in_json:
                add(cv.OPENINFERENCE_METADATA_KEY, column, rank, META, key)
            else:
                add(key, column, rank, STR)
    add(cv.OPENLIT_SDK_KEY, SDK, 0, MARK)
    add(cv.TRACELOOP_KIND_KEY, TLKIND, 0, MARK)
    add(cv.TRACELOOP_ENTITY_KEY, TLENTITY, 0, MARK)
    return {key: tuple(r) for key, r in routes.items()}


class Router:
    """Routing for one settings object. Not thread-safe (its JSON cache is shared)."""

    def __init__(self, settings: Settings) -> None:
        self.routes = routing_table(settings)
        self._json = JsonCache()
        self._pairs: dict[tuple[str, str], int] = {}
        #: (column, source key) of every pair number handed out, in order.
        self.pair_columns: list[str] = []
        self.pair_keys: list[str] = []

    def pair(self, column: str, key: str) -> int:
        """The number of a (column, source key) pair (few exist: the routing table's)."""
        found = self._pairs.get((column, key))
        if found is None:
            found = self._pairs[(column, key)] = len(self.pair_columns)
            self.pair_columns.append(column)
            self.pair_keys.append(key)
        return found

    # ------------------------------------------------------------------ per attribute

    def entry(self, key: str, text: str, code: str, value: Any) -> Entry:
        """What one attribute contributes; ``value`` is the str/int/float/bool sent."""
        return self.routed(key, self.routes.get(key), text, code, value)

    def routed(
        self, key: str, routes: tuple[Route, ...] | None, text: str, code: str, value: Any
    ) -> Entry:
        """``entry`` with the key's routes already looked up."""
        if routes is None:
            return key, text, code, None
        plain: list[Contrib] = []
        special: list[Contrib] = []
        is_str = code == "s"
        pair = self.pair
        for column, rank, how, extra in routes:
            if how is STR:
                if text:
                    plain.append((column, rank, text, is_str, key, None, None, pair(column, key)))
            elif how is TOK:
                if code == "i":
                    n = value if 0 <= value <= MAX_TOKENS else None
                else:
                    n = token_count(value if code in "ds" else None)
                if n is not None:
                    plain.append(
                        (
                            column,
                            rank,
                            n,
                            code == "i" and n == value,
                            key,
                            None,
                            None,
                            pair(column, key),
                        )
                    )
                else:  # not a count: flagged per span (``_specials``)
                    special.append((column, rank, text, False, key, BADTOK, None, -1))
            elif how is OP:
                if not text:
                    continue
                if extra is None:
                    plain.append((column, rank, text, is_str, key, None, None, pair(column, key)))
                    continue
                low = text.lower()
                op = extra.get(low, low)
                if op:
                    plain.append(
                        (
                            column,
                            rank,
                            op,
                            is_str and op == text,
                            key,
                            None,
                            None,
                            pair(column, key),
                        )
                    )
            elif how is PROV:
                if text:
                    low = text.lower()
                    prov = cv.PROVIDER_ALIASES.get(low, low)
                    plain.append(
                        (
                            column,
                            rank,
                            prov,
                            is_str and prov == text,
                            key,
                            None,
                            None,
                            pair(column, key),
                        )
                    )
            elif how is COST:
                m = money(value if code in "ids" else None)
                if m is not None:
                    plain.append((column, rank, m, code == "d", key, None, None, pair(column, key)))
            elif how is MARK:
                special.append((column, rank, text, is_str, key, MARK, None, -1))
            elif is_str and text:  # JSON: META, LFUSAGE, LFCOST
                special.append((column, rank, text, False, key, how, extra, pair(column, key)))
        if not plain and not special:
            return key, text, code, None  # nothing usable: as good as cold
        return key, text, code, (tuple(plain), (tuple(special) if special else None))

    # ------------------------------------------------------------------ per span

    def resolve(
        self, hot: list[Entry], openlit_context: bool
    ) -> tuple[dict[str, Contrib], dict[str, Any] | None, PriceArgs | None, set[str]]:
        """(column -> winning contribution, sourceless values, price args, keys to drop).

        Every contribution left in the first dict has a source key (``source_keys``); the
        second holds derived values (computed total, usage basis). Price args are given for
        leaf model calls only: (provider, model, token counts, reported cost). The keys to
        drop are those whose every use is exact.
        """
        best: dict[str, Contrib] = {}
        get = best.get
        specials: list[Contrib] | None = None
        for e in hot:
            plain, special = e[3]  # type: ignore[misc]
            for c in plain:
                col = c[0]
                b = get(col)
                if b is None or c[1] < b[1]:
                    best[col] = c
            if special is not None:
                if specials is None:
                    specials = list(special)
                else:
                    specials.extend(special)
        lf_usage: Contrib | None = None
        invalid: list[str] = []
        if specials is not None:
            lf_usage, openlit_context = self._specials(specials, best, openlit_context, invalid)
        if "response_model" not in best:
            rq = get("request_model")
            if rq is not None:
                best["response_model"] = (
                    "response_model",
                    1000,
                    rq[2],
                    rq[3],
                    rq[4],
                    None,
                    None,
                    self.pair("response_model", rq[4]),
                )
        op = get("operation")
        if op is not None:
            model_call = op[2] in _MODEL_CALLS
        else:
            model_call = "request_model" in best and (
                lf_usage is not None or bool(invalid) or not _TOKEN_SET.isdisjoint(best)
            )
        derived: dict[str, Any] | None = None
        price_args: PriceArgs | None = None
        if model_call:
            if invalid:  # not priced from tokens: what they cost is unknown
                derived = {"usage_basis": INVALID_USAGE + ",".join(dict.fromkeys(invalid))}
                counts: Counts = (None, None, None, None, None)
            else:
                derived, counts = self._usage(best, lf_usage, openlit_context)
            provider = get("provider")
            model = get("response_model")
            reported = get("reported_cost_usd")
            price_args = (
                provider[2] if provider else None,
                model[2] if model else None,
                counts,
                reported[2] if reported else None,
            )
        elif not MODEL_ONLY.isdisjoint(best):
            for col in MODEL_ONLY:
                best.pop(col, None)
        won = best.values()
        drop = set(map(_SOURCE, filter(_EXACT, won)))
        if len(drop) < len(best):
            inexact = list(filterfalse(_EXACT, won))
            if inexact:
                drop.difference_update(map(_SOURCE, inexact))
        return best, derived, price_args, drop

    def _specials(
        self, specials: list[Contrib], best: dict[str, Contrib], openlit: bool, invalid: list[str]
    ) -> tuple[Contrib | None, bool]:
        """Apply JSON and marker contributions to ``best``; append the keys of usage
        attributes that are not counts to ``invalid``. Returns (Langfuse usage, OpenLIT?)."""
        lf_usage = None
        tl_kind: str | None = None
        tl_entity: Contrib | None = None
        for c in specials:
            how = c[5]
            col = c[0]
            if how is BADTOK:
                invalid.append(c[4])
                continue
            if how is MARK:
                if col == SDK:
                    openlit = openlit or c[2] == cv.OPENLIT_SDK_NAME
                elif col == TLKIND:
                    tl_kind = c[2]
                else:
                    tl_entity = c
                continue
            if how is LFUSAGE:
                lf_usage = c
                continue
            b = best.get(col)
            if b is not None and b[1] < c[1]:
                continue
            obj = self._json.object(c[2])
            if obj is None:
                continue
            value: Any
            if how is META:
                v = obj.get(c[6])
                if v is None or isinstance(v, dict | list) or v == "":
                    continue
                value = v if isinstance(v, str) else _json_scalar(v)
            else:  # LFCOST
                value = langfuse_cost(obj)
                if value is None:
                    continue
            best[col] = (col, c[1], value, False, c[4], None, None, c[7])
        if tl_kind is not None and tl_entity is not None:
            entity_col = cv.TRACELOOP_ENTITY_FIELDS.get(tl_kind)
            if entity_col is not None and entity_col not in best and tl_entity[2]:
                best[entity_col] = (
                    entity_col,
                    1000,
                    tl_entity[2],
                    tl_entity[3],
                    tl_entity[4],
                    None,
                    None,
                    self.pair(entity_col, tl_entity[4]),
                )
        return lf_usage, openlit

    def _usage(
        self, best: dict[str, Contrib], lf_usage: Contrib | None, openlit: bool
    ) -> tuple[dict[str, Any], Counts]:
        """Apply the exclusive-input rules to a model call's token contributions.

        Returns the derived values and the final (input, output, cache read, cache write,
        reasoning) counts.
        """
        get = best.get
        if lf_usage is not None and "input_tokens" not in best and "output_tokens" not in best:
            obj = self._json.object(lf_usage[2])
            usage = langfuse_usage(obj) if obj is not None else None
            if usage is not None:
                return _from_langfuse(best, usage, lf_usage[4], self.pair)
        c_in = get("input_tokens")
        c_out = get("output_tokens")
        c_read = get("cache_read_tokens")
        c_write = get("cache_write_tokens")
        c_reason = get("reasoning_tokens")
        read = c_read[2] if c_read else None
        write = c_write[2] if c_write else None
        reasoning = c_reason[2] if c_reason else None
        if c_in is None and c_out is None and "total_tokens" not in best:
            # no usage reported: nothing to say about its basis
            return {}, (None, None, read, write, reasoning)
        parts = (c_read[2] if c_read else 0) + (c_write[2] if c_write else 0)
        why: list[str] = []
        if c_in is not None:
            inp = c_in[2]
            if openlit and get("provider", _NONE)[2] in cv.OPENLIT_EXCLUSIVE_PROVIDERS:
                why.append("openlit-anthropic")
                inp += parts
            elif parts > inp:
                why.append("cache>input")
                inp += parts
            if inp != c_in[2]:
                best["input_tokens"] = (
                    "input_tokens",
                    c_in[1],
                    inp,
                    False,
                    c_in[4],
                    None,
                    None,
                    c_in[7],
                )
        else:
            inp = None
        if c_out is not None:
            out = c_out[2]
            if c_reason is not None and c_reason[2] > out:
                why.append("reasoning>output")
                out += c_reason[2]
                best["output_tokens"] = (
                    "output_tokens",
                    c_out[1],
                    out,
                    False,
                    c_out[4],
                    None,
                    None,
                    c_out[7],
                )
        else:
            out = None
        derived: dict[str, Any] = {
            "usage_basis": ("exclusive:" + "+".join(why)) if why else INCLUSIVE
        }
        if "total_tokens" not in best and (inp is not None or out is not None):
            derived["total_tokens"] = (inp or 0) + (out or 0)
        return derived, (inp, out, read, write, reasoning)


_NONE: Final[Contrib] = ("", 0, None, False, "", None, None, -1)


def _json_scalar(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _from_langfuse(
    best: dict[str, Contrib], usage: Usage, key: str, pair: Callable[[str, str], int]
) -> tuple[dict[str, Any], Counts]:
    counts = (
        usage.input,
        usage.output,
        usage.cache_read,
        usage.cache_write,
        usage.reasoning,
        usage.total,
    )
    for column, n in zip(TOKEN_COLUMNS, counts, strict=True):
        if n is None:
            best.pop(column, None)
        else:
            best[column] = (column, 1000, n, False, key, None, None, pair(column, key))
    if usage.invalid:  # flagged like a usage attribute that is not a count: not priced
        return {"usage_basis": INVALID_USAGE + key}, (None, None, None, None, None)
    derived: dict[str, Any] = {"usage_basis": usage.basis}
    if usage.total is None:
        derived["total_tokens"] = (usage.input or 0) + (usage.output or 0)
    return derived, counts[:5]
