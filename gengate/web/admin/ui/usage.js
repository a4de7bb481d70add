// Usage: totals per hour/day (over time) and per model/key/channel/provider, each an SVG chart with
// a table under it, over a from/to range.
import { get } from "./api.js";
import { clear, errorBox, h, num, optTime, table, toLocalInput } from "./dom.js";
import { barChart } from "./chart.js";

const METRICS = {
  requests: [{ key: "requests", label: "requests", color: "#4f7cff" }],
  tokens: [{ key: "input_tokens", label: "input tokens", color: "#4f7cff" },
    { key: "output_tokens", label: "output tokens", color: "#22b8a6" }],
  tasks: [{ key: "tasks", label: "tasks", color: "#8b5cf6" }],
  credits: [{ key: "credits", label: "credits", color: "#f59e0b" }],
  errors: [{ key: "errors", label: "errors", color: "#ef4444" }],
};
const columns = [
  { label: "Group", cell: (r) => r.group },
  ...["requests", "tasks", "errors", "input_tokens", "output_tokens", "credits"].map((k) => (
    { label: k.replace("_", " "), cell: (r) => num(r[k]), class: "num" })),
];

// "2026-12-04T13:00:00Z" → "12-04 13:00 UTC"; "2026-12-04" → "2026-12-04"; other groups as they are.
function groupLabel(group) {
  const hour = /^\d{4}-(\d\d-\d\d)T(\d\d:\d\d)/.exec(group);
  return hour ? `${hour[1]} ${hour[2]} UTC` : String(group);
}

// Time buckets the API left out (no usage) drawn as empty bars, oldest first, so the axis is even.
function timeline(rows, size) {
  const step = size === "hour" ? 3600e3 : 86400e3;
  const key = (t) => (size === "hour" ? `${new Date(t).toISOString().slice(0, 13)}:00:00Z` : new Date(t).toISOString().slice(0, 10));
  const byGroup = new Map(rows.map((r) => [r.group, r]));
  const times = rows.map((r) => Date.parse(size === "hour" ? r.group : `${r.group}T00:00:00Z`)).filter((t) => !Number.isNaN(t));
  if (!times.length || times.length !== rows.length) return [...rows].reverse();
  const first = Math.min(...times);
  const last = Math.max(...times);
  if ((last - first) / step > 500) return [...rows].reverse();
  const out = [];
  for (let t = first; t <= last; t += step) out.push(byGroup.get(key(t)) || { group: key(t) });
  return out;
}

function panel(title, groups, range) {
  const state = { group: groups[0], metric: "requests" };
  const out = h("div", { class: "panel-body" });
  const tabs = h("div", { class: "tabs", role: "tablist" });
  const metric = h("select", { "aria-label": `${title} metric` },
    Object.keys(METRICS).map((m) => h("option", { value: m }, m)));
  async function load() {
    for (const b of tabs.children) b.classList.toggle("active", b.dataset.group === state.group);
    try {
      const reply = await get("/usage", { group_by: state.group, ...range() });
      const rows = reply.data;
      const chartRows = ["hour", "day"].includes(state.group) ? timeline(rows, state.group) : rows;
      clear(out, rows.length
        ? [barChart(chartRows, METRICS[state.metric], { title: `${state.metric} per ${state.group}`, label: groupLabel }),
          table(columns, rows)]
        : h("p", { class: "empty" }, "No usage in this range."));
    } catch (exc) {
      clear(out, errorBox(exc));
    }
  }
  for (const g of groups) {
    tabs.append(h("button", { type: "button", class: "tab small", "data-group": g, role: "tab",
      onclick: () => { state.group = g; load(); } }, `per ${g}`));
  }
  metric.addEventListener("change", () => { state.metric = metric.value; load(); });
  return { load, node: h("section", { class: "card usage-panel" },
    h("div", { class: "panel-head" }, h("h2", {}, title), tabs, metric), out) };
}

export async function render(root) {
  const from = h("input", { type: "datetime-local", name: "from", value: toLocalInput(Date.now() / 1000 - 7 * 86400) });
  const to = h("input", { type: "datetime-local", name: "to" });
  const problem = h("div", {});
  const range = () => {
    try {
      clear(problem);
      return { from: optTime(from.value), to: optTime(to.value) };
    } catch (exc) {
      clear(problem, errorBox(exc));
      return {};
    }
  };
  const time = panel("Over time", ["hour", "day"], range);
  const split = panel("Breakdown", ["model", "key", "channel", "provider"], range);
  const filters = h("form", { class: "filters" }, h("label", {}, "From ", from), h("label", {}, "To ", to),
    h("button", { type: "submit" }, "Apply"));
  filters.addEventListener("submit", (ev) => { ev.preventDefault(); time.load(); split.load(); });
  clear(root, h("div", { class: "view-head" }, h("h1", {}, "Usage"), filters), problem, time.node, split.node);
  await Promise.all([time.load(), split.load()]);
}
