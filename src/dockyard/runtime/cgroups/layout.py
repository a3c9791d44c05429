"""Where the cgroup hierarchies are and where this process sits in them (pure parsing + detect).

`detect()` reads /proc/self/mountinfo and /proc/self/cgroup. With any cgroup v1 controller
mounted the v1 driver is used (this also covers the "hybrid" layout: v1 controllers plus a nearly
empty cgroup2 at /sys/fs/cgroup/unified); with only cgroup2, the v2 driver. Never assumed.
"""

from __future__ import annotations


class Hierarchy:
    """One mounted hierarchy: its mount point, the mount's root, and this process's cgroup."""

    __slots__ = ("controllers", "mountpoint", "mount_root", "own", "options")

    def __init__(self, controllers: list[str], mountpoint: str, mount_root: str, own: str, options: str) -> None:
        self.controllers = controllers
        self.mountpoint = mountpoint
        self.mount_root = mount_root
        self.own = own
        self.options = options

    @property
    def name(self) -> str:
        """The directory name used under /sys/fs/cgroup (e.g. "cpu,cpuacct", "systemd")."""
        return self.mountpoint.rstrip("/").rsplit("/", 1)[-1]

    def own_dir(self) -> str:
        """Absolute path of this process's cgroup in this hierarchy."""
        own = self.own
        root = self.mount_root.rstrip("/")
        if root and (own == root or own.startswith(root + "/")):
            own = own[len(root):]
        return self.mountpoint.rstrip("/") + (own if own != "/" else "")

    def __repr__(self) -> str:
        return f"Hierarchy({self.controllers}, {self.mountpoint!r}, own={self.own!r})"


class Layout:
    def __init__(self, version: int, hierarchies: list[Hierarchy]) -> None:
        self.version = version
        self.hierarchies = hierarchies


def parse_mountinfo(text: str) -> list[tuple[str, str, str, str]]:
    """(mountpoint, root, fstype, super options) of every cgroup and cgroup2 mount."""
    out = []
    for line in text.splitlines():
        if " - cgroup" not in line:
            continue
        fields = line.split()
        try:
            sep = fields.index("-")
        except ValueError:
            continue
        fstype = fields[sep + 1]
        if fstype not in ("cgroup", "cgroup2"):
            continue
        mountpoint = fields[4].replace("\\040", " ")
        out.append((mountpoint, fields[3], fstype, fields[sep + 3] if len(fields) > sep + 3 else ""))
    return out


def parse_proc_cgroup(text: str) -> list[tuple[int, list[str], str]]:
    """(hierarchy id, controllers, path) for every line of /proc/<pid>/cgroup."""
    out = []
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        out.append((int(parts[0]), [c for c in parts[1].split(",") if c], parts[2]))
    return out


def build_layout(mountinfo: str, proc_cgroup: str) -> Layout:
    mounts = parse_mountinfo(mountinfo)
    entries = parse_proc_cgroup(proc_cgroup)
    v1_mounts = [(mp, root, set(opts.split(",")), opts) for mp, root, fstype, opts in mounts if fstype == "cgroup"]
    v1: list[Hierarchy] = []
    seen: set[str] = set()
    for hid, controllers, path in entries:
        if hid == 0 or not controllers:
            continue
        for mountpoint, root, optset, opts in v1_mounts:
            if mountpoint not in seen and all(c in optset for c in controllers):
                seen.add(mountpoint)
                v1.append(Hierarchy(controllers, mountpoint, root, path, opts))
                break
    if any(not c.startswith("name=") for h in v1 for c in h.controllers):
        return Layout(1, v1)
    for hid, _controllers, path in entries:
        if hid != 0:
            continue
        for mountpoint, root, fstype, opts in mounts:
            if fstype == "cgroup2":
                return Layout(2, [Hierarchy([], mountpoint, root, path, opts)])
    raise OSError("no cgroup hierarchy is mounted (neither cgroup v1 controllers nor cgroup2)")


def detect() -> Layout:
    with open("/proc/self/mountinfo") as f:
        mountinfo = f.read()
    with open("/proc/self/cgroup") as f:
        proc_cgroup = f.read()
    return build_layout(mountinfo, proc_cgroup)
