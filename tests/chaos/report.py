"""The figures of a chaos test: what was sent and accepted, each fault with its time and
recovery, the end state of both runs, and every finding; as text and as JSON."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tests.chaos.compare import MEANING, NOTED, Finding, counts, handoff_kinds, stage_events
from tests.chaos.run import RunResult
from tests.chaos.workload import Plan, is_probe

EXAMPLES_PRINTED = 5
EXAMPLES_KEPT = 200


def _run_figures(result: RunResult) -> dict[str, Any]:
    sender, snapshot = result.sender, result.snapshot
    leads = {key: lead for key, lead in snapshot.leads.items() if not is_probe(lead.email)}
    events = stage_events(snapshot)
    routed = handoff_kinds(snapshot)
    return {
        "interactions_posted": sender.taken,
        "interactions_accepted": len(sender.accepted),
        "requests": sender.attempts,
        "answers": dict(sorted(sender.answers.items())),
        "rejected": dict(list(sender.rejected.items())[:EXAMPLES_KEPT]),
        "never_accepted": sender.abandoned[:EXAMPLES_KEPT],
        "load_seconds": round(result.load_seconds, 1),
        "settled_after_seconds": (
            round(result.settled_after, 1) if result.settled_after is not None else None
        ),
        "not_settled": result.unsettled,
        "interactions_stored": len(snapshot.stored_ids),
        "leads": len(leads),
        "leads_by_stage": dict(Counter(str(lead.stage) for lead in leads.values()).most_common()),
        "hand_off_events": sum(
            1 for lead in events.values() for data in lead if data.get("is_hand_off")
        ),
        "handoffs_by_kind": dict(sum(routed.values(), Counter()).most_common()),
        "router_status": dict(Counter(lead.status for lead in snapshot.routed.values())),
        "router_status_by_team": dict(
            sorted(Counter(f"{r.team}: {r.status}" for r in snapshot.routed.values()).items())
        ),
        "events_only_in_outbox": snapshot.only_in_outbox,
        "event_ids_repeated_on_topics": snapshot.topic_repeats,
        "reps": [asdict(rep) for rep in snapshot.reps],
        "service_exits": [asdict(exit) for exit in result.exits],
        "observer_errors": result.observer_errors[:20],
        "logs": str(result.logs),
    }


def build_report(
    plan: Plan,
    mode: str,
    reference: RunResult,
    chaos: RunResult,
    findings: list[Finding],
) -> dict[str, Any]:
    kept: dict[str, list[dict[str, str]]] = defaultdict(list)
    for finding in findings:
        key = f"{finding.run}: {finding.check}"
        if len(kept[key]) < EXAMPLES_KEPT:
            kept[key].append({"lead": finding.lead, "detail": finding.detail})
    return {
        "mode": mode,
        "seed": plan.seed,
        "planned_interactions": len(plan.events),
        "people": len(plan.people),
        "event_times": {
            "first": min(event.get("time") or "" for event in plan.events),
            "last": max(event.get("time") or "" for event in plan.events),
        },
        "reference": _run_figures(reference),
        "chaos": _run_figures(chaos),
        "faults": [asdict(record) for record in chaos.faults],
        "findings": counts(findings),
        "meaning": {check: MEANING.get(check, "") for check in {f.check for f in findings}},
        "examples": dict(kept),
        "passed": all(finding.check in NOTED for finding in findings),
    }


def write_report(report: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")


def render(report: dict[str, Any]) -> str:
    lines = [
        f"chaos suite ({report['mode']}, seed {report['seed']}): {report['planned_interactions']:,}"
        f" interactions of {report['people']:,} people, event times "
        f"{report['event_times']['first'][:16]} .. {report['event_times']['last'][:16]}",
    ]
    for name in ("reference", "chaos"):
        run = report[name]
        settled = (
            f"settled {run['settled_after_seconds']}s after"
            if run["settled_after_seconds"] is not None
            else f"NOT settled ({run['not_settled']})"
        )
        unplanned = [e for e in run["service_exits"] if not e["planned"]]
        lines += [
            f"{name}: posted {run['interactions_posted']:,}, accepted "
            f"{run['interactions_accepted']:,} in {run['load_seconds']}s ({run['requests']:,} "
            f"requests: {run['answers']}), {settled}; stored {run['interactions_stored']:,}",
            f"  {run['leads']:,} leads by stage {run['leads_by_stage']}; hand-off events "
            f"{run['hand_off_events']}; lead.handoffs {run['handoffs_by_kind']}; router "
            f"{run['router_status_by_team']}; events only in an outbox "
            f"{run['events_only_in_outbox']}",
        ]
        if unplanned:
            lines.append(f"  services that died on their own: {unplanned}")
    lines.append(f"faults injected: {len(report['faults'])}")
    for fault in report["faults"]:
        lines.append(
            f"  {fault['injected_at']:7.1f}s {fault['kind']:<36} {fault['detail']:<22} "
            f"accepted {_seconds(fault['accepted_after'])}, scored "
            f"{_seconds(fault['scored_after'])}, assigned {_seconds(fault['assigned_after'])}, "
            f"backlog stored {_seconds(fault['caught_up_after'])}"
            + (f" ({'; '.join(fault['notes'])})" if fault["notes"] else "")
        )
    if report["passed"]:
        lines.append("findings: none: the chaos run ends as the reference does")
        if not report["findings"]:
            return "\n".join(lines)
    lines.append("findings:" if not report["passed"] else "noted:")
    for key, count in sorted(report["findings"].items()):
        check = key.partition(": ")[2]
        lines.append(f"  {key}: {count} ({report['meaning'].get(check, '')})")
        for example in report["examples"][key][:EXAMPLES_PRINTED]:
            lines.append(f"      {example['lead']} {example['detail']}"[:400])
    return "\n".join(lines)


def _seconds(value: float | None) -> str:
    return f"after {value:.1f}s" if value is not None else "never"
