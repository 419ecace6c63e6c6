"""The committed JSON Schemas and AsyncAPI document match the models."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.schemas import asyncapi_document, rendered_schema_files
from shared.topics import CATALOG

pytestmark = pytest.mark.unit

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"


@pytest.mark.parametrize("name", sorted(rendered_schema_files()))
def test_committed_schema_is_current(name: str) -> None:
    committed = SCHEMA_DIR / name
    assert committed.exists(), f"schemas/{name} is missing: run `leadflow schema`"
    assert committed.read_text() == rendered_schema_files()[name], (
        f"schemas/{name} is stale: run `leadflow schema` and commit the result"
    )


def test_asyncapi_lists_every_topic() -> None:
    addresses = {channel["address"] for channel in asyncapi_document()["channels"].values()}
    assert addresses == {topic.name for topic in CATALOG}
