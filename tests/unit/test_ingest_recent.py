"""Ingest's memory of what it published: publishes running alongside are no new log."""

from __future__ import annotations

import pytest

from services.ingest.recent import RecentlyAccepted

pytestmark = pytest.mark.unit


def test_a_publish_acknowledged_after_a_later_one_is_no_new_log() -> None:
    recent = RecentlyAccepted()
    assert not recent.log_went_back([("t", 0, 5)])
    sent_first, sent_second = recent.offsets(), recent.offsets()
    assert not recent.log_went_back([("t", 0, 9)], sent_second)  # answered first
    assert not recent.log_went_back([("t", 0, 7)], sent_first)
    assert recent.log_went_back([("t", 0, 2)], recent.offsets())  # below what was answered
