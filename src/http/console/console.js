// The reel admin console: plain DOM, no framework, no build step. Every view reads the
// server's JSON routes; nothing from the server is ever inserted as HTML (textContent only).
"use strict";

const store = window.sessionStorage;
const credentials = () => ({
  adminToken: store.getItem("reel.admin_token") || "",
  apiKey: store.getItem("reel.api_key") || "",
  orgId: store.getItem("reel.org_id") || "",
});

// --- HTTP ---------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// Calls a route of this server: the admin token goes to /admin/ routes, the API key and org
// to /v1/ reads. Answers the parsed JSON, or throws an ApiError with the server's text.
async function api(path, options = {}) {
  const c = credentials();
  const headers = { accept: "application/json" };
  if (path.startsWith("/admin/") && c.adminToken) headers.authorization = `Bearer ${c.adminToken}`;
  if (path.startsWith("/v1/")) {
    if (c.apiKey) headers["x-api-key"] = c.apiKey;
    if (c.orgId) headers["x-tapes-org-id"] = c.orgId;
  }
  const res = await fetch(path, { ...options, headers });
  const text = await res.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { body = null; }
  if (!res.ok) {
    const message = (body && body.error) || `${res.status} ${res.statusText}`;
    if (res.status === 401) showCredentials();
    throw new ApiError(res.status, message);
  }
  return body;
}

// --- Building the DOM ---------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

const $ = (selector) => document.querySelector(selector);
const short = (id) => (id ? String(id).slice(0, 8) : "");
const when = (t) => (t ? new Date(t).toLocaleString() : "");
const status = (text) => { $("#status").textContent = text || ""; };

function fail(err) {
  status(err instanceof ApiError ? `${err.status}: ${err.message}` : String(err));
}

// --- Credentials --------------------------------------------------------------------------

function showCredentials() {
  const form = $("#credentials");
  const c = credentials();
  form.admin_token.value = c.adminToken;
  form.api_key.value = c.apiKey;
  form.org_id.value = c.orgId;
  form.hidden = false;
}

$("#credentials-open").addEventListener("click", () => {
  const form = $("#credentials");
  if (form.hidden) showCredentials(); else form.hidden = true;
});

$("#credentials").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = event.target;
  store.setItem("reel.admin_token", form.admin_token.value.trim());
  store.setItem("reel.api_key", form.api_key.value.trim());
  store.setItem("reel.org_id", form.org_id.value.trim());
  form.hidden = true;
  status("");
  route();
});

// --- Actors -------------------------------------------------------------------------------

async function loadActors() {
  const data = await api("/admin/actors");
  $("#actors-count").textContent = `(${data.count})`;
  const rows = data.actors.map((a) => el("tr", { "data-session": a.session_id || "" },
    el("td", {}, a.session_id
      ? el("a", { href: `#session/${a.session_id}`, class: "mono" }, short(a.session_id))
      : "(none yet)"),
    el("td", {}, a.harness_id),
    el("td", { class: "mono" }, a.harness_session_id),
    el("td", {}, a.turns_committed),
    el("td", {}, a.nodes_known),
    el("td", {}, a.pending),
    el("td", {}, `${(a.idle_for_ms / 1000).toFixed(1)} s`),
    el("td", {}, a.session_id && !a.stopping
      ? el("button", { type: "button", class: "stop", onclick: () => stopActor(a.session_id) }, "Stop")
      : (a.stopping ? "stopping" : "")),
  ));
  $("#actors-table tbody").replaceChildren(...rows);
}

async function stopActor(sessionId) {
  try {
    await api(`/admin/actors/${sessionId}/stop`, { method: "POST" });
    status("");
    await loadActors();
  } catch (err) { fail(err); }
}

// --- Sessions -----------------------------------------------------------------------------

let sessionsCursor = null;
let sessionsLoaded = [];

function sessionsQuery() {
  const form = $("#sessions-form");
  const params = new URLSearchParams({ sort: form.sort.value, direction: form.direction.value, limit: "50" });
  const subject = form.auth_subject.value.trim();
  if (subject) params.set("auth_subject", subject);
  return params;
}

async function loadSessions(more = false) {
  const params = sessionsQuery();
  if (more && sessionsCursor) params.set("cursor", sessionsCursor);
  const data = await api(`/v1/sessions?${params}`);
  sessionsLoaded = more ? sessionsLoaded.concat(data.items) : data.items;
  sessionsCursor = data.next_cursor || null;
  $("#sessions-more").hidden = !sessionsCursor;
  renderSessions();
}

function renderSessions() {
  const needle = $("#sessions-form").search.value.trim().toLowerCase();
  const matches = (s) => !needle || [s.id, s.harness_session_id, s.harness_id, s.name, s.cwd, s.auth_subject]
    .some((v) => v && String(v).toLowerCase().includes(needle));
  const rows = sessionsLoaded.filter(matches).map((s) => el("tr", {
    class: "link", "data-session": s.id, onclick: () => { location.hash = `#session/${s.id}`; },
  },
    el("td", { class: "mono" }, s.harness_session_id),
    el("td", {}, s.harness_id),
    el("td", {}, s.name || ""),
    el("td", {}, s.auth_subject),
    el("td", {}, s.turn_count),
    el("td", {}, s.total_tokens),
    el("td", {}, `$${Number(s.total_cost_usd).toFixed(4)}`),
    el("td", {}, when(s.last_seen_at)),
  ));
  $("#sessions-table tbody").replaceChildren(...rows);
}

$("#sessions-form").addEventListener("submit", (event) => {
  event.preventDefault();
  loadSessions().catch(fail);
});
$("#sessions-form").search.addEventListener("input", renderSessions);
$("#sessions-form").sort.addEventListener("change", () => loadSessions().catch(fail));
$("#sessions-form").direction.addEventListener("change", () => loadSessions().catch(fail));
$("#sessions-more").addEventListener("click", () => loadSessions(true).catch(fail));

// --- One session: fork tree and transcript ------------------------------------------------

const sessionLink = (s, current) => el("li", {},
  current
    ? el("span", { class: "current" }, `${s.harness_session_id} (this session)`)
    : el("a", { href: `#session/${s.id}` }, s.harness_session_id),
  el("small", {}, ` ${s.turn_count} turns, ${when(s.started_at)}`));

function blockText(block) {
  if (block.type === "text" && typeof block.text === "string") return block.text;
  if (block.type === "tool_use") return `[tool_use ${block.tool_name || block.name || ""}] ${JSON.stringify(block.tool_input || block.input || {})}`;
  if (block.type === "tool_result") return `[tool_result] ${typeof block.tool_output === "string" ? block.tool_output : JSON.stringify(block.tool_output || block.content || "")}`;
  return `[${block.type}] ${JSON.stringify(block)}`;
}

async function loadSession(id) {
  const [detail, transcript] = await Promise.all([
    api(`/v1/sessions/${id}`),
    api(`/v1/sessions/${id}/transcript`),
  ]);
  const s = detail.session;
  $("#session-title").textContent = s.harness_session_id;
  $("#session-summary").replaceChildren(el("p", {},
    el("span", { class: "mono" }, s.id), ` · ${s.harness_id} · ${s.auth_subject} · ${s.turn_count} turns · `,
    `${s.total_tokens} tokens · $${Number(s.total_cost_usd).toFixed(4)} · last seen ${when(s.last_seen_at)}`));

  const here = sessionLink(s, true);
  if (detail.children.length) here.append(el("ul", {}, ...detail.children.map((c) => sessionLink(c, false))));
  const tree = detail.parent ? sessionLink(detail.parent, false) : null;
  if (tree) tree.append(el("ul", {}, here));
  $("#session-tree").replaceChildren(tree || here);

  const messages = transcript.messages.map((m) => el("li", { class: m.role },
    el("span", { class: "role" }, m.role),
    el("small", { class: "mono" }, `${short(m.hash)} ${m.model || ""}`),
    el("div", { class: "body" }, m.content.map(blockText).join("\n"))));
  $("#transcript").replaceChildren(...messages);
}

// --- Quarantine ---------------------------------------------------------------------------

let quarantineCursor = null;

async function loadQuarantine(more = false) {
  const params = new URLSearchParams({ limit: "50" });
  if (more && quarantineCursor) params.set("cursor", quarantineCursor);
  const data = await api(`/admin/quarantine?${params}`);
  quarantineCursor = data.next_cursor || null;
  $("#quarantine-more").hidden = !quarantineCursor;
  $("#quarantine-count").textContent = `(${data.count}${quarantineCursor ? "+" : ""})`;
  const rows = data.raw_turns.map((r) => el("tr", { "data-raw": r.id },
    el("td", {}, when(r.received_at)),
    el("td", {}, r.provider),
    el("td", { class: "mono" }, r.harness_session_id || ""),
    el("td", {}, r.status),
    el("td", {}, r.reason || ""),
    el("td", {}, r.stored_bytes),
    el("td", {}, el("button", { type: "button", class: "reprocess", onclick: () => reprocess(r.id) }, "Reprocess")),
  ));
  const body = $("#quarantine-table tbody");
  if (more) body.append(...rows); else body.replaceChildren(...rows);
}

async function reprocess(id) {
  try {
    const result = await api(`/admin/raw/${id}/reprocess`, { method: "POST" });
    const detail = result.detail ? `: ${result.detail}` : "";
    const where = result.session_id ? ` into session ${result.session_id}, head ${short(result.head)}` : "";
    $("#quarantine-result").textContent = `${id} ${result.outcome.replace("_", " ")}${where}${detail}`;
    await loadQuarantine();
  } catch (err) { fail(err); }
}

$("#quarantine-more").addEventListener("click", () => loadQuarantine(true).catch(fail));

// --- Ingest charts ------------------------------------------------------------------------

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

// Bars of one or two stacked series over the intervals; the label is the largest value.
function barChart(target, series, format) {
  const width = 300, height = 90, top = 10, bottom = 12;
  const n = series[0].values.length;
  const totals = series[0].values.map((_, i) => series.reduce((sum, s) => sum + s.values[i], 0));
  const max = Math.max(...totals, 0);
  const scale = max > 0 ? (height - top - bottom) / max : 0;
  const step = width / n;
  const nodes = [svg("line", { class: "axis", x1: 0, x2: width, y1: height - bottom, y2: height - bottom })];
  for (let i = 0; i < n; i++) {
    let y = height - bottom;
    for (const s of series) {
      const h = s.values[i] * scale;
      if (h > 0) {
        y -= h;
        nodes.push(svg("rect", { class: `bar ${s.class || ""}`, x: i * step + 0.5, y, width: Math.max(step - 1, 1), height: h }));
      }
    }
  }
  const label = svg("text", { x: 2, y: 8 });
  label.textContent = `max ${format(max)}`;
  const minutes = svg("text", { x: 2, y: height - 2 });
  minutes.textContent = `-${Math.round((n * 10) / 60)} min`;
  const now = svg("text", { x: width - 18, y: height - 2 });
  now.textContent = "now";
  target.replaceChildren(...nodes, label, minutes, now);
}

async function loadIngest() {
  const data = await api("/admin/ingest/recent");
  const iv = data.intervals;
  const secs = data.interval_secs;
  barChart($("#chart-rate"), [{ values: iv.map((i) => i.accepted / secs) }], (v) => v.toFixed(2));
  barChart($("#chart-latency"), [{ values: iv.map((i) => i.latency_mean_ms) }], (v) => `${v.toFixed(1)} ms`);
  barChart($("#chart-errors"), [
    { values: iv.map((i) => i.rejected), class: "warn" },
    { values: iv.map((i) => i.failed), class: "bad" },
  ], (v) => String(v));
  const sum = (k) => iv.reduce((t, i) => t + i[k], 0);
  $("#ingest-totals").textContent =
    `last 10 minutes: ${sum("accepted")} accepted, ${sum("rejected")} rejected (400/413/422, orange), ${sum("failed")} failed (429/5xx, red)`;
}

// --- Routing ------------------------------------------------------------------------------

let timer = null;

function show(view, load, every) {
  for (const section of document.querySelectorAll("main > section")) section.hidden = section.id !== `view-${view}`;
  for (const link of document.querySelectorAll("nav a")) link.classList.toggle("active", link.dataset.view === view);
  clearInterval(timer);
  timer = null;
  const run = () => load().then(() => status(""), fail);
  run();
  if (every) {
    timer = setInterval(() => {
      if (view !== "actors" || $("#actors-refresh").checked) run();
    }, every);
  }
}

function route() {
  const hash = location.hash.replace(/^#/, "") || "actors";
  const [view, arg] = hash.split("/");
  switch (view) {
    case "sessions": return show("sessions", () => loadSessions());
    case "session": return show("session", () => loadSession(arg));
    case "quarantine": return show("quarantine", () => loadQuarantine());
    case "ingest": return show("ingest", loadIngest, 5000);
    default: return show("actors", loadActors, 2000);
  }
}

window.addEventListener("hashchange", route);
route();
