"""Named points where a test can make the process die as if by `kill -9`.

`LEADFLOW_FAILPOINT=<name>` kills the process the first time it passes that point.
Used by the crash tests to stop a consumer exactly between two steps; unset in production.
"""

from __future__ import annotations

import os
import signal

ENVIRONMENT_VARIABLE = "LEADFLOW_FAILPOINT"


def failpoint(name: str) -> None:
    if os.environ.get(ENVIRONMENT_VARIABLE) == name:
        os.kill(os.getpid(), signal.SIGKILL)
