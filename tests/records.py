"""Records as a consumer hands them to a service: for tests that call a service's batch
handler directly."""

from __future__ import annotations

from aiokafka import ConsumerRecord, TopicPartition

from shared.consumer import Batch


def consumer_record(topic: str, value: bytes, offset: int = 0) -> ConsumerRecord[None, bytes]:
    return ConsumerRecord(topic, 0, offset, 0, 0, None, value, None, 0, len(value), [])


def batch_of_one(topic: str, value: bytes, offset: int) -> Batch:
    """One record at `offset` of partition 0, with the offset to store after it."""
    return Batch(
        [consumer_record(topic, value, offset)], {TopicPartition(topic, 0): offset + 1}, {}
    )
