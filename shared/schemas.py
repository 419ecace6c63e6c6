"""JSON Schemas of the events and an AsyncAPI document of the topics, from the models."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, TypeAdapter

from shared.events import (
    DeadLetterRecorded,
    HandoffRecorded,
    Interaction,
    InteractionRecorded,
    LifecycleRecorded,
    NurtureRecorded,
    SalesActionRecorded,
)
from shared.topics import (
    CATALOG,
    HANDOFFS,
    INTERACTIONS,
    INTERACTIONS_DLQ,
    LIFECYCLE,
    NURTURE,
    SALES_ACTIONS,
    Topic,
)

_PAYLOADS: dict[str, type[BaseModel]] = {
    INTERACTIONS.name: InteractionRecorded,
    INTERACTIONS_DLQ.name: DeadLetterRecorded,
    LIFECYCLE.name: LifecycleRecorded,
    HANDOFFS.name: HandoffRecorded,
    NURTURE.name: NurtureRecorded,
    SALES_ACTIONS.name: SalesActionRecorded,
}


def event_schemas() -> dict[str, dict[str, Any]]:
    """File name -> JSON Schema of every event model."""
    return {
        "interaction.schema.json": TypeAdapter(Interaction).json_schema(),
        "interaction-recorded.schema.json": InteractionRecorded.model_json_schema(),
        "lifecycle-recorded.schema.json": LifecycleRecorded.model_json_schema(),
        "dead-letter-recorded.schema.json": DeadLetterRecorded.model_json_schema(),
        "handoff-recorded.schema.json": HandoffRecorded.model_json_schema(),
        "nurture-recorded.schema.json": NurtureRecorded.model_json_schema(),
        "sales-action-recorded.schema.json": SalesActionRecorded.model_json_schema(),
    }


def _channel(topic: Topic) -> dict[str, Any]:
    message: dict[str, Any] = {
        "name": topic.name,
        "summary": topic.content,
        "contentType": "application/json",
        "bindings": {"kafka": {"key": {"type": "string", "description": topic.key}}},
    }
    if topic.name in _PAYLOADS:  # every topic of the catalog has its model
        message["payload"] = {"$ref": f"#/components/schemas/{_PAYLOADS[topic.name].__name__}"}
    return {
        "address": topic.name,
        "description": f"{topic.content}. Produced by {topic.producer}; key: {topic.key}.",
        "messages": {"event": message},
    }


def asyncapi_document() -> dict[str, Any]:
    """The AsyncAPI 3.0 description of every topic in the catalog."""
    components: dict[str, Any] = {}
    for model in _PAYLOADS.values():
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(schema.pop("$defs", {}))
        components[model.__name__] = schema
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "leadflow topics",
            "version": "1.0.0",
            "description": "Kafka topics of leadflow. Every value is a CloudEvents 1.0 JSON "
            "envelope; `id` is the idempotency key end to end.",
        },
        "defaultContentType": "application/json",
        "channels": {topic.name.replace(".", "_"): _channel(topic) for topic in CATALOG},
        "components": {"schemas": components},
    }


def rendered_schema_files() -> dict[str, str]:
    """File name -> exact text `leadflow schema` writes (and the staleness test compares)."""
    files: dict[str, Any] = dict(event_schemas())
    files["asyncapi.json"] = asyncapi_document()
    return {
        name: json.dumps(content, indent=2, sort_keys=True) + "\n"
        for name, content in files.items()
    }
