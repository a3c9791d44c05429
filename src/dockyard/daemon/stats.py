"""GET /containers/{id}/stats: cgroup statistics in Docker's StatsJSON shape.

The numbers come from the runtime: `dockyard.runtime.stats.container_stats` (read directly,
no process) for dockyard-runc, `<runtime> events --stats <id>` for other runc-compatible
runtimes; both give runc's events shape, translated here. Network counters come from
/proc/<pid>/net/dev (the container's namespace).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from typing import TYPE_CHECKING, Any

from dockyard.daemon import timeutil

if TYPE_CHECKING:
    from dockyard.daemon.container import Container
    from dockyard.daemon.daemon import Daemon


def _system_cpu_ns() -> int:
    with open("/proc/stat") as f:
        parts = f.readline().split()[1:8]
    ticks = os.sysconf("SC_CLK_TCK")
    return sum(int(p) for p in parts) * 1_000_000_000 // ticks


def _mem_total() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


def _net(pid: int) -> dict[str, Any] | None:
    try:
        with open(f"/proc/{pid}/net/dev") as f:
            lines = f.read().splitlines()[2:]
    except OSError:
        return None
    out = {}
    for line in lines:
        name, _, rest = line.partition(":")
        name = name.strip()
        if name == "lo":
            continue
        v = [int(x) for x in rest.split()]
        out[name] = {"rx_bytes": v[0], "rx_packets": v[1], "rx_errors": v[2], "rx_dropped": v[3],
                     "tx_bytes": v[8], "tx_packets": v[9], "tx_errors": v[10], "tx_dropped": v[11]}  # fmt: skip
    return out


def raw_stats(d: Daemon, c: Container) -> dict[str, Any]:
    """runc's `events --stats` data for the container (blocking)."""
    rt = d.config.runtime(c.runtime or None)
    if os.path.basename(rt.path) == "dockyard-runc":
        try:
            from dockyard.runtime.stats import container_stats

            return container_stats(c.id, d.runtime_root)
        except Exception:  # noqa: BLE001 - fall back to the command
            pass
    cp = subprocess.run([rt.path, *rt.args, "--root", d.runtime_root, "events", "--stats", c.id],
                        capture_output=True, timeout=10, check=False)  # fmt: skip
    if cp.returncode != 0:
        return {}
    try:
        return json.loads(cp.stdout.decode().strip().splitlines()[-1]).get("data") or {}
    except (ValueError, IndexError):
        return {}


def _blkio(entries: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    if not entries:
        return None
    return [{"major": e.get("major", 0), "minor": e.get("minor", 0), "op": e.get("op", ""), "value": e.get("value", 0)}
            for e in entries]  # fmt: skip


def sample(d: Daemon, c: Container) -> dict[str, Any]:
    """One Docker-shaped sample (without precpu), blocking."""
    data = raw_stats(d, c) if c.state.running else {}
    cpu = data.get("cpu") or {}
    usage = cpu.get("usage") or {}
    thr = cpu.get("throttling") or {}
    mem = data.get("memory") or {}
    mu = mem.get("usage") or {}
    pids = data.get("pids") or {}
    blk = data.get("blkio") or {}
    limit = mu.get("limit") or 0
    total = _mem_total()
    if not limit or limit > total:
        limit = total
    out: dict[str, Any] = {
        "read": timeutil.now(),
        "preread": timeutil.ZERO_TIME,
        # Docker's PidsStats.Limit is a uint64 where 0 means unlimited; the runtime reports -1 for "max"
        "pids_stats": {"current": pids.get("current", 0), **({"limit": pids["limit"]} if (pids.get("limit") or 0) > 0 else {})},
        "blkio_stats": {
            "io_service_bytes_recursive": _blkio(blk.get("ioServiceBytesRecursive")),
            "io_serviced_recursive": _blkio(blk.get("ioServicedRecursive")),
            "io_queue_recursive": None, "io_service_time_recursive": None, "io_wait_time_recursive": None,
            "io_merged_recursive": None, "io_time_recursive": None, "sectors_recursive": None,
        },  # fmt: skip
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": {
            "cpu_usage": {
                "total_usage": usage.get("total", 0),
                "usage_in_kernelmode": usage.get("kernel", 0),
                "usage_in_usermode": usage.get("user", 0),
                **({"percpu_usage": usage["percpu"]} if usage.get("percpu") else {}),
            },
            "system_cpu_usage": _system_cpu_ns() if c.state.running else 0,
            "online_cpus": os.cpu_count() or 1 if c.state.running else 0,
            "throttling_data": {"periods": thr.get("periods", 0), "throttled_periods": thr.get("throttledPeriods", 0),
                                "throttled_time": thr.get("throttledTime", 0)},  # fmt: skip
        },
        "precpu_stats": {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
                         "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}},  # fmt: skip
        "memory_stats": {},
        "name": "/" + c.name,
        "id": c.id,
    }
    if c.state.running:
        out["memory_stats"] = {"usage": mu.get("usage", 0), "max_usage": mu.get("max", 0),
                               "stats": dict(mem.get("raw") or {}), "failcnt": mu.get("failcnt", 0),
                               "limit": limit}  # fmt: skip
        nets = _net(c.state.pid)
        if nets:
            out["networks"] = nets
    return out


def with_pre(cur: dict[str, Any], prev: dict[str, Any] | None) -> dict[str, Any]:
    if prev is not None:
        cur["preread"] = prev["read"]
        cur["precpu_stats"] = prev["cpu_stats"]
    return cur


def now() -> float:
    return time.time()
