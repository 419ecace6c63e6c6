"""Golden leads: the shipped cases hold for their definitions, and the command gates on them."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from leadflow.cli import app
from leadflow.golden import run_cases
from shared.definitions import load_definitions

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = {
    "lead-definitions": ROOT / "lead-definitions.yaml",
    "waterfall": ROOT / "examples/definitions/waterfall.yaml",
    "contacts-ladder": ROOT / "examples/definitions/contacts-ladder.yaml",
    "product-lines": ROOT / "examples/definitions/product-lines.yaml",
}


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_the_shipped_golden_cases_hold(name: str) -> None:
    files = sorted((ROOT / "golden" / name).glob("*.yaml"))
    assert len(files) >= 3
    checks = run_cases(load_definitions(SHIPPED[name]).definitions, files)
    assert [check for check in checks if not check.passed] == []


def test_a_failing_case_fails_the_command_with_its_breakdown() -> None:
    """The default definitions' cases against the waterfall: several must fail."""
    result = CliRunner().invoke(
        app,
        [
            "definitions",
            "test",
            str(SHIPPED["waterfall"]),
            "--cases",
            str(ROOT / "golden/lead-definitions"),
        ],
    )
    assert result.exit_code == 1
    assert "FAIL a VP from a core market" in result.output
    assert "points then: form +20.0, demo +60.0" in result.output


def test_a_broken_case_names_its_file_line_and_key(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text(
        "name: broken\ninteractions:\n  - {at: yesterday, channel: web, type: page_view}\n"
        "expect: []\n"
    )
    result = CliRunner().invoke(
        app, ["definitions", "test", str(SHIPPED["lead-definitions"]), "--cases", str(tmp_path)]
    )
    assert result.exit_code == 1
    assert "broken.yaml:3: interactions[0].at: a time relative to now" in result.output
