"""Price one model call at its own time: ``[[prices]]`` overrides first, then genai-prices.

Token counts arrive normalized (``ingest.convert.normalize``): input includes cache reads and
writes, output includes reasoning. Should the parts exceed the whole anyway (a direct caller), the
whole is taken as exclusive and the parts are added to it, the rule normalization applies.

**Overrides** (USD per million tokens, ``Settings.prices``): the uncached input
(input - cache_read - cache_write) at ``input``; cache reads at ``cache_read`` (else
``input``); cache writes at ``cache_write`` (else ``input``); output at ``output``, except that
when a ``reasoning`` price is given the reasoning tokens are priced at it and only the rest of
the output at ``output``. An override applies from its ``effective_from`` (UTC day of the span,
inclusive); a provider-restricted one only to spans naming that provider. Of several matching
entries the latest ``effective_from`` wins, ties going to the first in the file.

**genai-prices**: the bundled snapshot, at the span's start time, for the span's provider
(OTel names mapped to genai-prices ids) or, when the span names none (or one genai-prices does
not know), the provider it detects from the model name, else the first model maker's own API
that lists the model (``text-embedding-3-small`` -> openai). Self-hosted providers (ollama,
vllm, ...) have no list price: only an override prices them.

Calling ``calc_price`` per span is far too slow for ingest, so the price *lookup* is cached per
(provider, model, UTC day) and turned into a linear formula replicating genai-prices' own
arithmetic exactly (leaf decomposition of the usage units, tiers chosen by total input tokens,
per-request fees); amounts are exact integers of 1e-18 USD, rounded half-even to the 1e-12 of
the ``cost_usd`` column. Models priced by time of day fall back to ``calc_price`` per span.

A call with no usage, or whose model has no price, is never priced at zero: it is ``reported``
when the emitter reported a cost, else ``unpriced`` with a null cost. So is a call whose price
does not fit ``cost_usd`` (``decimal128(18, 12)``: a million USD or more, from absurd token
counts): its ``price_ref`` then says ``overflow:<the price's ref>``.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
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
REPORTED: Final = "reported"
UNPRICED: Final = "unpriced"
#: ``price_ref`` prefix of a call whose price does not fit ``cost_usd``.
OVERFLOW: Final = "overflow:"

NS_PER_DAY: Final = 86_400 * 1_000_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ATTO: Final = 10**18
_ATTO_PER_PICO: Final = 10**6
_PICO = Decimal("1e-12")
#: ``cost_usd`` is decimal128(18, 12): below one million USD per call.
MAX_PICO: Final = 10**18
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

#: genai-prices usage keys our normalized counts feed, in the order of ``_Linear`` terms.
_USAGE_KEYS: Final = (
    "input_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "output_tokens",
    "output_reasoning_tokens",
)

Amount = int | Fraction  # 1e-18 USD


def to_pico(atto: Amount) -> int:
    """1e-18 USD -> 1e-12 USD, rounding half to even."""
    if isinstance(atto, int):
        q, r = divmod(atto, _ATTO_PER_PICO)
        if r > 500_000 or (r == 500_000 and q & 1):
            q += 1
        return q
    return round(atto / _ATTO_PER_PICO)


def pico_to_decimal(pico: int) -> Decimal:
    return Decimal(pico).scaleb(-12)


def _scaled(price: Decimal, per: int) -> Amount:
    """USD ``price`` per ``per`` units -> 1e-18 USD per unit, exact."""
    num, den = price.as_integer_ratio()
    q, r = divmod(num * _ATTO, den * per)
    return q if r == 0 else Fraction(num * _ATTO, den * per)


class _Linear:
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


class _Call:
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


_Plan = _Linear | _Call | None


def _override_plan(entry: PriceOverride) -> _Linear:
    per = 1_000_000
    p_in = _scaled(entry.input, per)
    p_read = _scaled(entry.cache_read, per) if entry.cache_read is not None else p_in
    p_write = _scaled(entry.cache_write, per) if entry.cache_write is not None else p_in
    p_out = _scaled(entry.output, per)
    p_reason = _scaled(entry.reasoning, per) - p_out if entry.reasoning is not None else 0
    coefs = (p_in, p_read - p_in, p_write - p_in, p_out, p_reason, 0)
    return _Linear((), (coefs,), OVERRIDE, entry.ref)


def _tier_price(price: Decimal | TieredPrices, total_input: int) -> Decimal:
    """The price genai-prices applies at ``total_input`` tokens (mirrors calc_unit_price)."""
    if isinstance(price, TieredPrices):
        for tier in reversed(price.tiers):
            if total_input > tier.start:
                return tier.price
        return price.base
    return price


def _genai_linear(model_price: ModelPrice, ref: str) -> _Linear | None:
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
    return _Linear(starts, bands, GENAI, ref)


class Pricer:
    """Prices model calls; one per process (its caches are not shared, not locked)."""

    def __init__(self, overrides: Sequence[PriceOverride] = ()) -> None:
        self._overrides = tuple(overrides)
        self._override_plans = {id(o): _override_plan(o) for o in self._overrides}
        self._plans: dict[tuple[str | None, str, int], _Plan] = {}
        self._snapshot = data_snapshot.get_snapshot()
        self._known_ids = {p.id for p in self._snapshot.providers}

    # ------------------------------------------------------------------ public

    def price(
        self,
        *,
        provider: str | None,
        model: str | None,
        start_ns: int,
        input_tokens: int | None,
        output_tokens: int | None,
        cache_read_tokens: int | None,
        cache_write_tokens: int | None,
        reasoning_tokens: int | None,
        reported_cost_usd: float | None,
    ) -> tuple[Decimal | None, str, str | None]:
        """(cost_usd, cost_source, price_ref) of one model call."""
        pico, source, ref = self.price_pico(
            provider,
            model,
            start_ns,
            (
                input_tokens,
                output_tokens,
                cache_read_tokens,
                cache_write_tokens,
                reasoning_tokens,
            ),
            reported_cost_usd,
        )
        return (None if pico is None else pico_to_decimal(pico)), source, ref

    def price_pico(
        self,
        provider: str | None,
        model: str | None,
        start_ns: int,
        counts: tuple[int | None, int | None, int | None, int | None, int | None],
        reported_cost_usd: float | None,
    ) -> tuple[int | None, str, str | None]:
        """``price`` with the cost in integer 1e-12 USD (what the Arrow column stores).

        ``counts``: (input, output, cache read, cache write, reasoning) tokens.
        """
        input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens = (
            counts
        )
        if model and (input_tokens is not None or output_tokens is not None):
            plan = self.plan(provider, model, start_ns // NS_PER_DAY)
            if plan is not None:
                inp = input_tokens or 0
                out = output_tokens or 0
                cr = cache_read_tokens or 0
                cw = cache_write_tokens or 0
                rs = reasoning_tokens or 0
                if cr + cw > inp:
                    inp += cr + cw
                if rs > out:
                    out += rs
                if isinstance(plan, _Linear):
                    pico = to_pico(plan.atto(inp, cr, cw, out, rs))
                else:
                    atto = plan.atto_at(start_ns, (inp, cr, cw, out, rs))
                    pico = -1 if atto is None else to_pico(atto)
                if 0 <= pico < MAX_PICO:
                    return pico, plan.source, plan.ref
                if reported_cost_usd is None:
                    return None, UNPRICED, OVERFLOW + plan.ref
        return self._reported(reported_cost_usd)

    # ------------------------------------------------------------------ plans

    def plan(self, provider: str | None, model: str, day_number: int) -> _Plan:
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

    @staticmethod
    def _reported(reported: float | None) -> tuple[int | None, str, str | None]:
        if reported is None or not math.isfinite(reported) or reported < 0:
            return None, UNPRICED, None
        try:
            pico = Decimal(repr(reported)).quantize(_PICO, rounding=ROUND_HALF_EVEN)
        except InvalidOperation:
            return None, UNPRICED, None
        value = int(pico.scaleb(12))
        if value >= MAX_PICO:
            return None, UNPRICED, None
        return value, REPORTED, REPORTED

    def _plan(self, provider: str | None, model: str, day_number: int) -> _Plan:
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

    def _genai_plan(self, provider: str | None, model: str, day: date) -> _Plan:
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
            return _Call(model, provider_id, ref)
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

    def stats(self) -> dict[str, Any]:
        """Cache sizes, for diagnostics."""
        return {"plans": len(self._plans)}
