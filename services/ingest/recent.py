"""What ingest acknowledged lately, kept to publish again if the broker loses its log.

A replicated Kafka keeps what it acknowledged (acks=all). A broker that comes back empty
(the embedded one keeps its log in memory) loses whatever no consumer had read yet, and
ingest, being stateless, would have said 202 for events that exist nowhere. So ingest
keeps the last minute of what it published, notices a new log (offsets that go back, or
topics that had to be made again), and sends it all again; scoring deduplicates by id.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence

Record = tuple[str, bytes | None, bytes]  # topic, key, value

KEEP_SECONDS = 60.0
KEEP_AT_MOST = 100_000


class RecentlyAccepted:
    def __init__(self, keep_seconds: float = KEEP_SECONDS, at_most: int = KEEP_AT_MOST) -> None:
        self._keep_seconds = keep_seconds
        self._at_most = at_most
        # One entry per publish, not per record: this is on every request's path.
        self._published: deque[tuple[float, Sequence[Record]]] = deque()
        self._count = 0
        self._highest: dict[tuple[str, int], int] = {}

    def add(self, records: Sequence[Record]) -> None:
        """Keep one publish's records; forget publishes past their time, or the oldest
        ones while more than `at_most` records are kept."""
        now = time.monotonic()
        self._published.append((now, records))
        self._count += len(records)
        horizon = now - self._keep_seconds
        published = self._published
        while published and (published[0][0] < horizon or self._count > self._at_most):
            self._count -= len(published.popleft()[1])

    def offsets(self) -> dict[tuple[str, int], int]:
        """The highest offset acknowledged so far in each partition (topic, partition)."""
        return dict(self._highest)

    def log_went_back(
        self,
        acknowledged: Iterable[tuple[str, int, int]],
        before: Mapping[tuple[str, int], int] | None = None,
    ) -> bool:
        """Note where the broker put records (topic, partition, offset); answer whether a
        partition's offsets went back, which only a new log does.

        `before` is `offsets()` taken before these records were sent: only what was
        acknowledged by then must lie below them. A publish running alongside may be
        acknowledged first at higher offsets of the same log.
        """
        floor = self._highest if before is None else before
        went_back = False
        for topic, partition, offset in acknowledged:
            if offset < floor.get((topic, partition), -1):
                went_back = True
            if offset > self._highest.get((topic, partition), -1):
                self._highest[(topic, partition)] = offset
        return went_back

    def to_send_again(self) -> list[Record]:
        """Everything kept, oldest first."""
        return [record for _, records in self._published for record in records]

    def sent_again(self) -> None:
        """The records went to the new log: forget the old log's offsets (the new starts low)."""
        self._highest.clear()
