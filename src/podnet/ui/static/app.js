// podnet ui: polls /api/view every second and draws the cluster as plain SVG.
// Everything from the cluster is set with textContent / setAttribute, never parsed as HTML.
"use strict";

const SVGNS = "http://www.w3.org/2000/svg";
const NODE_W = 262, POD_W = 242, POD_H = 34, GAP = 16, SVC_W = 240, SVC_H = 50;
const state = { prev: new Map(), rates: new Map(), highlight: new Set(), hlService: "", hlNode: "", selected: "",
                sources: "", lastRender: 0, lastSig: "", moving: false };

function el(tag, attrs, text) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = String(text);
  return e;
}

function podKey(p) { return p.namespace + "/" + p.name; }

function podClass(p) {
  let c = "pod";
  if (p.phase === "Pending") c += " pending";
  else if (p.phase === "Failed") c += " failed";
  else if (!p.ready) c += " notready";
  if (p.deleting) c += " deleting";
  if (state.highlight.has(podKey(p))) c += " hl";
  if (state.selected === "pod:" + podKey(p)) c += " selected";
  return c;
}

function ports(s) {
  return s.ports.map(p => p.port + (p.nodePort ? ":" + p.nodePort : "") + "/" + p.protocol).join(",");
}

// packets/s per edge or Service, from the difference to the previous poll
function rate(key, packets, now) {
  const prev = state.prev.get(key);
  state.prev.set(key, { packets, now });
  if (prev && now > prev.now) {
    state.rates.set(key, Math.max(0, (packets - prev.packets) / (now - prev.now)));
  }
  return state.rates.get(key) || 0;
}

function render(view) {
  const t0 = performance.now();
  const svg = document.getElementById("topology");
  const now = view.time;
  const podsByNode = new Map(view.nodes.map(n => [n.name, []]));
  const unscheduled = [];
  for (const p of view.pods) (podsByNode.get(p.node) || unscheduled).push(p);
  if (unscheduled.length) podsByNode.set("", unscheduled);
  const columns = [...podsByNode.keys()];
  const tallest = Math.max(1, ...[...podsByNode.values()].map(l => l.length));
  const nodeH = 48 + tallest * (POD_H + 6);
  // wide enough for every node side by side and up to 6 Services in one row
  const width = Math.max(800, columns.length * (NODE_W + GAP) + GAP * 2,
                         Math.min(6, view.services.length) * (SVC_W + GAP) + GAP);
  const frag = document.createDocumentFragment();
  const podPos = new Map();

  const frame = el("g", { class: "frame" });
  frame.append(el("rect", { x: 4, y: 4, width: width - 8, height: nodeH + 44, rx: 8 }));
  frame.append(el("text", { x: 14, y: 22 }, "node network " + (view.nodeNetwork || "")));
  frag.append(frame);
  columns.forEach((name, i) => {
    const x = GAP + i * (NODE_W + GAP), y = 32;
    const node = view.nodes.find(n => n.name === name);
    const g = el("g", { class: "node" + (node && !node.ready ? " notready" : "") + (name && state.hlNode === name ? " hl" : ""),
                        "data-name": name });
    g.append(el("rect", { x, y, width: NODE_W, height: nodeH, rx: 6 }));
    g.append(el("text", { x: x + 8, y: y + 16, class: "title" },
                node ? name + (node.ready ? "" : " (NotReady)") : "not scheduled"));
    if (node) g.append(el("text", { x: x + 8, y: y + 32 }, node.ip + "  pods " + node.podCIDR));
    podsByNode.get(name).forEach((p, j) => {
      const py = y + 44 + j * (POD_H + 6), px = x + 10;
      const pg = el("g", { class: podClass(p), "data-name": podKey(p), "data-node": p.node || "",
                           "data-ip": p.ip || "", "data-phase": p.phase, "data-ready": String(p.ready) });
      pg.append(el("rect", { x: px, y: py, width: POD_W, height: POD_H, rx: 4 }));
      pg.append(el("text", { x: px + 6, y: py + 14 }, (p.namespace === "default" ? "" : p.namespace + "/") + p.name));
      pg.append(el("text", { x: px + 6, y: py + 28 },
                   (p.ip || "no IP") + "  " + p.phase + (p.phase === "Running" && !p.ready ? " (not ready)" : "")));
      g.append(pg);
      podPos.set(p.ip + "|" + p.name, { x: px + POD_W / 2, y: py + POD_H });
      podPos.set(podKey(p), { x: px + POD_W / 2, y: py + POD_H });
    });
    frag.append(g);
  });

  const top = 32 + nodeH + 70;
  const perRow = Math.max(1, Math.floor((width - GAP) / (SVC_W + GAP)));
  const edges = el("g", { class: "edges" });
  const svcs = el("g", { class: "services" });
  view.services.forEach((s, i) => {
    const key = s.namespace + "/" + s.name;
    const x = GAP + (i % perRow) * (SVC_W + GAP), y = top + Math.floor(i / perRow) * (SVC_H + GAP);
    const svcRate = rate("svc " + key, s.packets, now);
    const g = el("g", { class: "svc" + (s.endpoints.length ? "" : " noeps") +
                        (state.hlService === key ? " hl" : "") + (state.selected === "service:" + key ? " selected" : ""),
                        "data-name": key, "data-type": s.type, "data-cluster-ip": s.clusterIP,
                        "data-nodeports": s.ports.map(p => p.nodePort).filter(Boolean).join(","),
                        "data-packets": s.packets, "data-endpoints": s.endpoints.length });
    g.append(el("rect", { x, y, width: SVC_W, height: SVC_H, rx: 10 }));
    g.append(el("text", { x: x + 8, y: y + 14 }, (s.namespace === "default" ? "" : s.namespace + "/") + s.name + " (" + s.type + ")"));
    g.append(el("text", { x: x + 8, y: y + 28 }, s.clusterIP + " " + ports(s)));
    const ext = s.lbIPs.concat(s.externalIPs);
    g.append(el("text", { x: x + 8, y: y + 42, class: "svc-counter" },
                (ext.length ? "LB " + ext.join(",") + "  " : "") + s.packets + " pk" +
                (svcRate ? " (" + svcRate.toFixed(1) + "/s)" : "")));
    svcs.append(g);
    for (const e of s.endpoints) {
      const to = podPos.get(s.namespace + "/" + e.pod) || podPos.get(e.ip + "|" + e.pod);
      if (!to) continue;
      const r = rate("ep " + key + " " + e.ip, e.packets, now);
      const fx = x + SVC_W / 2, fy = y, my = (fy + to.y) / 2;
      const hl = state.hlService === key && state.highlight.has(s.namespace + "/" + e.pod);
      edges.append(el("path", { class: "edge" + (hl ? " hl" : ""), "data-svc": key, "data-pod": e.pod,
                                "data-packets": e.packets,
                                d: `M${fx},${fy} C${fx},${my} ${to.x},${my} ${to.x},${to.y}`,
                                "stroke-width": (1.5 + Math.min(8, Math.log2(1 + r))).toFixed(1) }));
      const lx = (fx + to.x) / 2 + 4, ly = my - 2;
      edges.append(el("text", { class: "edge-label", x: lx, y: ly, "data-svc": key, "data-pod": e.pod },
                      e.packets + (r ? " (" + r.toFixed(1) + "/s)" : "")));
    }
  });
  frag.append(edges, svcs);
  const rows = Math.ceil(view.services.length / perRow);
  // packets NetworkPolicy dropped, per policy and direction, in their own colour under the Services
  const dropsTop = top + rows * (SVC_H + GAP) + GAP;
  const drops = el("g", { class: "drops" });
  (view.policyDrops || []).forEach((d, i) => {
    const r = rate("drop " + d.policy, d.packets, now);
    drops.append(el("text", { class: "drop", x: GAP, y: dropsTop + i * 16, "data-policy": d.policy,
                              "data-packets": d.packets },
                    "dropped by NetworkPolicy " + d.policy + ": " + d.packets + " pk" +
                    (r ? " (" + r.toFixed(1) + "/s)" : "")));
  });
  frag.append(drops);
  svg.setAttribute("width", width);
  svg.setAttribute("height", dropsTop + (view.policyDrops || []).length * 16 + GAP);
  svg.replaceChildren(frag);
  state.moving = [...state.rates.values()].some(r => r > 0);
  state.lastRender = performance.now() - t0;
  svg.setAttribute("data-render-ms", state.lastRender.toFixed(1));
  svg.setAttribute("data-pods", view.pods.length);
  updateSources(view);
}

function updateSources(view) {
  const names = ["outside"].concat(view.nodes.map(n => n.name), view.pods.map(podKey));
  const sig = names.join("\n");
  if (sig === state.sources) return;
  state.sources = sig;
  const sel = document.getElementById("trace-source");
  const keep = sel.value;
  const opts = names.map(n => {
    const o = document.createElement("option");
    o.value = n;
    o.textContent = n === "outside" ? "outside (the host)" : (view.nodes.some(x => x.name === n) ? "node " : "pod ") + n;
    return o;
  });
  sel.replaceChildren(...opts);
  if (names.includes(keep)) sel.value = keep;
}

async function poll() {
  const status = document.getElementById("status");
  try {
    const resp = await fetch("/api/view", { credentials: "same-origin", cache: "no-store" });
    const body = await resp.json().catch(() => ({ error: "HTTP " + resp.status }));
    if (!resp.ok) throw new Error(body.error || ("HTTP " + resp.status));
    document.getElementById("cluster").textContent = body.cluster || "";
    // redraw only when something changed (or rates must decay): keeps clicked elements in place
    const sig = JSON.stringify([body.nodes, body.pods, body.services, body.policyDrops, [...state.highlight], state.hlService, state.hlNode,
                                state.selected]);
    if (sig !== state.lastSig || state.moving) render(body);
    state.lastSig = sig;
    status.className = "muted";
    status.textContent = "updated " + new Date().toLocaleTimeString() + " · " + body.nodes.length + " nodes, " +
      body.pods.length + " pods, " + body.services.length + " Services · drawn in " + state.lastRender.toFixed(0) + " ms" +
      (body.counterErrors.length ? " · counters: " + body.counterErrors.join("; ") : "");
  } catch (err) {
    status.className = "error";
    status.textContent = "cannot update: " + err.message;
  }
  setTimeout(poll, 1000);
}

async function showObject(kind, namespace, name) {
  state.selected = kind + ":" + namespace + "/" + name;
  document.getElementById("object-title").textContent = kind + " " + namespace + "/" + name;
  const pre = document.getElementById("object-yaml");
  pre.textContent = "loading…";
  const q = new URLSearchParams({ kind, namespace, name });
  const resp = await fetch("/api/object?" + q.toString(), { credentials: "same-origin" });
  pre.textContent = await resp.text();
}

async function trace(ev) {
  ev.preventDefault();
  const out = document.getElementById("trace-out");
  out.textContent = "tracing…";
  const body = { source: document.getElementById("trace-source").value,
                 dest: document.getElementById("trace-dest").value,
                 proto: document.getElementById("trace-proto").value };
  const resp = await fetch("/api/trace", { method: "POST", credentials: "same-origin",
                                           headers: { "Content-Type": "application/json" },
                                           body: JSON.stringify(body) });
  const res = await resp.json().catch(() => ({ error: "HTTP " + resp.status }));
  state.highlight = new Set();
  state.hlService = "";
  state.hlNode = "";
  if (!resp.ok) {
    out.textContent = "error: " + (res.error || resp.status);
    out.setAttribute("data-done", "error");
    return;
  }
  for (const c of res.data.candidates || []) if (c.pod) state.highlight.add(c.pod);
  state.hlNode = res.data.entryNode || "";
  const svc = res.data.service || "";
  if (svc) state.hlService = svc.split(":")[0];
  out.textContent = res.lines.join("\n");
  out.setAttribute("data-done", "ok");
  out.setAttribute("data-pods", [...state.highlight].join(","));
}

// one listener for every pod and Service box (the picture is redrawn as it changes)
function onPictureClick(ev) {
  const g = ev.target.closest("g.pod, g.svc");
  if (!g) return;
  const [namespace, name] = g.getAttribute("data-name").split("/");
  showObject(g.classList.contains("pod") ? "pod" : "service", namespace, name);
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("topology").addEventListener("click", onPictureClick);
  document.getElementById("trace-form").addEventListener("submit", trace);
  document.getElementById("trace-clear").addEventListener("click", () => {
    state.highlight = new Set(); state.hlService = ""; state.hlNode = "";
    document.getElementById("trace-out").textContent = "";
  });
  poll();
});
