"""The intermediate stage (the runtime's first child): enter and create namespaces, then fork
the process that will be the container's PID 1 (or the exec'd process) and report its pid.

Order, as runc's nsexec: open every namespace path first (paths resolve in the host's mount
namespace), join them with the user namespace first and the mount namespace last, then create a
new user namespace (the runtime writes uid_map/gid_map from outside, once) and become root in
it, then unshare the other new namespaces (the cgroup namespace after the runtime has placed us
in the container's cgroup), write time offsets, and fork: a new PID namespace only applies to
children.
"""

from __future__ import annotations

import os

from dockyard.runtime.channel import Channel
from dockyard.sys import linux as L

# join order after the user namespace; mount last so earlier paths still resolve on the host
_JOIN_ORDER = ("ipc", "uts", "network", "pid", "cgroup", "time", "mount")


def flags_for(types: list[str]) -> int:
    f = 0
    for t in types:
        f |= L.NAMESPACE_FLAGS[t]
    return f


def enter(ch: Channel, join: list[tuple[str, str]], new: list[str], time_offsets: dict | None = None) -> None:
    fds = []
    try:
        for t, path in join:
            fds.append((t, os.open(path, os.O_RDONLY | os.O_CLOEXEC)))
        for t, fd in fds:
            if t == "user":
                L.setns(fd, L.CLONE_NEWUSER)
        if "user" in new:
            L.unshare(L.CLONE_NEWUSER)
            ch.reply("map")
            ch.wait_for("mapped")
        if "user" in new or any(t == "user" for t, _ in fds):
            try:
                os.setresgid(0, 0, 0)
                os.setresuid(0, 0, 0)
            except OSError:
                pass  # root is not mapped: stay as we are
        for kind in _JOIN_ORDER:
            for t, fd in fds:
                if t == kind:
                    L.setns(fd, L.NAMESPACE_FLAGS[t])
    finally:
        for _, fd in fds:
            os.close(fd)
    rest = [t for t in new if t != "user"]
    if rest:
        L.unshare(flags_for(rest))
    if time_offsets and "time" in new:
        lines = []
        for clock, off in time_offsets.items():
            lines.append(f"{clock} {int(off.get('secs', 0))} {int(off.get('nanosecs', 0))}")
        with open("/proc/self/timens_offsets", "w") as f:
            f.write("\n".join(lines) + "\n")


def write_id_maps(pid: int, uid_maps: list[dict], gid_maps: list[dict]) -> None:
    """Write /proc/<pid>/uid_map and gid_map, once each, from outside the namespace."""

    def fmt(maps: list[dict]) -> bytes:
        return "".join(f"{m['containerID']} {m['hostID']} {m['size']}\n" for m in maps).encode()

    for name, maps in (("uid_map", uid_maps), ("gid_map", gid_maps)):
        fd = os.open(f"/proc/{pid}/{name}", os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, fmt(maps))
        except OSError as e:
            raise OSError(e.errno, f"writing {name} {fmt(maps).decode().strip()!r}: {e.strerror}") from None
        finally:
            os.close(fd)
