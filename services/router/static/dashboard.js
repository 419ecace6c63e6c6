// leadflow dashboard: reads the router's reports API and hand-off stream. No dependencies.
"use strict";

const state = { token: localStorage.getItem("leadflow-token") || "", me: null, stream: null };
const $ = (id) => document.getElementById(id);

async function request(path, accept = "application/json") {
  const response = await fetch(path, { headers: { Authorization: `Bearer ${state.token}`, Accept: accept } });
  if (!response.ok) {
    const problem = await response.json().catch(() => ({}));
    throw new Error(problem.detail || `${path}: ${response.status}`);
  }
  return response;
}

const api = async (path) => (await request(path)).json();

function period() {
  const end = new Date();
  const start = new Date(end.getTime() - Number($("period").value) * 86400000);
  return { start, end, query: `from=${start.toISOString()}&to=${end.toISOString()}` };
}

// Fill a table's body; each cell is labelled with its column's heading (shown beside the
// value when a narrow card stacks the table) and aligned as its heading is. A cell is text,
// or a figure: the report's value (kept in data-value) and the text a person reads.
function rows(table, data, cells, attributes = () => ({})) {
  const headings = [...table.querySelectorAll("thead th")];
  table.querySelector("tbody").replaceChildren(...data.map((item) => {
    const tr = el("tr", attributes(item));
    cells(item).forEach((cell, index) => {
      const heading = headings[index];
      const attrs = heading ? { "data-label": heading.textContent } : {};
      if (heading?.classList.contains("num")) attrs.class = "num";
      const text = cell !== null && typeof cell === "object" ? cell.text : cell;
      if (cell !== null && typeof cell === "object") attrs["data-value"] = JSON.stringify(cell.value);
      tr.append(el("td", attrs, text === null || text === undefined ? "–" : String(text)));
    });
    return tr;
  }));
}

const figure = (value, shown = String) => ({ value, text: value === null ? null : shown(value) });

function headings(table, names) {
  const row = el("tr");
  row.append(...names.map(([name, kind]) => el("th", kind ? { class: kind } : {}, name)));
  table.querySelector("thead").replaceChildren(row);
}

// A table made by a card's script: its headings now, its rows filled by `rows` later.
function newTable(id, kind, names) {
  const table = el("table", { id, class: kind });
  table.append(el("thead"), el("tbody"));
  headings(table, names);
  return table;
}

const reps = new Map();
const repName = (id) => reps.get(id)?.name || (id && id === state.me?.rep_id ? "you" : id) || "–";
const conversion = (share) => (share === null ? null : percent(share));

async function loadFunnel() {
  const { query, start, end } = period();
  const by = $("slice").value;
  const report = await api(`/v1/reports/funnel?${query}&by=${by}`);
  const all = report.slices[0];
  const path = all ? all.stages.filter((s) => s.leads > 0 || s.conversion_to_next !== null) : [];
  bars($("funnel-chart"), path.map((s) => ({
    label: s.stage, value: s.leads,
    text: s.conversion_to_next === null ? `${s.leads}` : `${s.leads} → ${percent(s.conversion_to_next)}`,
  })), "leads per stage");
  const table = $("funnel-table");
  table.classList.toggle("unsliced", by === "all");
  table.classList.toggle("stack", by !== "all"); // four columns fit a phone, five do not
  rows(table, report.slices.flatMap((slice) => slice.stages.map((s) => ({ slice: slice.slice, ...s }))),
    (s) => [s.slice, s.stage, s.leads, conversion(s.conversion_to_next), fromHours(s.median_hours_in_stage)]);
  const byWeek = await api(`/v1/reports/funnel?${query}&by=week`);
  const weeks = weeksBetween(start, end);
  const stages = (byWeek.slices[0]?.stages || []).map((s) => s.stage)
    .filter((stage) => byWeek.slices.some((slice) => slice.stages.find((s) => s.stage === stage).leads > 0));
  const leads = (week, stage) => byWeek.slices.find((slice) => slice.slice === week)?.stages.find((s) => s.stage === stage).leads ?? 0;
  const series = stages.map((stage) => ({ name: stage, values: weeks.map((week) => leads(week, stage)) }));
  weekly($("trend-chart"), weeks, series, "leads entering each stage per week");
}

function histogramLabel(bucket) {
  return bucket.up_to_minutes === null ? "later / never" : `≤ ${fromMinutes(bucket.up_to_minutes)}`;
}

async function loadSpeed() {
  const report = await api(`/v1/reports/speed-to-lead?${period().query}`);
  bars($("speed-chart"), report.histogram.map((b) => ({ label: histogramLabel(b), value: b.leads })),
    "leads by time to accept");
  const groups = [...report.by_team.map((r) => ({ ...r, group: `team ${r.group}` })), ...report.by_rep.map((r) => ({ ...r, group: repName(r.group) }))];
  rows($("speed-table"), groups, (r) => [r.group, r.handed_off, fromMinutes(r.p50_minutes), fromMinutes(r.p90_minutes),
    percent(r.accepted_within_5_minutes), percent(r.accepted_within_1_hour)]);
}

async function loadNurture() {
  const report = await api(`/v1/reports/nurture?${period().query}`);
  bars($("reasons-chart"), report.returned_by_reason.map((c) => ({ label: c.key, value: c.leads })), "returns by reason");
  const list = (counts, name = (key) => key) => counts.map((c) => `${name(c.key)} ${c.leads}`).join(", ") || "none";
  $("returned-by").textContent = `By campaign: ${list(report.returned_by_campaign)}. By rep: ${list(report.returned_by_rep, repName)}.`;
  $("again").textContent = `${report.handed_off_again} lead(s) came back from nurture and were handed off again.`;
  rows($("campaign-table"), report.campaigns, (c) => [c.campaign, c.sales_ready, c.won, c.lost, amount(c.won_amount),
    amount(c.cost_per_sales_ready), conversion(c.roi)]);
}

const oneDecimal = (value) => value.toFixed(1);
const strategies = { round_robin: "round robin", weighted: "weighted", least_loaded: "least loaded" };

async function loadFairness() {
  const { query, end } = period();
  const report = await api(`/v1/reports/routing?${query}`);
  $("fairness-csv").href = `/v1/reports/routing?${query}`;
  $("fairness-csv").download = `routing-fairness-${end.toISOString().slice(0, 10)}.csv`;
  rows($("fairness-teams"), report.teams, (t) => [t.team, strategies[t.strategy] ?? "(no longer defined)",
    figure(t.rep_count), figure(t.received), figure(t.as_account_owner), figure(t.by_strategy), figure(t.gini, (g) => g.toFixed(2))],
  (t) => ({ "data-team": t.team }));
  rows($("fairness-reps"), report.reps, (r) => [r.active ? r.name : `${r.name} (inactive)`, r.team,
    figure(r.received), figure(r.as_account_owner), figure(r.by_strategy), figure(r.fair_share, oneDecimal), figure(r.ratio_to_fair_share, percent),
    figure(r.acceptance_rate, percent), figure(r.sla_breaches), figure(r.reassigned_away), figure(r.median_minutes_to_accept, fromMinutes)],
  (r) => ({ "data-rep": r.rep_id }));
}

// The CSV of the period on the card; fetched with the token, as a link cannot send it.
// A CSV link's report needs the token, so it is fetched and saved from a blob; each link's
// previous file is freed when the next replaces it.
const csvFiles = new Map();

async function downloadCsv(event) {
  event.preventDefault();
  const link = event.currentTarget;
  try {
    const response = await request(link.getAttribute("href"), "text/csv");
    if (csvFiles.has(link.id)) URL.revokeObjectURL(csvFiles.get(link.id));
    const file = URL.createObjectURL(await response.blob());
    csvFiles.set(link.id, file);
    el("a", { href: file, download: link.download }).click();
  } catch (error) {
    showError(error.message);
  }
}

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
    headings(table, [["Rep"], ["Team"], ["Notified by", "notified"], ["Open / capacity", "num"], ["", "capacity"]]);
    table.querySelector("tbody").replaceChildren(...roster.filter((r) => r.active).map((rep) => {
      const tr = el("tr", { "data-rep": rep.id });
      const notified = [rep.email && "email", rep.chat_webhook_url && "chat"].filter(Boolean).join(" · ") || "–";
      tr.append(el("td", {}, rep.name), el("td", {}, rep.team), el("td", { class: "notified" }, notified), el("td", { class: rep.open_leads >= rep.capacity ? "num full" : "num" }, `${rep.open_leads} / ${rep.capacity}`));
      const cell = el("td", { class: "capacity" });
      cell.append(capacityBar(rep.open_leads, rep.capacity));
      tr.append(cell);
      return tr;
    }));
    return;
  }
  $("queue-title").textContent = "My open leads";
  const queue = await api(`/v1/reps/${state.me.rep_id}/queue`);
  // Named scores (definitions that declare them): "analytics 72 · crm 15".
  const named = (lead) => Object.entries(lead.scores || {}).map(([key, value]) => `${key} ${Math.round(value)}`).join(" · ");
  const withScores = queue.some((lead) => named(lead));
  headings(table, [["Company"], ["Grade"], ["Stage"], ...(withScores ? [["Scores", "scores"]] : []), ["Accept by", "num"]]);
  rows(table, queue, (lead) => [lead.company, lead.grade, lead.stage, ...(withScores ? [named(lead) || null] : []),
    lead.sla_deadline ? countdown(lead.sla_deadline) : null],
    (lead) => ({ id: `lead-${lead.id}` }));
  // A notice links to its lead as /#lead-<id>: show that row.
  const linked = location.hash && document.getElementById(location.hash.slice(1));
  if (linked) {
    linked.classList.add("linked");
    linked.scrollIntoView({ block: "center" });
  }
}

const channels = { email: "Email", chat: "Chat", webhook: "Webhooks" };

async function loadOutbound() {
  const summary = await api("/v1/notifications/summary");
  rows($("outbound-table"), Object.keys(channels), (channel) => [channels[channel],
    figure(summary[channel].delivered), figure(summary[channel].pending),
    figure(summary[channel].failed), figure(summary[channel].skipped)],
  (channel) => ({ "data-channel": channel }));
  const paused = summary.paused_subscriptions;
  $("paused").hidden = paused.length === 0;
  $("paused").textContent = paused.length === 0 ? "" : `Paused: ${paused.map((s) =>
    `${s.description || s.url} (${s.paused_reason})`).join("; ")}. Resume with POST /v1/subscriptions/{id}/resume.`;
}

// The cards an admin sees besides the queues, each filled by its loader. A new card is a
// <section class="card admin-only"> in index.html and its loader here.
const ADMIN_CARDS = [loadFunnel, loadSpeed, loadNurture, loadFairness, loadOutbound, loadShadow, loadCalibration];

async function refresh() {
  try {
    $("error").hidden = true;
    await loadQueues();
    if (state.me.admin) await Promise.all(ADMIN_CARDS.map((load) => load()));
  } catch (error) {
    showError(error.message);
  }
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = false;
}

async function open() {
  try {
    state.me = await api("/v1/me");
  } catch (error) {
    showError(`That token was not accepted (${error.message}).`);
    return;
  }
  localStorage.setItem("leadflow-token", state.token);
  $("login").hidden = true;
  $("controls").hidden = false;
  $("board").hidden = false;
  $("who").textContent = state.me.admin ? "signed in as admin" : "signed in as a rep";
  for (const card of document.querySelectorAll(".admin-only")) card.hidden = !state.me.admin;
  await refresh();
  if (state.stream) state.stream.close();
  state.stream = followHandoffs(state.token, repName);
}

$("login").addEventListener("submit", (event) => {
  event.preventDefault();
  state.token = $("token").value.trim();
  open();
});
$("logout").addEventListener("click", () => { localStorage.removeItem("leadflow-token"); location.reload(); });
$("period").addEventListener("change", refresh);
$("slice").addEventListener("change", refresh);
$("fairness-csv").addEventListener("click", downloadCsv);
setInterval(() => { if (state.me) refresh(); }, 15000);
if (state.token) open();
