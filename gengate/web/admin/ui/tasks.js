// Tasks: any key's tasks with filters; one task's outputs (media previews) and event trail, both
// refreshed every 2 s while a task is not terminal.
import { get } from "./api.js";
import { badge, clear, errorBox, h, num, table, when } from "./dom.js";

const STATES = ["", "queued", "in_progress", "succeeded", "failed", "cancelled"];
const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);
const PROVIDERS = ["", "openai", "zhipu", "kling", "runway", "luma", "vidu", "vidu-ent", "suno"];
const POLL_MS = 2000;
const TONES = { succeeded: "ok", failed: "bad", cancelled: "muted", in_progress: "info", queued: "warn" };

const stateBadge = (status) => badge(status, TONES[status]);
const taskLink = (id) => h("a", { href: `#/tasks/${encodeURIComponent(id)}`, class: "task-link" }, id);

function progressBar(task) {
  const value = task.progress ?? (task.status === "succeeded" ? 100 : 0);
  const fill = h("div", { class: "progress-fill" });
  fill.style.width = `${Math.max(0, Math.min(100, value))}%`;  // CSSOM, allowed by the page's CSP
  return h("div", { class: "progress", title: `${value}%` }, fill, h("span", {}, `${value}%`));
}

// Repeats `tick` every POLL_MS while it returns true and the view is open; returns the stopper.
function poll(tick) {
  let timer = null;
  let stopped = false;
  async function loop() {
    if (stopped) return;
    let again = true;
    if (!document.hidden) {
      try { again = await tick(); } catch { again = true; }  // tick shows its own errors
    }
    if (again && !stopped) timer = setTimeout(loop, POLL_MS);
  }
  timer = setTimeout(loop, POLL_MS);
  return () => { stopped = true; clearTimeout(timer); };
}

const columns = [
  { label: "Task", cell: (t) => taskLink(t.id) },
  { label: "Provider", cell: (t) => t.provider },
  { label: "Model", cell: (t) => t.model },
  { label: "Status", cell: (t) => stateBadge(t.status) },
  { label: "Progress", cell: progressBar },
  { label: "Key", cell: (t) => t.key_id, class: "num" },
  { label: "Channel", cell: (t) => t.channel ?? "—" },
  { label: "Credits", cell: (t) => num(t.cost?.settled ?? t.cost?.reserved), class: "num" },
  { label: "Created", cell: (t) => when(t.created_at) },
];

function select(name, options, value) {
  const el = h("select", { name }, options.map((o) => h("option", { value: o }, o || "any")));
  el.value = value || "";
  return el;
}

async function renderList(root) {
  const saved = JSON.parse(sessionStorage.getItem("gengate.admin.taskFilters") || "{}");
  const inputs = {
    provider: select("provider", PROVIDERS, saved.provider),
    state: select("state", STATES, saved.state),
    key_id: h("input", { name: "key_id", type: "number", min: "1", placeholder: "any", value: saved.key_id }),
    model: h("input", { name: "model", placeholder: "any", value: saved.model }),
  };
  const body = h("div", {});
  const more = h("button", { type: "button", class: "ghost", hidden: true }, "Load more");
  let shown = [];
  let hasMore = false;
  const params = () => Object.fromEntries(Object.entries(inputs).map(([k, el]) => [k, el.value.trim()]));
  const draw = () => clear(body, table(columns, shown, "No tasks match."), more);

  async function refresh() {  // the first pages again, as many rows as are shown
    try {
      const page = await get("/tasks", { ...params(), limit: Math.min(500, Math.max(50, shown.length)) });
      shown = page.data;
      hasMore = page.has_more;
      more.hidden = !hasMore;
      draw();
    } catch (exc) {
      clear(body, errorBox(exc), shown.length ? table(columns, shown) : null);
    }
    return true;
  }
  more.addEventListener("click", async () => {
    try {
      const page = await get("/tasks", { ...params(), limit: 50, after: shown[shown.length - 1].id });
      shown = shown.concat(page.data);
      more.hidden = !page.has_more;
      draw();
    } catch (exc) {
      body.prepend(errorBox(exc));
    }
  });
  const filters = h("form", { class: "filters" },
    Object.entries(inputs).map(([k, el]) => h("label", {}, `${k.replace("_id", "")} `, el)),
    h("button", { type: "submit" }, "Apply"));
  filters.addEventListener("submit", (ev) => {
    ev.preventDefault();
    sessionStorage.setItem("gengate.admin.taskFilters", JSON.stringify(params()));
    shown = [];
    refresh();
  });
  clear(root, h("div", { class: "view-head" }, h("h1", {}, "Tasks"), filters),
    h("p", { class: "muted small" }, "Live: the list refreshes every 2 s."), body);
  await refresh();
  return poll(refresh);
}

function media(output) {
  const kind = (output.type || "").toLowerCase();
  let preview;
  if (kind.startsWith("video")) preview = h("video", { src: output.url, controls: true, preload: "metadata" });
  else if (kind.startsWith("image") || kind === "cover") preview = h("img", { src: output.url, alt: kind, loading: "lazy" });
  else if (kind.startsWith("audio")) preview = h("audio", { src: output.url, controls: true, preload: "none" });
  return h("figure", { class: "output" }, preview,
    h("figcaption", {}, badge(kind || "file"), " ", h("a", { href: output.url, target: "_blank", rel: "noopener" }, "Open")));
}

function detail(task) {
  const events = task.events || [];
  return [
    h("div", { class: "view-head" },
      h("h1", {}, "Task ", h("code", { class: "task-id" }, task.id)),
      h("span", { class: "task-status" }, stateBadge(task.status))),
    h("section", { class: "card" },
      h("dl", { class: "facts wide" },
        h("dt", {}, "Provider"), h("dd", {}, task.provider),
        h("dt", {}, "Action"), h("dd", {}, task.action || "—"),
        h("dt", {}, "Model"), h("dd", {}, task.model),
        h("dt", {}, "Progress"), h("dd", {}, progressBar(task)),
        h("dt", {}, "Key"), h("dd", {}, task.key_id),
        h("dt", {}, "Channel"), h("dd", {}, task.channel ?? "—"),
        h("dt", {}, "Credits"), h("dd", {}, `reserved ${num(task.cost?.reserved)}, settled ${num(task.cost?.settled)}`),
        h("dt", {}, "Created"), h("dd", {}, when(task.created_at)),
        h("dt", {}, "Updated"), h("dd", {}, when(task.updated_at))),
      task.error ? h("div", { class: "error-box" }, h("code", {}, task.error.code), " ", task.error.message) : null),
    h("section", {}, h("h2", {}, "Outputs"),
      task.outputs?.length ? h("div", { class: "outputs" }, task.outputs.map(media))
        : h("p", { class: "empty" }, TERMINAL.has(task.status) ? "No outputs." : "Not ready yet.")),
    h("section", {}, h("h2", {}, "Events"),
      table([
        { label: "At", cell: (e) => when(e.at) },
        { label: "From", cell: (e) => (e.from ? `${e.from} (${e.from_state})` : "—") },
        { label: "To", cell: (e) => `${e.to ?? "?"} (${e.to_state})` },
        { label: "Reason", cell: (e) => e.reason || "" },
      ], events, "No events.")),
  ];
}

async function renderDetail(root, id) {
  const back = h("a", { href: "#/tasks", class: "back" }, "← All tasks");
  const body = h("div", { class: "task-detail" });
  let outputsKey = "";
  async function refresh() {
    try {
      const task = await get(`/tasks/${encodeURIComponent(id)}`);
      const key = JSON.stringify(task.outputs || []);
      const parts = detail(task);
      if (key === outputsKey && body.querySelector(".outputs")) {
        parts[2] = body.querySelector(".task-detail > section:nth-of-type(2)");  // keep playing media
      }
      outputsKey = key;
      clear(body, parts);
      body.dataset.status = task.status;
      return !TERMINAL.has(task.status);
    } catch (exc) {
      clear(body, errorBox(exc));
      return exc.status !== 404;
    }
  }
  clear(root, back, body);
  return (await refresh()) ? poll(refresh) : null;
}

export async function render(root, [id]) {
  return id ? renderDetail(root, id) : renderList(root);
}
