// The shell: sign-in, navigation (hash routes), and one view at a time.
import { ApiError, call, token, whenUnauthorized } from "./api.js";
import { clear, errorBox, h, showNotice } from "./dom.js";
import * as channels from "./channels.js";
import * as keys from "./keys.js";
import * as requests from "./requests.js";
import * as tasks from "./tasks.js";
import * as usage from "./usage.js";

const VIEWS = { channels, keys, tasks, usage, requests };
const $ = (id) => document.getElementById(id);
let leaveView = null;  // the current view's cleanup (its timers)

function showSignIn(message) {
  if (leaveView) { leaveView(); leaveView = null; }
  $("shell").hidden = true;
  $("signin").hidden = false;
  const err = $("signin-error");
  err.hidden = !message;
  err.textContent = message || "";
  $("token").focus();
}

async function signIn(ev) {
  ev.preventDefault();
  const value = $("token").value.trim();
  const err = $("signin-error");
  const button = ev.target.querySelector("button");
  if (!value) {
    err.textContent = "Enter the admin token.";
    err.hidden = false;
    return;
  }
  button.disabled = true;
  try {
    await call("GET", "/channels", { params: { limit: 1 }, auth: value });  // checks the token
    token.set(value);
    $("token").value = "";
    err.hidden = true;
    if (!location.hash || location.hash === "#/") location.hash = "#/channels";
    showShell();
  } catch (exc) {
    err.textContent = exc instanceof ApiError ? exc.message : String(exc);
    err.hidden = false;
  } finally {
    button.disabled = false;
  }
}

function signOut() {
  token.clear();
  location.hash = "";
  showSignIn();
}

function showShell() {
  $("signin").hidden = true;
  $("shell").hidden = false;
  route();
}

async function route() {
  if (!token.get()) return showSignIn();
  const [name, ...rest] = location.hash.replace(/^#\/?/, "").split("/");
  const view = VIEWS[name] ? name : "channels";
  for (const link of document.querySelectorAll("#nav a")) {
    link.classList.toggle("active", link.dataset.view === view);
    if (link.dataset.view === view) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (leaveView) { leaveView(); leaveView = null; }
  $("notice").hidden = true;
  const root = clear($("view"), h("p", { class: "muted loading" }, "Loading…"));
  document.title = `${name ? view[0].toUpperCase() + view.slice(1) : "Channels"} · gengate admin`;
  try {
    leaveView = (await VIEWS[view].render(root, rest.map(decodeURIComponent))) || null;
  } catch (exc) {
    clear(root, errorBox(exc));
  }
}

whenUnauthorized((exc) => { token.clear(); showSignIn(exc.message); });
window.addEventListener("hashchange", () => { if (token.get()) route(); });
window.addEventListener("error", (ev) => showNotice(`Something went wrong in the page: ${ev.message}`));
window.addEventListener("unhandledrejection", (ev) => showNotice(ev.reason?.message || String(ev.reason)));
$("signin-form").addEventListener("submit", signIn);
$("signout").addEventListener("click", signOut);
if (token.get()) showShell(); else showSignIn();
