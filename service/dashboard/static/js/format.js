// How figures read on the page. Formatting only: every value comes from the API as is.

const INT = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
const USD0 = new Intl.NumberFormat("en-US", {
  style: "currency", currency: "USD", maximumFractionDigits: 0,
});
const USD2 = new Intl.NumberFormat("en-US", {
  style: "currency", currency: "USD", minimumFractionDigits: 2, maximumFractionDigits: 2,
});
const USD_SMALL = new Intl.NumberFormat("en-US", {
  style: "currency", currency: "USD", maximumSignificantDigits: 2,
});
const COMPACT = new Intl.NumberFormat("en-US", { notation: "compact", maximumFractionDigits: 1 });

export const DASH = "—";

/** Dollars: cents below $1,000, whole dollars above; sub-cent amounts two significant digits
 * ($0.0086, $0.000014), so a small figure never reads as $0.00. */
export function money(value) {
  if (value === null || value === undefined) return DASH;
  const v = Number(value);
  if (Math.abs(v) >= 1000) return USD0.format(v);
  if (v !== 0 && Math.abs(v) < 0.01) return USD_SMALL.format(v);
  return USD2.format(v);
}

/** A signed change in dollars: "+$0.12", "−$1.02". */
export function moneyChange(value) {
  if (value === null || value === undefined) return DASH;
  const v = Number(value);
  return (v > 0 ? "+" : v < 0 ? "−" : "") + money(Math.abs(v));
}

export function percent(value) {
  if (value === null || value === undefined) return DASH;
  return `${(Number(value) * 100).toFixed(1)}%`;
}

export function count(value) {
  if (value === null || value === undefined) return DASH;
  return INT.format(Number(value));
}

export function compact(value) {
  if (value === null || value === undefined) return DASH;
  return COMPACT.format(Number(value));
}

/** Any metric by its API name: money for *_usd, rates as percent, counts otherwise. */
export function metric(name, value) {
  if (value === null || value === undefined) return DASH;
  if (typeof value !== "number") return String(value);
  if (name.endsWith("_usd")) return money(value);
  if (name.endsWith("_rate") || name.endsWith("_share")) return percent(value);
  if (Number.isInteger(value)) return count(value);
  return value.toLocaleString("en-US", { maximumFractionDigits: 3 });
}

export function duration(ms) {
  if (ms === null || ms === undefined) return DASH;
  const v = Number(ms);
  if (v < 1000) return `${Math.round(v)} ms`;
  if (v < 60_000) return `${(v / 1000).toFixed(1)} s`;
  if (v < 3_600_000) return `${(v / 60_000).toFixed(1)} min`;
  return `${(v / 3_600_000).toFixed(1)} h`;
}

const WHEN = new Intl.DateTimeFormat("en-US", {
  month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", hour12: false,
  timeZone: "UTC",
});
const DAY = new Intl.DateTimeFormat("en-US", { month: "short", day: "numeric", timeZone: "UTC" });

/** A moment in UTC, as the API keeps it: "Mar 3, 14:05 UTC". */
export function when(iso) {
  if (!iso) return DASH;
  return `${WHEN.format(new Date(iso))} UTC`;
}

export function day(iso) {
  if (!iso) return DASH;
  return DAY.format(new Date(iso.length === 10 ? `${iso}T00:00:00Z` : iso));
}

/** "prompt_size" -> "Prompt size". */
export function label(name) {
  const text = String(name).replaceAll("_", " ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}
