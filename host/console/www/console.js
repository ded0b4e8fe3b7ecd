// rpchost's operator console. Talks only to the host that served it, over
// Connect (JSON) at /Service/Method, so the host's own authentication
// applies: a bearer token kept in sessionStorage (this tab only), or the
// TLS client certificate the browser presents. No inline script, no
// third-party code: the page's Content-Security-Policy forbids both.
"use strict";

const ADMIN = "/rpchost.admin.v1.Admin/";
const REFLECTION = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo";
const HISTORY = 60; // points per traffic chart (one a second)
const $ = (sel, root) => (root || document).querySelector(sel);

// ------------------------------------------------------------ transport

class RpcError extends Error {
  constructor(code, message) {
    super(message || code);
    this.code = code;
  }
}

function headers(extra) {
  const h = Object.assign({}, extra);
  const token = sessionStorage.getItem("rpchost.token");
  if (token) h["Authorization"] = "Bearer " + token;
  return h;
}

// A Connect unary call with JSON; resolves to the response object.
async function unary(path, request, timeoutMs) {
  const res = await fetch(path, {
    method: "POST",
    headers: headers({ "Content-Type": "application/json", "Connect-Protocol-Version": "1",
                       "Connect-Timeout-Ms": String(timeoutMs || 15000) }),
    body: JSON.stringify(request || {}),
    credentials: "same-origin",
  });
  const text = await res.text();
  let body = {};
  try { body = text ? JSON.parse(text) : {}; } catch (e) { body = { message: text }; }
  if (!res.ok) throw new RpcError(body.code || "http_" + res.status, body.message || res.statusText);
  return body;
}

function envelope(obj) {
  const json = new TextEncoder().encode(JSON.stringify(obj));
  const out = new Uint8Array(5 + json.length);
  new DataView(out.buffer).setUint32(1, json.length);
  out.set(json, 5);
  return out;
}

// A Connect streaming call with JSON: sends the request messages in one
// body and calls onMessage for each response message as it arrives.
// Resolves at the end of the stream; rejects with the stream's error.
async function stream(path, requests, onMessage, signal) {
  const parts = requests.map(envelope);
  const body = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { body.set(p, at); at += p.length; }
  const res = await fetch(path, {
    method: "POST", body, signal, credentials: "same-origin",
    headers: headers({ "Content-Type": "application/connect+json", "Connect-Protocol-Version": "1" }),
  });
  if (!res.ok) {
    let err = {};
    try { err = await res.json(); } catch (e) { /* not JSON */ }
    throw new RpcError(err.code || "http_" + res.status, err.message || res.statusText);
  }
  const reader = res.body.getReader();
  let buf = new Uint8Array(0);
  for (;;) {
    const { done, value } = await reader.read();
    if (value) {
      const joined = new Uint8Array(buf.length + value.length);
      joined.set(buf);
      joined.set(value, buf.length);
      buf = joined;
    }
    while (buf.length >= 5) {
      const len = new DataView(buf.buffer, buf.byteOffset).getUint32(1);
      if (buf.length < 5 + len) break;
      const flags = buf[0];
      const msg = JSON.parse(new TextDecoder().decode(buf.subarray(5, 5 + len)) || "{}");
      buf = buf.slice(5 + len);
      if (flags & 2) {
        if (msg.error) throw new RpcError(msg.error.code, msg.error.message);
        return;
      }
      onMessage(msg);
    }
    if (done) throw new RpcError("unavailable", "the stream ended without its end message");
  }
}

// ------------------------------------------------------------- helpers

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const k of kids) if (k != null) e.append(k);
  return e;
}

function toast(text) {
  $("#toast").textContent = text;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { $("#toast").textContent = ""; }, 6000);
}

function confirmAction(text) {
  const dlg = $("#confirm");
  $("#confirm-text").textContent = text;
  return new Promise((resolve) => {
    dlg.addEventListener("close", () => resolve(dlg.returnValue === "ok"), { once: true });
    dlg.showModal();
    $("#confirm-cancel").focus();
  });
}

const STATE_NAMES = { PLUGIN_STATE_SERVING: "serving", PLUGIN_STATE_DRAINING: "draining",
                      PLUGIN_STATE_STUCK: "stuck", PLUGIN_STATE_QUARANTINED: "quarantined",
                      PLUGIN_STATE_UNLOADABLE: "unloadable" };

function fmtSeconds(s) {
  if (!s) return "–";
  return s < 1e-3 ? (s * 1e6).toFixed(0) + " µs" : s < 1 ? (s * 1e3).toFixed(1) + " ms" : s.toFixed(2) + " s";
}

// ------------------------------------------------------------- sign in

async function signIn(token) {
  if (token) sessionStorage.setItem("rpchost.token", token);
  else sessionStorage.removeItem("rpchost.token");
  const errBox = $("#signin-error");
  errBox.hidden = true;
  try {
    const r = await unary(ADMIN + "ListPlugins", {});
    renderPlugins(r.plugins || []);
  } catch (e) {
    sessionStorage.removeItem("rpchost.token");
    errBox.textContent = e.code === "permission_denied" || e.code === "unauthenticated"
      ? "Refused (" + e.code + "): " + e.message : "Could not reach the admin service: " + e.message;
    errBox.dataset.code = e.code;
    errBox.hidden = false;
    return;
  }
  $("#view-signin").hidden = true;
  $("#nav").hidden = false;
  $("#signout").hidden = false;
  startWatch();
  show(location.hash.slice(1) || "plugins");
}

function signOut() {
  sessionStorage.removeItem("rpchost.token");
  location.hash = "";
  location.reload();
}

// ---------------------------------------------------------------- views

const VIEWS = ["plugins", "traffic", "errors", "services", "health"];

function show(view) {
  if (!VIEWS.includes(view)) view = "plugins";
  for (const v of VIEWS) $("#view-" + v).hidden = v !== view;
  for (const a of document.querySelectorAll("nav a"))
    if (a.dataset.view === view) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  if (view === "services") loadServices();
  if (view === "health") loadHealth();
  document.body.dataset.view = view;
}

// Plugins

let lastPlugins = [];

// Cards are kept across updates (one a second) while the instance is the
// same, so a button under the pointer or holding focus stays in place; only
// the figures change.
function renderPlugins(plugins) {
  lastPlugins = plugins;
  const list = $("#plugins-list");
  const old = new Map([...list.children].map((c) => [c.dataset.key, c]));
  const cards = plugins.map((p) => {
    const key = [p.name, p.file, p.loadedAtUnixMs, p.state].join("|");
    const card = old.get(key) || pluginCard(p, key);
    card.querySelector("dl").replaceWith(pluginFigures(p));
    return card;
  });
  cards.forEach((c, i) => { if (list.children[i] !== c) list.insertBefore(c, list.children[i] || null); });
  while (list.children.length > cards.length) list.lastChild.remove();
}

function pluginFigures(p) {
  const dl = el("dl");
  const add = (k, v) => dl.append(el("dt", { text: k }), el("dd", { text: v }));
  add("version", p.version || "–");
  add("file", p.file || "built in");
  add("loaded", p.loadedAt || "–");
  add("services", (p.services || []).join(", ") || "–");
  add("interceptors", (p.interceptors || []).join(", ") || "–");
  add("in flight", String(p.callsInFlight || 0));
  add("served", String(p.callsServed || 0));
  if (p.crashCount !== undefined) add("crashes", String(p.crashCount));
  if (p.cannotUnload) add("note", p.cannotUnloadReason || "cannot be unloaded");
  return dl;
}

function pluginCard(p, key) {
  const state = STATE_NAMES[p.state] || "serving";
  const card = el("article", { class: "card", "data-plugin": p.name, "data-state": state, "data-key": key },
    el("h3", {}, p.name + " ", el("span", { class: "state " + state, text: state })), el("dl"));
  if (!p.builtin && state === "serving") {
    card.append(el("div", { class: "row" },
      el("button", { type: "button", "data-action": "reload", onclick: () => pluginAction("Reload", p) }, "Reload"),
      el("button", { type: "button", class: "secondary", "data-action": "unload",
                     onclick: () => pluginAction("Unload", p) }, "Unload")));
  }
  return card;
}

async function pluginAction(what, p) {
  const ok = await confirmAction(what + " plugin " + p.name + " (" + (p.file || "") + ")?");
  if (!ok) return;
  try {
    await unary(ADMIN + what + "Plugin", { name: p.name });
    toast(what + "ed " + p.name);
  } catch (e) {
    toast(what + " " + p.name + " failed: " + e.code + ": " + e.message);
  }
  refreshPlugins();
}

async function refreshPlugins() {
  try {
    renderPlugins((await unary(ADMIN + "ListPlugins", {})).plugins || []);
  } catch (e) {
    toast("Listing plugins failed: " + e.message);
  }
}

function b64(bytes) {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

async function upload(ev) {
  ev.preventDefault();
  const file = $("#upload-file").files[0];
  if (!file) { toast("Choose a plugin file first"); return; }
  if (!(await confirmAction("Upload " + file.name + " (" + file.size + " bytes) and load it?"))) return;
  const bytes = new Uint8Array(await file.arrayBuffer());
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  const sha256 = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
  try {
    await unary(ADMIN + "UploadPlugin", { file: file.name, content: b64(bytes), sha256 }, 60000);
    toast("Uploaded " + file.name);
  } catch (e) {
    toast("Upload failed: " + e.code + ": " + e.message);
  }
  refreshPlugins();
}

// Traffic, errors: one WatchStats stream while signed in

const history = new Map(); // method -> {calls: [], errors: []}
let watchAbort = null;

function startWatch() {
  if (watchAbort) return;
  watchAbort = new AbortController();
  const run = () => stream(ADMIN + "WatchStats", [{}], onStats, watchAbort.signal)
    .catch((e) => { if (e.name !== "AbortError") toast("Live stats stopped: " + e.message); })
    .then(() => { if (!watchAbort.signal.aborted) setTimeout(run, 2000); });
  run();
}

function onStats(st) {
  renderPlugins(st.plugins || []);
  $("#traffic-summary").textContent = st.metricsOff
    ? "The host runs without metrics (--metrics-listen): no per-method figures."
    : "In flight " + (st.callsInFlight || 0) + ", served " + (st.callsServed || 0) + ".";
  const list = $("#traffic-list");
  for (const m of st.methods || []) {
    let h = history.get(m.method);
    if (!h) { h = { calls: [], errors: [] }; history.set(m.method, h); }
    const errs = (m.errors || []).reduce((n, c) => n + Number(c.count), 0);
    h.calls.push(m.callsPerSecond || 0);
    h.errors.push(st.intervalSeconds ? errs / st.intervalSeconds : 0);
    if (h.calls.length > HISTORY) { h.calls.shift(); h.errors.shift(); }
    let card = list.querySelector('[data-method="' + CSS.escape(m.method) + '"]');
    if (!card) { card = el("article", { class: "card", "data-method": m.method }); list.append(card); }
    card.dataset.calls = String(m.callsTotal || 0);
    card.replaceChildren(
      el("h3", { text: m.method }),
      spark(h),
      el("div", { class: "figures" },
        el("span", { text: (m.callsPerSecond || 0).toFixed(1) + " calls/s" }),
        el("span", { text: "p50 " + fmtSeconds(m.p50Seconds) }),
        el("span", { text: "p99 " + fmtSeconds(m.p99Seconds) }),
        el("span", { class: "total", text: (m.callsTotal || 0) + " calls" }),
        el("span", { text: (m.errorsTotal || 0) + " errors" })),
      el("div", { class: "figures error" },
        ...(m.errors || []).map((c) => el("span", { text: c.code + " " + c.count })))) ;
  }
  const tbody = $("#errors-table tbody");
  tbody.replaceChildren(...(st.recentErrors || []).map((e) => el("tr", {},
    el("td", { text: new Date(Number(e.unixMs)).toISOString().slice(11, 23) }),
    el("td", { text: e.method }), el("td", { text: e.codeName }),
    el("td", { text: e.message }), el("td", { text: e.peer }))));
}

function spark(h) {
  const NS = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("class", "spark");
  svg.setAttribute("viewBox", "0 0 " + HISTORY + " 40");
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("role", "img");
  const max = Math.max(1, ...h.calls);
  svg.setAttribute("aria-label", "calls per second, last " + h.calls.length + " s, peak " + max.toFixed(1));
  for (const [series, cls] of [[h.calls, ""], [h.errors, "errs"]]) {
    const line = document.createElementNS(NS, "polyline");
    const off = HISTORY - series.length;
    line.setAttribute("points", series.map((v, i) => (off + i) + "," + (39 - (v / max) * 38).toFixed(1)).join(" "));
    if (cls) line.setAttribute("class", cls);
    svg.append(line);
  }
  return svg;
}

// Health

async function loadHealth() {
  const list = $("#health-list");
  const names = [""].concat(lastPlugins.filter((p) => (STATE_NAMES[p.state] || "serving") === "serving")
    .flatMap((p) => p.services || []));
  const cards = await Promise.all([...new Set(names)].map(async (svc) => {
    let status;
    try { status = (await unary("/grpc.health.v1.Health/Check", { service: svc })).status; } catch (e) { status = e.code; }
    return el("article", { class: "card", "data-service": svc || "(server)" },
      el("h3", { text: svc || "the server" }), el("p", { text: status || "UNKNOWN" }));
  }));
  list.replaceChildren(...cards);
}

// Services browser: reflection, descriptors decoded here

function readVarint(b, p) {
  let v = 0, mul = 1, byte;
  do { byte = b[p.i++]; v += (byte & 0x7f) * mul; mul *= 128; } while (byte & 0x80);
  return v;
}

// Decodes one protobuf message into {field: [values]}: varints as numbers,
// length-delimited fields as byte arrays.
function decode(b) {
  const out = {};
  const p = { i: 0 };
  while (p.i < b.length) {
    const key = readVarint(b, p), field = Math.floor(key / 8), wt = key & 7;
    let v;
    if (wt === 0) v = readVarint(b, p);
    else if (wt === 2) { const n = readVarint(b, p); v = b.subarray(p.i, p.i + n); p.i += n; }
    else if (wt === 1) { p.i += 8; continue; }
    else if (wt === 5) { p.i += 4; continue; }
    else throw new Error("bad descriptor");
    (out[field] = out[field] || []).push(v);
  }
  return out;
}

const str = (v) => (v ? new TextDecoder().decode(v) : "");
const TYPES = { 1: "double", 2: "float", 3: "int64", 4: "uint64", 5: "int32", 6: "fixed64", 7: "fixed32",
                8: "bool", 9: "string", 12: "bytes", 13: "uint32", 15: "sfixed32", 16: "sfixed64",
                17: "sint32", 18: "sint64" };

function messages(prefix, list, into) {
  for (const raw of list || []) {
    const d = decode(raw), name = prefix + "." + str(d[1][0]);
    into.set(name, (d[2] || []).map((f) => {
      const fd = decode(f);
      const t = fd[5] ? fd[5][0] : 0;
      return { name: str(fd[1][0]), number: fd[3] ? fd[3][0] : 0, repeated: fd[4] && fd[4][0] === 3,
               type: TYPES[t] || str(fd[6] && fd[6][0]).replace(/^\./, "") };
    }));
    messages(name, d[3], into);
  }
}

const catalog = { services: new Map(), types: new Map(), loaded: false };

async function reflect(request) {
  let answer = null;
  await stream(REFLECTION, [request], (m) => { answer = m; });
  if (!answer || answer.errorResponse) throw new Error(answer ? answer.errorResponse.errorMessage : "no answer");
  return answer;
}

async function loadServices() {
  if (catalog.loaded) return;
  const box = $("#services-list");
  box.textContent = "Loading…";
  try {
    const names = (await reflect({ listServices: "" })).listServicesResponse.service.map((s) => s.name);
    for (const svc of names) {
      const r = await reflect({ fileContainingSymbol: svc });
      for (const fdp of r.fileDescriptorResponse.fileDescriptorProto) {
        const bytes = Uint8Array.from(atob(fdp), (c) => c.charCodeAt(0));
        const fd = decode(bytes), pkg = str(fd[2] && fd[2][0]);
        messages(pkg ? "" + pkg : "", fd[4], catalog.types);
        for (const s of fd[6] || []) {
          const sd = decode(s), full = (pkg ? pkg + "." : "") + str(sd[1][0]);
          catalog.services.set(full, (sd[2] || []).map((m) => {
            const md = decode(m);
            return { name: str(md[1][0]), input: str(md[2][0]).replace(/^\./, ""),
                     output: str(md[3][0]).replace(/^\./, ""),
                     clientStreaming: !!(md[5] && md[5][0]), serverStreaming: !!(md[6] && md[6][0]) };
          }));
        }
      }
    }
    catalog.loaded = true;
  } catch (e) {
    box.textContent = "Reflection failed: " + e.message;
    return;
  }
  renderServices();
}

function renderServices() {
  const box = $("#services-list"), select = $("#call-method");
  box.replaceChildren();
  select.replaceChildren();
  for (const [svc, methods] of [...catalog.services].sort()) {
    const ul = el("ul");
    for (const m of methods) {
      const path = "/" + svc + "/" + m.name;
      const kind = m.clientStreaming || m.serverStreaming ? " (stream)" : "";
      ul.append(el("li", { "data-rpc": path },
        el("button", { type: "button", onclick: () => pickMethod(path) }, m.name + kind),
        el("span", { class: "hint", text: " " + m.input + " → " + m.output })));
      if (!kind) select.append(el("option", { value: path, text: path }));
    }
    box.append(el("section", { "data-service": svc }, el("h3", { text: svc }), ul));
  }
  pickMethod(select.value);
}

function methodInfo(path) {
  const [, svc, name] = path.split("/");
  return (catalog.services.get(svc) || []).find((m) => m.name === name);
}

function describe(type, depth) {
  const fields = catalog.types.get(type) || [];
  return fields.map((f) => "  ".repeat(depth) + f.name + ": " + (f.repeated ? "repeated " : "") + f.type +
    (catalog.types.has(f.type) && depth < 3 ? "\n" + describe(f.type, depth + 1) : "")).join("\n");
}

function pickMethod(path) {
  if (!path) return;
  $("#call-method").value = path;
  const m = methodInfo(path);
  $("#call-types").textContent = m ? m.input + " → " + m.output : "";
  $("#call-types").title = m ? describe(m.input, 0) : "";
  $("#call-body").focus();
}

async function makeCall(ev) {
  ev.preventDefault();
  const path = $("#call-method").value;
  const status = $("#call-status"), answer = $("#call-answer");
  let body;
  try { body = JSON.parse($("#call-body").value || "{}"); } catch (e) {
    status.textContent = "The request is not JSON: " + e.message;
    status.dataset.code = "client";
    return;
  }
  status.textContent = "Calling…";
  answer.textContent = "";
  try {
    const r = await unary(path, body);
    status.textContent = "OK";
    status.dataset.code = "ok";
    answer.textContent = JSON.stringify(r, null, 2);
  } catch (e) {
    status.textContent = e.code + ": " + e.message;
    status.dataset.code = e.code;
  }
}

// --------------------------------------------------------------- start

document.addEventListener("DOMContentLoaded", () => {
  $("#signin-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    signIn($("#token").value.trim());
  });
  $("#use-cert").addEventListener("click", () => signIn(""));
  $("#signout").addEventListener("click", signOut);
  $("#upload-form").addEventListener("submit", upload);
  $("#call-form").addEventListener("submit", makeCall);
  $("#call-method").addEventListener("change", (e) => pickMethod(e.target.value));
  window.addEventListener("hashchange", () => { if ($("#view-signin").hidden) show(location.hash.slice(1)); });
  const token = sessionStorage.getItem("rpchost.token");
  if (token) signIn(token);
  else $("#token").focus();
});
