"""Field types the router's routes share."""

from __future__ import annotations

from typing import Annotated

from pydantic import StringConstraints

# Where leadflow posts to: a webhook receiver or a chat service's incoming webhook.
OutboundUrl = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        max_length=2000,
        pattern=r"^https?://[^\s/?#@\x00]+(?:[/?#][^\s\x00]*)?$",
    ),
]
