-- Exact money arithmetic for the cost views: amounts in integer units of 1e-12 USD.

-- Money as integer units of 1e-12 USD (HUGEINT), and back. Amounts are at most 10^15 USD an
-- item (schemas/money.py), 10^27 units; sums stay below 2^126. The exact route splits off
-- the whole dollars (multiplying a DECIMAL(38, 12) by 10^12 would overflow its 38 digits
-- past 10^14 USD); below $1000 the double route is exact (error < 0.25 unit) and 40x faster,
-- which matters over millions of rows.
CREATE OR REPLACE MACRO usd_units(amount) AS
    CASE WHEN amount < 1000 AND amount > -1000
         THEN round(amount::DOUBLE * 1000000000000)::HUGEINT
         ELSE floor(amount)::HUGEINT * 1000000000000
              + ((amount - floor(amount)) * 1000000000000)::HUGEINT END;

CREATE OR REPLACE MACRO units_usd(units) AS
    (units::DECIMAL(38, 0) * 0.000000000001::DECIMAL(38, 12))::DECIMAL(38, 12);

-- floor(amount * weight / total) exactly, for integers 0 <= weight <= total, total > 0.
-- HUGEINT division is slow (~1 us a row), so the quotient is taken from doubles whenever they
-- decide it: all three below 2^53 (exact as doubles) and the estimate, whose relative error
-- is below 1e-15, not that close to a whole number. Otherwise exact long division that never
-- forms a product of 2^126 or more (so it also fits the DECIMAL(38, 0) of other engines):
--   amount = q * total + r (r < total), so the share is q * weight + floor(r * weight / total);
--   weight = w1 * 2^41 + w0, and r * w1 = q1 * total + r1, so
--   floor(r * weight / total) = q1 * 2^41 + floor((r1 * 2^41 + r * w0) / total).
-- With total < 2^83 (a scope's inference spend below $9.6 trillion) every product is below
-- 2^125: r * w1 < 2^83 * 2^42, r1 * 2^41 and r * w0 < 2^83 * 2^41. A larger total is first
-- divided, with every weight, by 2^20 (shares then follow spend to 1e-6 USD; the split still
-- never hands out more than amount, and the caller gives what is left to its top part).
CREATE OR REPLACE MACRO share_estimate(x) AS
    CASE WHEN floor(x * (1 - 1e-15)) = floor(x * (1 + 1e-15)) THEN floor(x)::HUGEINT END;

CREATE OR REPLACE MACRO share_rest(r, w, t) AS  -- floor(r * w / t), r < t < 2^83, w <= t
    ((r * (w // 2199023255552)) // t) * 2199023255552
    + (((r * (w // 2199023255552)) % t) * 2199023255552 + r * (w % 2199023255552)) // t;

CREATE OR REPLACE MACRO share_exact(amount, weight, total) AS
    (amount // total) * weight + share_rest(amount % total, weight, total);

CREATE OR REPLACE MACRO share_units(amount, weight, total) AS
    coalesce(
        CASE WHEN amount < 9007199254740992 AND weight < 9007199254740992
                  AND total < 9007199254740992
             THEN share_estimate(amount::DOUBLE * weight::DOUBLE / total::DOUBLE) END,
        CASE WHEN total < '9671406556917033397649408'::HUGEINT
             THEN share_exact(amount::HUGEINT, weight::HUGEINT, total::HUGEINT)
             ELSE share_exact(amount::HUGEINT, weight::HUGEINT // 1048576,
                              total::HUGEINT // 1048576) END);

-- amount / n for money: exact to 1e-12 USD (rounded half up; amount >= 0), so per-unit figures
-- stay decimals ($0.21 over 3 attempts is 0.07, not 0.06999999999999999). NULL when n = 0.
-- Quotient and remainder, never 2 x amount: any sum a DECIMAL(38, 12) holds divides.
CREATE OR REPLACE MACRO usd_per(amount, n) AS
    CASE WHEN n > 0 THEN
        units_usd(usd_units(amount) // n
                  + CASE WHEN 2 * (usd_units(amount) % n) >= n THEN 1 ELSE 0 END)
    END;
