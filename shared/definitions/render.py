"""The lead definitions as a document for marketing and sales (Markdown and HTML)."""

from __future__ import annotations

import html
from dataclasses import dataclass

from shared.definitions.loader import LoadedDefinitions
from shared.definitions.model import LeadDefinitions, Stage, StageEntry, hand_off_stage


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


def _entry(entry: StageEntry, definitions: LeadDefinitions) -> str:
    if entry.action:
        needs = f", recording {', '.join(entry.requires)}" if entry.requires else ""
        return f"a rep records **{entry.action}**{needs}"
    parts = []
    if entry.score is not None:
        parts.append(f"score of at least **{entry.score:g}**")
    if entry.grade:
        labels = {level.grade: level.label for level in definitions.grades.levels}
        parts.append(f"grade **{entry.grade}** ({labels.get(entry.grade, '')}) or hotter")
    if entry.required_fields:
        parts.append("known " + ", ".join(entry.required_fields))
    return "automatically with " + " and ".join(parts)


def _stage_row(stage: Stage, definitions: LeadDefinitions, hand_off: str) -> tuple[str, ...]:
    name = f"{stage.name} (hand-off)" if stage.key == hand_off else stage.name
    return (name, stage.owner, _entry(stage.entry, definitions), stage.description)


def _range(low: float | None, high: float | None) -> str:
    if low is None and high is None:
        return "any"
    if high is None:
        return f"{low:g} or more"
    if low is None:
        return f"below {high:g}"
    return f"{low:g} to below {high:g}"


def document(loaded: LoadedDefinitions) -> list[Block]:
    """The definitions as headings, paragraphs and tables, in the order people read them."""
    d = loaded.definitions
    hand_off = hand_off_stage(d)
    half_life = d.scoring.decay.half_life_days
    blocks: list[Block] = [
        Heading(d.name, 1),
        Paragraph(f"Version `{loaded.version}` of `{loaded.source.name}`."),
        Paragraph(
            f"A lead is handed to sales when it reaches **{hand_off.name}**: "
            f"{_entry(hand_off.entry, d)}."
        ),
        Heading("Stages"),
        Table(
            ("Stage", "Owner", "How a lead gets there", "Meaning"),
            tuple(_stage_row(stage, d, hand_off.key) for stage in d.stages),
        ),
        Heading("Points for behaviour"),
        Paragraph(
            f"Behaviour points halve every {half_life:g} days."
            if half_life
            else "Behaviour points do not decay."
        ),
        Table(
            ("Rule", "When", "Points", "At most"),
            tuple(
                (
                    rule.key,
                    ", ".join(
                        f"{k} = `{v}`" for k, v in rule.match.model_dump(exclude_none=True).items()
                    )
                    or "any interaction",
                    f"{rule.points:+g}",
                    f"{rule.cap.points:g} per {rule.cap.window_days:g} days"
                    if rule.cap
                    else "no cap",
                )
                for rule in d.scoring.rules
            ),
        ),
        Heading("Points for fit"),
        Table(
            ("Rule", "Field", "Matches", "Points"),
            tuple(
                (
                    rule.key,
                    rule.field,
                    ", ".join(rule.any_of) or _range(rule.min, rule.max),
                    f"{rule.points:+g}",
                )
                for rule in d.scoring.fit
            ),
        ),
        Heading("Grades"),
        Table(
            ("Grade", "Label", "Score", "Fit"),
            (
                *tuple(
                    (
                        band.grade,
                        _label(d, band.grade),
                        _range(band.score.min, band.score.max),
                        _range(band.fit.min, band.fit.max),
                    )
                    for band in d.grades.bands
                ),
                (d.grades.default, _label(d, d.grades.default), "otherwise", ""),
            ),
        ),
    ]
    if d.campaigns:
        blocks += [
            Heading("Campaigns"),
            Table(
                ("Campaign", "Name", "Funnel", "Multiplier", "Enters at", "Cost"),
                tuple(
                    (
                        key,
                        c.name,
                        c.funnel,
                        f"x{c.multiplier:g}",
                        c.entry_stage or "",
                        f"{c.cost:g}" if c.cost is not None else "",
                    )
                    for key, c in d.campaigns.items()
                ),
            ),
        ]
    if d.routing:
        blocks += [
            Heading("Follow-up"),
            Table(
                ("Grade", "Accept within"),
                tuple(
                    (grade, f"{sla.accept_within_minutes:g} minutes")
                    for grade, sla in d.routing.sla.items()
                ),
            ),
        ]
    if d.nurture:
        blocks += [
            Heading("Sending a lead back"),
            Table(
                ("Reason", "Means", "Goes to", "Nurture track", "Can return after"),
                tuple(
                    (
                        r.label,
                        r.action.replace("_", " "),
                        r.stage,
                        r.track or "",
                        f"{r.cool_off_days:g} days",
                    )
                    for r in d.nurture.reasons.values()
                ),
            ),
        ]
    return blocks


def _label(definitions: LeadDefinitions, grade: str) -> str:
    return next(level.label for level in definitions.grades.levels if level.grade == grade)


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


def _inline(text: str) -> str:
    """Markdown's **bold** and `code` as HTML, everything else escaped."""
    escaped = html.escape(text)
    for marker, tag in (("**", "strong"), ("`", "code")):
        pieces = escaped.split(marker)
        escaped = "".join(
            piece if index % 2 == 0 else f"<{tag}>{piece}</{tag}>"
            for index, piece in enumerate(pieces)
        )
    return escaped


def to_html(blocks: list[Block]) -> str:
    body: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            body.append(f"<h{block.level}>{_inline(block.text)}</h{block.level}>")
        elif isinstance(block, Paragraph):
            body.append(f"<p>{_inline(block.text)}</p>")
        else:
            head = "".join(f"<th>{_inline(cell)}</th>" for cell in block.header)
            rows = "".join(
                "<tr>" + "".join(f"<td>{_inline(cell)}</td>" for cell in row) + "</tr>"
                for row in block.rows
            )
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
    title = next((b.text for b in blocks if isinstance(b, Heading)), "Lead definitions")
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)}</title><style>"
        "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;"
        "padding:0 1rem;color:#1f2937}"
        "table{border-collapse:collapse;width:100%;margin:1rem 0}"
        "th,td{border:1px solid #d1d5db;padding:.4rem .6rem;text-align:left;"
        "vertical-align:top}"
        "th{background:#f3f4f6}code{background:#f3f4f6;padding:0 .2rem}"
        "</style></head><body>" + "\n".join(body) + "</body></html>\n"
    )
