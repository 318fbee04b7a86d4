// Small hand-written SVG and HTML charts. They draw the API's values; they add nothing up.
import { h, nav, s } from "./dom.js";
import { day, money } from "./format.js";

/** The series colours (Okabe–Ito: told apart with any colour vision), by position. */
export const PALETTE = ["#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#7a6c00", "#555555"];

export function colour(index) {
  return PALETTE[index % PALETTE.length];
}

function at(iso) {
  return Date.parse(iso.length === 10 ? `${iso}T00:00:00Z` : iso);
}

/** A "nice" upper bound and step for an axis from 0 to max. */
function ticks(max, count = 4) {
  if (!(max > 0)) return { top: 1, step: 0.25 };
  const raw = max / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((m) => m >= raw);
  return { top: step * Math.ceil(max / step), step };
}

/**
 * A sparkline of one series: points [{x: "2026-03-01", y: number|null, provisional}].
 * Provisional points (pending tasks in the cohort) are drawn hollow.
 */
export function sparkline(points, text) {
  const width = 96;
  const height = 24;
  const known = points.filter((p) => p.y !== null && p.y !== undefined);
  const svg = s("svg", {
    class: "spark", viewBox: `0 0 ${width} ${height}`, width, height, role: "img",
    "aria-label": text,
  });
  if (known.length === 0) return svg;
  const xs = points.map((p) => at(p.x));
  const x0 = Math.min(...xs);
  const span = Math.max(...xs) - x0 || 1;
  const top = Math.max(...known.map((p) => Number(p.y))) || 1;
  const px = (p) => 2 + ((at(p.x) - x0) / span) * (width - 4);
  const py = (p) => height - 2 - (Number(p.y) / top) * (height - 4);
  let path = "";
  let pen = false;
  for (const p of points) {
    if (p.y === null || p.y === undefined) {
      pen = false;
      continue;
    }
    path += `${pen ? "L" : "M"}${px(p).toFixed(1)},${py(p).toFixed(1)}`;
    pen = true;
  }
  svg.append(s("path", { d: path, class: "spark-line" }));
  const last = known[known.length - 1];
  svg.append(s("circle", {
    cx: px(last).toFixed(1), cy: py(last).toFixed(1), r: 2.2,
    class: last.provisional ? "spark-dot hollow" : "spark-dot",
  }));
  return svg;
}

/**
 * A line chart of several series over time. series: [{name, colour, points: [{x, y,
 * provisional, href, title}]}]. Each point links to the rows behind it.
 */
export function lineChart(series, { title, format = money }) {
  // drawn for the screen it is on: labels keep their size on a phone
  const W = Math.round(Math.min(720, Math.max(340, window.innerWidth - 48)));
  const H = 260;
  const m = { l: 60, r: 24, t: 14, b: 30 };
  const all = series.flatMap((line) => line.points);
  const known = all.filter((p) => p.y !== null && p.y !== undefined);
  const id = `chart-${Math.random().toString(36).slice(2, 8)}`;
  const svg = s("svg", {
    class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-labelledby": id,
    preserveAspectRatio: "xMidYMid meet",
  }, s("title", { id }, title));
  if (known.length === 0) return svg;
  const xs = [...new Set(all.map((p) => p.x))].sort();
  const x0 = at(xs[0]);
  const x1 = at(xs[xs.length - 1]);
  const { top, step } = ticks(Math.max(...known.map((p) => Number(p.y))));
  const px = (x) => m.l + (x1 === x0 ? 0.5 : (at(x) - x0) / (x1 - x0)) * (W - m.l - m.r);
  const py = (y) => H - m.b - (Number(y) / top) * (H - m.t - m.b);
  const grid = s("g", { class: "grid" });
  for (let y = 0; y <= top + step / 2; y += step) {
    grid.append(
      s("line", { x1: m.l, x2: W - m.r, y1: py(y), y2: py(y) }),
      s("text", { x: m.l - 6, y: py(y) + 4, "text-anchor": "end" }, format(y)),
    );
  }
  const every = Math.max(1, Math.ceil(xs.length / Math.max(3, Math.floor(W / 90))));
  xs.forEach((x, i) => {
    if (i % every === 0) {
      grid.append(s("text", { x: px(x), y: H - 10, "text-anchor": "middle" }, day(x)));
    }
  });
  svg.append(grid);
  for (const line of series) {
    const g = s("g", { class: "series", "data-series": line.name });
    const pts = line.points.filter((p) => p.y !== null && p.y !== undefined);
    for (let i = 1; i < pts.length; i += 1) {
      const a = pts[i - 1];
      const b = pts[i];
      g.append(s("line", {
        x1: px(a.x), y1: py(a.y), x2: px(b.x), y2: py(b.y), stroke: line.colour,
        class: a.provisional || b.provisional ? "seg provisional" : "seg",
      }));
    }
    for (const p of pts) {
      const dot = s("circle", {
        cx: px(p.x), cy: py(p.y), r: 4, stroke: line.colour,
        fill: p.provisional ? "#fff" : line.colour, class: "dot",
      }, s("title", null, p.title));
      g.append(p.href ? s("a", { href: p.href, "data-nav": "", "aria-label": p.title }, dot) : dot);
    }
    svg.append(g);
  }
  return svg;
}

/** A legend: each series' swatch and name, linking where the caller says. */
export function legend(series, href) {
  return h("ul", { class: "legend" }, series.map((line) => {
    const swatch = h("span", { class: "swatch", "aria-hidden": "true" });
    swatch.style.background = line.colour;
    return h("li", null, swatch, href ? nav(href(line), null, line.name) : line.name);
  }));
}

/**
 * One horizontal stacked bar: parts [{key, label, value, href}], scaled so that `scale`
 * dollars fill the bar. Classes part-<key> give the colours.
 */
export function stack(parts, scale, format = money) {
  const bar = h("div", { class: "stack", role: "img", "aria-label": parts
    .filter((p) => Number(p.value) > 0).map((p) => `${p.label} ${format(p.value)}`).join(", ") });
  for (const p of parts) {
    const v = Number(p.value);
    if (!(v > 0) || !(scale > 0)) continue;
    const seg = nav(p.href, { class: `seg part-${p.key}`, title: `${p.label}: ${format(v)}` });
    seg.style.width = `${(100 * v) / scale}%`;
    bar.append(seg);
  }
  return bar;
}

/** Bars left (negative) or right (positive) of a centre line, for parts of a change. */
export function diverging(value, scale) {
  const v = Number(value);
  const el = h("span", { class: "diverging", "aria-hidden": "true" });
  const part = h("span", { class: v < 0 ? "neg" : "pos" });
  part.style.width = `${scale > 0 ? Math.min(50, (50 * Math.abs(v)) / scale) : 0}%`;
  el.append(part);
  return el;
}
