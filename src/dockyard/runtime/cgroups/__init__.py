"""Cgroups for containers: v1 and v2 drivers behind one Manager interface.

    layout = detect()                      # what this machine mounts, and where we sit
    m = new_manager(cgroups_path, container_id, layout)
    m.create(); m.apply(pid) (or m.join_self() from the process itself); m.set(resources, linux)
    m.freeze(); m.thaw(); m.frozen(); m.pids(); m.stats(); m.destroy()
    m.to_state() → plain data stored in the container's state; manager_for_state(state) reloads it.

A relative `linux.cgroupsPath` is placed under the runtime's own cgroup in each hierarchy (read
from /proc/self/cgroup); an absolute one is too, rooted at the runtime's cgroup rather than the
hierarchy's root, so a runtime confined to a cgroup never places containers outside it (where
the runtime runs in the root cgroup, as on most hosts, both read exactly as runc reads them).
With no cgroupsPath the container gets `<own cgroup>/<id>`. One module per controller
(cpu, cpuacct, cpuset, memory, pids, blkio, devices, freezer, hugetlb, net), each with its v1
and v2 code side by side.
"""

from __future__ import annotations

from dockyard.runtime.cgroups.fs import CgroupError
from dockyard.runtime.cgroups.layout import Layout, detect

__all__ = ["CgroupError", "Layout", "detect", "new_manager", "manager_for_state"]


def _join(base: str, rel: str) -> str:
    rel = rel.strip("/")
    parts = [p for p in rel.split("/") if p and p != "."]
    if any(p == ".." for p in parts):
        raise CgroupError(f"invalid cgroupsPath {rel!r}: must not contain '..'")
    return base.rstrip("/") + "/" + "/".join(parts) if parts else base


def new_manager(cgroups_path: str, container_id: str, layout: Layout | None = None):
    """A manager for a new container (nothing is created until `create()`)."""
    layout = layout or detect()
    rel = cgroups_path or container_id
    if ":" in rel and not rel.startswith("/"):
        # systemd style "slice:prefix:name": without systemd, use its last component (runc's cgroupfs fallback)
        rel = rel.rsplit(":", 1)[-1]
    if layout.version == 2:
        from dockyard.runtime.cgroups.v2 import V2Manager

        h = layout.hierarchies[0]
        base = h.own_dir()
        return V2Manager(_join(base, rel), base, h.mountpoint)
    from dockyard.runtime.cgroups.v1 import V1Manager

    paths: dict[str, str] = {}
    bases: dict[str, str] = {}
    names: dict[str, str] = {}
    opts: dict[str, str] = {}
    for h in layout.hierarchies:
        base = h.own_dir()
        path = _join(base, rel)
        for c in h.controllers:
            paths[c] = path
            bases[c] = base
            names[c] = h.name
            named = [x for x in h.controllers if x.startswith("name=")]
            opts[c] = ",".join(["none"] + named if named else h.controllers)
    return V1Manager(paths, bases, names, opts)


def manager_for_state(data: dict):
    """Rebuild the manager recorded in a container's state (see `to_state`)."""
    cg = data.get("cgroup") or {}
    if cg.get("version") == 2:
        from dockyard.runtime.cgroups.v2 import V2Manager

        return V2Manager(cg["path"], cg["base"], cg.get("mountpoint", "/sys/fs/cgroup"))
    from dockyard.runtime.cgroups.v1 import V1Manager

    return V1Manager(cg.get("paths") or {}, cg.get("bases") or {}, cg.get("names"), cg.get("mount_opts"))
