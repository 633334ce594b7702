// sgemu ui: the lab's graph (drawn by Graphviz on the server), flows animated where the engine decided them,
// details and explain on click. Plain JS, no libraries; everything shown is set as text, never as HTML.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const MAX_ROWS = 300;            // flow table rows kept
const MAX_PARTICLES = 80;        // dots in flight at once; more updates still count, without a dot
const STALE_MS = 30000;          // an ENI mark fades when nothing was decided there for this long
const FLIGHT_MS = 700;
const PROTOCOLS = { 1: "icmp", 6: "tcp", 17: "udp", 58: "icmpv6" };
const REASONS = {                // short words for the table; the hover shows the engine's full text
  RULE_MATCH: "new flow", UNTRACKED_ALLOWED_BY_RULE: "allowed (untracked)", TRACKED_RESPONSE: "answer of a tracked flow",
  TRACKED_FLOW: "open tracked flow", RELATED_ICMP: "related ICMP", ENI_SG_RULES_MISMATCH: "no rule allows it",
  UNTRACKED_RULE_REVOKED: "rule revoked (untracked)", CONNTRACK_ALLOWANCE_EXCEEDED: "conntrack allowance used up",
};

const state = {
  graphVersion: -1, nodes: new Map(), layer: null, marks: new Map(), rows: new Map(), particles: 0,
  selected: null, rate: [], lastDrop: new Map(),
};
const $ = (id) => document.getElementById(id);

function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k.startsWith("data-")) node.dataset[k.slice(5).replace(/-(.)/g, (_, c) => c.toUpperCase())] = v;
    else if (k === "onclick") node.addEventListener("click", v);
    else node.setAttribute(k, v);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function s(tag, attrs) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  return node;
}

async function getJSON(url) {
  const response = await fetch(url, { credentials: "same-origin" });
  if (!response.ok) throw new Error(`${url}: ${response.status} ${await response.text()}`);
  return response.json();
}

function clock(unix) {
  return new Date(unix * 1000).toLocaleTimeString([], { hour12: false });
}

function service(c) {
  if (c.port !== null && c.port !== undefined) return `${c.proto} ${c.port}`;
  return c.proto;
}

function hopWhy(hop) {
  if (hop.rule && (hop.reason === "RULE_MATCH" || hop.reason === "UNTRACKED_ALLOWED_BY_RULE"))
    return `${hop.sg}: ${hop.rule_short}`;
  // a reason without a short word (a NACL, a gateway...): the engine's own words, without the action
  return REASONS[hop.reason] || hop.verdict.replace(/^(ACCEPT|DROP):? *(by )?/, "").replace(/ \((?:sg|acl)-[0-9a-f]+\)/g, "");
}

// --- the graph ------------------------------------------------------------------------------------------

async function loadGraph(version) {
  const response = await fetch("/api/graph", { credentials: "same-origin" });
  const text = await response.text();
  const doc = new DOMParser().parseFromString(text, "image/svg+xml");
  const svg = document.importNode(doc.documentElement, true);
  svg.removeAttribute("width");
  svg.removeAttribute("height");
  svg.setAttribute("preserveAspectRatio", "xMidYMid meet");
  $("graph").replaceChildren(svg);
  state.nodes.clear();
  for (const g of svg.querySelectorAll("g.node")) {
    const name = g.querySelector("title").textContent;
    const box = g.getBBox();
    g.dataset.node = name;
    g.addEventListener("click", () => showNode(name));
    if (name === state.selected) g.classList.add("selected");
    state.nodes.set(name, { g, box, cx: box.x + box.width / 2, cy: box.y + box.height / 2 });
  }
  for (const g of svg.querySelectorAll("g.cluster[id^='subnet:']")) {
    const name = g.id.slice("subnet:".length);
    g.dataset.subnet = name;
    g.addEventListener("click", () => showSubnet(name));
  }
  state.layer = s("g", { id: "overlay" });
  svg.querySelector("g.graph").appendChild(state.layer);
  state.graphVersion = version;
  for (const mark of state.marks.values()) drawMark(mark);
}

function border(node, tx, ty) {
  // where the line from the node's centre towards (tx, ty) leaves its box: the ENI's side facing the peer
  const dx = tx - node.cx, dy = ty - node.cy;
  const scale = Math.min(node.box.width / 2 / Math.max(Math.abs(dx), 1e-6), node.box.height / 2 / Math.max(Math.abs(dy), 1e-6));
  return [node.cx + dx * scale, node.cy + dy * scale];
}

function enipoint(eni, peer, direction) {
  const a = state.nodes.get(eni), b = state.nodes.get(peer);
  if (!a) return null;
  const [x, y] = b ? border(a, b.cx, b.cy) : [a.box.x + a.box.width, a.cy];
  const dx = b ? b.cx - a.cx : 1, dy = b ? b.cy - a.cy : 0, len = Math.hypot(dx, dy) || 1;
  const side = direction === "egress" ? -8 : 8;          // out and in side by side on the same edge
  return [x - (dy / len) * side, y + (dx / len) * side];
}

function drawMark(mark) {
  if (!state.layer) return;
  const at = enipoint(mark.eni, mark.peer, mark.direction);
  if (!at) return;
  mark.g?.remove();
  const a = state.nodes.get(mark.eni), b = state.nodes.get(mark.peer);
  const towards = b ? Math.atan2(b.cy - a.cy, b.cx - a.cx) * 180 / Math.PI : 0;
  const angle = mark.direction === "egress" ? towards : towards + 180;    // out of the box, or into it
  const g = s("g", { class: "mark", transform: `translate(${at[0]},${at[1]})` });
  g.append(s("circle", { r: 7, class: "halo" }), s("path", { d: "M-4.5,-5 L5.5,0 L-4.5,5 Z", transform: `rotate(${angle})` }),
           s("title"));
  g.addEventListener("click", (event) => {
    event.stopPropagation();
    const drop = state.lastDrop.get(markKey(mark.eni, mark.direction, mark.peer));
    if (drop) showExplain(drop); else showNode(mark.eni);
  });
  mark.g = g;
  state.layer.append(g);
  paintMark(mark);
}

function markKey(eni, direction, peer) { return `${eni}|${direction}|${peer}`; }

function paintMark(mark) {
  if (!mark.g) return;
  const dropped = [...mark.reasons.values()].some((r) => r.action !== "ACCEPT" && Date.now() - r.at < STALE_MS);
  const action = dropped ? "DROP" : "ACCEPT";
  mark.g.setAttribute("class", `mark ${action}`);
  Object.assign(mark.g.dataset, { eni: mark.eni, direction: mark.direction, peer: mark.peer, action });
  const lines = [...mark.reasons.values()].sort((a, b) => b.at - a.at).slice(0, 6)
    .map((r) => `${r.action} ${r.service} (${r.packets} pkts): ${r.verdict}`);
  mark.g.querySelector("title").textContent =
    `${mark.eni} ${mark.direction} (${mark.direction === "egress" ? "to" : "from"} ${mark.peer})\n${lines.join("\n")}`;
}

function noteMark(hop, conversation) {
  const key = markKey(hop.eni, hop.direction, hop.peer);
  let mark = state.marks.get(key);
  if (!mark) {
    mark = { eni: hop.eni, direction: hop.direction, peer: hop.peer, reasons: new Map(), g: null };
    state.marks.set(key, mark);
    drawMark(mark);
  }
  const why = `${service(conversation)}|${hop.action}|${hop.reason}`;
  const seen = mark.reasons.get(why);
  mark.reasons.set(why, { action: hop.action, verdict: hop.verdict, service: service(conversation),
                          packets: (seen ? seen.packets : 0) + hop.packets, at: Date.now() });
  mark.g?.classList.remove("stale");
  if (hop.action !== "ACCEPT") state.lastDrop.set(key, conversation);
  paintMark(mark);
}

function fly(points, kind, burst) {
  // points: where the packet goes, in order (a NAT gateway it crosses is a waypoint); one flight time
  if (!state.layer || state.particles >= MAX_PARTICLES || document.hidden) return;
  const to = points[points.length - 1];
  const dot = s("circle", { r: 4.5, class: `particle ${kind}` });
  state.layer.append(dot);
  state.particles += 1;
  const motion = dot.animate(points.map(([x, y]) => ({ transform: `translate(${x}px, ${y}px)` })),
                             { duration: FLIGHT_MS, easing: "ease-in-out" });
  motion.onfinish = () => {
    dot.remove();
    state.particles -= 1;
    if (burst) {
      const ring = s("circle", { r: 4, class: "burst", transform: `translate(${to[0]},${to[1]})` });
      state.layer.append(ring);
      ring.animate([{ r: 4, opacity: 1 }, { r: 18, opacity: 0 }], { duration: 900 }).onfinish = () => ring.remove();
    }
  };
}

function flash(name, kind) {
  const node = state.nodes.get(name);
  if (!node) return;
  node.g.classList.add(`flash-${kind}`);
  setTimeout(() => node.g.classList.remove(`flash-${kind}`), 600);
}

function animate(c) {
  const client = state.nodes.get(c.client), server = state.nodes.get(c.server);
  if (!client || !server) return;
  const legs = [["request", c.client, c.server], ["reply", c.server, c.client]];
  legs.forEach(([leg, from, to], index) => {
    const hops = c.hops.filter((hop) => hop.leg === leg);
    if (!hops.length) return;
    const stop = hops.find((hop) => hop.action !== "ACCEPT");
    const start = [state.nodes.get(from).cx, state.nodes.get(from).cy];
    const kind = stop ? "drop" : leg === "request" ? "accept" : "answer";
    const end = stop ? enipoint(stop.eni, stop.peer, stop.direction) : [state.nodes.get(to).cx, state.nodes.get(to).cy];
    // ENIs of neither end that the packet crossed before any drop (a NAT gateway): it flies through them
    const crossed = stop ? hops.slice(0, hops.indexOf(stop)) : hops;
    const via = [...new Set(crossed.map((hop) => hop.eni))].filter((eni) => eni !== from && eni !== to && state.nodes.get(eni))
      .map((eni) => [state.nodes.get(eni).cx, state.nodes.get(eni).cy]);
    setTimeout(() => {
      fly([start, ...via, end], kind, Boolean(stop));
      setTimeout(() => flash(stop ? stop.eni : to, stop ? "drop" : "accept"), FLIGHT_MS);
    }, index * FLIGHT_MS);
  });
}

// --- the flow table -------------------------------------------------------------------------------------

function hopChip(hop) {
  return h("span", { class: `hop ${hop.action}`, title: hop.verdicts.join("\n"), "data-eni": hop.eni,
                     "data-direction": hop.direction, "data-action": hop.action, "data-reason": hop.reason,
                     "data-rule": hop.rule || "", "data-leg": hop.leg },
    h("span", { class: "sym" }, hop.action === "ACCEPT" ? "✓" : "✗"), `${hop.eni} ${hop.direction === "egress" ? "out" : "in"} `,
    h("span", { class: "why" }, hopWhy(hop)));
}

function chips(hops) {
  // one chip per leg, ENI, direction and verdict: the deciding rule if one decided, else the reason
  const merged = new Map();
  for (const hop of hops) {
    const key = `${hop.leg}|${hop.eni}|${hop.direction}|${hop.action}`;
    const chip = merged.get(key) || { ...hop, verdicts: [] };
    if (hop.rule && !chip.rule) Object.assign(chip, { rule: hop.rule, rule_short: hop.rule_short, sg: hop.sg, reason: hop.reason });
    chip.verdicts.push(`${hop.verdict} · ${hop.packets} pkts`);
    merged.set(key, chip);
  }
  return ["request", "reply"].map((leg) => {
    const these = [...merged.values()].filter((c) => c.leg === leg);
    if (!these.length) return null;
    return h("div", { class: "leg-line" }, h("span", { class: "leg", title: leg === "request" ? "the request" : "the answer" },
      leg === "request" ? "→" : "↩"), these.map(hopChip));
  });
}

function noteRow(c, time) {
  let row = state.rows.get(c.id);
  if (!row) {
    row = { hops: new Map(), packets: 0, dropped: false, tr: h("tr", { "data-flow": c.id }) };
    row.tr.addEventListener("click", () => { if (row.dropped) showExplain(row.conversation); });
    state.rows.set(c.id, row);
  }
  row.conversation = c;
  row.packets += c.packets;
  row.dropped = row.dropped || c.dropped;
  for (const hop of c.hops) {
    const key = `${hop.leg}|${hop.eni}|${hop.direction}|${hop.action}|${hop.reason}`;
    const seen = row.hops.get(key);
    row.hops.set(key, { ...hop, packets: (seen ? seen.packets : 0) + hop.packets });
  }
  Object.assign(row.tr.dataset, { client: c.client, server: c.server, proto: c.proto, port: c.port ?? "",
                                  action: row.dropped ? "DROP" : "ACCEPT", packets: row.packets });
  row.tr.className = `${row.dropped ? "dropped" : ""} fresh`;
  row.tr.title = row.dropped ? "click for the engine's explanation of this flow" : "";
  const order = { request: 0, reply: 1 };
  const hops = [...row.hops.values()].sort((a, b) => order[a.leg] - order[b.leg] ||
    (a.direction === b.direction ? 0 : a.direction === "egress" ? -1 : 1) || Boolean(b.rule) - Boolean(a.rule));
  row.tr.replaceChildren(
    h("td", { class: "time" }, clock(time)),
    h("td", { class: "flow-name" }, `${c.client} → ${c.server} ${service(c)}${c.family === 6 ? " (IPv6)" : ""}`),
    h("td", {}, chips(hops)),
    h("td", { class: "num" }, row.packets.toLocaleString()));
  const body = document.querySelector("#flows tbody");
  body.prepend(row.tr);
  void row.tr.offsetWidth;       // restart the highlight
  while (body.children.length > MAX_ROWS) {
    const last = body.lastElementChild;
    state.rows.delete(last.dataset.flow);
    last.remove();
  }
}

function noteRates(update) {
  const now = Date.now();
  let accepted = 0, dropped = 0;
  for (const c of update.conversations) for (const hop of c.hops) {
    if (hop.action === "ACCEPT") accepted += hop.packets; else dropped += hop.packets;
  }
  state.rate.push({ at: now, accepted, dropped });
  state.rate = state.rate.filter((r) => now - r.at < 5000);
  const sum = (k) => state.rate.reduce((t, r) => t + r[k], 0) / 5;
  const more = update.more_packets ? ` · ${update.more_packets.toLocaleString()} more packets in ${update.more_conversations} flows not listed` : "";
  $("rates").replaceChildren("decisions/s: ", h("b", { class: "accept" }, sum("accepted").toFixed(1)), " accepted · ",
    h("b", { class: "drop" }, sum("dropped").toFixed(1)), ` dropped${more}`);
}

function apply(update, live) {
  for (const c of [...update.conversations].reverse()) {
    noteRow(c, update.time);
    for (const hop of c.hops) noteMark(hop, c);
    if (live) animate(c);
  }
  if (live) noteRates(update);
}

// --- the side panel -------------------------------------------------------------------------------------

function panel(...children) {
  $("panel-body").replaceChildren(h("button", { class: "close", title: "close", onclick: closePanel }, "×"),
    ...children.flat(Infinity).filter((child) => child !== null && child !== undefined));
}

function closePanel() {
  state.selected = null;
  for (const node of state.nodes.values()) node.g.classList.remove("selected");
  $("panel-body").replaceChildren(h("p", { class: "hint" }, "Click an instance or a dropped flow."));
}

function table(headers, rows) {
  return h("table", {}, h("thead", {}, h("tr", {}, headers.map((x) => h("th", {}, x)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, r.map((x) => h("td", {}, x))))));
}

function end(address, port) {
  if (port === null || port === undefined) return address;
  return address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`;
}

async function showNode(name) {
  state.selected = name;
  for (const [n, node] of state.nodes) node.g.classList.toggle("selected", n === name);
  let data;
  try { data = await getJSON(`/api/node/${encodeURIComponent(name)}`); } catch (error) {
    panel(h("p", { class: "error" }, String(error.message))); return;
  }
  if (state.selected !== name) return;
  if (data.error) { panel(h("h2", {}, name), h("p", { class: "error" }, data.error)); return; }
  if (data.kind !== "instance") {
    panel(h("h2", {}, `${name} `, h("span", { class: "kv" }, data.kind)),
      table(["field", "value"], Object.entries(data.fields).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)])));
    return;
  }
  const addresses = Object.entries(data.addresses).map(([k, v]) => `${k} ${v}`).join(" · ");
  panel(
    h("h2", { "data-instance": name }, `${name} `, h("span", { class: "kv" }, `instance in ${data.subnet}`)),
    h("div", { class: "kv" }, addresses),
    h("h3", {}, "Security groups"),
    data.security_groups.map((g) => h("div", { class: "sg", "data-sg": g.name },
      h("b", {}, g.name), h("span", { class: "kv" }, ` ${g.id}`), g.description ? h("div", { class: "desc" }, g.description) : null,
      g.rules.length ? g.rules.map((r) => h("div", { class: "rule", title: r.id }, r.text, r.description ? h("span", { class: "kv" }, ` (${r.description})`) : null))
        : h("div", { class: "kv" }, "no rules"))),
    h("h3", {}, `Connection table (${data.conntrack.length}${data.conntrack.length >= 200 ? ", the first 200" : ""})`),
    data.conntrack.length ? table(["flow", "state", "idle left", "pkts out/in"],
      data.conntrack.map((e) => [`${e.proto} :${e.local_port ?? e.icmp_id ?? ""} ${e.initiator === "egress" ? "→" : "←"} ${end(e.remote, e.remote_port)}`,
        `${e.state}${e.tracked ? "" : " untracked"}`, `${e.idle_left}s`, `${e.packets_out}/${e.packets_in}`]))
      : h("p", { class: "kv" }, "no open connections"),
    h("h3", {}, `Recent flow-log records (${data.flow_records.length})`),
    data.flow_records.length ? table(["start", "flow", "pkts", "action"],
      data.flow_records.slice().reverse().map((r) => {
        const inbound = r["flow-direction"] === "ingress";
        const flow = inbound ? `${PROTOCOLS[r.protocol] || r.protocol} :${r.dstport} ← ${end(r.srcaddr, r.srcport)}`
          : `${PROTOCOLS[r.protocol] || r.protocol} :${r.srcport} → ${end(r.dstaddr, r.dstport)}`;
        const action = h("span", { class: r.action === "ACCEPT" ? "verdict-ok" : "verdict-bad", title: r["reject-reason"] }, r.action);
        return [clock(r.start), flow, r.packets, action];
      })) : h("p", { class: "kv" }, "none yet (records close every flow-log interval)"));
}

async function showSubnet(name) {
  state.selected = null;
  let data;
  try { data = await getJSON(`/api/subnet/${encodeURIComponent(name)}`); } catch (error) {
    panel(h("p", { class: "error" }, String(error.message))); return;
  }
  const nacl = data.nacl;
  panel(h("h2", { "data-subnet": name }, `${name} `, h("span", { class: "kv" }, "subnet")),
    h("div", { class: "kv" }, `${data.blocks.join(" · ")} · instances: ${data.instances.join(", ") || "none"}`),
    h("h3", {}, "Network ACL"),
    nacl ? [h("div", { "data-nacl": nacl.name }, h("b", {}, nacl.name), h("span", { class: "kv" }, ` ${nacl.id}`)),
      table(["dir", "rule", "entry"], nacl.entries.map((e) => [e.direction, String(e.rule_number),
        h("span", { class: `rule ${e.action}` }, e.text)])),
      h("p", { class: "kv" }, "Stateless, first match by rule number, then the implicit * deny.")]
      : h("p", { class: "kv" }, "none"));
}

async function showExplain(c) {
  state.selected = null;
  const query = new URLSearchParams({ client: c.client, server: c.server, proto: c.proto, port: c.port ?? 0, family: c.family });
  let data;
  try { data = await getJSON(`/api/explain?${query}`); } catch (error) {
    panel(h("p", { class: "error" }, String(error.message))); return;
  }
  const title = h("h2", { "data-explain": c.id }, `explain ${c.client} → ${c.server} ${service(c)}`);
  if (data.error) { panel(title, h("p", { class: "error" }, data.error)); return; }
  const hops = (list) => list.map((hop) => h("div", { class: "explain-hop" },
    h("b", {}, hop.where), " ", h("span", { class: "packet" }, hop.packet),
    hop.verdict ? h("div", { class: `verdict ${hop.verdict.action}` }, hop.verdict.text) : h("div", { class: "kv" }, hop.note)));
  panel(title,
    h("p", {}, "outcome: ", h("span", { class: `outcome ${data.outcome}` }, data.outcome), ` — ${data.why}`),
    data.request.length ? [h("h3", {}, "request"), hops(data.request)] : null,
    data.reply.length ? [h("h3", {}, "answer"), hops(data.reply)] : null,
    data.notes.map((n) => h("p", { class: "kv" }, `note: ${n}`)),
    h("p", { class: "kv" }, "Explained on the lab's rules as they are now (`sgemu explain` gives the same)."));
}

// --- the live stream ------------------------------------------------------------------------------------

function engine(status) {
  const pill = $("engine");
  pill.className = `pill ${status.ok ? "ok" : "bad"}`;
  pill.textContent = status.ok ? "live" : `engine not answering: ${status.message}`;
}

function connect() {
  const events = new EventSource("/api/events");
  events.addEventListener("hello", async (e) => {
    const hello = JSON.parse(e.data);
    $("lab").textContent = hello.lab;
    document.title = `sgemu ui · ${hello.lab}`;
    engine(hello.engine);
    if (hello.graph_version !== state.graphVersion) await loadGraph(hello.graph_version);
    for (const update of hello.history) apply(update, false);
  });
  events.addEventListener("flows", (e) => apply(JSON.parse(e.data), true));
  events.addEventListener("topology", async (e) => {
    await loadGraph(JSON.parse(e.data).version);
    if (state.selected) showNode(state.selected);
  });
  events.addEventListener("engine", (e) => engine(JSON.parse(e.data)));
  events.onerror = () => engine({ ok: false, message: "the ui server is not answering (retrying)" });
  events.onopen = () => engine({ ok: true });
}

setInterval(() => {              // fade marks where nothing happened lately; refresh an open instance
  for (const mark of state.marks.values()) {
    const last = Math.max(...[...mark.reasons.values()].map((r) => r.at));
    mark.g?.classList.toggle("stale", Date.now() - last > STALE_MS);
    paintMark(mark);
  }
  if (state.selected && !document.hidden) showNode(state.selected);
}, 3000);

connect();
