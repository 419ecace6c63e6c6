"""Following the definitions file while a service runs: a promoted shadow run (or an
operator) replaces it, and every instance of every service switches to it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from shared.definitions.loader import DefinitionsError, LoadedDefinitions, parse_definitions
from shared.supervise import Loop, every

log = logging.getLogger(__name__)

FOLLOW_SECONDS = 2.0


@dataclass
class DefinitionsFile:
    """The definitions file as last read; `changed` answers its definitions once each time
    its content changes to a valid file of another version."""

    path: Path
    # The file's text as last read: it is parsed again only when it changed.
    _text: str | None = field(default=None, init=False)

    def written(self, text: str) -> None:
        """This process wrote `text` to the file itself (and already uses it)."""
        self._text = text

    def changed(self, version_in_use: str) -> LoadedDefinitions | None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None  # being replaced, or gone: the definitions in use stay
        if text == self._text:
            return None
        self._text = text
        try:
            loaded = parse_definitions(text, self.path)
        except DefinitionsError as error:
            log.warning(
                "the definitions file changed but cannot be used; going on by %s: %s",
                version_in_use,
                error,
            )
            return None
        if loaded.version == version_in_use:
            return None
        log.info(
            "definitions changed", extra={"version": loaded.version, "previous": version_in_use}
        )
        return loaded


def follow_definitions(
    file: DefinitionsFile,
    version_in_use: Callable[[], str],
    use: Callable[[LoadedDefinitions], None],
) -> Loop:
    """A service's loop: every few seconds, switch to the definitions file if it changed."""

    async def follow() -> None:
        loaded = file.changed(version_in_use())
        if loaded is not None:
            use(loaded)

    return every(FOLLOW_SECONDS, follow)
