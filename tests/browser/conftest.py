"""Fixtures of the browser tests: chromium, and the three services on loopback ports.

A module that needs another stack (the snippet's: a site, ingest and scoring) defines its
own `stack`, which replaces this one there.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser

from shared.settings import Settings
from tests.browser.chromium import chromium
from tests.stacks import ServedStack, served_stack


@pytest.fixture(scope="module")
async def stack(settings: Settings, database_url: str) -> AsyncIterator[ServedStack]:
    async with served_stack(settings.model_copy(update={"database_url": database_url})) as served:
        yield served


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as launched:
        yield launched
