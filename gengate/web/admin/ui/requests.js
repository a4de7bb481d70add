// Requests: the per-request usage log of synchronous calls, newest first, paged.
import { get } from "./api.js";
import { badge, clear, h, num, pager, table, when } from "./dom.js";

const columns = [
  { label: "ID", cell: (r) => r.id, class: "num" },
  { label: "Time", cell: (r) => when(r.created_at) },
  { label: "Key", cell: (r) => r.key_id, class: "num" },
  { label: "Route", cell: (r) => h("code", {}, r.route) },
  { label: "Model", cell: (r) => r.model },
  { label: "Channel", cell: (r) => r.channel ?? "—" },
  { label: "Status", cell: (r) => badge(String(r.status), r.status < 400 ? "ok" : "bad") },
  { label: "Latency", cell: (r) => (r.latency_ms === null ? "—" : `${num(Math.round(r.latency_ms))} ms`), class: "num" },
  { label: "Tokens in/out", cell: (r) => `${num(r.input_tokens)} / ${num(r.output_tokens)}`, class: "num" },
  { label: "Credits", cell: (r) => num(r.credits), class: "num" },
  { label: "Stream", cell: (r) => (r.stream ? "yes" : "") },
  { label: "Error", cell: (r) => r.error || "" },
];

export async function render(root) {
  const keyInput = h("input", { type: "number", name: "key_id", placeholder: "any", min: "1" });
  const body = h("div", {});
  async function load() {
    const p = pager((after) => get("/requests", { limit: 50, after, key_id: keyInput.value }),
      (rows) => table(columns, rows, "No requests recorded yet."), body);
    await p.next();
  }
  const filters = h("form", { class: "filters" }, h("label", {}, "Key ID ", keyInput),
    h("button", { type: "submit" }, "Apply"));
  filters.addEventListener("submit", (ev) => { ev.preventDefault(); load(); });
  clear(root, h("div", { class: "view-head" }, h("h1", {}, "Requests"), filters), body);
  await load();
}
