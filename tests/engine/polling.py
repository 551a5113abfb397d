"""Polling helper shared by the concurrency tests (lock heartbeats, racing workers)."""

from __future__ import annotations

import time
from collections.abc import Callable


def until(condition: Callable[[], bool], limit_s: float, step_s: float = 0.05) -> bool:
    """Poll ``condition`` every ``step_s`` seconds until it holds (True) or ``limit_s`` seconds pass (False)."""
    end = time.monotonic() + limit_s
    while not condition():
        if time.monotonic() > end:
            return False
        time.sleep(step_s)
    return True
