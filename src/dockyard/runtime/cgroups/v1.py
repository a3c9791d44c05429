"""The cgroup v1 driver: one directory per mounted hierarchy, controllers set file by file."""

from __future__ import annotations

import os
import time

from dockyard.runtime.cgroups import fs
from dockyard.runtime.cgroups.fs import CgroupError


class V1Manager:
    version = 1

    def __init__(self, paths: dict[str, str], bases: dict[str, str], names: dict[str, str] | None = None,
                 mount_opts: dict[str, str] | None = None) -> None:
        # paths: controller (or "name=systemd") → the container's directory
        # bases: controller → the directory below which the container path was created (pruning stops there)
        self.paths = paths
        self.bases = bases
        self.names = names or {}          # controller → directory name under /sys/fs/cgroup
        self.mount_opts = mount_opts or {}  # controller → options to mount the hierarchy (cgroupns)

    # --- the set of distinct directories ----------------------------------------------------
    def _dirs(self) -> list[str]:
        seen: list[str] = []
        for p in self.paths.values():
            if p not in seen:
                seen.append(p)
        return seen

    def create(self) -> None:
        for ctrl, p in self.paths.items():
            for attempt in range(5):
                try:
                    os.makedirs(p, exist_ok=True)
                    break
                except FileNotFoundError:
                    # a concurrent delete pruned a shared parent (e.g. `dockyard`) under us
                    if attempt == 4:
                        raise
            if ctrl == "cpuset":
                from dockyard.runtime.cgroups import cpuset

                cpuset.init_v1(p, self.bases.get(ctrl, os.path.dirname(p)))

    def apply(self, pid: int) -> None:
        for p in self._dirs():
            fs.write(p, "cgroup.procs", pid)

    def join_self(self) -> None:
        """Move the calling (single-threaded) process in. Writing "0" to `tasks` moves only the
        caller, which the kernel does without the global threadgroup lock and so without waiting
        for an RCU grace period: ~0.3 ms instead of ~15 ms for `apply(pid)` here."""
        for p in self._dirs():
            fs.write(p, "tasks", 0)

    def set(self, resources: dict, linux: dict | None = None) -> None:
        """Write `resources` (OCI linux.resources); `linux` (the whole section) enables devices."""
        r = resources or {}
        if r.get("memory"):
            from dockyard.runtime.cgroups import memory

            memory.set_v1(self.paths, r)
        if r.get("cpu"):
            from dockyard.runtime.cgroups import cpu, cpuset

            cpu.set_v1(self.paths, r)
            cpuset.set_v1(self.paths, r)
        if r.get("pids"):
            from dockyard.runtime.cgroups import pids

            pids.set_v1(self.paths, r)
        if r.get("blockIO"):
            from dockyard.runtime.cgroups import blkio

            blkio.set_v1(self.paths, r)
        if r.get("hugepageLimits"):
            from dockyard.runtime.cgroups import hugetlb

            hugetlb.set_v1(self.paths, r)
        if r.get("network"):
            from dockyard.runtime.cgroups import net

            net.set_v1(self.paths, r)
        if r.get("unified"):
            raise CgroupError("cannot set unified resources: the host uses cgroup v1")
        if linux is not None:
            from dockyard.runtime.cgroups import devices

            devices.set_v1(self.paths, linux)

    def freeze(self) -> None:
        from dockyard.runtime.cgroups import freezer

        if "freezer" not in self.paths:
            raise CgroupError("the freezer cgroup is not mounted")
        freezer.freeze_v1(self.paths["freezer"], True)

    def thaw(self) -> None:
        from dockyard.runtime.cgroups import freezer

        if "freezer" in self.paths:
            freezer.freeze_v1(self.paths["freezer"], False)

    def frozen(self) -> bool:
        from dockyard.runtime.cgroups import freezer

        return "freezer" in self.paths and freezer.frozen_v1(self.paths["freezer"])

    def pids(self) -> list[int]:
        for ctrl in ("pids", "memory", "cpu", "devices", "freezer"):
            if ctrl in self.paths:
                try:
                    return [int(x) for x in fs.read(self.paths[ctrl], "cgroup.procs").split()]
                except FileNotFoundError:
                    return []
        p = next(iter(self.paths.values()), None)
        return [int(x) for x in fs.read(p, "cgroup.procs").split()] if p else []

    def stats(self) -> dict:
        from dockyard.runtime.cgroups import blkio, cpu, cpuacct, hugetlb, memory, pids

        out: dict = {}
        cpuacct.stats_v1(self.paths, out)
        cpu.stats_v1(self.paths, out)
        memory.stats_v1(self.paths, out)
        pids.stats_v1(self.paths, out)
        blkio.stats_v1(self.paths, out)
        hugetlb.stats_v1(self.paths, out)
        return out

    def destroy(self) -> None:
        """Remove the container's directories, then any parent between it and its base that is
        now empty (e.g. the shared `dockyard` directory after its last container)."""
        errors = []
        for ctrl, p in self.paths.items():
            err = _rmdir_retry(p)
            if err:
                errors.append(f"{p}: {err}")
                continue
            base = self.bases.get(ctrl, "")
            d = os.path.dirname(p)
            while base and d.startswith(base + "/") and len(d) > len(base):
                try:
                    os.rmdir(d)
                except OSError:
                    break
                d = os.path.dirname(d)
        if errors:
            raise CgroupError("failed to remove cgroups: " + "; ".join(errors))

    def to_state(self) -> dict:
        return {"version": 1, "paths": self.paths, "bases": self.bases, "names": self.names, "mount_opts": self.mount_opts}


def _rmdir_retry(p: str) -> str | None:
    for i in range(100):
        try:
            os.rmdir(p)
            return None
        except FileNotFoundError:
            return None
        except OSError as e:
            if e.errno != 16 or i == 99:  # EBUSY: tasks still leaving
                return e.strerror
            time.sleep(0.005)
    return None
