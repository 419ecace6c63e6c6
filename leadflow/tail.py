"""`leadflow tail`: read a topic with an independent consumer (no group, no commits)."""

from __future__ import annotations

import json
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.settings import Settings

IDLE_MS = 1_000


async def print_records(
    settings: Settings, topic: str, *, follow: bool, limit: int, echo: Callable[[str], None]
) -> None:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.require_broker(), enable_auto_commit=False, group_id=None
    )
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        if not partitions:
            raise SystemExit(f"no such topic: {topic}")
        assigned = [TopicPartition(topic, partition) for partition in sorted(partitions)]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        printed = 0
        while True:
            batches = await consumer.getmany(timeout_ms=IDLE_MS, max_records=500)
            if not batches and not follow:
                return
            for records in batches.values():
                for record in records:
                    value = record.value or b""
                    echo(
                        json.dumps(
                            {
                                "partition": record.partition,
                                "offset": record.offset,
                                "key": (record.key or b"").decode(errors="replace"),
                                "value": json.loads(value) if value else None,
                            }
                        )
                    )
                    printed += 1
                    if limit and printed >= limit:
                        return
    finally:
        await consumer.stop()
