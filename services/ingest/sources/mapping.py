"""Declared sources at work: a body's items found by JMESPath, each mapped to an interaction.

An item that cannot be mapped is refused with its reason; the others go on. Ids are
`<source>:<the item's declared id>` (else a digest of the item, or the Standard Webhooks
message id and the item's place), so a redelivery records nothing twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jmespath
from jmespath.exceptions import JMESPathError, JMESPathTypeError
from jmespath.parser import ParsedResult

from services.ingest.sources.items import (
    Delivery,
    ItemProblem,
    MappedItem,
    item_digest,
    namespaced_id,
)
from services.ingest.sources.model import FieldSpec, Source
from shared.problems import InvalidField, ProblemError

MAX_ITEMS = 1_000
_EPOCH_DIVISORS = {"seconds": 1, "milliseconds": 1_000}
# Targets whose value goes to the interaction as the item gives it (validated there).
_AS_GIVEN = {("contact", "company_size")}


def json_kind(value: Any) -> str:
    """A JSON value's kind, for messages that must not echo values (they may be personal)."""
    if isinstance(value, bool):
        return "true/false"
    kinds = {dict: "an object", list: "a list", str: "a text", type(None): "null"}
    return kinds.get(type(value), "a number")


@dataclass(frozen=True)
class _Field:
    target: tuple[str, ...]
    spec: FieldSpec
    expression: ParsedResult | None

    @property
    def name(self) -> str:
        return ".".join(self.target)

    def read(self, item: dict[str, Any]) -> Any:
        if self.expression is None:
            return self.spec.value
        try:
            return self.expression.search(item)
        except JMESPathTypeError as error:
            message = (
                f"{self.spec.path!r} failed on this item: {error.function_name}() got "
                f"{json_kind(error.current_value)}, expects {', '.join(error.expected_types)}"
            )
            raise ItemProblem(self.name, message) from None
        except JMESPathError:
            raise ItemProblem(self.name, f"{self.spec.path!r} failed on this item") from None

    def converted(self, value: Any) -> Any:
        """The value as the interaction takes it; None when the item has none."""
        if value is None or value == "":
            return None
        if self.target == ("time",):
            return self._time(value)
        if self.target[0] == "properties" or self.target in _AS_GIVEN:
            return value
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return value.strip() or None if isinstance(value, str) else value

    def _time(self, value: Any) -> Any:
        epoch = self.spec.epoch
        if isinstance(value, str) and not (epoch and value.strip().isdigit()):
            return value
        if epoch is None:
            message = "the item gives a number: declare epoch (seconds or milliseconds)"
            raise ItemProblem("time", message)
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ItemProblem("time", f"the item gives {json_kind(value)}, not a time")
        try:
            moment = datetime.fromtimestamp(float(value) / _EPOCH_DIVISORS[epoch], UTC)
        except (OverflowError, OSError, ValueError):
            raise ItemProblem("time", f"is not a time in {epoch} since 1970") from None
        return moment.isoformat()


def _fields(source: Source) -> list[_Field]:
    mapping = source.interaction
    declared: list[tuple[tuple[str, ...], FieldSpec | None]] = [
        ((name,), getattr(mapping, name)) for name in ("id", "channel", "type", "time", "campaign")
    ]
    declared += [(("contact", name), spec) for name, spec in mapping.contact.items()]
    declared += [(("properties", name), spec) for name, spec in mapping.properties.items()]
    return [
        _Field(target, spec, jmespath.compile(spec.path) if spec.path is not None else None)
        for target, spec in declared
        if spec is not None
    ]


class DeclaredMapping:
    """A declared source, compiled once: its items and their interaction fields."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self._items = jmespath.compile(source.items)
        self._fields = _fields(source)

    def deliver(self, payload: Any, delivery_id: str | None) -> Delivery:
        """The body's items, each mapped or refused; a body with no items records nothing."""
        items = self._find_items(payload)
        mapped = [self._mapped(item, index, delivery_id) for index, item in enumerate(items)]
        if mapped:
            return Delivery(mapped)
        return Delivery([], f"nothing to record: items ({self.source.items}) found no item")

    def _find_items(self, payload: Any) -> list[Any]:
        def refused(message: str) -> ProblemError:
            where = InvalidField(field="body", message=message)
            return ProblemError(422, "the body is not what this source declares", errors=[where])

        try:
            found = self._items.search(payload)
        except JMESPathError:
            raise refused(f"items ({self.source.items}) failed on this body") from None
        items = [found] if isinstance(found, dict) else [] if found is None else found
        if not isinstance(items, list):
            raise refused(f"items ({self.source.items}) found {json_kind(found)}, not items")
        if len(items) > MAX_ITEMS:
            raise refused(f"holds {len(items)} items; at most {MAX_ITEMS} in one webhook")
        return items

    def _mapped(self, item: Any, index: int, delivery_id: str | None) -> MappedItem:
        label = f"items[{index}]"
        if not isinstance(item, dict):
            return MappedItem.refused(label, "item", f"is {json_kind(item)}, not an object")
        raw: dict[str, Any] = {"contact": {}, "properties": {}}
        try:
            for field in self._fields:
                value = field.converted(field.read(item))
                if value is not None:
                    *parents, last = field.target
                    (raw[parents[0]] if parents else raw)[last] = value
        except ItemProblem as problem:
            return MappedItem.refused(label, problem.field, problem.message)
        name = self.source.name
        if "id" in raw:
            raw["id"] = namespaced_id(name, str(raw["id"]))
        elif delivery_id is not None:
            raw["id"] = namespaced_id(name, f"{delivery_id}:{index}")
        else:
            raw["id"] = namespaced_id(name, item_digest(item))
        return MappedItem(label, raw)
