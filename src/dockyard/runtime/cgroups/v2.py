"""The cgroup v2 (unified) driver: one directory, controllers enabled through the parents'
cgroup.subtree_control, devices through a BPF program, freezing through cgroup.freeze."""

from __future__ import annotations

import os

from dockyard.runtime.cgroups import cpu, cpuset, fs, memory, pids
from dockyard.runtime.cgroups.fs import CgroupError

WANTED = ("cpuset", "cpu", "io", "memory", "pids", "hugetlb")


class V2Manager:
    version = 2

    def __init__(self, path: str, base: str, mountpoint: str = "/sys/fs/cgroup") -> None:
        self.path = path
        self.base = base
        self.mountpoint = mountpoint
        self.paths = {"": path}

    def create(self) -> None:
        for attempt in range(5):
            try:
                os.makedirs(self.path, exist_ok=True)
                break
            except FileNotFoundError:
                # a concurrent delete pruned a shared parent (e.g. `dockyard`) under us
                if attempt == 4:
                    raise
        # enable the available controllers on the way down, from the base to the parent
        try:
            available = fs.read(self.base, "cgroup.controllers").split()
        except OSError:
            available = []
        enable = [c for c in WANTED if c in available]
        if not enable:
            return
        d = self.base
        rel = self.path[len(self.base):].strip("/").split("/")
        for part in rel:
            try:
                fs.write(d, "cgroup.subtree_control", " ".join("+" + c for c in enable))
            except CgroupError:
                pass  # e.g. a parent with processes in it ("no internal processes" rule)
            d = f"{d}/{part}"

    def apply(self, pid: int) -> None:
        fs.write(self.path, "cgroup.procs", pid)

    def join_self(self) -> None:
        """Move the calling process in."""
        fs.write(self.path, "cgroup.procs", 0)

    def set(self, resources: dict, linux: dict | None = None) -> None:
        r = resources or {}
        memory.set_v2(self.path, r)
        cpu.set_v2(self.path, r)
        cpuset.set_v2(self.path, r)
        pids.set_v2(self.path, r)
        if r.get("blockIO"):
            from dockyard.runtime.cgroups import blkio

            blkio.set_v2(self.path, r)
        if r.get("hugepageLimits"):
            from dockyard.runtime.cgroups import hugetlb

            hugetlb.set_v2(self.path, r)
        if r.get("network"):
            raise CgroupError("network class id and priorities are not supported on cgroup v2")
        for key, value in (r.get("unified") or {}).items():
            if "/" in key or key.startswith("."):
                raise CgroupError(f"unified resource {key!r} is not a cgroup file name")
            fs.write(self.path, key, value)
        if linux is not None:
            from dockyard.runtime.cgroups import devices

            devices.set_v2(self.path, linux)

    def freeze(self) -> None:
        from dockyard.runtime.cgroups import freezer

        freezer.freeze_v2(self.path, True)

    def thaw(self) -> None:
        from dockyard.runtime.cgroups import freezer

        freezer.freeze_v2(self.path, False)

    def frozen(self) -> bool:
        from dockyard.runtime.cgroups import freezer

        return freezer.frozen_v2(self.path)

    def pids(self) -> list[int]:
        try:
            return [int(x) for x in fs.read(self.path, "cgroup.procs").split()]
        except FileNotFoundError:
            return []

    def stats(self) -> dict:
        from dockyard.runtime.cgroups import blkio

        out: dict = {}
        cpu.stats_v2(self.path, out)
        memory.stats_v2(self.path, out)
        pids.stats_v2(self.path, out)
        blkio.stats_v2(self.path, out)
        return out

    def destroy(self) -> None:
        from dockyard.runtime.cgroups.v1 import _rmdir_retry

        err = _rmdir_retry(self.path)
        if err:
            raise CgroupError(f"failed to remove cgroup {self.path}: {err}")
        d = os.path.dirname(self.path)
        while d.startswith(self.base + "/") and len(d) > len(self.base):
            try:
                os.rmdir(d)
            except OSError:
                break
            d = os.path.dirname(d)

    def to_state(self) -> dict:
        return {"version": 2, "path": self.path, "base": self.base, "mountpoint": self.mountpoint}
