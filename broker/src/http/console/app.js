// strom web console: plain JavaScript, no build step, no external requests. It reads the
// admin listener's JSON (/v1/...) and renders with DOM calls only (no innerHTML with data,
// so names, keys and values from the cluster are always shown as text).
"use strict";

const REFRESH_MS = 5000;
const PAGE = 100;
let cluster = null;      // the last /v1/cluster answer
let timer = null;
let view = null;         // { render: async fn, refreshes: bool }
let flash = null;        // [kind, text]: the outcome of a change, shown on the next render
let lastOffsets = {};    // topic -> [time ms, sum of log end offsets] for produce rates

// ---- small helpers -----------------------------------------------------------------
function h(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "class") e.className = v;
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const k of kids.flat(Infinity)) {
    if (k === undefined || k === null || k === false) continue;
    e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  }
  return e;
}
const fmt = (n) => (n === undefined || n === null) ? "–" : Number(n).toLocaleString("en-US");
function bytes(n) {
  if (n === undefined || n === null) return "–";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + " " + u[i];
}
const time = (ms) => ms < 0 ? "–" : new Date(ms).toISOString().replace("T", " ").replace("Z", " UTC");
function pill(text, kind) { return h("span", { class: "pill " + (kind || "") }, text); }
function cards(list) {
  return h("div", { class: "cards" }, list.map(([label, value, kind]) =>
    h("div", { class: "card " + (kind || ""), "data-card": label },
      h("div", { class: "n" }, value), h("div", { class: "l" }, label))));
}
function table(cols, rows, attrs) {
  return h("table", attrs || {},
    h("thead", {}, h("tr", {}, cols.map((c) =>
      h("th", { class: c.endsWith("#") ? "num" : "" }, c.replace(/#$/, ""))))),
    h("tbody", {}, rows.map((r) => h("tr", r.attrs || {}, r.cells.map((c, i) =>
      h("td", { class: cols[i].endsWith("#") ? "num" : "" }, c))))));
}
function note(kind, text) { return h("div", { class: "note " + kind, role: "status" }, text); }
// An answer to something the user did: live refresh leaves it on screen for a while.
function answer(kind, text) { const n = note(kind, text); n.dataset.hold = Date.now(); return n; }

async function api(path, opts) {
  const r = await fetch(path, Object.assign({ headers: { "Accept": "application/json" } }, opts || {}));
  let body = null;
  try { body = await r.json(); } catch (_) { /* empty or not JSON */ }
  if (!r.ok) throw new Error((body && body.error) || (r.status + " " + r.statusText));
  return body;
}
function send(method, path, body) {
  return api(path, { method, headers: { "Content-Type": "application/json", "Accept": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body) });
}
const writable = () => cluster && cluster.console_write_enabled;
function readOnlyNote() {
  return note("info", "Read-only console: set admin.console.write.enable=true on this node to create and delete topics, change configs and reset offsets.");
}

// ---- routing -----------------------------------------------------------------------
function route() {
  const hash = decodeURIComponent(location.hash.replace(/^#/, "")) || "/";
  const parts = hash.split("/").filter(Boolean);
  document.querySelectorAll("header nav a").forEach((a) =>
    a.classList.toggle("on", a.dataset.nav === (parts[0] === "topic" ? "topics" :
      parts[0] === "group" ? "groups" : (parts[0] || "cluster"))));
  if (parts[0] === "topics") return { render: topicsView, refreshes: true };
  if (parts[0] === "topic" && parts[1]) {
    const tab = parts[2] || "partitions";
    return { render: (m) => topicView(m, parts[1], tab), refreshes: tab === "partitions" };
  }
  if (parts[0] === "groups") return { render: groupsView, refreshes: true };
  if (parts[0] === "group" && parts[1]) return { render: (m) => groupView(m, parts[1]), refreshes: true };
  return { render: clusterView, refreshes: true };
}

async function show(first) {
  clearTimeout(timer);
  const main = document.getElementById("main");
  try {
    cluster = await api("/v1/cluster");
    statusBadge();
    const fresh = h("div", {});
    await view.render(fresh, first);
    if (flash) { fresh.prepend(answer(flash[0], flash[1])); flash = null; }
    // Keep what the user is doing: a refresh leaves a view alone while one of its inputs
    // has the focus or an answer to a form was shown in the last 20 s.
    const busy = main.contains(document.activeElement) && document.activeElement !== main;
    const held = [...main.querySelectorAll("[data-hold]")].some((e) => Date.now() - Number(e.dataset.hold) < 20000);
    if (first || (!busy && !held)) {
      main.replaceChildren(...fresh.childNodes);
    }
  } catch (e) {
    main.replaceChildren(note("err", "Cannot load: " + e.message));
  }
  document.getElementById("footer").textContent =
    "node " + (cluster ? cluster.node_id : "?") + " · updated " + new Date().toLocaleTimeString();
  if (view.refreshes && document.getElementById("live").checked) timer = setTimeout(() => show(false), REFRESH_MS);
}
function statusBadge() {
  const s = document.getElementById("status");
  s.textContent = "node " + cluster.node_id + (cluster.ready ? " ready" : " not ready");
  s.className = "status " + (cluster.ready ? "ok" : "bad");
  s.title = cluster.ready ? "registered, unfenced, caught up with metadata" : (cluster.not_ready_because || []).join("; ");
}
function go() { view = route(); show(true); }
window.addEventListener("hashchange", go);
document.getElementById("live").addEventListener("change", () => show(false));

// ---- cluster -----------------------------------------------------------------------
async function clusterView(m) {
  const c = cluster;
  m.append(h("h1", {}, "Cluster ", h("span", { class: "muted" }, c.cluster_id || "")));
  m.append(cards([
    ["brokers", fmt((c.brokers || []).length)],
    ["fenced brokers", fmt((c.brokers || []).filter((b) => b.fenced).length),
      (c.brokers || []).some((b) => b.fenced) ? "bad" : "ok"],
    ["topics", fmt(c.topics)],
    ["partitions", fmt(c.partitions)],
    ["offline partitions", fmt(c.offline_partitions), c.offline_partitions ? "bad" : "ok"],
    ["under-replicated", fmt(c.under_replicated_partitions), c.under_replicated_partitions ? "bad" : "ok"],
    ["metadata offset", fmt(c.metadata_offset)],
  ]));
  if (c.quorum) {
    m.append(h("h2", {}, "Metadata quorum (as node " + c.node_id + " sees it)"));
    m.append(cards([
      ["this node's role", c.quorum.role], ["leader", c.quorum.leader ?? "none", c.quorum.leader == null ? "bad" : ""],
      ["term", fmt(c.quorum.term)], ["voters", fmt(c.quorum.voters)],
      ["last log index", fmt(c.quorum.last_log_index)], ["applied index", fmt(c.quorum.last_applied_index)],
    ]));
  }
  m.append(h("h2", {}, "Brokers"));
  m.append(table(["id#", "state", "rack", "epoch#", "endpoints"], (c.brokers || []).map((b) => ({
    attrs: { "data-broker": b.id },
    cells: [b.id,
      b.fenced ? pill("fenced", "bad") : b.in_controlled_shutdown ? pill("shutting down", "warn") : pill("active", "ok"),
      b.rack || "–", fmt(b.epoch),
      b.endpoints.map((e) => e.listener + " " + e.host + ":" + e.port).join(", ")],
  })), { id: "brokers" }));
  if (!c.ready) m.append(note("err", "This node is not ready: " + (c.not_ready_because || []).join("; ")));
}

// ---- topics ------------------------------------------------------------------------
let topicQuery = "", topicPage = 0;
async function topicsView(m) {
  const q = new URLSearchParams({ offset: topicPage * PAGE, limit: PAGE, stats: "true" });
  if (topicQuery) q.set("q", topicQuery);
  const internal = document.getElementById("show-internal");
  if (internal && internal.checked) q.set("internal", "true");
  const d = await api("/v1/topics?" + q);
  const now = Date.now();
  m.append(h("h1", {}, "Topics ", h("span", { class: "muted" }, "(" + fmt(d.total) + ")")));
  const search = h("input", { id: "topic-search", placeholder: "filter by name", value: topicQuery,
    onchange: (e) => { topicQuery = e.target.value; topicPage = 0; show(true); } });
  m.append(h("div", { class: "toolbar" }, search,
    h("label", {}, h("input", { type: "checkbox", id: "show-internal",
      checked: internal && internal.checked, onchange: () => show(true) }), " internal topics")));
  if (writable()) m.append(createTopicForm());
  const rows = d.topics.map((t) => {
    const prev = lastOffsets[t.name];
    let rate = "–";
    if (prev && t.log_end_offset_sum !== undefined && now > prev[0]) {
      rate = fmt(Math.max(0, Math.round((t.log_end_offset_sum - prev[1]) * 1000 / (now - prev[0])))) + "/s";
    }
    if (t.log_end_offset_sum !== undefined) lastOffsets[t.name] = [now, t.log_end_offset_sum];
    const health = t.offline_partitions ? pill(t.offline_partitions + " offline", "bad")
      : t.under_replicated_partitions ? pill(t.under_replicated_partitions + " under-replicated", "warn")
      : pill("healthy", "ok");
    return { attrs: { "data-topic": t.name }, cells: [
      h("a", { href: "#/topic/" + encodeURIComponent(t.name) }, t.name),
      fmt(t.partitions), fmt(t.replication_factor), health, fmt(t.records), bytes(t.size_bytes), rate] };
  });
  m.append(table(["name", "partitions#", "replication#", "ISR health", "records#", "size#", "produce rate#"], rows, { id: "topics" }));
  m.append(pager(d.total, topicPage, (p) => { topicPage = p; show(true); }));
  m.append(h("p", { class: "muted" }, "Records: log end minus log start offsets. Size: the leaders' logs. Produce rate: growth of the log end offsets between refreshes."));
}
function pager(total, page, onPage) {
  const pages = Math.max(1, Math.ceil(total / PAGE));
  return h("div", { class: "pager" },
    h("button", { disabled: page <= 0, onclick: () => onPage(page - 1) }, "‹ prev"),
    "page " + (page + 1) + " of " + pages,
    h("button", { disabled: page + 1 >= pages, onclick: () => onPage(page + 1) }, "next ›"));
}
function createTopicForm() {
  const name = h("input", { id: "new-topic-name", placeholder: "name", required: true });
  const parts = h("input", { id: "new-topic-partitions", type: "number", min: 1, value: 3, class: "w90" });
  const rf = h("input", { id: "new-topic-rf", type: "number", min: 1, placeholder: "default", class: "w90" });
  const out = h("span", {});
  const f = h("form", { class: "form", id: "create-topic", onsubmit: async (e) => {
    e.preventDefault();
    try {
      const body = { name: name.value.trim(), partitions: Number(parts.value) };
      if (rf.value) body.replication_factor = Number(rf.value);
      await send("POST", "/v1/topics", body);
      flash = ["ok", "Created topic " + body.name];
      show(true);
    } catch (err) { out.replaceChildren(answer("err", err.message)); }
  } },
  h("label", {}, "new topic", name), h("label", {}, "partitions", parts),
  h("label", {}, "replication factor", rf), h("button", { class: "primary", type: "submit" }, "Create topic"), out);
  return f;
}

// ---- one topic ---------------------------------------------------------------------
let partPage = 0;
async function topicView(m, name, tab) {
  const base = "#/topic/" + encodeURIComponent(name);
  m.append(h("h1", {}, "Topic ", h("span", { id: "topic-name" }, name)));
  m.append(h("div", { class: "tabs" }, ["partitions", "messages", "configs"].map((t) =>
    h("a", { href: base + "/" + t, class: tab === t ? "on" : "", "data-tab": t }, t[0].toUpperCase() + t.slice(1)))));
  if (tab === "messages") return messagesView(m, name);
  if (tab === "configs") return configsView(m, name);
  const d = await api("/v1/topics?name=" + encodeURIComponent(name) + "&internal=true&stats=true");
  const t = d.topics[0];
  if (!t) { m.append(note("err", "No topic " + name)); return; }
  const ps = t.partition_detail || [];
  m.append(cards([
    ["partitions", fmt(t.partitions)], ["replication factor", fmt(t.replication_factor)],
    ["records", fmt(t.records)], ["size", bytes(t.size_bytes)],
    ["under-replicated", fmt(t.under_replicated_partitions), t.under_replicated_partitions ? "bad" : "ok"],
    ["offline", fmt(t.offline_partitions), t.offline_partitions ? "bad" : "ok"],
  ]));
  m.append(h("div", { class: "muted" }, "id " + t.id));
  const page = Math.min(partPage, Math.max(0, Math.ceil(ps.length / PAGE) - 1));
  const rows = ps.slice(page * PAGE, page * PAGE + PAGE).map((p) => ({
    attrs: { "data-partition": p.partition },
    cells: [p.partition, p.leader < 0 ? pill("offline", "bad") : p.leader, p.replicas.join(", "), p.isr.join(", "),
      p.leader < 0 ? pill("offline", "bad") : p.isr.length < p.replicas.length ? pill("under-replicated", "warn") : pill("in sync", "ok"),
      fmt(p.log_start_offset), fmt(p.log_end_offset), bytes(p.size_bytes)],
  }));
  const turn = (p) => { partPage = p; show(true); };
  if (ps.length > PAGE) m.append(pager(ps.length, page, turn));
  m.append(table(["partition#", "leader#", "replicas", "ISR", "state", "start offset#", "end offset#", "size#"], rows, { id: "partitions" }));
  if (ps.length > PAGE) m.append(pager(ps.length, page, turn));
  if (writable()) {
    m.append(h("h2", {}, "Danger zone"));
    const out = h("span", {});
    m.append(h("div", { class: "form" }, h("button", { class: "danger", id: "delete-topic", onclick: async () => {
      if (!confirm("Delete topic " + name + " and all its records?")) return;
      try { await send("DELETE", "/v1/topics/" + encodeURIComponent(name)); flash = ["ok", "Deleted topic " + name]; location.hash = "#/topics"; }
      catch (err) { out.replaceChildren(answer("err", err.message)); }
    } }, "Delete topic"), out));
  }
}

const msgState = { partition: "", from: "newest", at: "", limit: 50 };
async function messagesView(m, name) {
  const meta = await api("/v1/topics?name=" + encodeURIComponent(name) + "&internal=true");
  const t = meta.topics[0];
  if (!t) { m.append(note("err", "No topic " + name)); return; }
  const partSel = h("select", { id: "msg-partition" }, h("option", { value: "" }, "all partitions"),
    Array.from({ length: t.partitions }, (_, i) => h("option", { value: i, selected: String(i) === msgState.partition }, "partition " + i)));
  const fromSel = h("select", { id: "msg-from" }, [["newest", "newest first"], ["oldest", "oldest first"],
    ["offset", "from offset"], ["timestamp", "from time"]].map(([v, l]) => h("option", { value: v, selected: v === msgState.from }, l)));
  const at = h("input", { id: "msg-at", value: msgState.at, placeholder: "offset, or time (2026-12-05T10:00:00Z)", class: "w280" });
  const limit = h("input", { id: "msg-limit", type: "number", min: 1, max: 500, value: msgState.limit, class: "w90" });
  const list = h("div", { id: "messages" });
  const load = async () => {
    Object.assign(msgState, { partition: partSel.value, from: fromSel.value, at: at.value.trim(), limit: Number(limit.value) || 50 });
    const q = new URLSearchParams({ from: msgState.from, limit: msgState.limit });
    if (msgState.partition !== "") q.set("partition", msgState.partition);
    if (msgState.from === "offset") q.set("offset", Number(msgState.at) || 0);
    if (msgState.from === "timestamp") {
      const ms = /^\d+$/.test(msgState.at) ? Number(msgState.at) : Date.parse(msgState.at);
      if (isNaN(ms)) { list.replaceChildren(note("err", "Cannot read the time " + msgState.at)); return; }
      q.set("timestamp", ms);
    }
    list.replaceChildren(h("p", { class: "muted" }, "Loading…"));
    try {
      const d = await api("/v1/topics/" + encodeURIComponent(name) + "/messages?" + q);
      list.replaceChildren(
        h("p", { class: "muted", id: "msg-count" }, d.records.length + " message(s)"),
        ...d.records.map(messageCard));
    } catch (err) { list.replaceChildren(note("err", err.message)); }
  };
  m.append(h("div", { class: "toolbar" }, partSel, fromSel, at, "limit", limit,
    h("button", { class: "primary", id: "msg-load", onclick: load }, "Show")));
  m.append(list);
  await load();
}
function pretty(v) {
  if (!v) return h("span", { class: "muted" }, "null");
  let text = v.text;
  if (v.encoding === "utf8" && /^\s*[[{]/.test(text)) {
    try { text = JSON.stringify(JSON.parse(text), null, 2); } catch (_) { /* not JSON: as is */ }
  }
  return [text, v.encoding === "hex" ? h("span", { class: "muted" }, "  (hex)") : null,
    v.truncated ? h("span", { class: "muted" }, "  … (" + bytes(v.size) + " in all)") : null];
}
function messageCard(r) {
  return h("div", { class: "msg", "data-offset": r.offset, "data-partition": r.partition },
    h("div", { class: "meta" },
      h("span", {}, "partition ", h("b", {}, r.partition)), h("span", {}, "offset ", h("b", {}, r.offset)),
      h("span", {}, time(r.timestamp)),
      h("span", { class: "k" }, "key ", h("b", { class: "key" }, r.key ? r.key.text : "null"))),
    h("pre", { class: "value" }, pretty(r.value)),
    r.headers.length ? h("div", { class: "hdrs" }, "headers: ", r.headers.map((x, i) =>
      [i ? ", " : "", h("code", {}, x.key + "=" + (x.value ? x.value.text : "null"))])) : null);
}

async function configsView(m, name) {
  const d = await api("/v1/topics/" + encodeURIComponent(name) + "/configs");
  const out = h("div", {});
  const edit = writable();
  if (!edit) m.append(readOnlyNote());
  m.append(out);
  const rows = d.configs.map((c) => {
    const input = h("input", { value: c.value ?? "", "data-config": c.name, class: "wfull", disabled: !edit || c.read_only });
    const save = h("button", { disabled: !edit || c.read_only, onclick: async () => {
      try { await send("POST", "/v1/topics/" + encodeURIComponent(name) + "/configs", { set: { [c.name]: input.value } });
        flash = ["ok", "Set " + c.name + " = " + input.value]; show(true); }
      catch (err) { out.replaceChildren(answer("err", err.message)); }
    } }, "Set");
    const reset = c.default ? null : h("button", { disabled: !edit, onclick: async () => {
      try { await send("POST", "/v1/topics/" + encodeURIComponent(name) + "/configs", { delete: [c.name] });
        flash = ["ok", "Reset " + c.name + " to its default"]; show(true); }
      catch (err) { out.replaceChildren(answer("err", err.message)); }
    } }, "Reset");
    return { attrs: { "data-config-row": c.name }, cells: [h("code", {}, c.name), input,
      c.default ? h("span", { class: "muted" }, "default") : pill(c.source.replace(/([a-z])([A-Z])/g, "$1 $2").toLowerCase()),
      edit ? h("span", {}, save, " ", reset) : ""] };
  });
  m.append(table(["config", "value", "source", ""], rows, { id: "configs" }));
}

// ---- groups ------------------------------------------------------------------------
function stateKind(s) { return s === "Stable" ? "ok" : s === "Empty" ? "" : s === "Dead" ? "bad" : "warn"; }
async function groupsView(m) {
  const d = await api("/v1/groups");
  m.append(h("h1", {}, "Consumer groups ", h("span", { class: "muted" }, "(" + d.groups.length + ")")));
  const counts = {};
  d.groups.forEach((g) => { counts[g.state] = (counts[g.state] || 0) + 1; });
  m.append(cards(Object.entries(counts).map(([s, n]) => [s, fmt(n)])));
  m.append(table(["group", "state", "type", "members#", "partitions#", "lag#", "coordinator#"],
    d.groups.map((g) => ({ attrs: { "data-group": g.group_id }, cells: [
      h("a", { href: "#/group/" + encodeURIComponent(g.group_id) }, g.group_id),
      pill(g.state, stateKind(g.state)), g.type, fmt(g.members.length), fmt(g.partitions.length),
      h("span", { class: "lag" }, fmt(g.lag)), g.coordinator] })), { id: "groups" }));
}
async function groupView(m, id) {
  const d = await api("/v1/groups?id=" + encodeURIComponent(id));
  const g = d.groups[0];
  m.append(h("h1", {}, "Group ", h("span", { id: "group-id" }, id)));
  if (!g) { m.append(note("err", "No group " + id)); return; }
  m.append(cards([["state", g.state, stateKind(g.state)], ["members", fmt(g.members.length)],
    ["total lag", fmt(g.lag), g.lag ? "" : "ok"], ["coordinator", g.coordinator], ["type", g.type]]));
  m.append(h("h2", {}, "Members"));
  m.append(g.members.length ? table(["member", "client id", "host", "assignment"], g.members.map((x) => ({ cells: [
    h("code", {}, x.member_id), x.client_id, x.client_host,
    Object.entries(x.assignment).map(([t, ps]) => t + ": " + ps.join(",")).join("; ")] })), { id: "members" })
    : h("p", { class: "muted" }, "No active members."));
  m.append(h("h2", {}, "Offsets and lag"));
  m.append(table(["topic", "partition#", "committed#", "log end#", "lag#", "member"], g.partitions.map((p) => ({
    attrs: { "data-tp": p.topic + "-" + p.partition },
    cells: [h("a", { href: "#/topic/" + encodeURIComponent(p.topic) }, p.topic), p.partition, fmt(p.committed_offset),
      fmt(p.log_end_offset), h("span", { class: "lag" }, fmt(p.lag)), p.member_id ? h("code", {}, p.member_id) : "–"] })), { id: "offsets" }));
  m.append(h("h2", {}, "Reset offsets"));
  if (!writable()) { m.append(readOnlyNote()); return; }
  const to = h("select", { id: "reset-to" }, ["earliest", "latest", "offset", "timestamp", "shift"].map((v) => h("option", { value: v }, v)));
  const arg = h("input", { id: "reset-arg", placeholder: "offset / time / shift", class: "w220" });
  const topics = [...new Set(g.partitions.map((p) => p.topic))];
  const topic = h("select", { id: "reset-topic" }, h("option", { value: "" }, "all the group's partitions"),
    topics.map((t) => h("option", { value: t }, t)));
  const out = h("div", { id: "reset-result" });
  const body = (dry) => {
    const b = { to: to.value, dry_run: dry };
    if (topic.value) b.topic = topic.value;
    if (to.value === "offset") b.offset = Number(arg.value);
    if (to.value === "shift") b.shift = Number(arg.value);
    if (to.value === "timestamp") b.timestamp = /^\d+$/.test(arg.value) ? Number(arg.value) : Date.parse(arg.value);
    return b;
  };
  const run = async (dry) => {
    try {
      const r = await send("POST", "/v1/groups/" + encodeURIComponent(id) + "/reset", body(dry));
      if (r.executed) {
        flash = ["ok", "Offsets of " + r.plan.length + " partition(s) reset"];
        return show(true);
      }
      out.replaceChildren(answer("info", "Plan (nothing changed yet):"),
        table(["topic", "partition#", "current#", "new#"], r.plan.map((p) => ({ cells: [p.topic, p.partition, fmt(p.current_offset), fmt(p.new_offset)] })), { id: "reset-plan-table" }));
    } catch (err) { out.replaceChildren(answer("err", err.message)); }
  };
  m.append(h("div", { class: "form" }, h("label", {}, "to", to), h("label", {}, "value", arg), h("label", {}, "topic", topic),
    h("button", { id: "reset-plan", onclick: () => run(true) }, "Preview"),
    h("button", { class: "danger", id: "reset-execute", disabled: g.members.length > 0,
      title: g.members.length ? "stop the group's members first" : "", onclick: () => run(false) }, "Reset offsets")));
  m.append(out);
}

go();
