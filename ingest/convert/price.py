"""Price one model call at its own time: ``[[prices]]`` overrides first, then genai-prices
(the lookup is ``schemas.prices.PriceBook``, shared with the read side's what-if figures).

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

import math
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any, Final

from schemas.prices import (
    FIRST_PARTY_PROVIDERS,
    GENAI,
    GENAI_PRICES_VERSION,
    GENAI_PROVIDER_IDS,
    OVERRIDE,
    SELF_HOSTED_PROVIDERS,
    Amount,
    CallPlan,
    LinearPlan,
    PriceBook,
)

#: The plan classes under the names the native fast path and older callers use.
_Linear = LinearPlan
_Call = CallPlan

REPORTED: Final = "reported"
UNPRICED: Final = "unpriced"
#: ``price_ref`` prefix of a call whose price does not fit ``cost_usd``.
OVERFLOW: Final = "overflow:"

NS_PER_DAY: Final = 86_400 * 1_000_000_000
_ATTO_PER_PICO: Final = 10**6
_PICO = Decimal("1e-12")
#: ``cost_usd`` is decimal128(18, 12): below one million USD per call.
MAX_PICO: Final = 10**18

__all__ = [
    "FIRST_PARTY_PROVIDERS",
    "GENAI",
    "GENAI_PRICES_VERSION",
    "GENAI_PROVIDER_IDS",
    "OVERFLOW",
    "OVERRIDE",
    "REPORTED",
    "SELF_HOSTED_PROVIDERS",
    "UNPRICED",
    "Pricer",
    "pico_to_decimal",
    "to_pico",
]


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


class Pricer(PriceBook):
    """Prices model calls; one per process (its caches are not shared, not locked)."""

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

    def stats(self) -> dict[str, Any]:
        """Cache sizes, for diagnostics."""
        return {"plans": len(self._plans)}
