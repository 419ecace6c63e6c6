"""The chaos suite's own parts, without a stack: the plan, the fault schedule, the judge."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bench.common import accepted
from shared.definitions import load_definitions
from tests.chaos.compare import Rules, Sent, compared, counts, invariants
from tests.chaos.faults import KINDS, fault_schedule
from tests.chaos.observe import LeadState, RepLoad, RoutedLead, Snapshot
from tests.chaos.stack import DEFINITIONS
from tests.chaos.workload import identity_of, leads_of, make_plan

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)
RULES = Rules.of(load_definitions(DEFINITIONS).definitions)


def test_the_plan_is_fixed_by_its_seed_and_sends_what_ingest_accepts() -> None:
    plan = make_plan(5, 600, 60, NOW)
    again = make_plan(5, 600, 60, NOW)
    assert plan.events == again.events
    assert plan.events != make_plan(6, 600, 60, NOW).events
    assert len(plan.events) >= 600
    assert len({event["id"] for event in plan.events}) == len(plan.events)
    times = [accepted(event).time for event in plan.events]
    assert all(t is not None and NOW - timedelta(days=4.1) < t <= NOW for t in times)
    channels = Counter(event["channel"] for event in plan.events)
    assert set(channels) == {"web", "email", "social", "tradeshow"}
    assert any(event["type"] == "demo_request" for event in plan.events)


def test_faults_are_spread_over_the_load_in_a_seeded_order() -> None:
    schedule = fault_schedule(1, dict.fromkeys(KINDS, 2), 100.0)
    assert schedule == fault_schedule(1, dict.fromkeys(KINDS, 2), 100.0)
    assert Counter(fault.kind for fault in schedule) == dict.fromkeys(KINDS, 2)
    moments = [fault.at for fault in schedule]
    assert moments == sorted(moments)
    assert moments[0] >= 5
    assert moments[-1] <= 85


def _stage_event(lead_id: str, from_stage: str | None, to_stage: str, **data: Any) -> Any:
    return {
        "id": f"{lead_id}:{from_stage}:{to_stage}:{data.get('n', 0)}",
        "type": "leadflow.lead.stage_changed",
        "data": {
            "lead_id": lead_id,
            "from_stage": from_stage,
            "to_stage": to_stage,
            "is_hand_off": to_stage == "sql",
            "reason": "threshold",
            "score": data.get("score", 100.0),
            "grade": "B",
            "occurred_at": "2026-11-26T10:00:00Z",
            "caused_by": data.get("caused_by", "e1"),
        },
    }


def _handoff(lead_id: str, kind: str, number: int = 0) -> Any:
    return {
        "id": f"{lead_id}:{kind}:{number}",
        "type": f"leadflow.handoff.{kind}",
        "time": f"2026-11-27T12:00:0{number}+00:00",
        "data": {"lead_id": lead_id, "kind": kind},
    }


def _snapshot(events: list[Any], stage: str = "sql", score: float = 104.0) -> Snapshot:
    snapshot = Snapshot()
    snapshot.key_of = {"L1": "email:ada@x.test"}
    snapshot.leads = {"email:ada@x.test": LeadState("L1", "ada@x.test", stage, score, "B")}
    snapshot.routed = {"email:ada@x.test": RoutedLead("assigned", "emea", "R1")}
    snapshot.events = {event["id"]: event for event in events}
    snapshot.stored_ids = {"e1"}
    snapshot.reps = [RepLoad("emea rep 1", "emea", 10, 1)]
    return snapshot


HEALTHY = [_stage_event("L1", None, "inquiry"), _stage_event("L1", "inquiry", "sql")]
SENT = Sent({"e1": 1.0}, [(1.0, "kill -9 router")], {"e1": "email:ada@x.test"}, NOW.timestamp())


def test_a_sales_ready_lead_has_one_hand_off_and_one_assignment() -> None:
    assert invariants("chaos", _snapshot([*HEALTHY, _handoff("L1", "assigned")]), SENT, RULES) == []
    lost = invariants("chaos", _snapshot(HEALTHY[:1]), SENT, RULES)
    assert counts(lost) == {"chaos: hand-off event missing": 1, "chaos: not routed": 1}
    doubled = _stage_event("L1", "mql", "sql", n=1)
    flood = [_handoff("L1", "queued", n) for n in range(3)]
    found = invariants("chaos", _snapshot([*HEALTHY, doubled, *flood]), SENT, RULES)
    assert counts(found) == {
        "chaos: hand-off event repeated": 1,
        "chaos: queued more than once": 1,
    }
    queued = next(f for f in found if f.check == "queued more than once")
    assert "queued L1:queued:2 at 2.0s (1.0s after kill -9 router (at 1.0s))" in queued.detail


def test_an_accepted_interaction_scoring_never_stored_is_named_with_the_fault_before_it() -> None:
    faults = [(7.4, "broker restarted empty")]
    sent = Sent({"e1": 1.0, "e2": 12.5}, faults, SENT.lead_of, NOW.timestamp())
    snapshot = _snapshot([*HEALTHY, _handoff("L1", "assigned")])
    (finding,) = invariants("chaos", snapshot, sent, RULES)
    assert finding.check == "not stored"
    assert "e2 answered 202 at 12.5s, 5.1s after broker restarted empty" in finding.detail


def test_runs_are_compared_by_identity_within_the_tolerance_of_decay() -> None:
    reference = _snapshot(HEALTHY)
    same = _snapshot(HEALTHY, score=104.01)
    same.key_of = {"L2": "email:ada@x.test"}  # another database: another lead id
    same.events = {
        key: {**event, "data": {**event["data"], "lead_id": "L2"}}
        for key, event in reference.events.items()
    }
    assert compared(reference, same, RULES) == []
    later = [HEALTHY[0], _stage_event("L1", "inquiry", "sql", caused_by="e9")]
    found = compared(reference, _snapshot(later, score=90.0), RULES, {"email:ada@x.test": ["e7"]})
    assert sorted(f.check for f in found) == ["score", "stage moment differs"]
    assert all("1 of its interactions lost: e7" in f.detail for f in found)


def test_a_grade_that_differs_only_on_a_band_edge_is_decay_not_a_difference() -> None:
    reference, chaos = _snapshot(HEALTHY, score=100.02), _snapshot(HEALTHY, score=99.99)
    chaos.leads["email:ada@x.test"] = LeadState("L1", "ada@x.test", "sql", 99.99, "C")
    assert compared(reference, chaos, RULES) == []
    far = _snapshot(HEALTHY, score=104.0)
    far.leads["email:ada@x.test"] = LeadState("L1", "ada@x.test", "sql", 104.0, "A")
    assert counts(compared(_snapshot(HEALTHY), far, RULES)) == {"compared: grade": 1}


def test_identity_is_the_email_else_the_anonymous_id() -> None:
    assert identity_of({"contact": {"email": "Ada@X.test"}}) == "email:ada@x.test"
    assert identity_of({"contact": {"anonymous_id": "c1"}}) == "anon:c1"


def test_a_visitor_who_gives_their_email_is_that_emails_lead() -> None:
    events = [
        {"id": "1", "contact": {"anonymous_id": "c1"}},
        {"id": "2", "contact": {"anonymous_id": "c1", "email": "ada@x.test"}},
        {"id": "3", "contact": {"anonymous_id": "c2"}},
    ]
    assert leads_of(events) == {"1": "email:ada@x.test", "2": "email:ada@x.test", "3": "anon:c2"}


def test_in_a_team_short_of_capacity_only_how_many_wait_is_compared() -> None:
    rules = Rules.of(load_definitions(DEFINITIONS).definitions, frozenset({"emea"}))
    reference, chaos = _snapshot(HEALTHY), _snapshot(HEALTHY)
    chaos.routed["email:ada@x.test"] = RoutedLead("queued", "emea", None)
    chaos.routed["email:bo@x.test"] = RoutedLead("assigned", "emea", "R1")
    reference.routed["email:bo@x.test"] = RoutedLead("queued", "emea", None)
    assert compared(reference, chaos, rules) == []
    chaos.routed["email:bo@x.test"] = RoutedLead("queued", "emea", None)
    assert counts(compared(reference, chaos, rules)) == {"compared: team's statuses differ": 1}
