"""Polling for a condition instead of sleeping: tests wait for what they can observe."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_for(pred: Callable[[], Any], timeout: float = 20, step: float = 0.05) -> Any:
    """Call `pred` until it returns something truthy (returned) or `timeout` seconds pass
    (then its last value)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()
