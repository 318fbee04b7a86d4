// One task, from GET /api/v1/tasks/{id}: its outcome, the span waterfall of each attempt with
// each span's cost, role and model, its attempts and the signals that decided it.
import { csvUrl } from "./api.js";
import { figure, h, nav, section, table } from "./dom.js";
import * as f from "./format.js";
import { csvLink, load } from "./page.js";
import { link } from "./state.js";
import { outcomeBadge } from "./tasklist.js";

function path(id) {
  return `/api/v1/tasks/${encodeURIComponent(id)}`;
}

function facts(pairs) {
  return h("dl", { class: "facts" }, pairs.filter(Boolean).map(([term, value]) =>
    h("div", null, h("dt", null, term), h("dd", null, value))));
}

/** The spans of one attempt in tree order (depth first), each with its depth. */
function walk(roots) {
  const out = [];
  const stack = [...roots].reverse().map((node) => [node, 0]);
  while (stack.length) {
    const [node, depth] = stack.pop();
    out.push([node, depth]);
    for (const child of [...(node.children || [])].reverse()) stack.push([child, depth + 1]);
  }
  return out;
}

function ms(iso) {
  // RFC 3339 with up to nine decimals: Date keeps milliseconds
  return Date.parse(String(iso).replace(/(\.\d{3})\d+/, "$1"));
}

function model(span) {
  return span.response_model || span.request_model || null;
}

function tokens(span) {
  if (span.input_tokens === null && span.output_tokens === null) return "";
  return `${f.compact(span.input_tokens ?? 0)} in · ${f.compact(span.output_tokens ?? 0)} out`;
}

/** The waterfall: a header row per attempt, then its spans, bars on the attempt's own clock. */
function waterfall(doc) {
  const rows = [];
  const attempts = doc.attempts.length ? doc.attempts : [{ attempt_id: null }];
  attempts.forEach((attempt, index) => {
    const roots = doc.spans.filter((r) => attempt.attempt_id === null || r.attempt_id === attempt.attempt_id);
    const spans = walk(roots);
    if (!spans.length) return;
    const t0 = Math.min(...spans.map(([sp]) => ms(sp.start_time)));
    const t1 = Math.max(...spans.map(([sp]) => ms(sp.end_time)));
    rows.push({ attempt, index, count: spans.length });
    for (const [span, depth] of spans) rows.push({ span, depth, t0, t1 });
  });
  const body = rows.map((row) => {
    if (row.attempt) {
      const a = row.attempt;
      return h("tr", { class: "attempt-row" }, h("th", { scope: "rowgroup", colspan: 6 },
        `Attempt ${row.index + 1} of ${doc.attempts.length}`,
        h("span", { class: "muted" }, ` · ${a.attempt_id ?? ""} · ${f.when(a.started_at)} · ${f.count(row.count)} spans · `),
        figure("attempt_spend_usd", a.spend_usd, f.money(a.spend_usd))));
    }
    const { span, depth, t0, t1 } = row;
    const total = Math.max(1, t1 - t0);
    const left = ((ms(span.start_time) - t0) / total) * 100;
    const width = Math.max(0.6, ((ms(span.end_time) - ms(span.start_time)) / total) * 100);
    const timeline = h("span", { class: "track" });
    const barEl = h("span", { class: `span-bar${span.status === "ERROR" || span.error_type ? " error" : ""}${span.billed ? " billed" : ""}` });
    barEl.style.left = `${Math.min(99.4, left)}%`;
    barEl.style.width = `${Math.min(100 - Math.min(99.4, left), width)}%`;
    timeline.append(barEl);
    const name = h("td", { class: "span-name" }, h("details", null,
      h("summary", null, span.name),
      h("pre", { class: "attrs" }, JSON.stringify(span.attributes || {}, null, 1))));
    name.style.paddingLeft = `${0.5 + depth * 1.1}rem`;
    const cost = span.cost_usd === null || span.cost_usd === undefined
      ? ""
      : h("span", {
          class: span.billed ? "fig" : "fig muted",
          "data-field": "cost_usd", "data-value": span.cost_usd, "data-billed": span.billed ? "true" : "false",
          title: span.billed ? `${span.cost_source || ""} ${span.price_ref || ""}`.trim() : "Not billed: its model calls are",
        }, f.money(span.cost_usd));
    return h("tr", { class: "span-row", "data-span": span.span_id },
      name,
      h("td", null, span.role ?? ""),
      h("td", { class: "wide" }, model(span) ?? ""),
      h("td", { class: "num wide" }, tokens(span)),
      h("td", { class: "num" }, cost),
      h("td", { class: "timeline", title: f.duration(span.duration_ms) }, timeline));
  });
  // a task shows all its attempts (its spend); an attempt id shows that attempt alone
  const whole = doc.kind === "task" && doc.task;
  const spend = whole ? doc.task.spend_usd : doc.attempts[0]?.spend_usd ?? null;
  return h("div", { class: "scroll" }, h("table", { class: "waterfall" },
    h("caption", null, "Spans of each attempt; bars on the attempt's own clock; cost on the model calls that bill it"),
    h("thead", null, h("tr", null,
      h("th", { scope: "col" }, "Span"), h("th", { scope: "col" }, "Role"),
      h("th", { scope: "col", class: "wide" }, "Model"), h("th", { scope: "col", class: "num wide" }, "Tokens"),
      h("th", { scope: "col", class: "num" }, "Cost"), h("th", { scope: "col", class: "timeline" }, "Time"))),
    h("tbody", null, body),
    h("tfoot", null, h("tr", null, h("th", { scope: "row", colspan: 4 }, whole ? "Task spend" : "Attempt spend"),
      h("td", { class: "num" }, figure("spend_usd", spend, f.money(spend))), h("td")))));
}

export function taskView(st, ask) {
  const id = st.task;
  const back = nav(`${link(st, { task: null })}#tasks`, { class: "back" }, "← All tasks");
  const summary = section("task", `Task ${id}`);
  const trace = section("waterfall", "Trace");
  const attempts = section("attempts", "Attempts");
  const signals = section("signals", "Signals");
  trace.tools.append(csvLink(csvUrl(path(id), {}), "spans.csv"));
  attempts.tools.append(csvLink(csvUrl(path(id), { part: "attempts" }), "attempts.csv"));
  signals.tools.append(csvLink(csvUrl(path(id), { part: "signals" }), "signals.csv"));
  const answer = ask(path(id), {});
  load(summary, answer, (doc) => {
    const t = doc.task || {};
    return facts([
      ["Outcome", [outcomeBadge(t.outcome, t.reason), t.reason ? ` ${t.reason}` : ""]],
      ["Workflow", t.workflow ? nav(link(st, { task: null, workflow: t.workflow, page: null }), null, t.workflow) : f.DASH],
      ["Version", t.version ?? f.DASH],
      ["Team", t.team ?? f.DASH],
      ["Started", f.when(t.started_at)],
      ["Decided", t.outcome === "pending" ? `pending until ${f.when(t.decided_at)}` : f.when(t.decided_at)],
      ["Attempts", figure("attempts", t.attempts, f.count(t.attempts), "#attempts")],
      ["Spans", f.count(t.spans)],
      ["Tokens", f.count(t.total_tokens)],
      ["Spend", figure("spend_usd", t.spend_usd, f.money(t.spend_usd), "#waterfall")],
      t.rework_usd ? ["Rework", figure("rework_usd", t.rework_usd, f.money(t.rework_usd), "#signals")] : null,
      doc.kind === "attempt" ? ["Shown", `attempt ${doc.id} of task ${t.task_key}`] : null,
    ]);
  });
  load(trace, answer, waterfall);
  load(attempts, answer, (doc) => table({
    columns: [
      { key: "attempt_id", label: "Attempt" },
      { key: "started_at", label: "Started", render: (r) => f.when(r.started_at) },
      { key: "duration_ms", label: "Duration", num: true, wide: true, render: (r) => f.duration(r.duration_ms) },
      { key: "spans", label: "Spans", num: true, wide: true },
      { key: "model_calls", label: "Model calls", num: true, wide: true },
      { key: "errors", label: "Errors", num: true },
      { key: "spend_usd", label: "Spend", num: true, render: (r) => figure("spend_usd", r.spend_usd, f.money(r.spend_usd), "#waterfall") },
    ],
    rows: doc.attempts,
  }));
  load(signals, answer, (doc) => table({
    columns: [
      { key: "occurred_at", label: "When", render: (r) => f.when(r.occurred_at) },
      { key: "outcome", label: "Signal", render: (r) => outcomeBadge(r.outcome) },
      { key: "reason", label: "Reason", render: (r) => r.reason ?? "" },
      { key: "rework_cost_usd", label: "Rework cost", num: true, render: (r) => (r.rework_cost_usd === null ? "" : f.money(r.rework_cost_usd)) },
      { key: "source", label: "Source", wide: true },
    ],
    rows: doc.signals,
    empty: "No signal yet: the task is pending until one arrives (abandoned after the workflow's abandon_after).",
  }));
  return [back, summary.el, trace.el, h("div", { class: "grid two" }, attempts.el, signals.el)];
}
