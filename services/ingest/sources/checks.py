"""Checks across the keys of a sources file, each problem with the path of its key.

Pydantic checks the shape; these check what only several keys together say: names are
unique, a constant channel has the constant type, every item has an identity.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import get_args

from pydantic import TypeAdapter, ValidationError

from services.ingest.sources.model import BUILT_IN_SOURCES, FieldSpec, Source, SourcesFile
from shared.events import CHANNEL_TYPES, CampaignKey, SocialProperties

Path = tuple[str | int, ...]
Problem = tuple[Path, str]

NETWORKS: tuple[str, ...] = get_args(SocialProperties.model_fields["network"].annotation)
_BARE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_campaign_key: TypeAdapter[str] = TypeAdapter(CampaignKey)


def _bare_word(spec: FieldSpec, meaning: tuple[str, ...]) -> str | None:
    """A path that is only a word the field could mean as a constant: a likely slip."""
    if spec.path is not None and _BARE_NAME.match(spec.path) and spec.path in meaning:
        return (
            f"{spec.path!r} is read as a JMESPath (the item's key {spec.path!r}); "
            f"for the constant write {{value: {spec.path}}}"
        )
    return None


def _kind_problems(source: Source, at: Path) -> Iterator[Problem]:
    mapping = source.interaction
    all_types = tuple(sorted({kind for kinds in CHANNEL_TYPES.values() for kind in kinds}))
    if slip := _bare_word(mapping.channel, tuple(CHANNEL_TYPES)):
        yield (*at, "channel"), slip
    if slip := _bare_word(mapping.type, all_types):
        yield (*at, "type"), slip
    channel, kind = mapping.channel.value, mapping.type.value
    if channel is not None and channel not in CHANNEL_TYPES:
        yield (*at, "channel", "value"), f"{channel!r} is not one of {', '.join(CHANNEL_TYPES)}"
        return
    if kind is not None:
        kinds = CHANNEL_TYPES[channel] if isinstance(channel, str) else all_types
        if kind not in kinds:
            where = f"the {channel} channel" if channel else "any channel"
            yield (*at, "type", "value"), f"{kind!r} is not a type of {where}: {', '.join(kinds)}"
    if channel == "social":
        network = mapping.properties.get("network")
        if network is None:
            yield (*at, "properties"), "the social channel needs properties.network"
        elif network.value is not None and network.value not in NETWORKS:
            message = f"{network.value!r} is not one of {', '.join(NETWORKS)}"
            yield (*at, "properties", "network", "value"), message


def _field_problems(source: Source, at: Path) -> Iterator[Problem]:
    mapping = source.interaction
    if "email" not in mapping.contact and "anonymous_id" not in mapping.contact:
        yield (*at, "contact"), "map contact.email or contact.anonymous_id: every item needs one"
    for name in ("id", "time"):
        spec = getattr(mapping, name)
        if spec is not None and spec.path is None:
            yield (*at, name), f"{name} must be a path: a constant would be the same for every item"
    campaign = mapping.campaign
    if campaign is not None and campaign.value is not None:
        try:
            _campaign_key.validate_python(campaign.value)
        except ValidationError:
            message = f"{campaign.value!r} is not a campaign key (lower case, digits, -_.)"
            yield (*at, "campaign", "value"), message
    specs: list[tuple[Path, FieldSpec | None]] = [
        ((*at, name), getattr(mapping, name)) for name in ("id", "channel", "type", "campaign")
    ]
    specs += [((*at, "contact", name), spec) for name, spec in mapping.contact.items()]
    specs += [((*at, "properties", name), spec) for name, spec in mapping.properties.items()]
    for path, spec in specs:
        if spec is not None and spec.epoch is not None:
            yield (*path, "epoch"), "epoch goes with time only"


def problems(document: SourcesFile) -> list[Problem]:
    """Every problem of a well-shaped sources file, in document order."""
    found: list[Problem] = []
    seen: set[str] = set()
    for index, source in enumerate(document.sources):
        if source.name in BUILT_IN_SOURCES:
            message = f"{source.name!r} is built in; give the source another name"
            found.append((("sources", index, "name"), message))
        elif source.name in seen:
            found.append((("sources", index, "name"), f"{source.name!r} is declared twice"))
        seen.add(source.name)
        at: Path = ("sources", index, "interaction")
        found += [*_kind_problems(source, at), *_field_problems(source, at)]
    return found
