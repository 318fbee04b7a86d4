-- Exact money arithmetic for the cost views: amounts in integer units of 1e-12 USD.

-- Money as integer units of 1e-12 USD (HUGEINT), and back. The exact cast of a DECIMAL(38, 12)
-- to units costs ~0.7 us; below $1000 the double route is exact (error < 0.25 unit) and 40x
-- faster, which matters over millions of rows.
CREATE OR REPLACE MACRO usd_units(amount) AS
    CASE WHEN amount < 1000 AND amount > -1000
         THEN round(amount::DOUBLE * 1000000000000)::HUGEINT
         ELSE (amount * 1000000000000)::HUGEINT END;

CREATE OR REPLACE MACRO units_usd(units) AS
    (units::DECIMAL(38, 0) * 0.000000000001::DECIMAL(38, 12))::DECIMAL(38, 12);

-- floor(amount * weight / total) exactly, for integers 0 <= weight <= total, total > 0.
-- HUGEINT division is slow (~1 us a row), so the quotient is taken from doubles whenever they
-- decide it: all three below 2^53 (exact as doubles) and the estimate, whose relative error
-- is below 1e-15, not that close to a whole number. Otherwise the exact long division, which
-- never forms amount * weight and so cannot overflow.
CREATE OR REPLACE MACRO share_estimate(x) AS
    CASE WHEN floor(x * (1 - 1e-15)) = floor(x * (1 + 1e-15)) THEN floor(x)::HUGEINT END;

CREATE OR REPLACE MACRO share_units(amount, weight, total) AS
    coalesce(
        CASE WHEN amount < 9007199254740992 AND weight < 9007199254740992
                  AND total < 9007199254740992
             THEN share_estimate(amount::DOUBLE * weight::DOUBLE / total::DOUBLE) END,
        (amount // total) * weight + (amount % total) * weight // total);

-- amount / n for money: exact to 1e-12 USD (rounded half up; amount >= 0), so per-unit figures
-- stay decimals ($0.21 over 3 attempts is 0.07, not 0.06999999999999999). NULL when n = 0.
CREATE OR REPLACE MACRO usd_per(amount, n) AS
    CASE WHEN n > 0 THEN
        units_usd((usd_units(amount) * 2 + n) // (2 * n))
    END;
