"""`leadflow up`'s restart policy: doubling delays for quick deaths, a fresh start after a
good run, giving up after five quick deaths in a row."""

from __future__ import annotations

import signal

import pytest

from leadflow.supervisor import (
    GIVE_UP_AFTER_QUICK_DEATHS,
    QUICK_DEATH_SECONDS,
    RestartBackoff,
    describe_exit,
)

pytestmark = pytest.mark.unit

QUICK = QUICK_DEATH_SECONDS / 2
LONG = QUICK_DEATH_SECONDS * 6


def test_quick_deaths_double_the_delay_then_give_up() -> None:
    backoff = RestartBackoff()
    delays = [backoff.after_death(QUICK) for _ in range(GIVE_UP_AFTER_QUICK_DEATHS)]
    assert delays == [1, 2, 4, 8, None]


def test_a_good_run_starts_the_backoff_over() -> None:
    backoff = RestartBackoff()
    for _ in range(GIVE_UP_AFTER_QUICK_DEATHS - 1):
        backoff.after_death(QUICK)
    assert backoff.after_death(LONG) == 1
    assert [backoff.after_death(QUICK) for _ in range(4)] == [1, 2, 4, 8]


def test_a_child_that_dies_after_running_a_while_is_always_restarted() -> None:
    backoff = RestartBackoff()
    assert {backoff.after_death(LONG) for _ in range(20)} == {1}


def test_exits_are_described_by_status_or_signal() -> None:
    assert describe_exit(3) == "exited with status 3"
    assert describe_exit(-signal.SIGKILL) == "was killed by SIGKILL"
    assert describe_exit(-99) == "was killed by signal 99"
