"""Reading `lead-definitions.yaml`: clear errors naming file, place and problem; a version hash."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from shared.definitions.checks import Problem, problems
from shared.definitions.model import LeadDefinitions
from shared.paths import DocumentPath, field_path


@dataclass(frozen=True)
class Located:
    path: str
    line: int | None
    message: str


class ProblemsInFile(Exception):
    """A YAML file that cannot be used; `str()` lists every problem, one per line."""

    subject = "the file"

    def __init__(self, file: Path, found: list[Located]) -> None:
        self.file = file
        self.found = found
        super().__init__(self.render())

    def render(self) -> str:
        lines = [f"{self.file}: {len(self.found)} problem(s) in {self.subject}"]
        for problem in self.found:
            where = f"{self.file}:{problem.line}" if problem.line else str(self.file)
            lines.append(f"  {where}: {problem.path or '(document)'}: {problem.message}")
        return "\n".join(lines)


class DefinitionsError(ProblemsInFile):
    """The definitions file cannot be used; `str()` lists every problem, one per line."""

    subject = "the lead definitions"


@dataclass(frozen=True)
class LoadedDefinitions:
    """Valid definitions, where they came from, and their version (a content hash)."""

    definitions: LeadDefinitions
    version: str
    source: Path


def definitions_version(definitions: LeadDefinitions) -> str:
    """The hash of the normalised content: comments and layout do not change it."""
    canonical = json.dumps(definitions.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _line_index(node: yaml.Node, path: DocumentPath = ()) -> dict[DocumentPath, int]:
    """Document path -> 1-based line, for every mapping key and sequence item."""
    lines = {path: node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = (*path, str(key.value))
            lines.update(_line_index(value, child))
            lines[child] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines.update(_line_index(item, (*path, index)))
    return lines


def locate(
    found: Iterable[Problem],
    lines: dict[DocumentPath, int],
    where: Callable[[DocumentPath], str] = field_path,
) -> list[Located]:
    """Each problem with the line of its place (or of the nearest place above it)."""
    located = []
    for path, message in found:
        line = next((lines[path[:n]] for n in range(len(path), -1, -1) if path[:n] in lines), None)
        located.append(Located(where(path), line, message))
    return located


def shape_problems(error: ValidationError) -> list[tuple[DocumentPath, str]]:
    """Pydantic's errors as (path, message) problems."""
    return [
        (tuple(detail["loc"]), str(detail["msg"]).removeprefix("Value error, "))
        for detail in error.errors()
    ]


def read_yaml(
    text: str, file: Path, error: type[ProblemsInFile]
) -> tuple[Any, dict[DocumentPath, int]]:
    """The document, and the line of each of its places; `error` if it is not YAML."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        document = yaml.safe_load(text)
    except yaml.YAMLError as problem:
        mark = getattr(problem, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        what = getattr(problem, "problem", None) or str(problem)
        raise error(file, [Located("", line, f"not valid YAML: {what}")]) from None
    return document, _line_index(node) if node is not None else {}


def read_file(file: Path, error: type[ProblemsInFile]) -> str:
    try:
        return file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as problem:
        raise error(file, [Located("", None, f"cannot be read: {problem}")]) from None


def parse_definitions(text: str, source: Path) -> LoadedDefinitions:
    """Validate the text of a definitions file; raise `DefinitionsError` listing what is wrong."""
    document, lines = read_yaml(text, source, DefinitionsError)
    try:
        definitions = LeadDefinitions.model_validate(document)
    except ValidationError as error:
        raise DefinitionsError(source, locate(shape_problems(error), lines)) from None
    meaning = problems(definitions)
    if meaning:
        raise DefinitionsError(source, locate(meaning, lines))
    return LoadedDefinitions(definitions, definitions_version(definitions), source)


def load_definitions(path: Path) -> LoadedDefinitions:
    """Read and validate a definitions file."""
    return parse_definitions(read_file(path, DefinitionsError), path)
