"""Ingest's memory of what it published lately, for a broker that comes back empty."""

from __future__ import annotations

import pytest

from services.ingest.recent import RecentlyAccepted

pytestmark = pytest.mark.unit


def test_offsets_that_go_back_mean_a_new_log() -> None:
    recent = RecentlyAccepted()
    assert not recent.log_went_back([("t", 0, 5), ("t", 1, 9)])
    assert not recent.log_went_back([("t", 0, 6), ("t", 2, 0)])  # a partition seen first
    assert recent.log_went_back([("t", 1, 1)])


def test_what_is_sent_again_is_everything_kept_oldest_first_and_no_older() -> None:
    recent = RecentlyAccepted(keep_seconds=3600, at_most=4)
    recent.add([("t", b"a", b"1"), ("t", b"b", b"2")])
    recent.add([("t", b"c", b"3"), ("t", b"d", b"4")])
    recent.add([("t", b"e", b"5")])  # five kept: the oldest publish goes
    assert recent.log_went_back([("t", 0, 7), ("t", 0, 3)])
    assert recent.to_send_again() == [("t", b"c", b"3"), ("t", b"d", b"4"), ("t", b"e", b"5")]
    assert recent.log_went_back([("t", 0, 1)])  # not sent yet: still the old log's offsets
    recent.sent_again()
    assert not recent.log_went_back([("t", 0, 1)])  # offsets forgotten with the old log


def test_nothing_is_kept_past_its_time() -> None:
    recent = RecentlyAccepted(keep_seconds=-1)
    recent.add([("t", None, b"1")])
    assert recent.to_send_again() == []
