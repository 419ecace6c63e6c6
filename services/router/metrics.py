"""Prometheus metrics of the router service."""

from prometheus_client import Counter

HANDOFFS = Counter(
    "leadflow_router_handoffs_total",
    "Hand-off events: assigned, reassigned, accepted, escalated, queued",
    ["kind"],
)
SALES_ACTIONS = Counter("leadflow_router_sales_actions_total", "Rep actions by kind", ["action"])
OUTBOUND = Counter(
    "leadflow_router_outbound_total",
    "Attempts to send webhooks, emails and chat messages, by channel and outcome",
    ["channel", "outcome"],
)
