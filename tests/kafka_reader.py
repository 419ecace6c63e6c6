"""An independent reader of a topic for tests: no group, no commits, from the beginning."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition


@dataclass(frozen=True)
class ReadRecord:
    key: str
    value: dict[str, Any]
    partition: int


async def read_until(
    bootstrap: str,
    topic: str,
    done: Callable[[list[ReadRecord]], bool],
    *,
    within_seconds: float = 10,
) -> list[ReadRecord]:
    """Read the whole topic until `done(records)` holds or the time is up."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    records: list[ReadRecord] = []
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        deadline = asyncio.get_running_loop().time() + within_seconds
        while not done(records) and asyncio.get_running_loop().time() < deadline:
            batches = await consumer.getmany(timeout_ms=200)
            for batch in batches.values():
                records.extend(
                    ReadRecord(
                        (record.key or b"").decode(), json.loads(record.value), record.partition
                    )
                    for record in batch
                )
    finally:
        await consumer.stop()
    return records


async def read_ids(bootstrap: str, topic: str, ids: set[str]) -> dict[str, ReadRecord]:
    """The records whose envelope id is in `ids` (waits until all arrived, or times out)."""
    found = await read_until(
        bootstrap, topic, lambda records: ids <= {r.value["id"] for r in records}
    )
    return {record.value["id"]: record for record in found if record.value["id"] in ids}
