// What every view shares: loading a section from its API call, CSV links, the token prompt,
// and dropping answers of a view the user already left.
import { AuthRequired, download, token } from "./api.js";
import { fill, h } from "./dom.js";

let generation = 0;
let pending = 0;

/** main is aria-busy while any answer of the view is on its way (readers and tests wait). */
function busy(delta) {
  pending += delta;
  document.getElementById("main").setAttribute("aria-busy", String(pending > 0));
}

/** A new view begins: answers still on their way for the previous one are dropped. */
export function begin() {
  generation += 1;
  pending = 0;
  busy(1); // until the view has asked its questions (settled by ready())
  return generation;
}

/** The view has asked everything it will ask. */
export function ready(mine) {
  if (mine === generation) busy(-1);
}

export function current() {
  return generation;
}

const listeners = { auth: () => {} };

export function onAuthRequired(handler) {
  listeners.auth = handler;
}

/** Ask the same thing once per view: sections that need one answer share its request. */
export function memo(fetcher) {
  const asked = new Map();
  return (path, params) => {
    const key = `${path}?${JSON.stringify(params)}`;
    if (!asked.has(key)) asked.set(key, fetcher(path, params));
    return asked.get(key);
  };
}

/** Fill a section from `promise` with `draw(answer)`; a failure says what went wrong there. */
export async function load(part, promise, draw) {
  const mine = generation;
  busy(1);
  try {
    const answer = await promise;
    if (mine !== generation) return;
    fill(part, draw(answer));
    // a link to this section (#tasks) lands on it once it has its rows
    if (window.location.hash === `#${part.el.id}`) part.el.scrollIntoView({ block: "start" });
  } catch (error) {
    if (mine !== generation) return;
    if (error instanceof AuthRequired) listeners.auth(error.message);
    fill(part, h("p", { class: "error", role: "alert" }, error.message || String(error)));
  } finally {
    if (mine === generation) busy(-1);
  }
}

/** A run of work after a view is drawn (filling cells): skipped once the view is left. */
export async function later(promise, apply) {
  const mine = generation;
  busy(1);
  try {
    const answer = await promise;
    if (mine === generation) apply(answer);
  } catch (error) {
    if (mine === generation && error instanceof AuthRequired) listeners.auth(error.message);
  } finally {
    if (mine === generation) busy(-1);
  }
}

/** The CSV of a table: the API's own link (format=csv), fetched with the token if one is set. */
export function csvLink(href, filename, text = "CSV") {
  return h("a", {
    href, download: filename, class: "csv", title: `Download ${filename} (the API's CSV)`,
    onclick: (event) => {
      if (!token()) return;
      event.preventDefault();
      download(href, filename).catch((error) => {
        if (error instanceof AuthRequired) listeners.auth(error.message);
      });
    },
  }, text);
}
