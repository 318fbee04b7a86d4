// The tasks behind the figures: GET /api/v1/tasks with the page's filters, a page at a time.
import { csvUrl } from "./api.js";
import { figure, h, nav, section, table } from "./dom.js";
import * as f from "./format.js";
import { csvLink, load } from "./page.js";
import { filters, link } from "./state.js";

const TASKS = "/api/v1/tasks";
const PAGE = 25;
const OUTCOMES = ["completed", "pending", "failed", "reopened", "escalated", "abandoned", "rework"];
const ORDERS = [["-started_at", "Newest first"], ["started_at", "Oldest first"], ["-spend_usd", "Costliest first"]];

export function outcomeBadge(outcome, reason) {
  return h("span", { class: `badge outcome-${outcome}`, title: reason || null }, outcome ?? f.DASH);
}

export function taskListSection(st, ask) {
  const part = section("tasks", "Tasks",
    "The rows behind the figures above: each task that started in the period, with what it" +
    " cost and how it ended. Open one for its trace.");
  const page = Math.max(0, Number.parseInt(st.page, 10) || 0);
  const params = {
    ...filters(st), version: st.version || null, outcome: st.outcome || null, order: st.order,
  };
  part.tools.append(csvLink(csvUrl(TASKS, { ...params, limit: 100000 }), "tasks.csv"));
  const pick = (name, labelText, options, value, key) => h("label", null, labelText, " ",
    h("select", {
      name, "data-state": key,
    }, options.map(([v, text]) => h("option", { value: v, selected: v === value ? true : null }, text))));
  const controls = h("div", { class: "controls" },
    pick("outcome", "Outcome", [["", "Any"], ...OUTCOMES.map((o) => [o, f.label(o)])], st.outcome || "", "outcome"),
    pick("order", "Order", ORDERS, st.order, "order"),
    st.version ? h("span", { class: "chip" }, `version ${st.version} `,
      nav(`${link(st, { version: null, page: null })}#tasks`, { "aria-label": "Any version" }, "×")) : null);
  part.el.insertBefore(controls, part.body);
  load(part, ask(TASKS, { ...params, limit: PAGE, offset: page * PAGE }), (doc) => {
    const rows = doc.rows;
    const el = table({
      caption: `${f.count(doc.total)} tasks`,
      columns: [
        {
          key: "task_key", label: "Task",
          render: (r) => nav(link(st, { task: r.task_key }), { class: "task-link", "data-task": r.task_key }, r.task_key),
        },
        { key: "workflow", label: "Workflow" },
        { key: "version", label: "Version", wide: true },
        { key: "team", label: "Team", wide: true },
        { key: "started_at", label: "Started", wide: true, render: (r) => f.when(r.started_at) },
        { key: "outcome", label: "Outcome", render: (r) => outcomeBadge(r.outcome, r.reason) },
        { key: "attempts", label: "Attempts", num: true, render: (r) => f.count(r.attempts) },
        {
          key: "spend_usd", label: "Spend", num: true,
          render: (r) => figure("spend_usd", r.spend_usd, f.money(r.spend_usd), link(st, { task: r.task_key })),
        },
      ],
      rows,
      empty: "No task matches.",
    });
    const last = Math.max(0, Math.ceil(doc.total / PAGE) - 1);
    const pager = h("nav", { class: "pager", "aria-label": "Pages of tasks" },
      page > 0 ? nav(`${link(st, { page: String(page - 1) })}#tasks`, { rel: "prev" }, "← Previous") : h("span"),
      h("span", { class: "muted" }, `Page ${page + 1} of ${last + 1}`),
      page < last ? nav(`${link(st, { page: String(page + 1) })}#tasks`, { rel: "next" }, "Next →") : h("span"));
    return [el, doc.total > PAGE ? pager : null];
  });
  return part.el;
}
