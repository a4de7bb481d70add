// Channels: each upstream account, the health of each secret, add / enable / disable / delete / test.
import { del, get, patch, post } from "./api.js";
import { action, badge, clear, errorBox, h, list, openForm, optInt, optList, optObject } from "./dom.js";

const PROVIDERS = ["openai", "zhipu", "kling", "runway", "luma", "vidu", "vidu-ent", "suno"];

function secretTone(state) {
  if (state === "ok") return "ok";
  if (state === "cooling down") return "warn";
  return "bad";
}

function secretsTable(ch) {
  return h("table", { class: "secrets" },
    h("thead", {}, h("tr", {}, ["Secret", "State", "Running / cap"].map((t) => h("th", {}, t)))),
    h("tbody", {}, ch.secrets.map((s) => h("tr", { "data-secret": s.id },
      h("td", {}, h("code", {}, s.fingerprint)),
      h("td", {}, badge(s.state, secretTone(s.state)),
        s.cooldown_until ? h("small", { class: "muted" }, ` until ${new Date(s.cooldown_until * 1000).toLocaleTimeString()}`) : null),
      h("td", { class: "num" }, `${s.running} / ${s.max_concurrency ?? "∞"}`)))));
}

function testResults(result) {
  return h("div", { class: ["test-result", result.ok ? "test-ok" : "test-bad"] },
    h("strong", {}, result.ok ? "Test passed" : "Test failed"),
    h("table", { class: "secrets" },
      h("thead", {}, h("tr", {}, ["Secret", "Status", "Latency", "Error"].map((t) => h("th", {}, t)))),
      h("tbody", {}, result.data.map((r) => h("tr", {},
        h("td", {}, h("code", {}, r.fingerprint)),
        h("td", {}, badge(r.status, r.status === "ok" ? "ok" : "bad")),
        h("td", { class: "num" }, `${r.latency_ms} ms`),
        h("td", {}, r.error || "—"))))));
}

function card(ch, reload) {
  const results = h("div", { class: "test-slot" });
  const state = ch.enabled ? badge("enabled", "ok") : badge(ch.status_reason ? `disabled (${ch.status_reason})` : "disabled", "bad");
  const mapped = Object.entries(ch.model_map || {}).map(([a, b]) => `${a} → ${b}`).join(", ");
  return h("article", { class: "card channel", "data-channel": ch.id },
    h("header", { class: "card-head" },
      h("div", {},
        h("h3", { class: "channel-name" }, ch.name),
        h("div", { class: "muted small" }, `#${ch.id} · ${ch.provider} · `, h("code", {}, ch.base_url))),
      state),
    h("dl", { class: "facts" },
      h("dt", {}, "Models"), h("dd", {}, list(ch.models)),
      mapped ? [h("dt", {}, "Model map"), h("dd", {}, mapped)] : null,
      h("dt", {}, "Priority"), h("dd", {}, ch.priority),
      h("dt", {}, "Weight"), h("dd", {}, ch.weight)),
    secretsTable(ch),
    results,
    h("div", { class: "card-actions" },
      action("Test", async () => {
        clear(results, h("p", { class: "muted" }, "Testing each secret…"));
        try {
          clear(results, testResults(await post(`/channels/${ch.id}/test`)));
        } catch (exc) {
          clear(results, errorBox(exc));
        }
      }),
      ch.enabled
        ? action("Disable", async () => { await patch(`/channels/${ch.id}`, { enabled: false }); reload(); })
        : action("Enable", async () => { await patch(`/channels/${ch.id}`, { enabled: true }); reload(); }),
      action("Edit", async () => editChannel(ch, reload)),
      action("Delete", async () => { await del(`/channels/${ch.id}`); reload(); },
        { tone: "danger", confirm: "Confirm delete" })));
}

function editChannel(ch, reload) {
  openForm(`Edit ${ch.name}`, [
    { name: "models", label: "Models", value: (ch.models || []).join(", "), hint: "Comma-separated patterns; empty = all" },
    { name: "priority", label: "Priority", type: "number", value: ch.priority },
    { name: "weight", label: "Weight", type: "number", value: ch.weight },
  ], async (v) => {
    await patch(`/channels/${ch.id}`, { models: optList(v.models), priority: optInt(v.priority, "Priority") ?? 0,
      weight: optInt(v.weight, "Weight") ?? 1 });
    reload();
  });
}

function addChannel(reload) {
  openForm("Add a channel", [
    { name: "provider", label: "Provider", value: "", datalist: PROVIDERS, required: true,
      placeholder: "openai, vidu, kling…" },
    { name: "base_url", label: "Base URL", required: true, placeholder: "https://api.example.com" },
    { name: "keys", label: "Secrets", type: "textarea", hint: "One upstream secret per line", required: true },
    { name: "name", label: "Name", placeholder: "defaults to the provider's name" },
    { name: "models", label: "Models", placeholder: "gpt-4o*, vidu-*", hint: "Comma-separated patterns; empty = all" },
    { name: "model_map", label: "Model map", type: "textarea", rows: 2, placeholder: "client-model=upstream-model" },
    { name: "priority", label: "Priority", type: "number", value: "0" },
    { name: "weight", label: "Weight", type: "number", value: "1" },
    { name: "max_concurrency", label: "Max concurrency per secret", type: "number", placeholder: "provider default" },
    { name: "options", label: "Options", type: "textarea", rows: 2, placeholder: '{"region": "cn"}' },
  ], async (v) => {
    const keys = v.keys.split("\n").map((s) => s.trim()).filter(Boolean);
    const body = { provider: v.provider, base_url: v.base_url, keys, models: optList(v.models),
      model_map: optObject(v.model_map, "Model map"), options: optObject(v.options, "Options"),
      priority: optInt(v.priority, "Priority"), weight: optInt(v.weight, "Weight"),
      max_concurrency: optInt(v.max_concurrency, "Max concurrency") };
    if (v.name) body.name = v.name;
    for (const k of ["models", "model_map", "options", "priority", "weight", "max_concurrency"]) {
      if (body[k] === null) delete body[k];
    }
    await post("/channels", body);
    reload();
  }, { submitLabel: "Add channel" });
}

export async function render(root) {
  const body = h("div", { class: "cards" });
  async function reload() {
    try {
      const items = [];
      let after = null;
      for (;;) {  // every channel (a gateway has few)
        const page = await get("/channels", { limit: 200, after });
        items.push(...page.data);
        if (!page.has_more || !page.data.length) break;
        after = page.data[page.data.length - 1].id;
      }
      clear(body, items.length ? items.map((ch) => card(ch, reload))
        : h("p", { class: "empty" }, "No channels yet: add one to route requests upstream."));
    } catch (exc) {
      clear(body, errorBox(exc));
    }
  }
  clear(root,
    h("div", { class: "view-head" }, h("h1", {}, "Channels"),
      h("div", { class: "head-actions" },
        action("Refresh", reload, { tone: "ghost" }),
        h("button", { type: "button", class: "primary", onclick: () => addChannel(reload) }, "Add channel"))),
    body);
  await reload();
  const timer = setInterval(() => { if (!document.hidden && !document.querySelector("dialog[open]")) refreshHealth(); }, 10000);
  async function refreshHealth() {
    // secret health changes (cooldowns, running slots): refresh quietly, unless the operator is in
    // the middle of something (a test result shown, a delete armed, an action running)
    if (!body.querySelector(".test-result, .armed, button:disabled")) await reload();
  }
  return () => clearInterval(timer);
}
