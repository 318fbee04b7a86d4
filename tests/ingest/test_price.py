"""Pricing: genai-prices exactly (without calling it per span), overrides, unpriced calls."""

from __future__ import annotations

import random
import warnings
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_EVEN, Decimal

import genai_prices
import pytest
from genai_prices import data_snapshot
from genai_prices.types import TieredPrices

from ingest.convert.price import Pricer, to_pico
from schemas.settings import PriceOverride

PICO = Decimal("1e-12")
DATES = (
    datetime(2024, 6, 1, 12, tzinfo=UTC),
    datetime(2025, 9, 1, 3, 30, tzinfo=UTC),
    datetime(2026, 3, 2, 9, tzinfo=UTC),
    datetime(2026, 11, 1, 23, 59, tzinfo=UTC),
)


def ns(when: datetime) -> int:
    return int(when.timestamp()) * 1_000_000_000


def reference(
    model: str, provider_id: str | None, when: datetime, counts: tuple[int, int, int, int, int]
) -> Decimal | None:
    """genai-prices' own calc_price, quantized like the cost_usd column."""
    inp, out, read, write, reasoning = counts
    try:
        calc = genai_prices.calc_price(
            genai_prices.Usage(
                input_tokens=inp,
                output_tokens=out,
                cache_read_tokens=read,
                cache_write_tokens=write,
                output_reasoning_tokens=reasoning,
            ),
            model,
            provider_id=provider_id,
            genai_request_timestamp=when,
        )
    except (LookupError, ValueError):
        return None
    return calc.total_price.quantize(PICO, rounding=ROUND_HALF_EVEN)


def price(  # noqa: PLR0917
    pricer: Pricer,
    model: str | None,
    provider: str | None = None,
    when: datetime = DATES[2],
    counts: tuple[int | None, ...] = (1000, 100, 0, 0, 0),
    reported: float | None = None,
) -> tuple[Decimal | None, str, str | None]:
    inp, out, read, write, reasoning = counts
    return pricer.price(
        provider=provider,
        model=model,
        start_ns=ns(when),
        input_tokens=inp,
        output_tokens=out,
        cache_read_tokens=read,
        cache_write_tokens=write,
        reasoning_tokens=reasoning,
        reported_cost_usd=reported,
    )


def _counts(rng: random.Random) -> tuple[int, int, int, int, int]:
    inp = rng.choice([0, 7, 999, 12_345, 128_001, 200_001, 272_001, 1_500_000])
    read = rng.randint(0, inp // 2) if rng.random() < 0.5 else 0
    write = rng.randint(0, (inp - read) // 3) if rng.random() < 0.3 else 0
    out = rng.choice([0, 1, 777, 40_000])
    reasoning = rng.randint(0, out) if rng.random() < 0.3 else 0
    return inp, out, read, write, reasoning


def test_equals_calc_price_for_every_model_of_every_provider() -> None:
    """Every model of the bundled snapshot, several dates (historic prices), tiers, caches."""
    warnings.simplefilter("ignore")
    rng = random.Random(7)
    pricer = Pricer()
    compared = tiered = 0
    for provider in data_snapshot.get_snapshot().providers:
        for model in provider.models:
            prices = model.prices if isinstance(model.prices, list) else []
            is_tiered = any(
                isinstance(v, TieredPrices)
                for p in ([model.prices] if not prices else [c.prices for c in prices])
                for v in p.__dict__.values()
            )
            for when in DATES:
                counts = _counts(rng)
                want = reference(model.id, provider.id, when, counts)
                got, source, ref = price(pricer, model.id, provider.id, when, counts)
                assert got == want, (provider.id, model.id, when, counts)
                if want is not None:
                    compared += 1
                    tiered += is_tiered
                    assert source == "genai-prices"
                    assert (
                        ref == f"genai-prices@{genai_prices.__version__}:{provider.id}/{model.id}"
                    )
    assert compared > 5000 and tiered > 100


@pytest.mark.parametrize(
    ("otel", "genai_id", "model"),
    [
        ("openai", "openai", "gpt-4o-2024-08-06"),
        ("anthropic", "anthropic", "claude-sonnet-4-5-20250929"),
        ("aws.bedrock", "aws", "anthropic.claude-3-5-sonnet-20241022-v2:0"),
        ("azure.ai.openai", "azure", "gpt-4o"),
        ("gcp.vertex_ai", "google", "gemini-2.5-pro"),
        ("gcp.gen_ai", "google", "gemini-2.5-flash"),
        ("x_ai", "x-ai", "grok-3"),
        ("mistral_ai", "mistral", "mistral-large-latest"),
        ("groq", "groq", "llama-3.3-70b-versatile"),
        (None, None, "claude-3-5-haiku-20241022"),
    ],
)
def test_otel_provider_names_map_to_genai_prices(
    otel: str | None, genai_id: str | None, model: str
) -> None:
    counts = (250_000, 2_000, 10_000, 5_000, 0)  # above the long-context tiers
    want = reference(model, genai_id, DATES[2], counts)
    assert want is not None
    got, source, ref = price(Pricer(), model, otel, DATES[2], counts)
    assert (got, source) == (want, "genai-prices")
    assert ref is not None and (genai_id is None or f":{genai_id}/" in ref)


def test_time_of_day_prices_follow_the_span_time() -> None:
    pricer = Pricer()
    counts = (10_000, 2_000, 4_000, 0, 0)
    peak = datetime(2026, 3, 2, 9, tzinfo=UTC)
    night = datetime(2026, 3, 2, 20, tzinfo=UTC)
    got_peak = price(pricer, "deepseek-chat", "deepseek", peak, counts)[0]
    got_night = price(pricer, "deepseek-chat", "deepseek", night, counts)[0]
    assert got_peak == reference("deepseek-chat", "deepseek", peak, counts)
    assert got_night == reference("deepseek-chat", "deepseek", night, counts)
    assert got_peak != got_night


def test_first_party_model_without_provider() -> None:
    got, source, ref = price(
        Pricer(), "text-embedding-3-small", None, counts=(1000, None, None, None, None)
    )
    assert (got, source, ref) == (
        reference("text-embedding-3-small", "openai", DATES[2], (1000, 0, 0, 0, 0)),
        "genai-prices",
        f"genai-prices@{genai_prices.__version__}:openai/text-embedding-3-small",
    )


def test_parts_exceeding_the_whole_are_taken_as_exclusive() -> None:
    pricer = Pricer()
    assert price(pricer, "gpt-4o", "openai", counts=(100, 10, 900, 0, 0)) == price(
        pricer, "gpt-4o", "openai", counts=(1000, 10, 900, 0, 0)
    )


# ----------------------------------------------------------------------------- unpriced


def test_unknown_model_is_unpriced_not_zero() -> None:
    assert price(Pricer(), "acme-secret-9000", "openai") == (None, "unpriced", None)
    assert price(Pricer(), "acme-secret-9000") == (None, "unpriced", None)


def test_reported_cost_when_nothing_prices_the_call() -> None:
    assert price(Pricer(), "acme-secret-9000", reported=0.0123) == (
        Decimal("0.012300000000"),
        "reported",
        "reported",
    )
    # never instead of our own price
    got, source, _ = price(Pricer(), "gpt-4o", "openai", reported=99.0)
    assert source == "genai-prices" and got != Decimal(99)


def test_no_usage_no_model_self_hosted() -> None:
    pricer = Pricer()
    assert price(pricer, "gpt-4o", "openai", counts=(None,) * 5) == (None, "unpriced", None)
    assert price(pricer, None) == (None, "unpriced", None)
    assert price(pricer, "llama-3.3-70b-versatile", "ollama") == (None, "unpriced", None)
    assert price(pricer, "bogus", reported=float("nan")) == (None, "unpriced", None)


# ----------------------------------------------------------------------------- overrides


def test_override_wins_over_genai_prices() -> None:
    pricer = Pricer([PriceOverride(model="gpt-4o", input=Decimal("1"), output=Decimal("2"))])
    assert price(pricer, "gpt-4o", "openai", counts=(1_000_000, 1_000_000, 0, 0, 0)) == (
        Decimal(3),
        "override",
        "override:gpt-4o",
    )


def test_override_arithmetic_cache_and_reasoning() -> None:
    full = PriceOverride(
        model="acme-large*",
        input=Decimal("2.50"),
        output=Decimal("10.00"),
        cache_read=Decimal("1.25"),
        cache_write=Decimal("3.125"),
        reasoning=Decimal("20"),
    )
    counts = (1_000_000, 500_000, 400_000, 100_000, 200_000)
    # uncached 500k at 2.50, read 400k at 1.25, write 100k at 3.125,
    # reasoning 200k at 20, the other 300k of output at 10
    want = Decimal("1.25") + Decimal("0.5") + Decimal("0.3125") + Decimal("4") + Decimal("3")
    assert price(Pricer([full]), "acme-large-2", counts=counts)[0] == want
    bare = PriceOverride(model="acme-large*", input=Decimal("2.50"), output=Decimal("10.00"))
    # cache at the input price, reasoning inside output
    assert price(Pricer([bare]), "acme-large-2", counts=counts)[0] == Decimal("2.5") + Decimal("5")


def test_override_effective_from_and_latest_wins() -> None:
    old = PriceOverride(model="acme-*", input=Decimal("1"), output=Decimal("1"))
    new = PriceOverride(
        model="acme-large", input=Decimal("3"), output=Decimal("3"), effective_from=date(2026, 1, 1)
    )
    tie = PriceOverride(
        model="acme*", input=Decimal("9"), output=Decimal("9"), effective_from=date(2026, 1, 1)
    )
    pricer = Pricer([old, new, tie])
    million = (1_000_000, 0, 0, 0, 0)
    before = datetime(2025, 12, 31, 23, 59, tzinfo=UTC)
    on_the_day = datetime(2026, 1, 1, 0, 0, tzinfo=UTC)
    assert price(pricer, "acme-large", when=before, counts=million)[:2] == (Decimal(1), "override")
    assert price(pricer, "acme-large", when=on_the_day, counts=million) == (
        Decimal(3),
        "override",
        "override:acme-large@2026-01-01",
    )
    assert price(pricer, "acme-small", when=on_the_day, counts=million)[0] == Decimal(9)


def test_provider_restricted_override() -> None:
    pricer = Pricer(
        [
            PriceOverride(
                model="gpt-4o*", provider="azure.ai.openai", input=Decimal("1"), output=Decimal("1")
            )
        ]
    )
    million = (1_000_000, 0, 0, 0, 0)
    assert price(pricer, "gpt-4o", "azure.ai.openai", counts=million) == (
        Decimal(1),
        "override",
        "override:azure.ai.openai/gpt-4o*",
    )
    assert price(pricer, "gpt-4o", "openai", counts=million)[1] == "genai-prices"
    assert price(pricer, "gpt-4o", None, counts=million)[1] == "genai-prices"


def test_override_with_many_decimals_rounds_half_even() -> None:
    odd = PriceOverride(model="m", input=Decimal("0.0000005"), output=Decimal("0"))
    # 1 token at 5e-13 USD: exactly half a pico-dollar, rounds to even (0)
    assert price(Pricer([odd]), "m", counts=(1, 0, 0, 0, 0))[0] == Decimal(0)
    assert price(Pricer([odd]), "m", counts=(3, 0, 0, 0, 0))[0] == Decimal("2E-12")
    assert to_pico(1_500_000) == 2 and to_pico(2_500_000) == 2 and to_pico(2_500_001) == 3
