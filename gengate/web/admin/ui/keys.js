// Keys: list (paged), create (the sk- key shown once), top up, limits, disable/enable, revoke.
import { del, get, patch, post } from "./api.js";
import { action, badge, clear, h, list, num, openForm, optInt, optList, optTime, pager, table, toLocalInput, when }
  from "./dom.js";

function keyState(k) {
  if (k.revoked) return badge("revoked", "bad");
  if (k.disabled) return badge("disabled", "warn");
  if (k.expires_at && k.expires_at * 1000 < Date.now()) return badge("expired", "warn");
  return badge("active", "ok");
}

function newKeyBox(made) {
  const field = h("input", { type: "text", class: "secret-value", readonly: true, value: made.key,
    "aria-label": "The new key", onfocus: (ev) => ev.target.select() });
  const copied = h("span", { class: "muted small", "aria-live": "polite" });
  const copy = h("button", { type: "button", class: "primary small" }, "Copy");
  copy.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(made.key);
    } catch {
      field.select();
      document.execCommand("copy");
    }
    copied.textContent = "Copied.";
  });
  return h("div", { class: "new-key", role: "status" },
    h("strong", {}, `Key "${made.name}" created. `),
    h("span", {}, "Copy it now: it is shown only once."),
    h("div", { class: "copy-row" }, field, copy, copied));
}

function createKey(slot, reload) {
  openForm("Create a key", [
    { name: "name", label: "Name", required: true, placeholder: "team-a" },
    { name: "credits", label: "Credits", type: "number", placeholder: "empty = unlimited" },
    { name: "models", label: "Models", placeholder: "gpt-4o*, vidu-*", hint: "Comma-separated patterns; empty = all" },
    { name: "rpm", label: "Requests per minute", type: "number", placeholder: "empty = no limit" },
    { name: "expires_at", label: "Expires", type: "datetime-local" },
  ], async (v) => {
    const body = { name: v.name };
    const credits = optInt(v.credits, "Credits");
    const rpm = optInt(v.rpm, "Requests per minute");
    if (credits !== null) body.credits = credits;
    if (rpm !== null) body.rpm = rpm;
    if (optList(v.models)) body.models = optList(v.models);
    if (optTime(v.expires_at)) body.expires_at = optTime(v.expires_at);
    const made = await post("/keys", body);
    clear(slot, newKeyBox(made));
    await reload();
  }, { submitLabel: "Create key" });
}

function topUp(k, reload) {
  openForm(`Top up ${k.name}`, [
    { name: "add_credits", label: "Credits to add", type: "number", required: true },
  ], async (v) => {
    await patch(`/keys/${k.id}`, { add_credits: optInt(v.add_credits, "Credits to add") });
    await reload();
  }, { submitLabel: "Add credits" });
}

function limits(k, reload) {
  openForm(`Limits of ${k.name}`, [
    { name: "credits", label: "Credits balance", type: "number", value: k.credits ?? "", placeholder: "empty = unlimited" },
    { name: "models", label: "Models", value: (k.models || []).join(", "), hint: "Comma-separated patterns; empty = all" },
    { name: "rpm", label: "Requests per minute", type: "number", value: k.rpm ?? "", placeholder: "empty = no limit" },
    { name: "expires_at", label: "Expires", type: "datetime-local", value: toLocalInput(k.expires_at) },
  ], async (v) => {
    const body = { models: optList(v.models), rpm: optInt(v.rpm, "Requests per minute"),
      expires_at: optTime(v.expires_at) };
    const credits = optInt(v.credits, "Credits balance");
    if (credits !== k.credits) body.credits = credits;
    await patch(`/keys/${k.id}`, body);
    await reload();
  });
}

export async function render(root) {
  const created = h("div", { class: "new-key-slot" });
  const body = h("div", {});
  let reload;
  const columns = [
    { label: "ID", cell: (k) => k.id, class: "num" },
    { label: "Name", cell: (k) => h("strong", { class: "key-name" }, k.name) },
    { label: "State", cell: keyState },
    { label: "Credits", cell: (k) => (k.credits === null ? "unlimited" : num(k.credits)), class: "num" },
    { label: "Used", cell: (k) => num(k.used), class: "num" },
    { label: "Models", cell: (k) => list(k.models) },
    { label: "RPM", cell: (k) => k.rpm ?? "—", class: "num" },
    { label: "Expires", cell: (k) => when(k.expires_at) },
    { label: "Created", cell: (k) => when(k.created_at) },
    { label: "", class: "actions", cell: (k) => (k.revoked ? null : [
      k.credits !== null ? action("Top up", () => topUp(k, reload)) : null,
      action("Limits", () => limits(k, reload)),
      action(k.disabled ? "Enable" : "Disable", async () => { await patch(`/keys/${k.id}`, { disabled: !k.disabled }); await reload(); }),
      action("Revoke", async () => { await del(`/keys/${k.id}`); await reload(); }, { tone: "danger", confirm: "Confirm revoke" }),
    ]) },
  ];
  reload = async () => {
    const p = pager((after) => get("/keys", { limit: 50, after }), (rows) => table(columns, rows, "No keys yet."), body);
    await p.next();
  };
  clear(root,
    h("div", { class: "view-head" }, h("h1", {}, "Keys"),
      h("div", { class: "head-actions" },
        h("button", { type: "button", class: "primary", onclick: () => createKey(created, reload) }, "Create key"))),
    created, body);
  await reload();
}
