"""config.json → an ordered plan of root filesystem operations: a pure function, no syscalls.

`rootfs_plan(config, rootfs, ...)` returns a list of operations (plain tuples, tag first) that
`dockyard.runtime.rootfs.execute` carries out inside the container's mount namespace. Keeping
the translation pure lets unit tests assert "this config gives these mounts, devices, symlinks,
masked paths" without root (the recording-syscall idea from youki).

Operations, in the order they are emitted:
  ("propagation", flags)                         make "/" rslave/rshared/... (rootfsPropagation, as runc)
  ("rootfs_parent_private", rootfs)              the mount holding the rootfs made private, so nothing
                                                 mounted under it can reach other namespaces
  ("bind_rootfs", rootfs)                        bind the rootfs onto itself (pivot_root needs a mount)
  ("mount", Mount)                               one entry of config.mounts (see Mount)
  ("cgroup", Mount)                              a "cgroup" mount: the container's hierarchies
  ("device", Device)                             a device node (mknod, or a bind in a user ns)
  ("symlink", target, path)                      /dev/fd → /proc/self/fd ...
  ("ptmx",)                                      /dev/ptmx → pts/ptmx
  ("pivot", no_pivot)                            pivot_root (or MS_MOVE + chroot)
  ("console",)                                   (terminal) open a pty, bind it on /dev/console
  ("sysctl", key, value)                         after pivot, through the container's /proc
  ("readonly", path) / ("masked", path)          after pivot, paths inside the container
  ("root_readonly",)
  ("root_propagation", flags)                    rootfsPropagation (not private) applied again after pivot
"""

from __future__ import annotations

import os

from dockyard.sys import linux as L

# option name → (set flags, clear flags)
_FLAGS: dict[str, tuple[int, int]] = {
    "ro": (L.MS_RDONLY, 0), "rw": (0, L.MS_RDONLY),
    "nosuid": (L.MS_NOSUID, 0), "suid": (0, L.MS_NOSUID),
    "nodev": (L.MS_NODEV, 0), "dev": (0, L.MS_NODEV),
    "noexec": (L.MS_NOEXEC, 0), "exec": (0, L.MS_NOEXEC),
    "sync": (L.MS_SYNCHRONOUS, 0), "async": (0, L.MS_SYNCHRONOUS),
    "dirsync": (L.MS_DIRSYNC, 0),
    "remount": (L.MS_REMOUNT, 0),
    "mand": (L.MS_MANDLOCK, 0), "nomand": (0, L.MS_MANDLOCK),
    "atime": (0, L.MS_NOATIME), "noatime": (L.MS_NOATIME, 0),
    "diratime": (0, L.MS_NODIRATIME), "nodiratime": (L.MS_NODIRATIME, 0),
    "relatime": (L.MS_RELATIME, 0), "norelatime": (0, L.MS_RELATIME),
    "strictatime": (L.MS_STRICTATIME, 0), "nostrictatime": (0, L.MS_STRICTATIME),
    "lazytime": (L.MS_LAZYTIME, 0), "nolazytime": (0, L.MS_LAZYTIME),
    "silent": (L.MS_SILENT, 0), "loud": (0, L.MS_SILENT),
    "nosymfollow": (L.MS_NOSYMFOLLOW, 0), "symfollow": (0, L.MS_NOSYMFOLLOW),
    "bind": (L.MS_BIND, 0), "rbind": (L.MS_BIND | L.MS_REC, 0),
}
PROPAGATION: dict[str, int] = {
    "private": L.MS_PRIVATE, "rprivate": L.MS_PRIVATE | L.MS_REC,
    "shared": L.MS_SHARED, "rshared": L.MS_SHARED | L.MS_REC,
    "slave": L.MS_SLAVE, "rslave": L.MS_SLAVE | L.MS_REC,
    "unbindable": L.MS_UNBINDABLE, "runbindable": L.MS_UNBINDABLE | L.MS_REC,
}
# recursive mount attributes (mount_setattr, kernel >= 5.12): "rro", "rnosuid", ...
_RATTR: dict[str, tuple[int, int]] = {
    "rro": (L.MOUNT_ATTR_RDONLY, 0), "rrw": (0, L.MOUNT_ATTR_RDONLY),
    "rnosuid": (L.MOUNT_ATTR_NOSUID, 0), "rsuid": (0, L.MOUNT_ATTR_NOSUID),
    "rnodev": (L.MOUNT_ATTR_NODEV, 0), "rdev": (0, L.MOUNT_ATTR_NODEV),
    "rnoexec": (L.MOUNT_ATTR_NOEXEC, 0), "rexec": (0, L.MOUNT_ATTR_NOEXEC),
}


class PlanError(Exception):
    pass


class Mount:
    """One mount, ready to execute. `dest` is absolute inside the container."""

    __slots__ = ("source", "dest", "fstype", "flags", "data", "propagation", "attr_set", "attr_clr",
                 "bind", "tmpcopyup", "options")

    def __init__(self, source: str, dest: str, fstype: str, flags: int, data: str,
                 propagation: list[int], attr_set: int = 0, attr_clr: int = 0, tmpcopyup: bool = False,
                 options: list[str] | None = None) -> None:
        self.source = source
        self.dest = dest
        self.fstype = fstype
        self.flags = flags
        self.data = data
        self.propagation = propagation
        self.attr_set = attr_set
        self.attr_clr = attr_clr
        self.bind = bool(flags & L.MS_BIND)
        self.tmpcopyup = tmpcopyup
        self.options = options or []

    def __repr__(self) -> str:
        return (f"Mount({self.source!r}, {self.dest!r}, {self.fstype!r}, flags={self.flags:#x}, "
                f"data={self.data!r}, propagation={self.propagation})")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Mount) and all(getattr(self, a) == getattr(other, a) for a in self.__slots__)


class Device:
    __slots__ = ("path", "kind", "major", "minor", "mode", "uid", "gid")

    def __init__(self, path: str, kind: str, major: int, minor: int, mode: int = 0o666, uid: int = 0, gid: int = 0) -> None:
        self.path, self.kind, self.major, self.minor = path, kind, major, minor
        self.mode, self.uid, self.gid = mode, uid, gid

    def __repr__(self) -> str:
        return f"Device({self.path!r}, {self.kind!r}, {self.major}, {self.minor}, {self.mode:#o})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Device) and all(getattr(self, a) == getattr(other, a) for a in self.__slots__)


def parse_mount_options(options: list[str]) -> tuple[int, int, list[int], str, int, int, bool]:
    """OCI mount options → (flags, cleared flags, propagation list, data, attr_set, attr_clr, tmpcopyup)."""
    flags = 0
    cleared = 0
    prop: list[int] = []
    data: list[str] = []
    aset = aclr = 0
    tmpcopyup = False
    for o in options:
        f = _FLAGS.get(o)
        if f is not None:
            flags = (flags | f[0]) & ~f[1]
            cleared = (cleared | f[1]) & ~f[0]
            continue
        p = PROPAGATION.get(o)
        if p is not None:
            prop.append(p)
            continue
        r = _RATTR.get(o)
        if r is not None:
            aset = (aset | r[0]) & ~r[1]
            aclr = (aclr | r[1]) & ~r[0]
            continue
        if o == "tmpcopyup":
            tmpcopyup = True
            continue
        if o == "defaults":
            continue
        if o in ("idmap", "ridmap"):
            raise PlanError("id-mapped mounts (idmap, ridmap) are not supported")
        data.append(o)
    return flags, cleared, prop, ",".join(data), aset, aclr, tmpcopyup


def clean_dest(dest: str) -> str:
    d = os.path.normpath("/" + dest)
    return "/" + d.lstrip("/") if d != "/" else "/"


def make_mount(m: dict, bundle: str = "/") -> Mount:
    options = list(m.get("options") or [])
    fstype = m.get("type") or ""
    flags, _cleared, prop, data, aset, aclr, tmpcopyup = parse_mount_options(options)
    if fstype == "bind" and not flags & L.MS_BIND:
        flags |= L.MS_BIND  # "type": "bind" without the option still means a bind mount
    source = m.get("source") or fstype or "none"
    if flags & L.MS_BIND:
        fstype = "bind"
        if not source.startswith("/"):
            source = os.path.normpath(os.path.join(bundle, source))  # relative to the bundle
    return Mount(source, clean_dest(m["destination"]), fstype, flags, data, prop, aset, aclr, tmpcopyup, options)


DEFAULT_DEVICES = (
    Device("/dev/null", "c", 1, 3),
    Device("/dev/zero", "c", 1, 5),
    Device("/dev/full", "c", 1, 7),
    Device("/dev/random", "c", 1, 8),
    Device("/dev/urandom", "c", 1, 9),
    Device("/dev/tty", "c", 5, 0),
)
DEFAULT_SYMLINKS = (
    ("/proc/self/fd", "/dev/fd"),
    ("/proc/self/fd/0", "/dev/stdin"),
    ("/proc/self/fd/1", "/dev/stdout"),
    ("/proc/self/fd/2", "/dev/stderr"),
)

ROOTFS_PROPAGATION_DEFAULT = L.MS_SLAVE | L.MS_REC


def spec_devices(config: dict) -> list[Device]:
    out = []
    for d in (config.get("linux") or {}).get("devices") or []:
        kind = d.get("type", "c")
        mode = d.get("fileMode")
        out.append(Device(clean_dest(d["path"]), kind, int(d.get("major", 0)), int(d.get("minor", 0)),
                          0o666 if mode is None else int(mode) & 0o7777, int(d.get("uid", 0)), int(d.get("gid", 0))))
    return out


def rootfs_plan(config: dict, rootfs: str, no_pivot: bool = False, kcore_exists: bool = True,
                bundle: str = "/") -> list[tuple]:
    """The ordered operations that build the container's root filesystem (see module docstring)."""
    linux = config.get("linux") or {}
    ops: list[tuple] = []
    rp = linux.get("rootfsPropagation") or ""
    if rp and rp not in PROPAGATION:
        raise PlanError(f"rootfsPropagation {rp!r} is not valid")
    prop_flags = PROPAGATION.get(rp, ROOTFS_PROPAGATION_DEFAULT)
    # as runc: "/" gets rootfsPropagation first, so a bind of a host shared mount stays its peer
    # (rshared binds propagate both ways); the mount holding the rootfs is then made private, so
    # the rootfs bind and everything mounted inside it cannot leak to the host
    ops.append(("propagation", prop_flags))
    ops.append(("rootfs_parent_private", rootfs))
    ops.append(("bind_rootfs", rootfs))

    mounts = [make_mount(m, bundle) for m in config.get("mounts") or []]
    dev_is_bind = any(m.dest == "/dev" and m.bind for m in mounts)
    for m in mounts:
        ops.append(("cgroup" if m.fstype == "cgroup" else "mount", m))

    if not dev_is_bind:
        listed = {d.path for d in spec_devices(config)}
        bound = {m.dest for m in mounts}
        for d in DEFAULT_DEVICES:
            if d.path not in listed and d.path not in bound:
                ops.append(("device", d))
        for d in spec_devices(config):
            ops.append(("device", d))
        for target, path in DEFAULT_SYMLINKS:
            if path not in bound:
                ops.append(("symlink", target, path))
        if kcore_exists and "/dev/core" not in bound:
            ops.append(("symlink", "/proc/kcore", "/dev/core"))
        if "/dev/ptmx" not in bound:
            ops.append(("ptmx",))
    else:
        for d in spec_devices(config):
            ops.append(("device", d))

    ops.append(("pivot", no_pivot))
    if (config.get("process") or {}).get("terminal"):
        ops.append(("console",))
    for k, v in (linux.get("sysctl") or {}).items():  # before /proc/sys turns read-only
        ops.append(("sysctl", k, str(v)))
    for p in linux.get("readonlyPaths") or []:
        ops.append(("readonly", clean_dest(p)))
    for p in linux.get("maskedPaths") or []:
        ops.append(("masked", clean_dest(p)))
    if (config.get("root") or {}).get("readonly"):
        ops.append(("root_readonly",))
    if rp and not prop_flags & L.MS_PRIVATE:
        ops.append(("root_propagation", prop_flags))
    return ops
