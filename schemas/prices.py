"""Model prices, as ingest prices calls and as the analyses reprice them: one lookup.

``PriceBook`` finds the price plan of a (provider, model) on a UTC day: ``[[prices]]``
overrides first (glob on model, optional provider, ``effective_from``: the latest matching
entry wins, ties going to the first in the file), else the bundled genai-prices snapshot (the
span's provider mapped to a genai-prices id, or the provider it detects from the model name,
else the first model maker's own API that lists the model; self-hosted providers have no list
price). A plan is linear in the token counts (``LinearPlan``: genai-prices' own arithmetic,
leaf decomposition of the usage units, tiers chosen by total input tokens, per-request fees;
amounts in exact 1e-18 USD), or, for prices that vary within a day, a ``CallPlan`` that asks
genai-prices per call.

Ingest (``ingest.convert.price.Pricer``) prices every model call with these plans. The read side
reprices what-if questions with them (the routing and caching levers): ``unit_prices`` reads a
plan as USD per million tokens of each kind, and ``fill_model_prices`` keeps the
``model_prices`` table of a DuckDB connection (one row per provider and model the lake holds)
that the lever SQL joins.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any, Final

import genai_prices
from genai_prices import data_snapshot
from genai_prices.decompose import is_descendant_or_self
from genai_prices.types import ModelPrice, TieredPrices, TimeOfDateConstraint
from genai_prices.units import UnitDef, _get_registry
from genai_prices.validation import validate_priced_units

from schemas.settings import PriceOverride

GENAI_PRICES_VERSION: Final = genai_prices.__version__

OVERRIDE: Final = "override"
GENAI: Final = "genai-prices"

_ATTO: Final = 10**18
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_PLANS: Final = 100_000

#: OTel ``gen_ai.provider.name`` values (aliases already folded) -> genai-prices provider ids,
#: where they differ. A name missing here is passed on if genai-prices knows it as an id.
GENAI_PROVIDER_IDS: Final[dict[str, str]] = {
    "openai": "openai",
    "anthropic": "anthropic",
    "aws.bedrock": "aws",
    "azure.ai.openai": "azure",
    "azure.ai.inference": "azure",
    "gcp.vertex_ai": "google",
    "gcp.gen_ai": "google",
    "gcp.gemini": "google",
    "x_ai": "x-ai",
    "mistral_ai": "mistral",
    "deepseek": "deepseek",
    "groq": "groq",
    "cohere": "cohere",
    "perplexity": "perplexity",
    "moonshot_ai": "moonshotai",
}

#: Providers that run models on your own hardware: their calls have no list price, so only an
#: override prices them (auto-detection would charge a hosted provider's price).
SELF_HOSTED_PROVIDERS: Final = frozenset(
    {"ollama", "vllm", "gpt4all", "llama_cpp", "llama.cpp", "lm_studio", "localai", "tgi"}
)

#: Where a model is looked for when no provider is named and genai-prices cannot tell the
#: provider from the model name (``text-embedding-3-small``): the model makers' own APIs.
FIRST_PARTY_PROVIDERS: Final = (
    "openai",
    "anthropic",
    "google",
    "mistral",
    "x-ai",
    "deepseek",
    "cohere",
    "voyageai",
    "moonshotai",
)

#: genai-prices usage keys our normalized counts feed, in the order of ``LinearPlan`` terms.
_USAGE_KEYS: Final = (
    "input_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "output_tokens",
    "output_reasoning_tokens",
)

Amount = int | Fraction  # 1e-18 USD


def _scaled(price: Decimal, per: int) -> Amount:
    """USD ``price`` per ``per`` units -> 1e-18 USD per unit, exact."""
    num, den = price.as_integer_ratio()
    q, r = divmod(num * _ATTO, den * per)
    return q if r == 0 else Fraction(num * _ATTO, den * per)


class LinearPlan:
    """cost = sum(count_k * coef_k) + fee, with coefficients chosen by an input-token band."""

    __slots__ = ("bands", "ref", "single", "source", "starts")

    def __init__(
        self,
        starts: Sequence[int],
        bands: Sequence[tuple[Amount, ...]],
        source: str,
        ref: str,
    ) -> None:
        self.starts = tuple(starts)
        self.bands = tuple(bands)
        self.single = self.bands[0] if not self.starts else None
        self.source = source
        self.ref = ref

    def atto(self, inp: int, cache_read: int, cache_write: int, out: int, reasoning: int) -> Amount:
        c = self.single
        if c is None:
            c = self.bands[bisect.bisect_left(self.starts, inp)]
        return (
            inp * c[0]
            + cache_read * c[1]
            + cache_write * c[2]
            + out * c[3]
            + reasoning * c[4]
            + c[5]
        )


class CallPlan:
    """Fallback: ask genai-prices for every call (prices that vary within a day)."""

    __slots__ = ("model", "provider_id", "ref", "source")

    def __init__(self, model: str, provider_id: str | None, ref: str) -> None:
        self.model = model
        self.provider_id = provider_id
        self.source = GENAI
        self.ref = ref

    def atto_at(self, start_ns: int, counts: tuple[int, int, int, int, int]) -> Amount | None:
        when = _EPOCH + timedelta(microseconds=start_ns // 1000)
        usage = genai_prices.Usage(**dict(zip(_USAGE_KEYS, counts, strict=True)))
        try:
            calc = genai_prices.calc_price(
                usage, self.model, provider_id=self.provider_id, genai_request_timestamp=when
            )
        except (LookupError, ValueError):
            return None
        num, den = calc.total_price.as_integer_ratio()
        q, r = divmod(num * _ATTO, den)
        return q if r == 0 else Fraction(num * _ATTO, den)


Plan = LinearPlan | CallPlan | None


def _override_plan(entry: PriceOverride) -> LinearPlan:
    per = 1_000_000
    p_in = _scaled(entry.input, per)
    p_read = _scaled(entry.cache_read, per) if entry.cache_read is not None else p_in
    p_write = _scaled(entry.cache_write, per) if entry.cache_write is not None else p_in
    p_out = _scaled(entry.output, per)
    p_reason = _scaled(entry.reasoning, per) - p_out if entry.reasoning is not None else 0
    coefs = (p_in, p_read - p_in, p_write - p_in, p_out, p_reason, 0)
    return LinearPlan((), (coefs,), OVERRIDE, entry.ref)


def _tier_price(price: Decimal | TieredPrices, total_input: int) -> Decimal:
    """The price genai-prices applies at ``total_input`` tokens (mirrors calc_unit_price)."""
    if isinstance(price, TieredPrices):
        for tier in reversed(price.tiers):
            if total_input > tier.start:
                return tier.price
        return price.base
    return price


def _genai_linear(model_price: ModelPrice, ref: str) -> LinearPlan | None:
    """genai-prices' arithmetic for one ModelPrice as a linear formula; None if not expressible."""
    registry = _get_registry()
    priced: list[tuple[UnitDef, Decimal | TieredPrices]] = []
    for key, value in model_price.__dict__.items():
        if key.startswith("_") or value is None:
            continue
        try:
            priced.append((registry.unit_for_price_key(key), value))
        except KeyError:
            continue  # genai-prices drops unknown price keys too (with a warning)
    validate_priced_units(tuple(unit for unit, _ in priced), registry)
    token_units = sorted(
        (u for u, _ in priced if u.usage_key != "requests"),
        key=lambda u: (-len(u.dimensions), u.usage_key),
    )
    # leaf(u) = usage(u) - sum(leaf(d) for priced descendants d): linear in our usage keys
    leaves: dict[str, tuple[int, ...]] = {}
    for unit in token_units:
        vec = [1 if k == unit.usage_key else 0 for k in _USAGE_KEYS]
        for other in token_units:
            if other is not unit and is_descendant_or_self(unit, other):
                vec = [a - b for a, b in zip(vec, leaves[other.usage_key], strict=True)]
        leaves[unit.usage_key] = tuple(vec)
    starts = sorted(
        {tier.start for _, p in priced if isinstance(p, TieredPrices) for tier in p.tiers}
    )
    bands: list[tuple[Amount, ...]] = []
    for band in range(len(starts) + 1):
        rep = 0 if band == 0 else starts[band - 1] + 1
        coefs: list[Amount] = [0, 0, 0, 0, 0, 0]
        for unit, price in priced:
            scaled = _scaled(_tier_price(price, rep), unit.per)
            if unit.usage_key == "requests":
                coefs[5] += scaled
                continue
            for i, c in enumerate(leaves[unit.usage_key]):
                if c:
                    coefs[i] += c * scaled
        bands.append(tuple(coefs))
    return LinearPlan(starts, bands, GENAI, ref)


class PriceBook:
    """Price plans of (provider, model, UTC day), cached; one per process (not locked)."""

    def __init__(self, overrides: Sequence[PriceOverride] = ()) -> None:
        self._overrides = tuple(overrides)
        self._override_plans = {id(o): _override_plan(o) for o in self._overrides}
        self._plans: dict[tuple[str | None, str, int], Plan] = {}
        self._snapshot = data_snapshot.get_snapshot()
        self._known_ids = {p.id for p in self._snapshot.providers}

    def plan(self, provider: str | None, model: str, day_number: int) -> Plan:
        """The price plan of a (provider, model) on a UTC day (days since 1970-01-01), cached.

        None when nothing prices the model; the native fast path reads linear plans.
        """
        key = (provider, model, day_number)
        try:
            return self._plans[key]
        except KeyError:
            if len(self._plans) >= _MAX_PLANS:
                self._plans.clear()
            plan = self._plans[key] = self._plan(provider, model, day_number)
            return plan

    def _plan(self, provider: str | None, model: str, day_number: int) -> Plan:
        day = date(1970, 1, 1) + timedelta(days=day_number)
        override = self._override_for(model, provider, day)
        if override is not None:
            return self._override_plans[id(override)]
        return self._genai_plan(provider, model, day)

    def _override_for(self, model: str, provider: str | None, day: date) -> PriceOverride | None:
        best: PriceOverride | None = None
        for entry in self._overrides:
            if not entry.matches(model, provider, day):
                continue
            if best is None or (entry.effective_from or date.min) > (
                best.effective_from or date.min
            ):
                best = entry
        return best

    def genai_provider_id(self, provider: str | None) -> tuple[bool, str | None]:
        """(priceable, genai-prices provider id or None to auto-detect) for an OTel provider."""
        if provider is None:
            return True, None
        if provider in SELF_HOSTED_PROVIDERS:
            return False, None
        mapped = GENAI_PROVIDER_IDS.get(provider)
        if mapped is not None:
            return True, mapped
        return True, (provider if provider in self._known_ids else None)

    def _genai_plan(self, provider: str | None, model: str, day: date) -> Plan:
        priceable, provider_id = self.genai_provider_id(provider)
        if not priceable:
            return None
        found = self._find(model, provider_id)
        if found is None and provider_id is None:
            for candidate in FIRST_PARTY_PROVIDERS:
                found = self._find(model, candidate)
                if found is not None:
                    provider_id = candidate
                    break
        if found is None:
            return None
        found_provider, info = found
        ref = f"genai-prices@{GENAI_PRICES_VERSION}:{found_provider.id}/{info.id}"
        midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
        conditional = info.prices if isinstance(info.prices, list) else []
        by_time_of_day = any(isinstance(c.constraint, TimeOfDateConstraint) for c in conditional)
        special = found_provider.id == "groq" and info.id.startswith("whisper")
        if by_time_of_day or special:
            return CallPlan(model, provider_id, ref)
        try:
            genai_prices.calc_price(  # the same lookup must work as a call, or nothing is priced
                genai_prices.Usage(input_tokens=0, output_tokens=0),
                model,
                provider_id=provider_id,
                genai_request_timestamp=midnight,
            )
            return _genai_linear(info.get_prices(midnight), ref)
        except (LookupError, ValueError):
            return None

    def _find(self, model: str, provider_id: str | None) -> tuple[Any, Any] | None:
        try:
            return self._snapshot.find_provider_model(model, None, provider_id, None)
        except LookupError:
            return None

    def unit_prices(self, provider: str | None, model: str, day: date) -> UnitPrices | None:
        """The plan of (provider, model) on ``day`` as USD per million tokens of each kind
        (the lowest tier of a tiered price); None when nothing prices it, or only per call."""
        plan = self.plan(provider, model, (day - date(1970, 1, 1)).days)
        if not isinstance(plan, LinearPlan):
            return None
        c = plan.bands[0]
        return UnitPrices(
            input=_per_million(c[0]),
            cache_read=_per_million(c[0] + c[1]),
            cache_write=_per_million(c[0] + c[2]),
            output=_per_million(c[3]),
            reasoning=_per_million(c[3] + c[4]),
            request=_per_million(c[5]) / 1_000_000,
            ref=plan.ref,
        )


@dataclass(frozen=True)
class UnitPrices:
    """USD per million tokens of each kind (cache reads and writes, and reasoning, are parts
    of input and output: each is priced at its own rate), and a fee per request."""

    input: Decimal
    cache_read: Decimal
    cache_write: Decimal
    output: Decimal
    reasoning: Decimal
    request: Decimal
    ref: str


def _per_million(atto_per_token: Amount) -> Decimal:
    """1e-18 USD per token -> USD per million tokens, to 1e-12."""
    value = Fraction(atto_per_token) / 10**12
    return (Decimal(value.numerator) / Decimal(value.denominator)).quantize(Decimal("1e-12"))


#: The kinds of token a price list prices, in the order of the model_prices columns.
TOKEN_KINDS = ("input", "cache_read", "cache_write", "output", "reasoning")

#: The model_prices table: one row per (provider, model) the lake holds, with its prices in
#: force on priced_on, per million tokens (to read) and per token (to compute with, exact);
#: NULL prices: nothing prices the model.
MODEL_PRICES_DDL = (
    "CREATE TABLE IF NOT EXISTS model_prices (provider VARCHAR, model VARCHAR, "
    + "".join(f"{k}_per_mtok DECIMAL(38, 12), " for k in TOKEN_KINDS)
    + "".join(f"{k}_per_token DECIMAL(38, 18), " for k in TOKEN_KINDS)
    + "request_usd DECIMAL(38, 18), price_ref VARCHAR, priced_on DATE)"
)


def model_price_rows(
    book: PriceBook, models: Iterable[tuple[str | None, str | None]], day: date
) -> list[tuple[Any, ...]]:
    """Rows of model_prices for ``models`` ((provider, model) pairs) at ``day``."""
    rows: list[tuple[Any, ...]] = []
    for provider, model in models:
        prices = book.unit_prices(provider, model, day) if model else None
        if prices is None:
            rows.append((provider, model, *([None] * (2 * len(TOKEN_KINDS) + 2)), day))
            continue
        per_mtok = [getattr(prices, k) for k in TOKEN_KINDS]
        per_token = [(v / 1_000_000).quantize(Decimal("1e-18")) for v in per_mtok]
        rows.append((provider, model, *per_mtok, *per_token, prices.request, prices.ref, day))
    return rows


#: The models a lake's spans name (a superset of those its billed calls use), over the
#: catalog's ``spans_table``: what a catalog without the task store prices.
LAKE_MODELS_SQL = (
    "SELECT DISTINCT provider, coalesce(response_model, request_model) AS model"
    " FROM spans_table WHERE is_model_call"
)


def _literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, Decimal):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def insert_model_prices(rows: Iterable[Sequence[Any]]) -> str:
    """An INSERT of model_prices ``rows`` as SQL text (for a script run by another client)."""
    values = ",\n    ".join("(" + ", ".join(_literal(v) for v in row) + ")" for row in rows)
    return f"INSERT INTO model_prices VALUES\n    {values};" if values else ""


def fill_model_prices(
    con: Any, models: Iterable[tuple[str | None, str | None]], book: PriceBook, day: date
) -> int:
    """Add the models of ``models`` that ``model_prices`` on ``con`` does not hold yet, priced
    at ``day``; returns how many were added."""
    con.execute(MODEL_PRICES_DDL)
    known = {(p, m) for p, m in con.execute("SELECT provider, model FROM model_prices").fetchall()}
    fresh = sorted({(p, m) for p, m in models} - known, key=lambda x: (x[0] or "", x[1] or ""))
    if fresh:
        con.executemany(
            "INSERT INTO model_prices VALUES (" + ", ".join(["?"] * 15) + ")",
            model_price_rows(book, fresh, day),
        )
    return len(fresh)


def price_lake_models(con: Any, book: PriceBook) -> int:
    """Fill ``model_prices`` on a connection whose views are loaded (and pinned, where they
    need it) for every model the lake names, priced today: what a SQL client needs for the
    levers' what-if figures."""
    models = con.execute(LAKE_MODELS_SQL).fetchall()
    return fill_model_prices(con, models, book, datetime.now(UTC).date())
