"""Identity resolution: one person, one lead; an identified visitor keeps their history."""

from __future__ import annotations

import itertools

import pytest

from services.scoring.identity import identity_keys, resolve_identities

pytestmark = pytest.mark.unit


def ids() -> itertools.count[int]:
    return itertools.count(1)


def test_the_same_email_is_the_same_lead() -> None:
    counter = ids()
    result = resolve_identities(
        {},
        [
            identity_keys("a@x.com", None),
            identity_keys("a@x.com", None),
            identity_keys("b@x.com", None),
        ],
        lambda: f"L{next(counter)}",
    )
    assert result.lead_of == ["L1", "L1", "L2"]
    assert result.new_leads == {"L1", "L2"}


def test_known_identities_keep_their_lead() -> None:
    result = resolve_identities(
        {"email:a@x.com": "OLD"}, [identity_keys("a@x.com", "c1")], lambda: "NEW"
    )
    assert result.lead_of == ["OLD"]
    assert result.new_identities == {"anon:c1": "OLD"}
    assert not result.new_leads


def test_an_anonymous_visitor_who_identifies_joins_the_known_lead() -> None:
    known = {"email:a@x.com": "KNOWN", "anon:c1": "VISITOR"}
    result = resolve_identities(known, [identity_keys("a@x.com", "c1")], lambda: "NEW")
    assert result.merged_into == {"VISITOR": "KNOWN"}
    assert result.lead_of == ["KNOWN"]
    assert result.new_identities == {"anon:c1": "KNOWN"}


def test_a_visitor_seen_first_in_the_same_batch_is_merged_too() -> None:
    counter = ids()
    result = resolve_identities(
        {},
        [identity_keys(None, "c1"), identity_keys("a@x.com", None), identity_keys("a@x.com", "c1")],
        lambda: f"L{next(counter)}",
    )
    assert result.merged_into == {"L1": "L2"}
    assert result.lead_of == ["L2", "L2", "L2"]
    assert result.new_leads == {"L2"}
    assert result.new_identities == {"anon:c1": "L2", "email:a@x.com": "L2"}
