// The overview: workflows, cost per completed task over time, where the money goes, the
// breakdowns — each section one call of GET /api/v1/cost-per-task, as a script would make it.
import { csvUrl } from "./api.js";
import { colour, legend, lineChart, sparkline, stack } from "./charts.js";
import { bar, figure, h, nav, section, table } from "./dom.js";
import * as f from "./format.js";
import { csvLink, later, load } from "./page.js";
import { DIMENSIONS, filters, grain, link, nextDay } from "./state.js";

export const COST = "/api/v1/cost-per-task";
export const COMPONENTS = [
  ["inference", "Inference"],
  ["rework", "Rework"],
  ["labor", "Labor"],
  ["infrastructure", "Infrastructure"],
  ["licence", "Licence"],
  ["other", "Other"],
];

/** Where the rows behind a workflow's figure are: the task list, filtered to it. */
export function tasksOf(st, changes) {
  return `${link(st, { page: null, task: null, ...changes })}#tasks`;
}

function costName(st) {
  return st.cost === "full" ? "fully loaded" : "inference";
}

/** The workflows table, with a sparkline per workflow and the analyses' columns if any. */
export function workflowsSection(st, ask, extras) {
  const part = section("workflows", "Workflows",
    `Cost per completed task (${costName(st)}): the spend of every attempt of the tasks that` +
    " started in the period, over the tasks completed. Pending tasks are not decided yet.");
  const params = { group_by: "workflow", ...filters(st), cost: st.cost };
  part.tools.append(csvLink(csvUrl(COST, params), "cost-per-task-by-workflow.csv"));
  const g = grain(st);
  const overTime = ask(COST, { group_by: `workflow,${g}`, ...filters(st), cost: st.cost });
  load(part, ask(COST, params), (doc) => {
    const rows = doc.rows;
    const columns = [
      {
        key: "workflow", label: "Workflow",
        render: (r) => [
          nav(link(st, { workflow: r.workflow, page: null }), { class: "wf" }, r.workflow ?? "(none)"),
          r.unpriced_spans > 0
            ? h("span", { class: "warn", title: "Model calls without a known price" },
              ` ${f.count(r.unpriced_spans)} unpriced`)
            : null,
        ],
      },
      {
        key: "trend", label: "Trend", wide: true,
        render: (r) => h("span", { class: "slot", dataset: { slot: `spark:${r.workflow}` } }),
      },
      {
        key: "cpt", label: "Cost per completed task", num: true,
        render: (r) => figure("cost_per_completed_task_usd", r.cost_per_completed_task_usd,
          f.money(r.cost_per_completed_task_usd),
          tasksOf(st, { workflow: r.workflow, order: "-spend_usd", outcome: null })),
      },
      {
        key: "success_rate", label: "Success rate", num: true,
        render: (r) => figure("success_rate", r.success_rate, f.percent(r.success_rate),
          tasksOf(st, { workflow: r.workflow, outcome: null })),
      },
      {
        key: "spend_usd", label: "Spend", num: true,
        render: (r) => figure("spend_usd", r.spend_usd, f.money(r.spend_usd),
          tasksOf(st, { workflow: r.workflow, order: "-spend_usd", outcome: null })),
      },
      {
        key: "tasks", label: "Tasks", num: true,
        render: (r) => figure("tasks", r.tasks, f.count(r.tasks),
          tasksOf(st, { workflow: r.workflow, outcome: null })),
      },
      {
        key: "completed", label: "Completed", num: true, wide: true,
        render: (r) => figure("completed", r.completed, f.count(r.completed),
          tasksOf(st, { workflow: r.workflow, outcome: "completed" })),
      },
      {
        key: "pending", label: "Pending", num: true,
        render: (r) => figure("pending", r.pending, f.count(r.pending),
          tasksOf(st, { workflow: r.workflow, outcome: "pending" })),
      },
      ...extras.map((x) => ({
        key: x.key, label: x.label,
        render: (r) => h("span", { class: "slot", dataset: { slot: `${x.key}:${r.workflow}` } }, "…"),
      })),
    ];
    const el = table({
      caption: `Per workflow, tasks started ${period(st)}`, columns, rows,
      rowAttrs: (r) => ({ "data-workflow": r.workflow ?? "" }),
      empty: "No tasks in this period. Send traces, or run `tasklake demo`.",
    });
    later(overTime, (series) => {
      for (const r of rows) {
        const points = series.rows.filter((p) => p.workflow === r.workflow).map((p) => ({
          x: p[g], y: p.cost_per_completed_task_usd, provisional: p.pending > 0,
        }));
        const slot = el.querySelector(`[data-slot="spark:${CSS.escape(String(r.workflow))}"]`);
        if (slot) slot.replaceChildren(sparkline(points, `Cost per completed task of ${r.workflow} by ${g}`));
      }
    });
    for (const x of extras) {
      later(x.answer, (byWorkflow) => {
        for (const r of rows) {
          const slot = el.querySelector(`[data-slot="${x.key}:${CSS.escape(String(r.workflow))}"]`);
          if (slot) slot.replaceChildren(x.cell(byWorkflow.get(r.workflow)) ?? f.DASH);
        }
      });
    }
    return el;
  });
  return part.el;
}

/** "from Mar 2 to Mar 8" for captions (the end of the API's window is exclusive). */
export function period(st) {
  const { start, end } = filters(st);
  if (!start && !end) return "at any time";
  const last = end ? f.day(new Date(Date.parse(`${end}T00:00:00Z`) - 86_400_000).toISOString()) : "now";
  return `from ${start ? f.day(start) : "the first"} to ${last} (UTC)`;
}

/** Cost per completed task of each workflow per day (or week) cohort. */
export function overTimeSection(st, ask) {
  const g = grain(st);
  const part = section("over-time", "Cost per completed task over time",
    `Each point is the tasks started that ${g}; hollow points still have pending tasks, so` +
    " their cost per completed task is not final yet. A point opens its tasks.");
  const params = { group_by: `workflow,${g}`, ...filters(st), cost: st.cost };
  part.tools.append(csvLink(csvUrl(COST, params), `cost-per-task-by-workflow-${g}.csv`));
  load(part, ask(COST, params), (doc) => {
    const names = [...new Set(doc.rows.map((r) => r.workflow))];
    const series = names.map((name, i) => ({
      name: name ?? "(none)",
      colour: colour(i),
      points: doc.rows.filter((r) => r.workflow === name).map((r) => ({
        x: r[g],
        y: r.cost_per_completed_task_usd,
        provisional: r.pending > 0,
        href: tasksOf(st, {
          workflow: name, period: "custom", start: r[g], end: nextDay(r[g], g), outcome: null,
        }),
        title: `${name} · ${f.day(r[g])}: ${f.money(r.cost_per_completed_task_usd)} per ` +
          `completed task (${f.count(r.completed)} completed, ${f.count(r.pending)} pending)`,
      })),
    }));
    if (!doc.rows.length) return h("p", { class: "muted" }, "No tasks in this period.");
    return [
      lineChart(series, { title: `Cost per completed task (${costName(st)}) by ${g}, per workflow` }),
      legend(series, (line) => link(st, { workflow: line.name, page: null })),
      h("details", null, h("summary", null, "As a table"), table({
        columns: [
          { key: "workflow", label: "Workflow" },
          { key: g, label: g === "day" ? "Day" : "Week", render: (r) => f.day(r[g]) },
          {
            key: "c", label: "Cost per completed task", num: true,
            render: (r) => figure("cost_per_completed_task_usd", r.cost_per_completed_task_usd,
              f.money(r.cost_per_completed_task_usd),
              tasksOf(st, { workflow: r.workflow, period: "custom", start: r[g], end: nextDay(r[g], g) })),
          },
          { key: "completed", label: "Completed", num: true, render: (r) => f.count(r.completed) },
          { key: "pending", label: "Pending", num: true, render: (r) => f.count(r.pending) },
          { key: "spend", label: "Spend", num: true, render: (r) => f.money(r.spend_usd) },
        ],
        rows: doc.rows,
      })),
    ];
  });
  return part.el;
}

/** The fully loaded cost of each workflow split into its components. */
export function compositionSection(st, ask) {
  const part = section("composition", "Where the money goes",
    "Fully loaded cost: inference, plus rework, labor, infrastructure and licences from the" +
    " cost entries, allocated to workflows by their share of inference spend.");
  const params = { group_by: "workflow", ...filters(st), cost: "full" };
  part.tools.append(csvLink(csvUrl(COST, params), "cost-per-task-fully-loaded.csv"));
  load(part, ask(COST, params), (doc) => {
    const top = Math.max(0, ...doc.rows.map((r) => Number(r.spend_usd)));
    const keyList = h("ul", { class: "legend" }, COMPONENTS.map(([key, name]) =>
      h("li", null, h("span", { class: `swatch part-${key}`, "aria-hidden": "true" }), name)));
    const bars = h("div", { class: "stacks" }, doc.rows.map((r) => h("div", { class: "stack-row" },
      nav(link(st, { workflow: r.workflow, page: null }), { class: "stack-label" }, r.workflow ?? "(none)"),
      stack(COMPONENTS.map(([key, name]) => ({
        key, label: name, value: r[`${key}_usd`], href: tasksOf(st, { workflow: r.workflow, order: "-spend_usd" }),
      })), top),
      figure("spend_usd", r.spend_usd, f.money(r.spend_usd), tasksOf(st, { workflow: r.workflow, order: "-spend_usd" })))));
    const note = Number(doc.unallocated_usd) > 0
      ? h("p", { class: "muted" }, `${f.money(doc.unallocated_usd)} of cost entries could not be` +
        " allocated to any task in these filters (listed under unallocated in the API's answer).")
      : null;
    return [keyList, bars, note, h("details", null, h("summary", null, "As a table"), table({
      columns: [
        { key: "workflow", label: "Workflow" },
        ...COMPONENTS.map(([key, name]) => ({
          key, label: name, num: true, wide: key !== "inference",
          render: (r) => figure(`${key}_usd`, r[`${key}_usd`], f.money(r[`${key}_usd`]),
            tasksOf(st, { workflow: r.workflow, order: "-spend_usd" })),
        })),
        { key: "spend", label: "Total", num: true, render: (r) => figure("spend_usd", r.spend_usd, f.money(r.spend_usd)) },
        {
          key: "cpt", label: "Per completed task", num: true,
          render: (r) => figure("cost_per_completed_task_usd", r.cost_per_completed_task_usd,
            f.money(r.cost_per_completed_task_usd)),
        },
      ],
      rows: doc.rows,
      rowAttrs: (r) => ({ "data-workflow": r.workflow ?? "" }),
    }))];
  });
  return part.el;
}

const SPAN_LEVEL = new Set(["role", "model"]);

/** Breakdown by role, model, team or version of each workflow: tabs, one table. */
export function breakdownSection(st, ask) {
  const dim = st.by;
  const part = section("breakdown", "Breakdown",
    SPAN_LEVEL.has(dim)
      ? `Each ${dim}'s share of the spend, over the workflow's completed tasks: the rows of a` +
        " workflow add up to its own row."
      : `Each ${dim} of a workflow as its own cohort of tasks.`);
  const tabs = h("nav", { class: "tabs", "aria-label": "Break down by" }, DIMENSIONS.map((d) =>
    nav(`${link(st, { by: d })}#breakdown`, { "aria-current": d === dim ? "page" : null }, f.label(d))));
  part.el.insertBefore(tabs, part.body);
  const params = { group_by: `workflow,${dim}`, ...filters(st), cost: st.cost };
  part.tools.append(csvLink(csvUrl(COST, params), `cost-per-task-by-workflow-${dim}.csv`));
  load(part, ask(COST, params), (doc) => {
    const top = Math.max(0, ...doc.rows.map((r) => Number(r.spend_usd)));
    const behind = (r) => tasksOf(st, {
      workflow: r.workflow,
      ...(dim === "team" ? { team: r.team } : {}),
      ...(dim === "version" ? { version: r.version } : {}),
      order: "-spend_usd",
    });
    const common = [
      { key: "workflow", label: "Workflow", render: (r) => nav(link(st, { workflow: r.workflow, page: null }), null, r.workflow ?? "(none)") },
      { key: dim, label: f.label(dim), render: (r) => r[dim] ?? h("span", { class: "muted" }, "(none)") },
      {
        key: "spend", label: "Spend", num: true,
        render: (r) => [bar(Number(r.spend_usd), top), figure("spend_usd", r.spend_usd, f.money(r.spend_usd), behind(r))],
      },
      {
        key: "cpt", label: "Cost per completed task", num: true,
        render: (r) => figure("cost_per_completed_task_usd", r.cost_per_completed_task_usd,
          f.money(r.cost_per_completed_task_usd), behind(r)),
      },
    ];
    const more = SPAN_LEVEL.has(dim)
      ? [
          { key: "tpa", label: "Tokens per attempt", num: true, wide: true, render: (r) => f.count(r.tokens_per_attempt) },
          { key: "unpriced", label: "Unpriced spans", num: true, wide: true, render: (r) => f.count(r.unpriced_spans) },
        ]
      : [
          { key: "sr", label: "Success rate", num: true, render: (r) => figure("success_rate", r.success_rate, f.percent(r.success_rate), behind(r)) },
          { key: "tasks", label: "Tasks", num: true, wide: true, render: (r) => figure("tasks", r.tasks, f.count(r.tasks), behind(r)) },
          { key: "pending", label: "Pending", num: true, wide: true, render: (r) => f.count(r.pending) },
        ];
    return table({ columns: [...common, ...more], rows: doc.rows, caption: `By workflow and ${dim}` });
  });
  return part.el;
}
