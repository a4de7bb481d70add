// Small DOM helpers shared by every view: element building, formatting, errors, forms, paging.

export function h(tag, attrs, ...children) {
  const el = document.createElementNS(tag.startsWith("svg:") ? "http://www.w3.org/2000/svg" : "http://www.w3.org/1999/xhtml",
    tag.replace(/^svg:/, ""));
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "text") el.textContent = v;
    else if (k === "class") el.setAttribute("class", Array.isArray(v) ? v.filter(Boolean).join(" ") : v);
    else if (k === "value" && "value" in el) el.value = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// --- formatting --------------------------------------------------------------------------------
export function when(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const d = new Date(seconds * 1000);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function num(n) {
  if (n === null || n === undefined) return "—";
  return Number(n).toLocaleString("en-US");
}

export function list(items) {
  return items && items.length ? items.join(", ") : "all";
}

export function badge(text, tone) {
  return h("span", { class: ["badge", tone && `badge-${tone}`] }, text);
}

// --- errors --------------------------------------------------------------------------------------
export function errorBox(exc) {
  const code = exc && exc.code ? h("code", {}, exc.code) : null;
  return h("div", { class: "error-box", role: "alert" }, code, " ", exc?.message || String(exc));
}

export function showNotice(message, tone = "error") {
  const box = document.getElementById("notice");
  if (!box) return;
  clear(box, h("span", {}, message),
    h("button", { type: "button", class: "ghost small", onclick: () => { box.hidden = true; } }, "Dismiss"));
  box.className = `notice notice-${tone}`;
  box.hidden = false;
}

// --- buttons -------------------------------------------------------------------------------------
// A button that runs an async action: disabled while it runs, the API's error shown next to it.
export function action(label, run, { tone, confirm, title } = {}) {
  const btn = h("button", { type: "button", class: ["small", tone], title });
  btn.textContent = label;
  let armed = false;
  btn.addEventListener("click", async () => {
    if (confirm && !armed) {  // a destructive action takes a second click
      armed = true;
      btn.textContent = confirm;
      btn.classList.add("armed");
      setTimeout(() => { armed = false; btn.textContent = label; btn.classList.remove("armed"); }, 4000);
      return;
    }
    armed = false;
    btn.disabled = true;
    try {
      await run();
    } catch (exc) {
      showNotice(exc.message || String(exc));
    } finally {
      btn.disabled = false;
      btn.textContent = label;
      btn.classList.remove("armed");
    }
  });
  return btn;
}

// --- tables --------------------------------------------------------------------------------------
// columns: [{label, cell: (row) => node|string, class}]
export function table(columns, rows, empty = "Nothing yet.") {
  if (!rows.length) return h("p", { class: "empty" }, empty);
  return h("div", { class: "table-wrap" },
    h("table", {},
      h("thead", {}, h("tr", {}, columns.map((c) => h("th", { class: c.class }, c.label)))),
      h("tbody", {}, rows.map((row) => h("tr", { "data-id": row.id },
        columns.map((c) => h("td", { class: c.class }, c.cell(row))))))));
}

// --- modal forms ---------------------------------------------------------------------------------
// fields: [{name, label, type ("text"|"number"|"textarea"|"select"|"datetime-local"|"checkbox"),
//           value, placeholder, hint, options, required}]
// submit(values) may throw: the API's error is shown in the dialog, which stays open.
export function openForm(title, fields, submit, { submitLabel = "Save" } = {}) {
  const error = h("p", { class: "error", role: "alert", hidden: true });
  const inputs = {};
  const rows = fields.map((f) => {
    const id = `f-${f.name}`;
    let input;
    if (f.type === "textarea") {
      input = h("textarea", { id, name: f.name, rows: f.rows || 3, placeholder: f.placeholder });
      input.value = f.value ?? "";
    } else if (f.type === "select") {
      input = h("select", { id, name: f.name }, f.options.map((o) => h("option", { value: o }, o)));
      input.value = f.value ?? f.options[0];
    } else {
      input = h("input", { id, name: f.name, type: f.type || "text", placeholder: f.placeholder,
        list: f.datalist ? `${id}-list` : null, step: f.type === "number" ? "1" : null, required: f.required });
      if (f.type === "checkbox") input.checked = Boolean(f.value);
      else input.value = f.value ?? "";
    }
    inputs[f.name] = input;
    return h("div", { class: ["field", f.type === "checkbox" && "field-check"] },
      h("label", { for: id }, f.label), input,
      f.datalist ? h("datalist", { id: `${id}-list` }, f.datalist.map((o) => h("option", { value: o }))) : null,
      f.hint ? h("small", { class: "muted" }, f.hint) : null);
  });
  const dialog = h("dialog", { class: "modal" });
  const cancel = h("button", { type: "button", class: "ghost", onclick: () => dialog.close() }, "Cancel");
  const ok = h("button", { type: "submit", class: "primary" }, submitLabel);
  const form = h("form", { method: "dialog", class: "form" }, h("h2", {}, title), rows, error,
    h("div", { class: "form-actions" }, cancel, ok));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const values = {};
    for (const [name, input] of Object.entries(inputs)) {
      values[name] = input.type === "checkbox" ? input.checked : input.value.trim();
    }
    ok.disabled = true;
    error.hidden = true;
    try {
      await submit(values);
      dialog.close();
    } catch (exc) {
      error.textContent = exc.message || String(exc);
      error.hidden = false;
    } finally {
      ok.disabled = false;
    }
  });
  dialog.append(form);
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  const first = form.querySelector("input, textarea, select");
  if (first) first.focus();
  return dialog;
}

// --- parsing form values -----------------------------------------------------------------------
export class InputError extends Error {}

export function optInt(value, label) {
  if (value === "" || value === undefined) return null;
  if (!/^-?\d+$/.test(value)) throw new InputError(`${label} must be a whole number`);
  return Number(value);
}

export function optList(value) {
  const items = (value || "").split(/[,\n]/).map((s) => s.trim()).filter(Boolean);
  return items.length ? items : null;
}

export function optObject(value, label) {
  if (!value) return null;
  if (value.startsWith("{")) {
    let parsed;
    try { parsed = JSON.parse(value); } catch { throw new InputError(`${label} is not valid JSON`); }
    return parsed;
  }
  const out = {};  // also "a=b" lines
  for (const line of value.split(/[\n,]/).map((s) => s.trim()).filter(Boolean)) {
    const at = line.indexOf("=");
    if (at < 1) throw new InputError(`${label}: write key=value lines or a JSON object`);
    out[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return out;
}

export function optTime(value) {  // datetime-local (the browser's time zone) → Unix seconds
  if (!value) return null;
  const t = new Date(value).getTime();
  if (Number.isNaN(t)) throw new InputError(`not a date: ${value}`);
  return Math.floor(t / 1000);
}

export function toLocalInput(seconds) {
  if (!seconds) return "";
  const d = new Date(seconds * 1000 - new Date().getTimezoneOffset() * 60000);
  return d.toISOString().slice(0, 16);
}

// A "Load more" pager over `{data, has_more}` lists paged by `after` = the last item's id.
export function pager(load, renderRows, container) {
  let after = null;
  const more = h("button", { type: "button", class: "ghost", hidden: true }, "Load more");
  const rows = [];
  async function next() {
    more.disabled = true;
    try {
      const page = await load(after);
      rows.push(...page.data);
      after = page.data.length ? page.data[page.data.length - 1].id : after;
      more.hidden = !page.has_more;
      clear(container, renderRows(rows), more);
    } catch (exc) {
      clear(container, errorBox(exc), rows.length ? renderRows(rows) : null);
    } finally {
      more.disabled = false;
    }
  }
  more.addEventListener("click", next);
  return { next, rows };
}
