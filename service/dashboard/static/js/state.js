// What the page shows lives in its URL, so a view can be shared: filters, the breakdown, the
// task list's page, the task open. Defaults are left out of the URL.

export const PERIODS = [
  ["7d", "Last 7 days", 7],
  ["14d", "Last 14 days", 14],
  ["30d", "Last 30 days", 30],
  ["90d", "Last 90 days", 90],
  ["all", "All time", null],
  ["custom", "Custom…", null],
];
export const DIMENSIONS = ["role", "model", "team", "version"];
const DEFAULTS = { period: "30d", cost: "inference", by: "role", order: "-started_at", page: "0" };
const KEYS = ["period", "start", "end", "workflow", "team", "version", "cost", "by", "outcome", "order",
  "page", "task", "a", "b"];

/** The state in the URL, with defaults filled in. */
export function readState(search = window.location.search) {
  const q = new URLSearchParams(search);
  const st = { ...DEFAULTS };
  for (const key of KEYS) {
    const v = q.get(key);
    if (v !== null && v !== "") st[key] = v;
  }
  if ((st.start || st.end) && !q.get("period")) st.period = "custom";
  if (!PERIODS.some(([key]) => key === st.period)) st.period = DEFAULTS.period;
  if (!DIMENSIONS.includes(st.by)) st.by = DEFAULTS.by;
  if (st.period !== "custom") {
    delete st.start;
    delete st.end;
  }
  return st;
}

/** "?..." for the state with `changes` applied (null removes a key); defaults left out. */
export function link(st, changes = {}) {
  const next = { ...st, ...changes };
  if (next.period !== "custom") {
    delete next.start;
    delete next.end;
  }
  const q = new URLSearchParams();
  for (const key of KEYS) {
    const v = next[key];
    if (v === null || v === undefined || v === "" || DEFAULTS[key] === v) continue;
    if (key === "period" && v === "custom") continue; // start/end say it
    q.set(key, v);
  }
  const text = q.toString();
  return text ? `?${text}` : "?";
}

function isoDay(ms) {
  return new Date(ms).toISOString().slice(0, 10);
}

const DAY_MS = 86_400_000;

/** The cohort window [start, end) as the API takes it (dates, UTC). */
export function window_(st) {
  if (st.period === "custom") return { start: st.start || null, end: st.end || null };
  const days = PERIODS.find(([key]) => key === st.period)[2];
  if (days === null) return { start: null, end: null };
  const today = Math.floor(Date.now() / DAY_MS) * DAY_MS;
  return { start: isoDay(today - (days - 1) * DAY_MS), end: isoDay(today + DAY_MS) };
}

/** The filters every API call of the page takes. */
export function filters(st) {
  const { start, end } = window_(st);
  return { start, end, workflow: st.workflow || null, team: st.team || null };
}

/** Day cohorts up to four months, week cohorts beyond. */
export function grain(st) {
  const { start, end } = window_(st);
  if (!start || !end) return "day";
  return Date.parse(end) - Date.parse(start) > 120 * DAY_MS ? "week" : "day";
}

/** The next day of an ISO date (a day cohort's end). */
export function nextDay(iso, grainName = "day") {
  return isoDay(Date.parse(`${iso}T00:00:00Z`) + (grainName === "week" ? 7 : 1) * DAY_MS);
}
