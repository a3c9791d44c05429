"""The cpu controller: shares/weight, CFS quota and period, realtime, burst, idle; throttling stats."""

from __future__ import annotations

from dockyard.runtime.cgroups.fs import CgroupError, exists, read_kv, write


def shares_to_weight(shares: int) -> int:
    """cgroup v1 cpu.shares (2..262144) → v2 cpu.weight (1..10000), as runc converts."""
    if shares == 0:
        return 0
    return 1 + ((shares - 2) * 9999) // 262142


def set_v1(paths: dict[str, str], res: dict) -> None:
    cpu = res.get("cpu") or {}
    d = paths.get("cpu")
    if not d or not cpu:
        return
    if cpu.get("shares"):
        write(d, "cpu.shares", cpu["shares"])
    period, quota = cpu.get("period"), cpu.get("quota")
    if period:
        try:
            write(d, "cpu.cfs_period_us", period)
        except CgroupError:
            # a shorter period can conflict with the current quota: set the quota first, then retry
            if quota:
                write(d, "cpu.cfs_quota_us", quota)
            write(d, "cpu.cfs_period_us", period)
    if quota:
        write(d, "cpu.cfs_quota_us", quota)
    if cpu.get("burst") is not None and exists(d, "cpu.cfs_burst_us"):
        write(d, "cpu.cfs_burst_us", cpu["burst"])
    if cpu.get("realtimePeriod"):
        write(d, "cpu.rt_period_us", cpu["realtimePeriod"])
    if cpu.get("realtimeRuntime"):
        write(d, "cpu.rt_runtime_us", cpu["realtimeRuntime"])
    if cpu.get("idle") is not None and exists(d, "cpu.idle"):
        write(d, "cpu.idle", cpu["idle"])


def set_v2(path: str, res: dict) -> None:
    cpu = res.get("cpu") or {}
    if not cpu:
        return
    if cpu.get("realtimePeriod") or cpu.get("realtimeRuntime"):
        raise CgroupError("realtime scheduling is not supported on cgroup v2")
    weight = cpu.get("weight") or shares_to_weight(int(cpu.get("shares") or 0))
    if weight:
        write(path, "cpu.weight", weight)
    quota, period = cpu.get("quota"), cpu.get("period")
    if quota or period:
        q = "max" if not quota or quota < 0 else str(quota)
        write(path, "cpu.max", f"{q} {period or 100000}" if period else q)
    if cpu.get("burst") is not None:
        write(path, "cpu.max.burst", cpu["burst"])
    if cpu.get("idle") is not None:
        write(path, "cpu.idle", cpu["idle"])


def stats_v1(paths: dict[str, str], out: dict) -> None:
    d = paths.get("cpu")
    if not d:
        return
    st = read_kv(d, "cpu.stat")
    out.setdefault("cpu", {})["throttling"] = {
        "periods": st.get("nr_periods", 0),
        "throttledPeriods": st.get("nr_throttled", 0),
        "throttledTime": st.get("throttled_time", 0),
    }


def stats_v2(path: str, out: dict) -> None:
    st = read_kv(path, "cpu.stat")
    cpu = out.setdefault("cpu", {})
    cpu["usage"] = {
        "total": st.get("usage_usec", 0) * 1000,
        "kernel": st.get("system_usec", 0) * 1000,
        "user": st.get("user_usec", 0) * 1000,
        "percpu": [],
    }
    cpu["throttling"] = {
        "periods": st.get("nr_periods", 0),
        "throttledPeriods": st.get("nr_throttled", 0),
        "throttledTime": st.get("throttled_usec", 0) * 1000,
    }
