"""Shadow runs (service layer): start one, report it, stop it, promote its candidate to be
the active definitions; and keep every scoring instance on the running run and on the
definitions file as it changes."""

from __future__ import annotations

import logging
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from services.scoring.domain import ScoringModel
from services.scoring.domain.shadow import Candidate, ShadowReport, ShadowRun, shadow_report
from services.scoring.handlers import ScoringService
from services.scoring.ports import UnitOfWork
from shared.definitions import LoadedDefinitions
from shared.definitions.follow import DefinitionsFile
from shared.definitions.loader import parse_definitions

log = logging.getLogger(__name__)

CANDIDATE_SOURCE = Path("candidate definitions")


class ShadowConflict(Exception):
    """The runs are not in a state that allows this (one already going on, none to stop)."""


class NoShadowRun(Exception):
    @classmethod
    def of(cls, run_id: str | None) -> NoShadowRun:
        return cls(f"no shadow run {run_id}" if run_id else "no shadow run yet")


class DefinitionsNotWritable(Exception):
    def __init__(self, path: Path, error: OSError) -> None:
        super().__init__(f"cannot write the definitions file {path}: {error.strerror or error}")


def candidate_of(run_id: str, loaded: LoadedDefinitions) -> Candidate:
    definitions = loaded.definitions
    return Candidate(run_id, loaded.version, ScoringModel(definitions), definitions.routing)


def write_definitions(path: Path, document: str, previous_version: str) -> Path:
    """Replace the definitions file at once (a reader sees the old file or the new one, never
    half of it), keeping the old one beside it as `<name>.<its version>.yaml`."""
    kept = path.with_name(f"{path.stem}.{previous_version}.yaml")
    written = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        written.write_text(document, encoding="utf-8")
        if path.exists():
            kept.write_bytes(path.read_bytes())
        os.replace(written, path)
    except OSError as error:
        written.unlink(missing_ok=True)
        raise DefinitionsNotWritable(path, error) from None
    return kept


@dataclass
class ShadowRuns:
    service: ScoringService
    definitions_path: Path
    _file: DefinitionsFile = field(init=False)

    def __post_init__(self) -> None:
        self._file = DefinitionsFile(self.definitions_path)

    async def start(self, document: str, label: str | None) -> ShadowRun:
        """Score every lead the service scores by `document` too, from now on."""
        loaded = parse_definitions(document, CANDIDATE_SOURCE)
        run = ShadowRun(
            id=str(uuid.uuid4()),
            label=label,
            version=loaded.version,
            active_version=self.service.loaded.version,
            started_at=self.service.now(),
            stopped_at=None,
            promoted_at=None,
        )
        async with self.service.units() as uow:
            if not await uow.shadow_runs.start(run, document):
                raise ShadowConflict("a shadow run is going on: stop or promote it first")
            await uow.commit()
        self.service.candidate = candidate_of(run.id, loaded)
        log.info("shadow run started", extra={"run": run.id, "version": run.version})
        return run

    async def find(self, run_id: str | None = None) -> ShadowRun:
        async with self.service.units() as uow:
            run = await uow.shadow_runs.find(run_id)
        if run is None:
            raise NoShadowRun.of(run_id)
        return run

    async def history(self, limit: int) -> list[ShadowRun]:
        async with self.service.units() as uow:
            return await uow.shadow_runs.history(limit)

    async def report(self, run_id: str | None = None) -> ShadowReport:
        """The run's report: as it stands for a run going on, as kept for one that ended."""
        async with self.service.units() as uow:
            run = await uow.shadow_runs.find(run_id)
            if run is None:
                raise NoShadowRun.of(run_id)
            frozen = await uow.shadow_runs.frozen_report(run.id)
            if frozen is not None:
                return ShadowReport.model_validate(frozen)
            return await self._report(uow, run)

    async def stop(self) -> ShadowRun:
        """Stop scoring by the candidate; its report, as it stands now, is kept."""
        now = self.service.now()
        async with self.service.units() as uow:
            run = await uow.shadow_runs.find(None, lock=True)
            if run is None or run.stopped_at is not None:
                raise ShadowConflict("no shadow run is going on")
            stopped = run.model_copy(update={"stopped_at": now})
            report = await self._report(uow, stopped)
            await uow.shadow_runs.finish(
                run.id, now, report.model_dump(mode="json"), promoted=False
            )
            await uow.commit()
        self.service.candidate = None
        return stopped

    async def promote(self) -> tuple[ShadowRun, Path]:
        """Make the latest run's candidate the active definitions: the file is replaced (the
        old one kept beside it), this instance scores by it at once, the others when their
        watch sees the file change; the run's report is kept as the record of why. Answers
        the run and where the definitions it replaced were kept."""
        now = self.service.now()
        previous_version = self.service.loaded.version
        async with self.service.units() as uow:
            run = await uow.shadow_runs.find(None, lock=True)
            if run is None or run.promoted_at is not None:
                raise ShadowConflict("no shadow run to promote: start one first")
            document = await uow.shadow_runs.document(run.id)
            loaded = parse_definitions(document, self.definitions_path)
            promoted = run.model_copy(
                update={"stopped_at": run.stopped_at or now, "promoted_at": now}
            )
            frozen = await uow.shadow_runs.frozen_report(run.id)
            report = (
                ShadowReport.model_validate(frozen).model_copy(update={"run": promoted})
                if frozen is not None
                else await self._report(uow, promoted)
            )
            await uow.shadow_runs.finish(run.id, now, report.model_dump(mode="json"), promoted=True)
            # Last before the commit: a file that cannot be written changes nothing.
            kept = write_definitions(self.definitions_path, document, previous_version)
            self._file.written(document)
            await uow.commit()
        self.service.use(loaded)
        self.service.candidate = None
        log.info(
            "shadow run promoted",
            extra={"run": run.id, "version": loaded.version, "previous": str(kept)},
        )
        return promoted, kept

    async def _report(self, uow: UnitOfWork, run: ShadowRun) -> ShadowReport:
        leads = await uow.shadow_runs.leads(run.id)
        verdicts = await uow.verdicts.of_run(run.id)
        return shadow_report(run, leads, verdicts)

    async def watch(self) -> None:
        """Follow what other instances did: the run going on, the definitions file."""
        async with self.service.units() as uow:
            running = await uow.shadow_runs.running()
        current = self.service.candidate
        if running is None:
            self.service.candidate = None
        elif current is None or current.run_id != running[0].id:
            run, document = running
            self.service.candidate = candidate_of(
                run.id, parse_definitions(document, CANDIDATE_SOURCE)
            )
        self._follow_definitions_file()

    def _follow_definitions_file(self) -> None:
        loaded = self._file.changed(self.service.loaded.version)
        if loaded is not None:
            self.service.use(loaded)
