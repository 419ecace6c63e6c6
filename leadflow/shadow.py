"""`leadflow shadow ...`: start, read, stop and promote a shadow run over scoring's API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from leadflow.stack import CREDENTIALS_FILE, read_stack_file
from shared.settings import Settings

shadow_app = typer.Typer(
    help="Shadow runs: score live traffic with candidate definitions too, without acting on it.",
    no_args_is_help=True,
)
ScoringUrl = Annotated[
    str | None,
    typer.Option(
        "--scoring-url",
        envvar="LEADFLOW_SCORING_URL",
        help="scoring's address (default: the one a running `leadflow up` wrote)",
    ),
]


def _connection(scoring_url: str | None) -> tuple[str, str]:
    """Scoring's address and the admin key: given, else those of a running `leadflow up`."""
    settings = Settings()
    running = read_stack_file(settings.state_dir)
    url = scoring_url or running.get("scoring_url")
    key = settings.admin_key
    credentials = settings.state_dir / CREDENTIALS_FILE
    if key is None and credentials.exists():
        key = json.loads(credentials.read_text()).get("admin_key")
    if not url or not key:
        typer.echo(
            "no scoring to talk to: start one with `make run`, or set LEADFLOW_SCORING_URL "
            "and LEADFLOW_ADMIN_KEY",
            err=True,
        )
        raise typer.Exit(1)
    return url.rstrip("/"), key


def _call(scoring_url: str | None, method: str, path: str, **body: Any) -> Any:
    url, key = _connection(scoring_url)
    try:
        response = httpx.request(
            method,
            f"{url}/v1/definitions/shadow{path}",
            headers={"Authorization": f"Bearer {key}"},
            json=body or None,
            timeout=30,
        )
    except httpx.HTTPError as error:
        typer.echo(f"{url}: {error}", err=True)
        raise typer.Exit(1) from None
    answer = response.json() if response.content else {}
    if response.is_error:
        problems = answer.get("errors") or []
        typer.echo(f"{response.status_code}: {answer.get('detail') or answer}", err=True)
        for problem in problems:
            typer.echo(f"  {problem.get('field', '')}: {problem.get('message', problem)}", err=True)
        raise typer.Exit(1)
    return answer


@shadow_app.command("start")
def start(
    file: Annotated[Path, typer.Argument(help="the candidate lead-definitions YAML file")],
    label: Annotated[str | None, typer.Option(help="why this candidate, in a few words")] = None,
    scoring_url: ScoringUrl = None,
) -> None:
    """Start a shadow run of FILE: every new interaction is also scored against it."""
    from leadflow.cli import definitions_problems_reported
    from shared.definitions import load_definitions

    with definitions_problems_reported():
        load_definitions(file)  # the same problems, with this file's name, before sending it
    run = _call(scoring_url, "POST", "", document=file.read_text(encoding="utf-8"), label=label)
    typer.echo(f"shadow run {run['id']} started: candidate version {run['version']}")


@shadow_app.command("report")
def report(
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
    scoring_url: ScoringUrl = None,
) -> None:
    """What the candidate would have decided, against the active definitions."""
    answer = _call(scoring_url, "GET", "/report")
    if as_json:
        typer.echo(json.dumps(answer, indent=2))
        return
    Console().print(*report_tables(answer))


@shadow_app.command("stop")
def stop(scoring_url: ScoringUrl = None) -> None:
    """Stop the shadow run; its report is kept."""
    run = _call(scoring_url, "POST", "/stop")
    typer.echo(f"shadow run {run['id']} stopped; `leadflow shadow report` still shows it")


@shadow_app.command("promote")
def promote(scoring_url: ScoringUrl = None) -> None:
    """Make the shadow run's candidate the active definitions, its report the record of why."""
    run = _call(scoring_url, "POST", "/promote")
    typer.echo(json.dumps(run, indent=2))


def report_tables(report: dict[str, Any]) -> list[Table]:
    """The report as tables: hand-offs both ways, grade shifts, weekly load, sales' verdicts."""
    handed_off = report["handed_off"]
    overview = Table(
        title=f"{report['leads']} leads evaluated", caption=f"shadow run {report['run']['id']}"
    )
    overview.add_column("hand-offs")
    overview.add_column("leads", justify="right")
    for key, label in (
        ("candidate_only", "by the candidate only"),
        ("active_only", "by the active definitions only"),
        ("both", "by both"),
        ("neither", "by neither"),
    ):
        count = handed_off[key]
        overview.add_row(label, str(count["count"] if isinstance(count, dict) else count))
    grades = Table(title="Grade shifts")
    for column in ("active grade", "candidate grade", "leads"):
        grades.add_column(column, justify="right" if column == "leads" else "left")
    for row in report["grade_shift"]:
        grades.add_row(row["active_grade"], row["candidate_grade"], str(row["leads"]))
    weekly = Table(title="Hand-offs per week and team")
    for column in ("week", "team", "active", "candidate"):
        weekly.add_column(column, justify="right" if column in ("active", "candidate") else "left")
    for row in report["weekly_by_team"]:
        weekly.add_row(row["week"], row["team"] or "-", str(row["active"]), str(row["candidate"]))
    verdicts = report["verdicts"]
    precision = Table(
        title=f"Against sales' verdicts: {verdicts['accepted']} accepted, "
        f"{verdicts['returned']} returned"
    )
    for column in ("definitions", "handed off, accepted", "handed off, returned", "precision"):
        precision.add_column(column, justify="left" if column == "definitions" else "right")
    for side in ("active", "candidate"):
        figures = verdicts[side]
        shown = figures["precision"]
        precision.add_row(
            side,
            str(figures["handed_off_accepted"]),
            str(figures["handed_off_returned"]),
            "-" if shown is None else f"{shown:.0%}",
        )
    return [overview, grades, weekly, precision]
