"""The lead definitions as a document for marketing and sales (Markdown and HTML)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

from markdown_it import MarkdownIt

from shared.definitions.loader import LoadedDefinitions
from shared.definitions.model import (
    Decay,
    FitRule,
    LeadDefinitions,
    NamedScore,
    PointsRule,
    Stage,
    StageEntry,
    hand_off_stage,
)


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


Block = Heading | Paragraph | Table

# The definitions come from a file an admin writes: raw HTML in it is shown as text, and
# nothing in it becomes a link or an image.
_MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable("table")
_MARKDOWN.disable(["link", "image", "autolink"])

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;"
    "padding:0 1rem;color:#1f2937}"
    "table{border-collapse:collapse;width:100%;margin:1rem 0}"
    "th,td{border:1px solid #d1d5db;padding:.4rem .6rem;text-align:left;vertical-align:top}"
    "th{background:#f3f4f6}code{background:#f3f4f6;padding:0 .2rem}"
)


def _entry(entry: StageEntry, definitions: LeadDefinitions) -> str:
    if entry.action:
        needs = f", recording {', '.join(entry.requires)}" if entry.requires else ""
        return f"a rep records **{entry.action}**{needs}"
    parts = []
    if entry.score is not None:
        parts.append(f"score of at least **{entry.score:g}**")
    if entry.grade:
        parts.append(f"grade **{entry.grade}** ({_label(definitions, entry.grade)}) or hotter")
    if entry.required_fields:
        parts.append("known " + ", ".join(entry.required_fields))
    for combined, minimums in (("all of", entry.all_of), ("any of", entry.any_of)):
        if minimums:
            scores = ", ".join(f"{name} ≥ {minimum:g}" for name, minimum in minimums.items())
            parts.append(f"{combined}: {scores}")
    return "automatically with " + " and ".join(parts)


def _label(definitions: LeadDefinitions, grade: str) -> str:
    return next((level.label for level in definitions.grades.levels if level.grade == grade), "")


def _range(low: float | None, high: float | None) -> str:
    if low is None and high is None:
        return "any"
    if high is None:
        return f"{low:g} or more"
    if low is None:
        return f"below {high:g}"
    return f"{low:g} to below {high:g}"


def _introduction(loaded: LoadedDefinitions) -> list[Block]:
    d = loaded.definitions
    hand_off = hand_off_stage(d)
    return [
        Heading(d.name, 1),
        Paragraph(f"Version `{loaded.version}` of `{loaded.source.name}`."),
        Paragraph(
            f"A lead is handed to sales when it reaches **{hand_off.name}**: "
            f"{_entry(hand_off.entry, d)}."
        ),
    ]


def _stages(d: LeadDefinitions) -> list[Block]:
    hand_off = hand_off_stage(d).key

    def row(stage: Stage) -> tuple[str, ...]:
        name = f"{stage.name} (hand-off)" if stage.key == hand_off else stage.name
        return (name, stage.owner, _entry(stage.entry, d), stage.description)

    return [
        Heading("Stages"),
        Table(
            ("Stage", "Owner", "How a lead gets there", "Meaning"),
            tuple(row(stage) for stage in d.stages),
        ),
    ]


def _behaviour_points(
    rules: Sequence[PointsRule], decay: Decay, heading: str = "Points for behaviour"
) -> list[Block]:
    half_life = decay.half_life_days
    rows = []
    for rule in rules:
        match = rule.match.model_dump(exclude_none=True)
        when = ", ".join(f"{key} = `{value}`" for key, value in match.items())
        cap = rule.cap
        at_most = f"{cap.points:g} per {cap.window_days:g} days" if cap else "no cap"
        rows.append((rule.key, when or "any interaction", f"{rule.points:+g}", at_most))
    return [
        Heading(heading),
        Paragraph(
            f"Behaviour points halve every {half_life:g} days."
            if half_life
            else "Behaviour points do not decay."
        ),
        Table(("Rule", "When", "Points", "At most"), tuple(rows)),
    ]


def _fit_points(fit: Sequence[FitRule], heading: str = "Points for fit") -> list[Block]:
    rows = tuple(
        (
            rule.key,
            rule.field,
            ", ".join(rule.any_of) or _range(rule.min, rule.max),
            f"{rule.points:+g}",
        )
        for rule in fit
    )
    return [Heading(heading), Table(("Rule", "Field", "Matches", "Points"), rows)] if rows else []


def _named_score(named: NamedScore) -> list[Block]:
    """A named score: what it measures, its rules, and the thresholds reported."""
    thresholds = ", ".join(f"{threshold:g}" for threshold in named.thresholds)
    return [
        Heading(f"Score: {named.name} (`{named.key}`)"),
        *([Paragraph(named.description)] if named.description else []),
        *(
            [Paragraph(f"Crossing {thresholds}, up or down, is reported.")]
            if named.thresholds
            else []
        ),
        *_behaviour_points(named.rules, named.decay, f"{named.name}: points for behaviour"),
        *_fit_points(named.fit, f"{named.name}: points for fit"),
    ]


def _grades(d: LeadDefinitions) -> list[Block]:
    bands = tuple(
        (
            band.grade,
            _label(d, band.grade),
            _range(band.score.min, band.score.max),
            _range(band.fit.min, band.fit.max),
        )
        for band in d.grades.bands
    )
    otherwise = (d.grades.default, _label(d, d.grades.default), "otherwise", "")
    return [Heading("Grades"), Table(("Grade", "Label", "Score", "Fit"), (*bands, otherwise))]


def _campaigns(d: LeadDefinitions) -> list[Block]:
    rows = tuple(
        (
            key,
            c.name,
            c.funnel,
            f"x{c.multiplier:g}",
            c.entry_stage or "",
            f"{c.cost:g}" if c.cost is not None else "",
        )
        for key, c in d.campaigns.items()
    )
    header = ("Campaign", "Name", "Funnel", "Multiplier", "Enters at", "Cost")
    return [Heading("Campaigns"), Table(header, rows)] if rows else []


def _follow_up(d: LeadDefinitions) -> list[Block]:
    if not d.routing:
        return []
    rows = tuple(
        (
            grade,
            f"{sla.accept_within_minutes:g} minutes",
            f"at {sla.remind_at_percent:g} % of it" if sla.remind_at_percent else "no reminder",
        )
        for grade, sla in d.routing.sla.items()
    )
    return [Heading("Follow-up"), Table(("Grade", "Accept within", "The rep is reminded"), rows)]


def _sending_back(d: LeadDefinitions) -> list[Block]:
    if not d.nurture:
        return []
    rows = tuple(
        (r.label, r.action.replace("_", " "), r.stage, r.track or "", f"{r.cool_off_days:g} days")
        for r in d.nurture.reasons.values()
    )
    header = ("Reason", "Means", "Goes to", "Nurture track", "Can return after")
    return [Heading("Sending a lead back"), Table(header, rows)]


def document(loaded: LoadedDefinitions) -> list[Block]:
    """The definitions as headings, paragraphs and tables, in the order people read them."""
    d = loaded.definitions
    return [
        *_introduction(loaded),
        *_stages(d),
        *_behaviour_points(d.scoring.rules, d.scoring.decay),
        *_fit_points(d.scoring.fit),
        *(block for named in d.scores for block in _named_score(named)),
        *_grades(d),
        *_campaigns(d),
        *_follow_up(d),
        *_sending_back(d),
    ]


def to_markdown(blocks: list[Block]) -> str:
    out: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            out += ["#" * block.level + " " + block.text, ""]
        elif isinstance(block, Paragraph):
            out += [block.text, ""]
        else:
            out.append("| " + " | ".join(block.header) + " |")
            out.append("|" + "---|" * len(block.header))
            out += [
                "| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |"
                for row in block.rows
            ]
            out.append("")
    return "\n".join(out)


def to_html(blocks: list[Block]) -> str:
    """The Markdown document as a standalone HTML page."""
    title = next((b.text for b in blocks if isinstance(b, Heading)), "Lead definitions")
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body>{_MARKDOWN.render(to_markdown(blocks))}</body></html>\n"
    )
