"""Helpers shared by the benchmark scripts (run as `python bench/<name>.py`, so this directory
is on sys.path)."""

from __future__ import annotations

import signal
import subprocess


def stop_all(procs: list[subprocess.Popen]) -> None:
    """SIGTERM the processes a bench started (last started first), SIGKILL after 30 s."""
    for p in reversed(procs):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)
