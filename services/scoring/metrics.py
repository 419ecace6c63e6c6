"""Prometheus metrics of the scoring service."""

from prometheus_client import Counter, Histogram

RECORDS = Counter(
    "leadflow_scoring_records_total",
    "Records consumed from lead.interactions, by kind (interaction, dead_letter)",
    ["kind"],
)
LIFECYCLE_EVENTS = Counter(
    "leadflow_scoring_lifecycle_events_total", "Stage changes and threshold crossings queued"
)
BATCH_SECONDS = Histogram(
    "leadflow_scoring_batch_seconds",
    "Time to apply one consumed batch in its transaction",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
REPLAYED = Counter(
    "leadflow_scoring_replayed_leads_total",
    "Leads scored by replaying their whole history (merged, returned, an interaction older "
    "than one already scored, new definitions) instead of going on from their saved state",
)
