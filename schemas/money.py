"""One range for every amount of money tasklake accepts, and the one type it is stored in.

A signal's ``rework_cost_usd``, a cost entry's ``amount_usd`` and an OTLP log record's
``task.rework_cost_usd`` are all checked by ``usd_amount``: 0 <= amount <= 10^15 USD (a
year's infrastructure bill fits a thousand times over) with at most 12 decimal places, and
stored as ``DECIMAL(38, 12)`` (``USD_TOTAL``). The range is what keeps every read whole:
the SQL works in integer units of 1e-12 USD (``schemas/money.sql``), where one amount is at
most 10^27 units and a sum of 10^11 of them still fits a ``DECIMAL(38, 12)`` and a 128-bit
integer, so no accepted amount can make a query overflow.
"""

from __future__ import annotations

from decimal import Context, Decimal, InvalidOperation

import pyarrow as pa

#: Decimal places of a USD amount (the unit of the SQL's exact arithmetic: 1e-12 USD).
USD_PLACES = 12
#: The largest amount one item may carry, in USD.
MAX_USD = Decimal(10) ** 15
#: How every accepted amount is stored: exact, with room for sums of many maximal amounts.
USD_TOTAL = pa.decimal128(38, USD_PLACES)

_UNIT = Decimal(1).scaleb(-USD_PLACES)
#: Enough digits for any amount in range at full scale (15 + 12), so quantize never rounds.
_EXACT = Context(prec=40)


def usd_amount(value: Decimal) -> Decimal:
    """``value`` as a stored amount (12 places); ``ValueError`` naming the rule it breaks."""
    if not value.is_finite():
        raise ValueError("expected a finite number")
    if value < 0:
        raise ValueError("must not be negative")
    if value > MAX_USD:
        raise ValueError(f"more than the largest amount accepted, {MAX_USD:,.0f} USD")
    try:
        exact = value.quantize(_UNIT, context=_EXACT)
    except InvalidOperation as exc:  # pragma: no cover - the range check above precludes it
        raise ValueError("not a representable amount") from exc
    if exact != value:
        raise ValueError(f"at most {USD_PLACES} decimal places")
    return exact
