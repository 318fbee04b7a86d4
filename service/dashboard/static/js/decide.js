// The analyses that decide (issue 10): trend diagnosis, the autonomy gate, alerts, the
// before/after compare and the levers. Each part is drawn only when the server's OpenAPI
// document lists its endpoint, so the page works with servers that have them and with
// servers that do not, and never asks for a path that would be a 404.
import { csvUrl } from "./api.js";
import { diverging } from "./charts.js";
import { bar, figure, h, section, table } from "./dom.js";
import * as f from "./format.js";
import { COST, tasksOf } from "./overview.js";
import { csvLink, load } from "./page.js";
import { filters, grain } from "./state.js";

export const TRENDS = "/api/v1/trends";
export const AUTONOMY = "/api/v1/autonomy";
export const ALERTS = "/api/v1/alerts";
export const COMPARE = "/api/v1/compare";
export const LEVERS = "/api/v1/levers";

function byWorkflow(rows) {
  return new Map((rows || []).map((r) => [r.workflow, r]));
}

/** The workflow table's columns that come with the analyses the server has. */
export function workflowExtras(st, ask, paths) {
  const extras = [];
  if (paths.has(TRENDS)) {
    const answer = ask(TRENDS, { ...filters(st), period: grain(st), cost: st.cost })
      .then((doc) => byWorkflow(doc.diagnosis));
    extras.push({
      key: "diagnosis", label: "Trend", answer,
      cell: (d) => d && h("span", { class: `badge trend-${d.state}`, title: d.note || null },
        f.label(d.state) + (d.cause ? ` · ${f.label(d.cause)}` : "")),
    });
  }
  if (paths.has(AUTONOMY)) {
    const answer = ask(AUTONOMY, { workflow: st.workflow || null, team: st.team || null, cost: st.cost })
      .then((doc) => byWorkflow(doc.rows));
    extras.push({
      key: "autonomy", label: "Autonomy", answer,
      cell: (a) => a && h("span", {
        class: `badge verdict-${a.verdict}`,
        title: Array.isArray(a.reasons) ? a.reasons.join("; ") : a.reasons || null,
      }, a.verdict === "ready" ? "Ready" : "Not ready"),
    });
  }
  if (paths.has(ALERTS)) {
    // Hook: the alerts endpoint is planned (DESIGN §4) but its answer is not settled yet;
    // this counts its rows per workflow, whatever else they say.
    const answer = ask(ALERTS, { workflow: st.workflow || null, team: st.team || null })
      .then((doc) => {
        const counts = new Map();
        for (const r of doc.rows || []) counts.set(r.workflow, (counts.get(r.workflow) || 0) + 1);
        return counts;
      });
    extras.push({
      key: "alerts", label: "Alerts", answer,
      cell: (n) => (n ? h("span", { class: "badge alert" }, f.count(n)) : "0"),
    });
  }
  return extras;
}

/** Version names in a natural order ("v2" before "v10"). */
function ordered(names) {
  return [...names].sort((a, b) => String(a).localeCompare(String(b), "en", { numeric: true }));
}

/** Before/after: two versions of the selected workflow, and why cost per completed task moved. */
export function compareSection(st, ask) {
  const part = section("compare", "Before / after",
    "Two cohorts of this workflow side by side, and the change in cost per completed task split" +
    " exactly into its factors (price per token, tokens per attempt, attempts per completed task).");
  const versions = ask(COST, { group_by: "version", ...filters(st), cost: st.cost });
  load(part, versions.then(async (doc) => {
    const names = ordered(doc.rows.map((r) => r.version).filter((v) => v !== null));
    if (names.length < 2) return { names };
    const a = st.a || `version:${names[0]}`;
    const b = st.b || `version:${names[names.length - 1]}`;
    const params = { workflow: st.workflow, a, b, start: filters(st).start, end: filters(st).end, team: st.team || null, cost: st.cost };
    part.tools.replaceChildren(csvLink(csvUrl(COMPARE, params), "compare.csv"));
    return { names, a, b, doc: await ask(COMPARE, params) };
  }), ({ names, a, b, doc }) => {
    if (!doc) {
      return h("p", { class: "muted" },
        `${names.length ? `Only version ${names[0]} started` : "No version started"} in this period;` +
        " a before/after needs two.");
    }
    const choose = (key, value) => h("label", null, key === "a" ? "Before " : "After ",
      h("select", { name: key, "data-state": key }, names.map((v) => h("option", {
        value: `version:${v}`, selected: `version:${v}` === value ? true : null,
      }, v))));
    const rows = doc.rows.filter((r) => !String(r.metric).startsWith("part:"));
    const metrics = table({
      caption: `${doc.workflow}: ${a} → ${b}`,
      columns: [
        { key: "metric", label: "Metric", render: (r) => f.label(r.metric) },
        { key: "a", label: "Before", num: true, render: (r) => figure(r.metric, r.a, f.metric(r.metric, r.a)) },
        { key: "b", label: "After", num: true, render: (r) => figure(r.metric, r.b, f.metric(r.metric, r.b)) },
        { key: "change", label: "Change", num: true, render: (r) => f.metric(r.metric, r.change) },
      ],
      rows,
    });
    const parts = Object.entries(doc.decomposition?.parts || {});
    const scale = Math.max(0, ...parts.map(([, v]) => Math.abs(Number(v))));
    const split = h("div", { class: "decomposition" },
      h("h3", null, "Why it moved"),
      h("ul", { class: "parts" }, parts.map(([name, value]) => h("li", null,
        h("span", { class: "part-name" }, f.label(name)), diverging(value, scale),
        h("span", { class: "num", "data-field": `part:${name}`, "data-value": value }, f.moneyChange(value))))),
      h("p", null, h("strong", null, "Total change: "),
        figure("total_change_usd", doc.decomposition?.total_change_usd, f.moneyChange(doc.decomposition?.total_change_usd)),
        doc.decomposition?.method ? ` (${doc.decomposition.method})` : ""),
      doc.decomposition?.explanation ? h("p", { class: "muted" }, doc.decomposition.explanation) : null);
    return [h("div", { class: "controls" }, choose("a", a), choose("b", b)), h("div", { class: "split" }, metrics, split)];
  });
  return part.el;
}

/** A measurement's plain values, in a line ("calls: 120 · cache share: 12.0%"). */
function measured(measurement) {
  return Object.entries(measurement || {})
    .filter(([, v]) => v === null || typeof v !== "object")
    .slice(0, 4)
    .map(([k, v]) => `${f.label(k)}: ${f.metric(k, v)}`)
    .join(" · ");
}

/** The five levers, each with the dollars at stake, ranked per workflow. */
export function leversSection(st, ask) {
  const part = section("levers", "Levers",
    "What each lever would save over this period: model routing, caching, retrieval quality," +
    " prompt size and cutting failed runs.");
  const params = filters(st);
  part.tools.append(csvLink(csvUrl(LEVERS, params), "levers.csv"));
  load(part, ask(LEVERS, params), (doc) => {
    const top = Math.max(0, ...doc.rows.map((r) => Number(r.usd_at_stake)));
    return table({
      columns: [
        { key: "lever", label: "Lever", render: (r) => f.label(r.lever) },
        { key: "workflow", label: "Workflow" },
        { key: "rank", label: "Rank", num: true, wide: true },
        {
          key: "usd", label: "At stake", num: true,
          render: (r) => [bar(Number(r.usd_at_stake), top), figure("usd_at_stake", r.usd_at_stake,
            f.money(r.usd_at_stake), tasksOf(st, { workflow: r.workflow, order: "-spend_usd" }))],
        },
        { key: "measurement", label: "Measurement", wide: true, render: (r) => measured(r.measurement) },
      ],
      rows: doc.rows,
      empty: "No spend to act on in this period.",
    });
  });
  return part.el;
}

