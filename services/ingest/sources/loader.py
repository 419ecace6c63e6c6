"""Reading a sources file (`LEADFLOW_SOURCES`): each problem named by file, line, source and key.

The same style as `leadflow definitions check`: a list of problems, never a traceback.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from services.ingest.sources.checks import problems
from services.ingest.sources.model import Source, SourcesFile
from shared.definitions.loader import (
    ProblemsInFile,
    locate,
    read_file,
    read_yaml,
    shape_problems,
)
from shared.paths import DocumentPath, field_path

# Pydantic's places name the variant of a union and a dict's key; the file has neither.
_NOT_IN_FILE = frozenset({"hmac-sha256", "standard-webhooks", "[key]"})
_MESSAGES = {"Extra inputs are not permitted": "unknown key", "Field required": "required"}


class SourcesError(ProblemsInFile):
    """The sources file cannot be used; `str()` lists every problem, one per line."""

    subject = "the sources"


def _source_label(document: Any, index: int) -> str:
    sources = document.get("sources") if isinstance(document, Mapping) else None
    source = sources[index] if isinstance(sources, list) and index < len(sources) else None
    name = source.get("name") if isinstance(source, Mapping) else None
    return f"source {name!r}" if isinstance(name, str) else f"source #{index + 1} (no name)"


def parse_sources(text: str, file: Path) -> tuple[Source, ...]:
    """Validate the text of a sources file; raise `SourcesError` listing what is wrong."""
    document, lines = read_yaml(text, file, SourcesError)

    def where(path: DocumentPath) -> str:
        """`("sources", 0, "signature", "header")` -> `source 'typeform': signature.header`."""
        if len(path) >= 2 and path[0] == "sources" and isinstance(path[1], int):
            return f"{_source_label(document, path[1])}: {field_path(path[2:]) or '(source)'}"
        return field_path(path)

    try:
        declared = SourcesFile.model_validate(document)
    except ValidationError as error:
        found = [
            (tuple(part for part in path if part not in _NOT_IN_FILE), _MESSAGES.get(text, text))
            for path, text in shape_problems(error)
        ]
        raise SourcesError(file, locate(found, lines, where)) from None
    if meaning := problems(declared):
        raise SourcesError(file, locate(meaning, lines, where))
    return tuple(declared.sources)


def load_sources(file: Path) -> tuple[Source, ...]:
    """Read and validate a sources file."""
    return parse_sources(read_file(file, SourcesError), file)
