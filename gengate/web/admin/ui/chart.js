// A small bar chart drawn as inline SVG (no chart library): one bar per group, stacked series.
import { h } from "./dom.js";

const W = 760;
const H = 260;
const PAD = { left: 56, right: 12, top: 12, bottom: 72 };

function niceMax(value) {
  if (value <= 0) return 1;
  const pow = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * pow >= value) return step * pow;
  return 10 * pow;
}

function short(n) {
  if (n >= 1e9) return `${+(n / 1e9).toFixed(1)}G`;
  if (n >= 1e6) return `${+(n / 1e6).toFixed(1)}M`;
  if (n >= 1e3) return `${+(n / 1e3).toFixed(1)}k`;
  return String(+n.toFixed(2));
}

// rows: [{group, ...}], series: [{key, label, color}] stacked in order.
export function barChart(rows, series, { title, label = String } = {}) {
  const svg = h("svg:svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": title || "chart",
    preserveAspectRatio: "xMidYMid meet" });
  if (title) svg.append(h("svg:title", {}, title));
  const total = (r) => series.reduce((sum, s) => sum + (Number(r[s.key]) || 0), 0);
  const max = niceMax(Math.max(0, ...rows.map(total)));
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const y = (v) => PAD.top + plotH - (v / max) * plotH;
  for (let i = 0; i <= 4; i += 1) {  // grid and axis labels
    const v = (max / 4) * i;
    svg.append(h("svg:line", { x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v), class: "grid" }),
      h("svg:text", { x: PAD.left - 6, y: y(v) + 4, class: "axis", "text-anchor": "end" }, short(v)));
  }
  const slot = plotW / Math.max(1, rows.length);
  const barW = Math.max(2, Math.min(48, slot * 0.7));
  const every = Math.ceil(rows.length / 16);  // at most ~16 labels
  rows.forEach((r, i) => {
    const x = PAD.left + slot * i + (slot - barW) / 2;
    let base = 0;
    const group = h("svg:g", { class: "bar" });
    for (const s of series) {
      const v = Number(r[s.key]) || 0;
      if (v > 0) {
        group.append(h("svg:rect", { x, y: y(base + v), width: barW, height: Math.max(0.5, y(base) - y(base + v)),
          fill: s.color, rx: 2 }, h("svg:title", {}, `${r.group}: ${s.label} ${v.toLocaleString("en-US")}`)));
      }
      base += v;
    }
    svg.append(group);
    if (i % every === 0) {
      const cx = PAD.left + slot * i + slot / 2;
      const text = label(r.group);
      const shown = text.length > 16 ? `${text.slice(0, 15)}…` : text;
      svg.append(h("svg:text", { x: cx, y: H - PAD.bottom + 14, class: "axis", "text-anchor": "end",
        transform: `rotate(-30 ${cx} ${H - PAD.bottom + 14})` }, shown));
    }
  });
  svg.append(h("svg:line", { x1: PAD.left, x2: W - PAD.right, y1: y(0), y2: y(0), class: "baseline" }));
  const legend = series.length > 1 ? h("div", { class: "legend" }, series.map((s) => {
    const swatch = h("span", { class: "swatch" });
    swatch.style.background = s.color;
    return h("span", {}, swatch, s.label);
  })) : null;
  return h("figure", { class: "chart-box" }, svg, legend);
}
