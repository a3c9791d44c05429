"""The memory controller: limit, reservation, swap, swappiness, OOM killer; usage statistics.

OCI's `swap` is the memory+swap total (cgroup v1 memsw semantics); on v2 it becomes
memory.swap.max = swap - limit. Limits are written in the order the kernel accepts when both
grow or both shrink.
"""

from __future__ import annotations

from dockyard.runtime.cgroups.fs import CgroupError, exists, read_int, read_kv, write


def _v(n: int) -> str:
    return "-1" if n < 0 else str(n)


def set_v1(paths: dict[str, str], res: dict) -> None:
    mem = res.get("memory") or {}
    d = paths.get("memory")
    if not d or not mem:
        return
    limit = int(mem.get("limit") or 0)
    swap = int(mem.get("swap") or 0)
    if limit == -1 and swap == 0:
        swap = -1
    has_memsw = exists(d, "memory.memsw.limit_in_bytes")
    if swap and not has_memsw:
        if swap != -1 and swap != limit:
            raise CgroupError("memory swap limit requested, but swap accounting is not enabled in the kernel")
        swap = 0
    if limit and swap:
        current = read_int(d, "memory.limit_in_bytes", -1)
        if swap == -1 or (current != -1 and current < swap):
            write(d, "memory.memsw.limit_in_bytes", _v(swap))
            write(d, "memory.limit_in_bytes", _v(limit))
        else:
            write(d, "memory.limit_in_bytes", _v(limit))
            write(d, "memory.memsw.limit_in_bytes", _v(swap))
    elif limit:
        write(d, "memory.limit_in_bytes", _v(limit))
    elif swap:
        write(d, "memory.memsw.limit_in_bytes", _v(swap))
    if mem.get("reservation"):
        write(d, "memory.soft_limit_in_bytes", _v(int(mem["reservation"])))
    if mem.get("kernelTCP"):
        write(d, "memory.kmem.tcp.limit_in_bytes", _v(int(mem["kernelTCP"])))
    sw = mem.get("swappiness")
    if sw is not None and 0 <= int(sw) <= 100 and exists(d, "memory.swappiness"):
        write(d, "memory.swappiness", int(sw))
    elif sw is not None and not 0 <= int(sw) <= 100 and int(sw) != -1:
        raise CgroupError(f"invalid memory swappiness {sw}: must be 0..100")
    if mem.get("disableOOMKiller"):
        write(d, "memory.oom_control", "1")


def set_v2(path: str, res: dict) -> None:
    mem = res.get("memory") or {}
    if not mem:
        return
    limit = int(mem.get("limit") or 0)
    swap = int(mem.get("swap") or 0)
    if swap:
        if swap == -1:
            write(path, "memory.swap.max", "max")
        elif limit > 0:
            if swap < limit:
                raise CgroupError(f"invalid memory swap {swap}: must be at least the memory limit {limit}")
            write(path, "memory.swap.max", swap - limit)
        else:
            raise CgroupError("memory swap limit needs a memory limit on cgroup v2")
    if limit:
        write(path, "memory.max", "max" if limit < 0 else limit)
    if mem.get("reservation"):
        r = int(mem["reservation"])
        write(path, "memory.low", "max" if r < 0 else r)
    if mem.get("disableOOMKiller"):
        raise CgroupError("disabling the OOM killer is not supported on cgroup v2")


def stats_v1(paths: dict[str, str], out: dict) -> None:
    d = paths.get("memory")
    if not d:
        return
    raw = read_kv(d, "memory.stat")

    def entry(prefix: str) -> dict:
        return {
            "usage": read_int(d, f"{prefix}.usage_in_bytes"),
            "max": read_int(d, f"{prefix}.max_usage_in_bytes"),
            "failcnt": read_int(d, f"{prefix}.failcnt"),
            "limit": read_int(d, f"{prefix}.limit_in_bytes"),
        }

    m = {"cache": raw.get("total_cache", raw.get("cache", 0)), "usage": entry("memory"), "raw": raw}
    if exists(d, "memory.memsw.usage_in_bytes"):
        m["swap"] = entry("memory.memsw")
    m["kernel"] = entry("memory.kmem")
    oom = read_kv(d, "memory.oom_control")
    m["oomKillCount"] = oom.get("oom_kill", 0)
    out["memory"] = m


def stats_v2(path: str, out: dict) -> None:
    raw = read_kv(path, "memory.stat")
    events = read_kv(path, "memory.events")
    out["memory"] = {
        "cache": raw.get("file", 0),
        "usage": {"usage": read_int(path, "memory.current"), "max": read_int(path, "memory.peak"),
                  "failcnt": events.get("max", 0), "limit": read_int(path, "memory.max", -1)},
        "swap": {"usage": read_int(path, "memory.swap.current"), "limit": read_int(path, "memory.swap.max", -1)},
        "raw": raw,
        "oomKillCount": events.get("oom_kill", 0),
    }
