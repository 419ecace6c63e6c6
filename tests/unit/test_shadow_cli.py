"""`leadflow shadow`: the report as tables, a broken candidate refused before it is sent, and
the routes it calls."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console
from typer.testing import CliRunner

from leadflow.cli import app
from leadflow.shadow import report_tables
from services.scoring.domain.shadow import ShadowLead, shadow_report
from tests.unit.test_shadow import CANDIDATE_TEXT, MONDAY, RUN, decision

runner = CliRunner()


@pytest.fixture
def scoring(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, Any]]:
    """Scoring's answers, and the requests the command sent."""
    sent: list[tuple[str, str, Any]] = []
    report = shadow_report(
        RUN,
        [ShadowLead("l1", decision("C"), decision("B", MONDAY))],
        {"l1": "accepted"},
    ).model_dump(mode="json")

    def answer(method: str, url: str, **options: Any) -> httpx.Response:
        sent.append((method, url, options["json"]))
        if url.endswith("/report"):
            return httpx.Response(200, json=report)
        return httpx.Response(201, json={"id": "run-1", "version": "abc"})

    monkeypatch.setattr(httpx, "request", answer)
    monkeypatch.setenv("LEADFLOW_SCORING_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("LEADFLOW_ADMIN_KEY", "admin")
    return sent


def test_start_sends_the_candidate_and_report_prints_its_tables(
    scoring: list[tuple[str, str, Any]], tmp_path: Path
) -> None:
    candidate = tmp_path / "candidate.yaml"
    candidate.write_text(CANDIDATE_TEXT)

    started = runner.invoke(app, ["shadow", "start", str(candidate), "--label", "lower"])
    shown = runner.invoke(app, ["shadow", "report"])

    assert started.exit_code == 0, started.output
    assert "shadow run run-1 started" in started.output
    assert scoring[0] == (
        "POST",
        "http://127.0.0.1:1/v1/definitions/shadow",
        {"document": CANDIDATE_TEXT, "label": "lower"},
    )
    assert shown.exit_code == 0, shown.output
    assert "by the candidate only" in shown.output
    assert "Grade shifts" in shown.output


def test_a_broken_candidate_is_refused_with_its_place_before_anything_is_sent(
    scoring: list[tuple[str, str, Any]], tmp_path: Path
) -> None:
    candidate = tmp_path / "candidate.yaml"
    candidate.write_text(CANDIDATE_TEXT.replace("owner: marketing", "owner: nobody", 1))

    result = runner.invoke(app, ["shadow", "start", str(candidate)])

    assert result.exit_code == 1
    assert f"{candidate}:" in result.output
    assert "stages[0].owner" in result.output
    assert scoring == []


def test_the_tables_show_precision_against_sales_verdicts() -> None:
    report = shadow_report(
        RUN, [ShadowLead("l1", decision("C"), decision("B", MONDAY))], {"l1": "accepted"}
    ).model_dump(mode="json")
    console = Console(record=True, width=120)
    console.print(*report_tables(report))
    text = console.export_text()
    assert "1 accepted, 0 returned" in text
    assert "100%" in text
