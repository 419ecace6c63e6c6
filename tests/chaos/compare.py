"""The verdict on a chaos run: what must hold in every run, and what must be the same as in
the fault-free reference. Pure: it looks only at two snapshots.

Leads are matched by identity (their email, else their anonymous id), never by id: each
run has its own database, so its own lead ids. Probes (leads of `PROBE_DOMAIN`) exist only
in the chaos run and are left out. Scores are compared within a tolerance, because a stored
score is decayed to the moment scoring evaluated it, which differs between the runs; for the
same reason a grade may differ where a score sits on the edge of a grade band.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.definitions import LeadDefinitions
from shared.definitions.model import hand_off_stage
from tests.chaos.observe import Snapshot
from tests.chaos.workload import is_probe

STAGE_CHANGED = "leadflow.lead.stage_changed"
NAMELESS = "lead:"  # Snapshot.key of a lead id no identity leads to
HANDOFF_PREFIX = "leadflow.handoff."
# A stage event's fields that follow from the interactions alone.
PAYLOAD_FIELDS = ("is_hand_off",)
# Its fields that say what scoring knew when the lead first got there: the same for any
# batching of the same arrivals (tests/unit/test_stage_reporting.py), but a fault that
# reorders arrivals (a retried post, records sent again after a lost log) or the order of
# a lead's records across partitions (anonymous id and email keys) may change them. Their
# differences are noted in the report, not failures.
MOMENT_FIELDS = ("reason", "score", "grade", "occurred_at", "caused_by")
NOTED = frozenset({"stage moment differs"})

# What each check means, for the printed report.
MEANING = {
    "not stored": "answered 202 by ingest, but scoring never stored the interaction",
    "hand-off event missing": "scoring holds the lead at or past the hand-off stage, yet no "
    "stage event with is_hand_off true was written for it",
    "hand-off event repeated": "more than one stage event with is_hand_off true (different ids)",
    "hand-off event for a lead before the hand-off stage": "a hand-off event for a lead that "
    "scoring holds before the hand-off stage",
    "stage event repeated": "the same (from_stage, to_stage) reported more than once",
    "stage moment differs": "noted, not a failure: what scoring knew when the lead first "
    "reached the stage (score, grade, time, cause) differs, as arrivals came in another order",
    "not routed": "a sales-ready lead that got neither an assigned nor a queued event",
    "assigned more than once": "more than one assigned event for one hand-off",
    "queued more than once": "more than one queued event for one stay in the queue",
    "router status": "the router does not hold a sales-ready lead as assigned or queued",
    "rep over capacity": "a rep has more open leads than their capacity",
    "state not readable": "part of the end state could not be read",
    "lead missing": "a lead of one run does not exist in the other",
    "leads without identity": "lead rows that no email or anonymous id leads to",
    "stage": "the lead's stage in scoring differs",
    "score": "the lead's stored score differs by more than the tolerance",
    "grade": "the lead's grade differs (and no score is near a grade band's edge)",
    "router status differs": "the router's status of the lead differs",
    "team differs": "the router routed the lead to another team",
    "team's statuses differ": "a team short of capacity assigned or queued another number of leads",
    "stage events differ": "the (from_stage, to_stage) pairs reported for the lead differ",
    "stage event payload differs": "the same stage event carries other values (what scoring "
    "knew of the lead when it first reached the stage differed)",
}


@dataclass(frozen=True)
class Finding:
    check: str
    run: str  # "reference", "chaos" (an invariant broken there) or "compared"
    lead: str
    detail: str


@dataclass(frozen=True)
class Rules:
    sales_stages: frozenset[str]  # the hand-off stage and the sales stages after it
    grade_edges: tuple[float, ...]
    # teams short of capacity: which of their leads wait depends on arrival order, so only
    # how many are assigned and how many queued is compared
    limited_teams: frozenset[str] = frozenset()
    score_absolute: float = 0.05
    score_relative: float = 0.001

    @classmethod
    def of(cls, definitions: LeadDefinitions, limited_teams: frozenset[str] = frozenset()) -> Rules:
        edges = {
            edge
            for band in definitions.grades.bands
            for edge in (band.score.min, band.score.max)
            if edge is not None
        }
        stages = list(definitions.stages)
        after = stages[stages.index(hand_off_stage(definitions)) :]
        sales = frozenset(stage.key for stage in after if stage.owner == "sales")
        return cls(sales, tuple(sorted(edges)), limited_teams)

    def sales_ready(self, stage: str | None) -> bool:
        """At the hand-off stage or past it (the sales stages after it)."""
        return stage in self.sales_stages

    def scores_differ(self, first: float, second: float) -> bool:
        allowed = self.score_absolute + self.score_relative * max(abs(first), abs(second))
        return abs(first - second) > allowed

    def near_grade_edge(self, first: float, second: float) -> bool:
        low, high = sorted((first, second))
        margin = self.score_absolute + self.score_relative * high
        return any(low - margin <= edge <= high + margin for edge in self.grade_edges)


def _data(envelope: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = envelope.get("data") or {}
    return data


def stage_events(snapshot: Snapshot) -> dict[str, list[dict[str, Any]]]:
    """Each lead's stage events (their data), in the order of the time they describe."""
    by_lead: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for envelope in snapshot.events.values():
        if envelope.get("type") == STAGE_CHANGED:
            data = {**_data(envelope), "written": envelope.get("time")}
            by_lead[snapshot.key(str(data.get("lead_id")))].append(data)
    for events in by_lead.values():
        events.sort(key=lambda data: (str(data.get("occurred_at")), str(data.get("to_stage"))))
    return by_lead


def handoffs(snapshot: Snapshot) -> dict[str, list[tuple[str, str, str]]]:
    """Each lead's events on `lead.handoffs` as (kind, time written, id), in time order."""
    by_lead: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for envelope in snapshot.events.values():
        if str(envelope.get("type", "")).startswith(HANDOFF_PREFIX):
            data = _data(envelope)
            lead = snapshot.key(str(data.get("lead_id")))
            event = (str(data.get("kind")), str(envelope.get("time")), str(envelope.get("id")))
            by_lead[lead].append(event)
    for events in by_lead.values():
        events.sort(key=lambda event: event[1])
    return by_lead


def handoff_kinds(snapshot: Snapshot) -> dict[str, Counter[str]]:
    """How many events of each kind (assigned, queued, ...) `lead.handoffs` has per lead."""
    return {
        lead: Counter(kind for kind, _, _ in events) for lead, events in handoffs(snapshot).items()
    }


def _counted(lead: str) -> bool:
    return not is_probe(lead.removeprefix("email:"))


@dataclass(frozen=True)
class Sent:
    """What a run sent: each accepted interaction's moment of 202 (seconds after the load
    started), the faults (moment, kind), and which lead each interaction is of."""

    accepted: dict[str, float]
    faults: list[tuple[float, str]]
    lead_of: dict[str, str]
    started_wall: float = 0.0  # time.time() when the load started

    def moment(self, written: object) -> str:
        """An envelope's `time` as seconds after the load started, with the fault before."""
        try:
            at = datetime.fromisoformat(str(written)).timestamp() - self.started_wall
        except ValueError:
            return "?"
        return f"{at:.1f}s ({self.after_fault(at)})"

    def after_fault(self, moment: float) -> str:
        before = [(at, kind) for at, kind in self.faults if at <= moment]
        if not before:
            return "before any fault"
        at, kind = before[-1]
        return f"{moment - at:.1f}s after {kind} (at {at:.1f}s)"

    def unstored(self, snapshot: Snapshot) -> dict[str, list[str]]:
        """Accepted but not stored, by lead."""
        by_lead: dict[str, list[str]] = defaultdict(list)
        for event_id in sorted(set(self.accepted) - snapshot.stored_ids):
            by_lead[self.lead_of.get(event_id, "")].append(event_id)
        return by_lead


def invariants(run: str, snapshot: Snapshot, sent: Sent, rules: Rules) -> list[Finding]:
    """What must hold in any run, faults or not."""
    found = [Finding("state not readable", run, "", problem) for problem in snapshot.problems]
    found += [
        Finding(
            "not stored",
            run,
            lead,
            f"interaction {event_id} answered 202 at {sent.accepted[event_id]:.1f}s, "
            + sent.after_fault(sent.accepted[event_id]),
        )
        for lead, ids in sorted(sent.unstored(snapshot).items())
        for event_id in ids
    ]
    events, routed = stage_events(snapshot), handoffs(snapshot)
    for lead in sorted(set(snapshot.leads) | set(events) | set(routed)):
        if not _counted(lead):
            continue
        state = snapshot.leads.get(lead)
        ready = state is not None and rules.sales_ready(state.stage)
        found += _hand_off_findings(run, lead, events.get(lead, []), ready, sent)
        if ready or routed.get(lead):
            found += _routing_findings(run, lead, routed.get(lead, []), snapshot, sent)
    found += [
        Finding("rep over capacity", run, "", f"{rep.name}: {rep.open_leads}/{rep.capacity}")
        for rep in snapshot.reps
        if rep.open_leads > rep.capacity
    ]
    return found


def _hand_off_findings(
    run: str, lead: str, events: list[dict[str, Any]], ready: bool, sent: Sent
) -> list[Finding]:
    found = []
    hand_offs = [data for data in events if data.get("is_hand_off")]
    if ready and not hand_offs:
        found.append(Finding("hand-off event missing", run, lead, _path(events)))
    if len(hand_offs) > 1:
        written = ", ".join(sent.moment(data.get("written")) for data in hand_offs)
        found.append(
            Finding("hand-off event repeated", run, lead, f"{_path(events)}; written {written}")
        )
    if hand_offs and not ready:
        found.append(
            Finding("hand-off event for a lead before the hand-off stage", run, lead, _path(events))
        )
    # repeated hand-offs are reported above; here the other stages
    pairs = Counter(
        (data.get("from_stage"), data.get("to_stage"))
        for data in events
        if not data.get("is_hand_off")
    )
    found += [
        Finding("stage event repeated", run, lead, f"{pair[0]}->{pair[1]} x{count}")
        for pair, count in pairs.items()
        if count > 1
    ]
    return found


def _routing_findings(
    run: str, lead: str, events: list[tuple[str, str, str]], snapshot: Snapshot, sent: Sent
) -> list[Finding]:
    found = []
    kinds = Counter(kind for kind, _, _ in events)
    assigned, queued = kinds.get("assigned", 0), kinds.get("queued", 0)
    summary = ", ".join(
        f"{kind} {event_id} at {sent.moment(written)}" for kind, written, event_id in events
    )
    summary = summary or "none"
    if assigned == 0 and queued == 0:
        found.append(Finding("not routed", run, lead, f"lead.handoffs: {summary}"))
    if assigned > 1:
        found.append(Finding("assigned more than once", run, lead, summary))
    if queued > 1:
        found.append(Finding("queued more than once", run, lead, summary))
    held = snapshot.routed.get(lead)
    if held is None or held.status not in ("assigned", "queued"):
        status = held.status if held else "unknown to the router"
        found.append(Finding("router status", run, lead, status))
    return found


def _path(events: list[dict[str, Any]]) -> str:
    steps = [
        f"{data.get('from_stage')}->{data.get('to_stage')}"
        + (" (hand-off)" if data.get("is_hand_off") else "")
        for data in events
    ]
    return "stage events: " + (", ".join(steps) or "none")


def compared(
    reference: Snapshot,
    chaos: Snapshot,
    rules: Rules,
    unstored: dict[str, list[str]] | None = None,
) -> list[Finding]:
    """Where the chaos run's end state differs from the reference's; a lead with
    interactions the chaos run accepted but lost (`unstored`, by lead) says so."""
    found = _compare_leads(reference, chaos, rules)
    found += _compare_router(reference, chaos, rules.limited_teams)
    found += _compare_stage_events(reference, chaos)
    lost = unstored or {}
    return [
        Finding(
            f.check,
            f.run,
            f.lead,
            f"{f.detail} [{len(lost[f.lead])} of its interactions lost: {', '.join(lost[f.lead])}]",
        )
        if lost.get(f.lead)
        else f
        for f in found
    ]


def _compare_leads(reference: Snapshot, chaos: Snapshot, rules: Rules) -> list[Finding]:
    found = []
    # a lead row no identity leads to (say, merged into another) has only its id, which
    # differs between the runs: such rows are counted, not matched
    nameless = [sum(lead.startswith(NAMELESS) for lead in s.leads) for s in (reference, chaos)]
    if nameless[0] != nameless[1]:
        found.append(_differs("leads without identity", "", *nameless))
    for lead in sorted(set(reference.leads) | set(chaos.leads)):
        if not _counted(lead) or lead.startswith(NAMELESS):
            continue
        ours, theirs = reference.leads.get(lead), chaos.leads.get(lead)
        if ours is None or theirs is None:
            where = "the reference" if ours is None else "the chaos run"
            found.append(Finding("lead missing", "compared", lead, f"not in {where}"))
            continue
        if ours.stage != theirs.stage:
            found.append(_differs("stage", lead, ours.stage, theirs.stage))
        if rules.scores_differ(ours.score, theirs.score):
            found.append(_differs("score", lead, round(ours.score, 3), round(theirs.score, 3)))
        if ours.grade != theirs.grade and not rules.near_grade_edge(ours.score, theirs.score):
            found.append(
                _differs(
                    "grade",
                    lead,
                    f"{ours.grade} (score {ours.score:.2f})",
                    f"{theirs.grade} (score {theirs.score:.2f})",
                )
            )
    return found


def _differs(check: str, lead: str, reference: object, chaos: object) -> Finding:
    return Finding(check, "compared", lead, f"reference: {reference}; chaos: {chaos}")


def _compare_router(
    reference: Snapshot, chaos: Snapshot, limited_teams: frozenset[str]
) -> list[Finding]:
    found = []
    waiting = {"assigned", "queued"}
    for lead in sorted(set(reference.routed) | set(chaos.routed)):
        if not _counted(lead):
            continue
        ours, theirs = reference.routed.get(lead), chaos.routed.get(lead)
        if ours and theirs and ours.team != theirs.team:
            found.append(_differs("team differs", lead, ours.team, theirs.team))
            continue
        status = (ours.status if ours else None, theirs.status if theirs else None)
        either_way = ours is not None and ours.team in limited_teams and set(status) <= waiting
        if status[0] != status[1] and not either_way:
            found.append(_differs("router status differs", lead, *status))
    for team in sorted(limited_teams):
        tally = [_statuses(snapshot, team) for snapshot in (reference, chaos)]
        if tally[0] != tally[1]:
            found.append(_differs("team's statuses differ", team, *tally))
    return found


def _statuses(snapshot: Snapshot, team: str) -> dict[str, int]:
    return dict(
        sorted(
            Counter(
                routed.status
                for lead, routed in snapshot.routed.items()
                if routed.team == team and _counted(lead)
            ).items()
        )
    )


def _compare_stage_events(reference: Snapshot, chaos: Snapshot) -> list[Finding]:
    found = []
    ours_by_lead, theirs_by_lead = stage_events(reference), stage_events(chaos)
    for lead in sorted(set(ours_by_lead) | set(theirs_by_lead)):
        if not _counted(lead):
            continue
        ours, theirs = ours_by_lead.get(lead, []), theirs_by_lead.get(lead, [])
        pairs_ours = Counter((d.get("from_stage"), d.get("to_stage")) for d in ours)
        pairs_theirs = Counter((d.get("from_stage"), d.get("to_stage")) for d in theirs)
        if pairs_ours != pairs_theirs:
            found.append(_differs("stage events differ", lead, _path(ours), _path(theirs)))
            continue
        theirs_by_pair = {(d.get("from_stage"), d.get("to_stage")): d for d in theirs}
        for data in ours:
            other = theirs_by_pair[(data.get("from_stage"), data.get("to_stage"))]
            pair = f"{data.get('from_stage')}->{data.get('to_stage')}"
            for check, fields in (
                ("stage event payload differs", PAYLOAD_FIELDS),
                ("stage moment differs", MOMENT_FIELDS),
            ):
                changed = [
                    f"{name}: {data.get(name)!r} vs {other.get(name)!r}"
                    for name in fields
                    if not _same_value(name, data.get(name), other.get(name))
                ]
                if changed:
                    detail = f"{pair} (reference vs chaos) " + "; ".join(changed)
                    found.append(Finding(check, "compared", lead, detail))
    return found


def _same_value(name: str, first: Any, second: Any) -> bool:
    if name == "score" and isinstance(first, int | float) and isinstance(second, int | float):
        return abs(first - second) <= 0.01
    if name == "occurred_at" and isinstance(first, str) and isinstance(second, str):
        return datetime.fromisoformat(first) == datetime.fromisoformat(second)
    return bool(first == second)


def counts(findings: list[Finding]) -> dict[str, int]:
    """How many findings of each check in each run: {"chaos: hand-off event missing": 3}."""
    return dict(Counter(f"{finding.run}: {finding.check}" for finding in findings))
