// Building the page: elements, tables with their CSV link, sections that load on their own.

const SVG_NS = "http://www.w3.org/2000/svg";

function apply(el, attrs) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "text") el.textContent = value;
    else if (key === "class") el.setAttribute("class", value);
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** An HTML element: h("a", {href, class}, "text", child...). */
export function h(tag, attrs, ...children) {
  return append(apply(document.createElement(tag), attrs), children);
}

/** An SVG element. */
export function s(tag, attrs, ...children) {
  return append(apply(document.createElementNS(SVG_NS, tag), attrs), children);
}

/** A link the page follows itself (history, no reload). */
export function nav(href, attrs, ...children) {
  return h("a", { ...attrs, href, "data-nav": "" }, ...children);
}

/**
 * A figure as the page shows it: its text, and the API's value and field in data-* so a
 * reader (or a test) can hold the two side by side. With href, the figure links to the
 * rows behind it.
 */
export function figure(field, value, text, href) {
  const attrs = { class: "fig", "data-field": field, "data-value": value ?? "" };
  return href ? nav(href, attrs, text) : h("span", attrs, text);
}

/** A horizontal bar (share of the largest value in its column), for a table cell. */
export function bar(value, max) {
  const el = h("span", { class: "bar", "aria-hidden": "true" });
  const share = max > 0 && value > 0 ? Math.max(1, (100 * value) / max) : 0;
  el.style.width = `${Math.min(100, share)}%`;
  return el;
}

/**
 * A table. columns: [{key, label, num, render(row) -> node|string, wide}] ("wide": hidden on
 * narrow screens). rows: the API's rows. A row's cells come from render, else the key.
 */
export function table({ caption, columns, rows, rowAttrs, empty }) {
  const head = h("tr", null, columns.map((c) => h("th", {
    scope: "col", class: [c.num ? "num" : "", c.wide ? "wide" : ""].join(" ").trim() || null,
  }, c.label)));
  const body = rows.length
    ? rows.map((row) => h("tr", rowAttrs ? rowAttrs(row) : null, columns.map((c, i) => {
        const content = c.render ? c.render(row) : row[c.key];
        const cls = [c.num ? "num" : "", c.wide ? "wide" : ""].join(" ").trim() || null;
        return i === 0 && c.header !== false
          ? h("th", { scope: "row", class: cls }, content)
          : h("td", { class: cls }, content);
      })))
    : [h("tr", null, h("td", { colspan: columns.length, class: "empty" }, empty || "No rows."))];
  return h("div", { class: "scroll" },
    h("table", null, caption ? h("caption", null, caption) : null,
      h("thead", null, head), h("tbody", null, body)));
}

/** A section of the page with its heading, an optional CSV link and a body filled later. */
export function section(id, title, intro) {
  const body = h("div", { class: "body", "aria-busy": "true" }, h("p", { class: "muted" }, "Loading…"));
  const tools = h("div", { class: "tools" });
  const el = h("section", { id, class: "card", "aria-labelledby": `${id}-title` },
    h("div", { class: "head" }, h("h2", { id: `${id}-title` }, title), tools),
    intro ? h("p", { class: "intro" }, intro) : null,
    body);
  return { el, body, tools };
}

/** Replace a section's body (the load is over). */
export function fill(part, ...children) {
  part.body.replaceChildren(...children.flat().filter(Boolean));
  part.body.removeAttribute("aria-busy");
}
