// The "Candidate vs active" card: the shadow run's report, read from scoring's API (another
// origin: its address comes from /dashboard/config), beside the reps' capacity per team.
"use strict";

let scoringUrl = null;

async function fromScoring(path) {
  if (scoringUrl === null) scoringUrl = (await (await fetch("/dashboard/config")).json()).scoring_url;
  return fetch(`${scoringUrl}${path}`, { headers: { Authorization: `Bearer ${state.token}`, Accept: "application/json" } });
}

// Active leads' capacity per team: what a week of hand-offs is measured against.
async function capacityByTeam() {
  const capacity = new Map();
  for (const rep of await api("/v1/reps")) {
    if (rep.active) capacity.set(rep.team, (capacity.get(rep.team) || 0) + rep.capacity);
  }
  return capacity;
}

function precisionText(side) {
  const judged = side.handed_off_accepted + side.handed_off_returned;
  return judged ? `${percent(side.precision)} (${side.handed_off_accepted} of ${judged})` : "no verdict yet";
}

async function loadShadow() {
  const view = $("shadow-view");
  let response;
  try {
    response = await fromScoring("/v1/definitions/shadow/report");
  } catch (error) {
    view.replaceChildren(el("p", { id: "shadow-error", class: "note" }, `Scoring cannot be reached at ${scoringUrl}: ${error.message}`));
    return;
  }
  if (response.status === 404) {
    view.replaceChildren(el("p", { id: "shadow-none", class: "note" }, "No shadow run. Start one with `leadflow shadow start FILE`."));
    return;
  }
  if (!response.ok) {
    const problem = await response.json().catch(() => ({}));
    throw new Error(problem.detail || `shadow report: ${response.status}`);
  }
  const report = await response.json();
  const run = report.run;
  const status = run.promoted_at ? `promoted ${new Date(run.promoted_at).toLocaleString()}`
    : run.stopped_at ? `stopped ${new Date(run.stopped_at).toLocaleString()}` : "running";
  const summary = el("p", { id: "shadow-run", "data-run": run.id, "data-status": run.promoted_at ? "promoted" : run.stopped_at ? "stopped" : "running" },
    `${run.label || "Candidate"} ${run.version} against active ${run.active_version}, since ${new Date(run.started_at).toLocaleString()} (${status}): ${report.leads} ${report.leads === 1 ? "lead" : "leads"} evaluated.`);

  const handedOff = report.handed_off;
  const diff = newTable("shadow-handoffs", "stack", [["Handed to sales"], ["Leads", "num"]]);
  rows(diff, [
    ["by the candidate only", "shadow-candidate-only", handedOff.candidate_only.count],
    ["by the active definitions only", "shadow-active-only", handedOff.active_only.count],
    ["by both", "shadow-both", handedOff.both],
    ["by neither", "shadow-neither", handedOff.neither],
  ], ([label, , count]) => [label, figure(count)], ([, id]) => ({ id }));

  const grades = newTable("shadow-grade-table", "stack", [["Active grade"], ["Candidate grade"], ["Leads", "num"]]);
  rows(grades, report.grade_shift, (shift) => [shift.active_grade, shift.candidate_grade, figure(shift.leads)],
    (shift) => (shift.active_grade === shift.candidate_grade ? {} : { "data-shifted": "true" }));

  const capacity = await capacityByTeam();
  const weekly = newTable("shadow-weekly-table", "stack", [["Week of"], ["Team"], ["Active", "num"], ["Candidate", "num"], ["Team capacity", "num"]]);
  rows(weekly, report.weekly_by_team, (week) => [week.week, week.team, figure(week.active), figure(week.candidate),
    figure(capacity.has(week.team) ? capacity.get(week.team) : null)],
  (week) => (capacity.has(week.team) && week.candidate > capacity.get(week.team) ? { class: "late", "data-over-capacity": "true" } : {}));

  const verdicts = report.verdicts;
  const precision = el("p", { id: "shadow-precision", "data-active": JSON.stringify(verdicts.active.precision), "data-candidate": JSON.stringify(verdicts.candidate.precision) },
    `Sales accepted ${verdicts.accepted} and returned ${verdicts.returned} of these leads. Precision of hand-offs: active ${precisionText(verdicts.active)}, candidate ${precisionText(verdicts.candidate)}.`);
  view.replaceChildren(summary, diff, grades, weekly, precision);
}
