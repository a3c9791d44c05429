"""The cpuset controller: pin to CPUs and memory nodes. A new v1 cpuset cgroup starts empty, so
`init_v1` copies the nearest non-empty ancestor's cpus/mems before any task joins."""

from __future__ import annotations

import os

from dockyard.runtime.cgroups.fs import read, write


def init_v1(path: str, stop: str) -> None:
    """Fill cpuset.cpus/mems of `path` and its empty ancestors (below `stop`) from above."""
    chain = []
    d = path
    while True:
        chain.append(d)
        if d == stop or len(d) <= len(stop) or d == "/":
            break
        d = os.path.dirname(d)
    values = {}
    for name in ("cpuset.cpus", "cpuset.mems"):
        for d in reversed(chain):
            v = read(d, name).strip()
            if v:
                values[name] = v
            elif name in values:
                write(d, name, values[name])


def set_v1(paths: dict[str, str], res: dict) -> None:
    cpu = res.get("cpu") or {}
    d = paths.get("cpuset")
    if not d:
        return
    if cpu.get("cpus"):
        write(d, "cpuset.cpus", cpu["cpus"])
    if cpu.get("mems"):
        write(d, "cpuset.mems", cpu["mems"])


def set_v2(path: str, res: dict) -> None:
    cpu = res.get("cpu") or {}
    if cpu.get("cpus"):
        write(path, "cpuset.cpus", cpu["cpus"])
    if cpu.get("mems"):
        write(path, "cpuset.mems", cpu["mems"])
