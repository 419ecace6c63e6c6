"""Lead definitions: every shipped file loads; each kind of mistake gets file, place, reason."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from leadflow.cli import app
from shared.definitions import DefinitionsError, load_definitions
from shared.definitions.loader import parse_definitions
from shared.definitions.model import hand_off_stage
from shared.definitions.render import document, to_html, to_markdown

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = [
    ROOT / "lead-definitions.yaml",
    ROOT / "examples/definitions/waterfall.yaml",
    ROOT / "examples/definitions/contacts-ladder.yaml",
]
MINIMAL = """
stages:
  - {key: inquiry, name: Inquiry, owner: marketing, entry: {required_fields: [email]}}
  - {key: sql, name: Sales ready, owner: sales, entry: {score: 50}}
  - {key: sal, name: Accepted, owner: sales, entry: {action: accept}}
scoring:
  decay: {half_life_days: 30}
  rules:
    - key: visit
      match: {channel: web, type: page_view}
      points: 5
      cap: {points: 10, window_days: 7}
grades:
  levels: [{grade: A, label: hot}, {grade: B, label: warm}]
  default: B
  bands:
    - {grade: A, score: {min: 40}}
"""


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_definitions_load_with_one_hand_off(path: Path) -> None:
    loaded = load_definitions(path)
    assert len(loaded.version) == 16
    assert hand_off_stage(loaded.definitions).owner == "sales"


def test_the_three_ladders_hand_off_where_their_business_does() -> None:
    hand_offs = [hand_off_stage(load_definitions(p).definitions).key for p in SHIPPED]
    assert hand_offs == ["sql", "mql", "qualified"]


def test_version_ignores_comments_and_layout_but_not_content() -> None:
    base = parse_definitions(MINIMAL, Path("a.yaml")).version
    commented = parse_definitions(
        "# a comment\n" + MINIMAL.replace("{key: visit", "{ key: visit"), Path("b.yaml")
    )
    assert commented.version == base
    changed = parse_definitions(MINIMAL.replace("points: 5", "points: 6"), Path("c.yaml"))
    assert changed.version != base


def problems_of(text: str) -> list[tuple[str, int | None, str]]:
    with pytest.raises(DefinitionsError) as caught:
        parse_definitions(text, Path("defs.yaml"))
    assert "Traceback" not in str(caught.value)
    return [(p.path, p.line, p.message) for p in caught.value.found]


def test_unknown_key_is_named_with_its_path_and_line() -> None:
    [(path, line, message)] = problems_of(
        MINIMAL.replace("points: 5\n", "points: 5\n      colour: red\n")
    )
    assert path == "scoring.rules[0].colour"
    assert line == 12
    assert "Extra inputs" in message


def test_wrong_type_is_named_with_its_path() -> None:
    [(path, _, message)] = problems_of(MINIMAL.replace("points: 5\n", "points: many\n"))
    assert path == "scoring.rules[0].points"
    assert "number" in message


def test_stage_referenced_but_not_defined() -> None:
    text = MINIMAL + "campaigns:\n  webinar: {name: W, funnel: top, entry_stage: mql}\n"
    [(path, line, message)] = problems_of(text)
    assert path == "campaigns.webinar.entry_stage"
    assert line == 19
    assert "'mql' is referenced but not defined" in message


def test_threshold_no_score_can_reach() -> None:
    [(path, _, message)] = problems_of(MINIMAL.replace("{score: 50}", "{score: 500}"))
    assert path == "stages[1].entry.score"
    assert "no lead can reach 500" in message


def test_uncapped_rules_make_every_threshold_reachable() -> None:
    text = MINIMAL.replace("{score: 50}", "{score: 500}").replace(
        "      cap: {points: 10, window_days: 7}\n", ""
    )
    parse_definitions(text, Path("defs.yaml"))


def test_overlapping_grade_bands() -> None:
    text = MINIMAL + "    - {grade: B, score: {min: 20, max: 60}}\n"
    [(path, _, message)] = problems_of(text)
    assert path == "grades.bands[1]"
    assert "overlaps grades.bands[0]" in message


def test_two_hand_off_stages() -> None:
    text = MINIMAL.replace("entry: {action: accept}", "entry: {score: 60}")
    [(path, _, message)] = problems_of(text)
    assert path == "stages[2].entry"
    assert "two hand-off stages" in message


def test_invalid_yaml_names_the_line() -> None:
    [(path, line, message)] = problems_of(MINIMAL.replace("default: B", "default: [B"))
    assert line is not None
    assert "not valid YAML" in message
    assert path == ""


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(DefinitionsError, match="cannot be read"):
        load_definitions(tmp_path / "missing.yaml")


def test_check_command_prints_problems_and_exits_1(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(MINIMAL.replace("{score: 50}", "{score: 500}"))
    result = CliRunner().invoke(app, ["definitions", "check", str(broken)])
    assert result.exit_code == 1
    assert f"{broken}:4: stages[1].entry.score: no lead can reach 500" in result.output
    good = CliRunner().invoke(app, ["definitions", "check", str(SHIPPED[0])])
    assert good.exit_code == 0


def test_render_shows_stages_owners_points_grades_and_hand_off(tmp_path: Path) -> None:
    blocks = document(load_definitions(SHIPPED[0]))
    markdown = to_markdown(blocks)
    assert "Sales-ready lead (hand-off)" in markdown
    assert (
        "| pricing-page | channel = `web`, type = `page_view`, url = `*pricing*` "
        "| +10 | 20 per 7 days |" in markdown
    )
    assert "| A | hot | 100 or more | 20 or more |" in markdown
    page = to_html(blocks)
    assert "<th>Owner</th>" in page
    assert "<script" not in page
    output = tmp_path / "defs.html"
    result = CliRunner().invoke(
        app, ["definitions", "render", str(SHIPPED[0]), "--output", str(output)]
    )
    assert result.exit_code == 0
    assert output.read_text().startswith("<!doctype html>")


def test_the_html_document_shows_what_an_admin_wrote_as_text() -> None:
    written = MINIMAL.replace(
        "name: Inquiry,",
        "name: Inquiry, description: '<script>x()</script> [site](javascript:x) <b>hi</b>',",
    )
    page = to_html(document(parse_definitions(written, Path("a.yaml"))))
    assert "&lt;script&gt;x()&lt;/script&gt;" in page
    assert "&lt;b&gt;hi&lt;/b&gt;" in page
    assert "<script" not in page
    assert "<a " not in page


def test_every_shipped_file_is_plain_yaml_without_anchors_surprises() -> None:
    for path in SHIPPED:
        assert isinstance(yaml.safe_load(path.read_text()), dict)
