"""The intermediate stage (the runtime's first child): enter and create namespaces, then fork
the process that will be the container's PID 1 (or the exec'd process) and report its pid.

Order, as runc's nsexec: open every namespace path first (paths resolve in the host's mount
namespace), join them (with a user namespace to join: first those our privileges reach, then the
user namespace, then the others; the mount namespace last of each group), then create a
new user namespace (the runtime writes uid_map/gid_map from outside, once) and become root in
it, then unshare the other new namespaces (the cgroup namespace after the runtime has placed us
in the container's cgroup), write time offsets, and fork: a new PID namespace only applies to
children.

Joining comes before the new user namespace: once in a child user namespace we no longer hold
CAP_SYS_ADMIN over namespaces the host's user namespace owns (a network namespace made by the
engine, as Docker's userns-remap containers join). For the same reason the `net.*` sysctls of a
joined network namespace are written here (`early_sysctls`), while we are still the host's root:
the container's root could not write them.
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


def _become_root() -> None:
    try:
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
    except OSError:
        pass  # root is not mapped: stay as we are


def write_sysctls(sysctls: dict[str, str]) -> None:
    """Write sysctls through /proc/sys (which shows the caller's network namespace)."""
    for key, value in sysctls.items():
        path = "/proc/sys/" + key.replace(".", "/")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
        except OSError as e:
            raise OSError(e.errno, f"sysctl {key}: {e.strerror}") from None
        try:
            os.write(fd, str(value).encode())
        except OSError as e:
            raise OSError(e.errno, f"sysctl {key}={value}: {e.strerror}") from None
        finally:
            os.close(fd)


def enter(ch: Channel, join: list[tuple[str, str]], new: list[str], time_offsets: dict | None = None,
          early_sysctls: dict[str, str] | None = None) -> None:  # fmt: skip
    fds = []
    try:
        for t, path in join:
            fds.append((t, os.open(path, os.O_RDONLY | os.O_CLOEXEC)))
        others = [(t, fd) for kind in _JOIN_ORDER for t, fd in fds if t == kind]
        users = [fd for t, fd in fds if t == "user"]
        if users:
            # as runc: first join what our own privileges allow (a namespace the host's user
            # namespace owns is out of reach from inside a container's), then the user
            # namespace, then the rest (which that user namespace owns)
            later = []
            for t, fd in others:
                try:
                    L.setns(fd, L.NAMESPACE_FLAGS[t])
                except PermissionError:
                    later.append((t, fd))
            if early_sysctls and all(t != "network" for t, _ in later):
                write_sysctls(early_sysctls)  # still the host's root, in the joined network namespace
                early_sysctls = None
            for fd in users:
                L.setns(fd, L.CLONE_NEWUSER)
            _become_root()
            others = later
        for t, fd in others:
            L.setns(fd, L.NAMESPACE_FLAGS[t])
    finally:
        for _, fd in fds:
            os.close(fd)
    if early_sysctls:
        write_sysctls(early_sysctls)
    if "user" in new:
        L.unshare(L.CLONE_NEWUSER)
        ch.reply("map")
        ch.wait_for("mapped")
        _become_root()
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
