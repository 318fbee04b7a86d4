// The dashboard: reads its state from the URL, draws the overview or one task, and follows
// its own links without reloading. Every figure is an answer of the REST API.
import { AuthRequired, adoptToken, get, paths, setToken, token } from "./api.js";
import { compareSection, COMPARE, LEVERS, leversSection, workflowExtras } from "./decide.js";
import { h } from "./dom.js";
import {
  breakdownSection, COST, compositionSection, overTimeSection, period, workflowsSection,
} from "./overview.js";
import { begin, current, later, memo, onAuthRequired, ready } from "./page.js";
import { PERIODS, filters, link, readState, window_ } from "./state.js";
import { taskView } from "./task.js";
import { taskListSection } from "./tasklist.js";

const main = document.getElementById("main");
const form = document.getElementById("filters");
const auth = document.getElementById("auth");

function go(href) {
  window.history.pushState(null, "", href);
  render({ moved: true });
}

function options(select, values, chosen, all) {
  const names = [...new Set([...values, ...(chosen ? [chosen] : [])])]
    .sort((a, b) => a.localeCompare(b));
  select.replaceChildren(h("option", { value: "" }, all),
    ...names.map((v) => h("option", { value: v, selected: v === chosen ? true : null }, v)));
}

/** The filter form shows the state; its workflow and team lists come from the API too. */
function syncFilters(st, ask) {
  const custom = st.period === "custom";
  form.elements.period.value = st.period;
  const { start, end } = window_(st);
  form.elements.start.value = start || "";
  form.elements.end.value = end || "";
  for (const el of form.querySelectorAll(".custom")) el.hidden = !custom;
  form.elements.cost.value = st.cost;
  options(form.elements.workflow, [], st.workflow, "All workflows");
  options(form.elements.team, [], st.team, "All teams");
  const of = (key, extra) => ask(COST, { group_by: key, ...filters({ ...st, [key]: null }), cost: st.cost, ...extra })
    .then((doc) => doc.rows.map((r) => r[key]).filter((v) => v !== null));
  later(of("workflow"), (names) => options(form.elements.workflow, names, st.workflow, "All workflows"));
  later(of("team"), (names) => options(form.elements.team, names, st.team, "All teams"));
}

function heading(st) {
  const parts = [
    `Tasks started ${period(st)}`,
    st.workflow ? `workflow ${st.workflow}` : "all workflows",
    st.team ? `team ${st.team}` : "all teams",
    st.cost === "full" ? "fully loaded cost" : "inference cost",
  ];
  const reset = st.workflow || st.team
    ? h("a", { href: link(st, { workflow: null, team: null, version: null, page: null }), "data-nav": "" }, "Clear workflow and team")
    : null;
  return h("div", { class: "page-head" },
    h("h1", null, st.workflow ? `${st.workflow}: cost per completed task` : "Cost per completed task"),
    h("p", { class: "muted" }, parts.join(" · "), reset ? " · " : "", reset));
}

async function render({ moved = false } = {}) {
  const mine = begin();
  main.dataset.view = window.location.search;
  const st = readState();
  const ask = memo(get);
  syncFilters(st, ask);
  if (st.task) {
    document.title = `Task ${st.task} — tasklake`;
    main.replaceChildren(...taskView(st, ask));
    ready(mine);
    if (moved) window.scrollTo(0, 0);
    return;
  }
  document.title = st.workflow ? `${st.workflow} — tasklake` : "tasklake — cost per completed task";
  let features = new Set();
  try {
    features = await paths();
  } catch (error) {
    if (error instanceof AuthRequired) ask401(error.message);
  }
  if (mine !== current()) return; // a later navigation began while the document loaded
  const sections = [
    heading(st),
    workflowsSection(st, ask, workflowExtras(st, ask, features)),
    h("div", { class: "grid two" }, overTimeSection(st, ask), compositionSection(st, ask)),
    breakdownSection(st, ask),
  ];
  if (features.has(COMPARE) && st.workflow) sections.push(compareSection(st, ask));
  if (features.has(LEVERS)) sections.push(leversSection(st, ask));
  sections.push(taskListSection(st, ask));
  main.replaceChildren(...sections);
  ready(mine);
  if (window.location.hash) {
    document.getElementById(window.location.hash.slice(1))?.scrollIntoView({ block: "start" });
  } else if (moved) {
    window.scrollTo(0, 0);
  }
}

function ask401(message) {
  auth.hidden = false;
  auth.querySelector(".message").textContent = message;
  auth.elements.token.focus();
}

onAuthRequired(ask401);

// ------------------------------------------------------------------ events

form.addEventListener("change", (event) => {
  const st = readState();
  const el = event.target;
  if (el.name === "period") {
    if (el.value === "custom") {
      const { start, end } = window_(st);
      go(link(st, { period: "custom", start: start || "", end: end || "", page: null }));
    } else {
      go(link(st, { period: el.value, page: null }));
    }
  } else if (el.name === "start" || el.name === "end") {
    go(link(st, { period: "custom", [el.name]: el.value, page: null }));
  } else if (el.name === "workflow" || el.name === "team") {
    go(link(st, { [el.name]: el.value || null, version: null, a: null, b: null, page: null }));
  } else if (el.name === "cost") {
    go(link(st, { cost: el.value }));
  }
});
form.addEventListener("submit", (event) => event.preventDefault());

main.addEventListener("change", (event) => {
  const el = event.target.closest("select[data-state]");
  if (!el) return;
  const section = el.closest("section");
  go(`${link(readState(), { [el.dataset.state]: el.value || null, page: null })}${section ? `#${section.id}` : ""}`);
});

document.addEventListener("click", (event) => {
  const a = event.target.closest("a[data-nav]");
  if (!a || event.defaultPrevented || event.button !== 0) return;
  if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const href = a.getAttribute("href");
  if (!href || href.startsWith("#")) return;
  event.preventDefault();
  go(href);
});

window.addEventListener("popstate", () => render());

auth.addEventListener("submit", (event) => {
  event.preventDefault();
  setToken(auth.elements.token.value.trim());
  auth.elements.token.value = "";
  auth.hidden = true;
  render();
});

document.getElementById("forget").addEventListener("click", () => {
  setToken(null);
  window.location.reload();
});

// ------------------------------------------------------------------ start

for (const [value, text] of PERIODS) form.elements.period.append(h("option", { value }, text));
adoptToken();
document.getElementById("forget").hidden = !token();
render();
