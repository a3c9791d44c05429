"""Freezing: v1 freezer.state (FROZEN/THAWED, waiting out FREEZING) and v2 cgroup.freeze."""

from __future__ import annotations

import time

from dockyard.runtime.cgroups.fs import CgroupError, read, read_kv, write


def freeze_v1(d: str, frozen: bool) -> None:
    want = "FROZEN" if frozen else "THAWED"
    for _ in range(2000):
        write(d, "freezer.state", want)
        if read(d, "freezer.state").strip() == want:
            return
        time.sleep(0.001)
    raise CgroupError(f"cgroup {d}: did not become {want}")


def frozen_v1(d: str) -> bool:
    try:
        return read(d, "freezer.state").strip() in ("FROZEN", "FREEZING")
    except OSError:
        return False


def freeze_v2(d: str, frozen: bool) -> None:
    write(d, "cgroup.freeze", "1" if frozen else "0")
    for _ in range(2000):
        if read_kv(d, "cgroup.events").get("frozen", 0) == (1 if frozen else 0):
            return
        time.sleep(0.001)
    raise CgroupError(f"cgroup {d}: did not {'freeze' if frozen else 'thaw'}")


def frozen_v2(d: str) -> bool:
    try:
        return read(d, "cgroup.freeze").strip() == "1"
    except OSError:
        return False
