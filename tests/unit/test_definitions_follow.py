"""Following the definitions file: each change to valid definitions of another version is
answered once; a broken file, a layout-only change or a missing file changes nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path

from shared.definitions import LoadedDefinitions, load_definitions
from shared.definitions.follow import DefinitionsFile, follow_definitions
from tests.unit.test_shadow import CANDIDATE_TEXT, DEFAULT_TEXT

ACTIVE = load_definitions(Path(__file__).resolve().parents[2] / "lead-definitions.yaml")


def test_a_change_to_other_valid_definitions_is_answered_once(tmp_path: Path) -> None:
    path = tmp_path / "lead-definitions.yaml"
    path.write_text(DEFAULT_TEXT)
    followed = DefinitionsFile(path)
    assert followed.changed(ACTIVE.version) is None  # the version in use

    path.write_text("# a comment only\n" + DEFAULT_TEXT)
    assert followed.changed(ACTIVE.version) is None  # the same version

    path.write_text(CANDIDATE_TEXT)
    changed = followed.changed(ACTIVE.version)
    assert changed is not None
    assert changed.version != ACTIVE.version
    assert followed.changed(ACTIVE.version) is None  # answered once


def test_a_broken_or_missing_file_leaves_the_definitions_in_use(tmp_path: Path) -> None:
    path = tmp_path / "lead-definitions.yaml"
    followed = DefinitionsFile(path)
    assert followed.changed(ACTIVE.version) is None
    path.write_text(CANDIDATE_TEXT.replace("owner: marketing", "owner: nobody", 1))
    assert followed.changed(ACTIVE.version) is None


def test_the_loop_switches_the_service_to_the_changed_file(tmp_path: Path) -> None:
    path = tmp_path / "lead-definitions.yaml"
    path.write_text(CANDIDATE_TEXT)
    in_use: list[LoadedDefinitions] = [ACTIVE]

    async def follow_until_switched() -> None:
        stopping = asyncio.Event()

        def use(loaded: LoadedDefinitions) -> None:
            in_use.append(loaded)
            stopping.set()

        loop = follow_definitions(DefinitionsFile(path), lambda: in_use[-1].version, use)
        await asyncio.wait_for(loop(stopping), 5)

    asyncio.run(follow_until_switched())
    assert [loaded.definitions.stages[2].entry.score for loaded in in_use] == [100, 40]
