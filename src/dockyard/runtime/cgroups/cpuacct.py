"""The cpuacct controller (cgroup v1 only): CPU usage counters. v2 reports usage in cpu.stat."""

from __future__ import annotations

import os

from dockyard.runtime.cgroups.fs import read, read_int

_NS_PER_TICK = 1_000_000_000 // (os.sysconf("SC_CLK_TCK") or 100)


def usage_ns(paths: dict[str, str]) -> int:
    d = paths.get("cpuacct")
    return read_int(d, "cpuacct.usage") if d else 0


def stats_v1(paths: dict[str, str], out: dict) -> None:
    d = paths.get("cpuacct")
    if not d:
        return
    try:
        percpu = [int(x) for x in read(d, "cpuacct.usage_percpu").split()]
    except OSError:
        percpu = []
    user = kernel = 0
    try:
        for line in read(d, "cpuacct.stat").splitlines():
            k, _, v = line.partition(" ")
            if k == "user":
                user = int(v) * _NS_PER_TICK
            elif k == "system":
                kernel = int(v) * _NS_PER_TICK
    except OSError:
        pass
    out.setdefault("cpu", {})["usage"] = {
        "total": read_int(d, "cpuacct.usage"), "percpu": percpu, "kernel": kernel, "user": user}
