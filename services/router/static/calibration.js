// The calibration card: acceptance by rule, campaign, channel, grade and version, with the
// changes to the definitions that sales' verdicts suggest.
"use strict";

const CALIBRATION_DIMENSIONS = [
  ["by_campaign", "campaign"], ["by_source_channel", "source channel"], ["by_grade", "grade"],
  ["by_definitions_version", "definitions version"],
];
const CALIBRATION_COLUMNS = [["Hand-offs", "num"], ["Accepted", "num"], ["Returned", "num"], ["Pending", "num"],
  ["Acceptance (95% interval)", "num"], ["Top return reason"], ["Opportunities", "num"], ["Won", "num"]];

function calibrationTable(id, first) {
  return newTable(id, "wide-table", [[first], ...CALIBRATION_COLUMNS]);
}

// The card's parts, made once: the figures are filled on every refresh.
function calibrationParts() {
  const target = el("input", { id: "calibration-target", type: "number", min: "1", max: "99", step: "1", value: "60" });
  const by = el("select", { id: "calibration-by" });
  by.append(...CALIBRATION_DIMENSIONS.map(([key, name]) => el("option", { value: key }, name)));
  const csv = el("a", { id: "calibration-csv", href: "/v1/reports/calibration", download: "calibration.csv" }, "Download CSV");
  const targetLabel = el("label", {}, "Target acceptance ");
  targetLabel.append(target, "% ");
  const byLabel = el("label", {}, "Acceptance by ");
  byLabel.append(by);
  const note = el("p", { class: "note" },
    "What sales did with the leads handed off in the period: accepted, returned to nurture, still pending. " +
    "Acceptance is accepted ÷ (accepted + returned); the interval is where it lies with 95% confidence, " +
    "wide when few leads had a verdict. Rules: those among a lead's top reasons at its hand-off. ");
  note.append(csv);
  $("calibration-view").replaceChildren(
    note, targetLabel, el("p", { id: "calibration-overall" }),
    el("h3", {}, "Which rules bring leads that sales rejects?"), calibrationTable("calibration-rules", "Rule"),
    byLabel, calibrationTable("calibration-breakdown", "Key"),
    el("h3", {}, "Suggested changes"), el("ol", { id: "calibration-suggestions" }));
  target.addEventListener("change", loadCalibration);
  by.addEventListener("change", loadCalibration);
  csv.addEventListener("click", downloadCsv);
}

const withInterval = (rate) => (rate === null ? null : `${percent(rate.rate)} (${percent(rate.low)}–${percent(rate.high)})`);
const topReason = (row) => Object.keys(row.return_reasons)[0] ?? null;

function calibrationCells(row) {
  return [row.key, figure(row.handed_off), figure(row.accepted), figure(row.returned), figure(row.pending),
    figure(row.acceptance && row.acceptance.rate, () => withInterval(row.acceptance)), topReason(row),
    figure(row.opportunities), figure(row.won)];
}

function overallText(overall) {
  if (overall.handed_off === 0) return "No hand-offs in the period.";
  const judged = overall.accepted + overall.returned;
  const acceptance = judged ? `Sales accepted ${overall.accepted} of the ${judged} hand-offs with a verdict: ${withInterval(overall.acceptance)}` : "No verdict from sales yet";
  return `${acceptance}. ${overall.pending} pending. Of the ${overall.handed_off} handed off, ${overall.opportunities} became ` +
    `opportunities (${percent(overall.opportunity_rate.rate)}) and ${overall.won} won (${percent(overall.won_rate.rate)}).`;
}

// A suggestion: why, the change as a diff (kept open across refreshes), and the candidate
// definitions to start a shadow run with (`leadflow shadow start FILE`).
function suggestionItem(suggestion, opened) {
  const key = `${suggestion.kind}:${suggestion.changes.map((change) => change.path).join(",")}`;
  const item = el("li", { "data-kind": suggestion.kind });
  const diff = el("details", { "data-key": key, ...(opened.has(key) ? { open: "" } : {}) });
  diff.append(el("summary", {}, "The change"), el("pre", { style: "white-space: pre-wrap; overflow-wrap: anywhere" }, suggestion.diff));
  const candidate = el("a", {
    href: `data:text/yaml;charset=utf-8,${encodeURIComponent(suggestion.candidate_document)}`,
    download: `candidate-${suggestion.kind}.yaml`,
  }, "Download the candidate definitions");
  item.append(el("p", {}, suggestion.message), diff, candidate);
  return item;
}

async function loadCalibration() {
  if (!$("calibration-overall")) calibrationParts();
  const { query, end } = period();
  const target = Math.min(99, Math.max(1, Number($("calibration-target").value) || 60)) / 100;
  const path = `/v1/reports/calibration?${query}&target=${target}`;
  const report = await api(path);
  $("calibration-csv").href = path;
  $("calibration-csv").download = `calibration-${end.toISOString().slice(0, 10)}.csv`;
  $("calibration-overall").textContent = overallText(report.overall);
  // The rules sales accepts least first; those without a verdict yet last.
  const byAcceptance = [...report.by_rule].sort((a, b) => (a.acceptance?.rate ?? 2) - (b.acceptance?.rate ?? 2));
  rows($("calibration-rules"), byAcceptance, calibrationCells, (row) => ({ "data-key": row.key }));
  rows($("calibration-breakdown"), report[$("calibration-by").value], calibrationCells, (row) => ({ "data-key": row.key }));
  const opened = new Set([...document.querySelectorAll("#calibration-suggestions details[open]")].map((d) => d.dataset.key));
  const suggestions = report.suggestions.map((suggestion) => suggestionItem(suggestion, opened));
  $("calibration-suggestions").replaceChildren(...(suggestions.length ? suggestions
    : [el("li", { class: "note" }, "None: no rule is accepted surely less than the average, and the target is met or out of reach.")]));
}

