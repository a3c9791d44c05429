"""net_cls and net_prio (cgroup v1 only): class id and per-interface priorities."""

from __future__ import annotations

from dockyard.runtime.cgroups.fs import CgroupError, write


def set_v1(paths: dict[str, str], res: dict) -> None:
    net = res.get("network") or {}
    if not net:
        return
    if net.get("classID") is not None:
        d = paths.get("net_cls")
        if not d:
            raise CgroupError("net_cls cgroup is not mounted")
        write(d, "net_cls.classid", net["classID"])
    for p in net.get("priorities") or []:
        d = paths.get("net_prio")
        if not d:
            raise CgroupError("net_prio cgroup is not mounted")
        write(d, "net_prio.ifpriomap", f"{p['name']} {p['priority']}")


def set_v2(path: str, res: dict) -> None:
    if res.get("network"):
        raise CgroupError("network class id and priorities are not supported on cgroup v2")
