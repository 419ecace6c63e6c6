"""Prometheus metrics of the ingest service."""

from prometheus_client import Counter, Histogram

EVENTS = Counter(
    "leadflow_ingest_events_total",
    "Interactions submitted to ingest, by channel and outcome (accepted/rejected)",
    ["channel", "outcome"],
)
PUBLISH_SECONDS = Histogram(
    "leadflow_ingest_publish_seconds",
    "Time from handing records to the producer until the broker acknowledged them",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
