// leadflow dashboard: reads the router's reports API and hand-off stream. No dependencies.
"use strict";

const state = { token: localStorage.getItem("leadflow-token") || "", me: null, stream: null };
const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";

function el(tag, attrs = {}, text = "") {
  const node = tag === "svg" || ["rect", "text", "line", "polyline", "circle", "g"].includes(tag)
    ? document.createElementNS(SVG, tag) : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text !== "") node.textContent = text;
  return node;
}

async function api(path) {
  const response = await fetch(path, { headers: { Authorization: `Bearer ${state.token}` } });
  if (!response.ok) {
    const problem = await response.json().catch(() => ({}));
    throw new Error(problem.detail || `${path}: ${response.status}`);
  }
  return response.json();
}

function period() {
  const end = new Date();
  const start = new Date(end.getTime() - Number($("period").value) * 86400000);
  return `from=${start.toISOString()}&to=${end.toISOString()}`;
}

function rows(table, data, cells) {
  const body = table.querySelector("tbody");
  body.replaceChildren(...data.map((item) => {
    const tr = el("tr");
    for (const value of cells(item)) tr.append(el("td", typeof value === "number" ? { class: "num" } : {}, value ?? "–"));
    return tr;
  }));
}

function bars(container, items, label) {
  const height = 22 * items.length + 10;
  const svg = el("svg", { viewBox: `0 0 640 ${height}`, role: "img", "aria-label": label });
  const most = Math.max(1, ...items.map((item) => item.value));
  items.forEach((item, index) => {
    const y = 5 + index * 22;
    const width = (400 * item.value) / most;
    svg.append(el("text", { x: 0, y: y + 14 }, item.label));
    svg.append(el("rect", { x: 130, y, width: Math.max(width, 1), height: 16, fill: "#2563eb", rx: 3, "data-value": item.value }));
    svg.append(el("text", { x: 136 + width, y: y + 13 }, item.text ?? String(item.value)));
  });
  container.replaceChildren(svg);
}

function lines(container, weeks, series) {
  const svg = el("svg", { viewBox: "0 0 600 220", role: "img", "aria-label": "leads per week" });
  const most = Math.max(1, ...series.flatMap((s) => s.values));
  const x = (i) => 40 + (weeks.length > 1 ? (520 * i) / (weeks.length - 1) : 260);
  const y = (v) => 190 - (170 * v) / most;
  const colours = ["#2563eb", "#059669", "#d97706", "#7c3aed", "#db2777"];
  weeks.forEach((week, i) => svg.append(el("text", { x: x(i) - 20, y: 212 }, week)));
  series.forEach((s, n) => {
    const points = s.values.map((v, i) => `${x(i)},${y(v)}`).join(" ");
    svg.append(el("polyline", { points, fill: "none", stroke: colours[n % colours.length], "stroke-width": 2 }));
    s.values.forEach((v, i) => svg.append(el("circle", { cx: x(i), cy: y(v), r: 3, fill: colours[n % colours.length], "data-value": v })));
    svg.append(el("text", { x: 40 + n * 110, y: 12, fill: colours[n % colours.length] }, s.name));
  });
  container.replaceChildren(svg);
}

async function loadFunnel() {
  const report = await api(`/v1/reports/funnel?${period()}&by=${$("slice").value}`);
  const all = report.slices[0];
  const path = all ? all.stages.filter((s) => s.leads > 0 || s.conversion_to_next !== null) : [];
  bars($("funnel-chart"), path.map((s) => ({
    label: s.stage, value: s.leads,
    text: s.conversion_to_next === null ? `${s.leads}` : `${s.leads} → ${(100 * s.conversion_to_next).toFixed(0)}%`,
  })), "leads per stage");
  rows($("funnel-table"), report.slices.flatMap((slice) => slice.stages.map((s) => ({ slice: slice.slice, ...s }))),
    (s) => [s.slice, s.stage, s.leads, s.conversion_to_next === null ? null : `${(100 * s.conversion_to_next).toFixed(1)}%`, s.median_hours_in_stage]);
  const weekly = await api(`/v1/reports/funnel?${period()}&by=week`);
  const weeks = weekly.slices.map((slice) => slice.slice);
  const stages = (weekly.slices[0]?.stages || []).map((s) => s.stage)
    .filter((stage) => weekly.slices.some((slice) => slice.stages.find((s) => s.stage === stage).leads > 0));
  lines($("trend-chart"), weeks, stages.map((stage) => ({
    name: stage, values: weekly.slices.map((slice) => slice.stages.find((s) => s.stage === stage).leads),
  })));
}

async function loadSpeed() {
  const report = await api(`/v1/reports/speed-to-lead?${period()}`);
  bars($("speed-chart"), report.histogram.map((b) => ({
    label: b.up_to_minutes === null ? "later / never" : `≤ ${b.up_to_minutes} min`, value: b.leads,
  })), "leads by minutes to accept");
  const percent = (share) => (share === null ? null : `${(100 * share).toFixed(0)}%`);
  rows($("speed-table"), [...report.by_team.map((r) => ({ ...r, group: `team ${r.group}` })), ...report.by_rep.map((r) => ({ ...r, group: repName(r.group) }))],
    (r) => [r.group, r.handed_off, r.p50_minutes, r.p90_minutes, percent(r.accepted_within_5_minutes), percent(r.accepted_within_1_hour)]);
}

async function loadNurture() {
  const report = await api(`/v1/reports/nurture?${period()}`);
  bars($("reasons-chart"), report.returned_by_reason.map((c) => ({ label: c.key, value: c.leads })), "returns by reason");
  const list = (counts, name = (key) => key) => counts.map((c) => `${name(c.key)} ${c.leads}`).join(", ") || "none";
  $("returned-by").textContent = `By campaign: ${list(report.returned_by_campaign)}. By rep: ${list(report.returned_by_rep, repName)}.`;
  $("again").textContent = `${report.handed_off_again} lead(s) came back from nurture and were handed off again.`;
  rows($("campaign-table"), report.campaigns, (c) => [c.campaign, c.sales_ready, c.won, c.lost, c.won_amount, c.cost_per_sales_ready,
    c.roi === null ? null : `${(100 * c.roi).toFixed(0)}%`]);
}

const reps = new Map();
const repName = (id) => reps.get(id)?.name || id || "–";

function capacityBar(open, capacity) {
  const bar = el("div", { class: open >= capacity ? "bar full" : "bar", title: `${open} of ${capacity}` });
  bar.append(el("span", { style: `width:${Math.min(100, (100 * open) / Math.max(capacity, 1))}%` }));
  return bar;
}

async function loadQueues() {
  const table = $("queue-table");
  if (state.me.admin) {
    const roster = await api("/v1/reps");
    roster.forEach((rep) => reps.set(rep.id, rep));
    table.querySelector("thead").replaceChildren(el("tr"));
    table.querySelector("thead tr").append(...["Rep", "Team", "Open / capacity", ""].map((h) => el("th", {}, h)));
    table.querySelector("tbody").replaceChildren(...roster.filter((r) => r.active).map((rep) => {
      const tr = el("tr", { "data-rep": rep.id });
      tr.append(el("td", {}, rep.name), el("td", {}, rep.team), el("td", { class: "num" }, `${rep.open_leads} / ${rep.capacity}`));
      const cell = el("td"); cell.append(capacityBar(rep.open_leads, rep.capacity)); tr.append(cell);
      return tr;
    }));
    return;
  }
  $("queue-title").textContent = "My open leads";
  const queue = await api(`/v1/reps/${state.me.rep_id}/queue`);
  table.querySelector("thead").replaceChildren(el("tr"));
  table.querySelector("thead tr").append(...["Company", "Grade", "Stage", "Accept by"].map((h) => el("th", {}, h)));
  rows(table, queue, (lead) => [lead.company, lead.grade, lead.stage, lead.sla_deadline ? countdown(lead.sla_deadline) : null]);
}

function countdown(deadline) {
  const minutes = Math.round((new Date(deadline) - Date.now()) / 60000);
  return minutes >= 0 ? `in ${minutes} min` : `${-minutes} min late`;
}

function follow() {
  if (state.stream) state.stream.close();
  const live = $("live");
  const stream = new EventSource(`/v1/handoffs/stream?access_token=${encodeURIComponent(state.token)}`);
  for (const kind of ["assigned", "reassigned", "accepted", "escalated", "queued"]) {
    stream.addEventListener(kind, (message) => {
      const event = JSON.parse(message.data).data;
      const item = el("li", { "data-lead": event.lead_id, "data-kind": kind });
      item.append(el("span", { class: "kind" }, kind), ` ${repName(event.rep_id)} · grade ${event.grade ?? "–"} · ${event.reason}`);
      if (event.sla_deadline) {
        const due = el("span", { class: "sla" }, ` · accept ${countdown(event.sla_deadline)}`);
        if (new Date(event.sla_deadline) < Date.now()) due.classList.add("late");
        item.append(due);
      }
      live.prepend(item);
      while (live.children.length > 200) live.lastChild.remove();
    });
  }
  state.stream = stream;
}

async function refresh() {
  try {
    $("error").hidden = true;
    await loadQueues();
    if (state.me.admin) await Promise.all([loadFunnel(), loadSpeed(), loadNurture()]);
  } catch (error) {
    $("error").textContent = error.message;
    $("error").hidden = false;
  }
}

async function open() {
  try {
    state.me = await api("/v1/me");
  } catch (error) {
    $("error").textContent = `That token was not accepted (${error.message}).`;
    $("error").hidden = false;
    return;
  }
  localStorage.setItem("leadflow-token", state.token);
  $("login").hidden = true;
  $("controls").hidden = false;
  $("board").hidden = false;
  $("who").textContent = state.me.admin ? "signed in as admin" : "signed in as a rep";
  for (const card of document.querySelectorAll(".admin-only")) card.hidden = !state.me.admin;
  await refresh();
  follow();
}

$("login").addEventListener("submit", (event) => {
  event.preventDefault();
  state.token = $("token").value.trim();
  open();
});
$("logout").addEventListener("click", () => { localStorage.removeItem("leadflow-token"); location.reload(); });
$("period").addEventListener("change", refresh);
$("slice").addEventListener("change", refresh);
setInterval(() => { if (state.me) refresh(); }, 15000);
if (state.token) open();
