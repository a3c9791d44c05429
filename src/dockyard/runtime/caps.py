"""Capabilities: OCI names → bit masks, and applying a process's five sets to this thread.

Names the kernel does not know (above /proc/sys/kernel/cap_last_cap) or that are unknown
altogether are skipped, as runc does, so a profile written for a newer kernel still runs.
"""

from __future__ import annotations

from dockyard.sys import linux as L

NAMES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
    "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN",
    "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
)
NUMBERS = {n: i for i, n in enumerate(NAMES)}

# Docker's default set (moby daemon/pkg/oci/caps/defaults.go): 14 capabilities
DOCKER_DEFAULT = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
    "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",
    "CAP_AUDIT_WRITE",
)


def last_cap() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except OSError:
        return len(NAMES) - 1


def mask(names: list[str] | None, last: int | None = None) -> int:
    """The bit mask for `names`; unknown names and those beyond `last` are skipped."""
    last = len(NAMES) - 1 if last is None else last
    m = 0
    for n in names or ():
        n = n.upper()
        if not n.startswith("CAP_"):
            n = "CAP_" + n
        i = NUMBERS.get(n)
        if i is not None and i <= last:
            m |= 1 << i
    return m


def names_of(m: int) -> list[str]:
    return [NAMES[i] for i in range(len(NAMES)) if m >> i & 1]


class CapSets:
    __slots__ = ("bounding", "effective", "inheritable", "permitted", "ambient")

    def __init__(self, caps: dict | None, last: int) -> None:
        caps = caps or {}
        self.bounding = mask(caps.get("bounding"), last)
        self.effective = mask(caps.get("effective"), last)
        self.inheritable = mask(caps.get("inheritable"), last)
        self.permitted = mask(caps.get("permitted"), last)
        self.ambient = mask(caps.get("ambient"), last)


def drop_bounding(sets: CapSets, last: int) -> None:
    """Drop every capability outside the bounding set (needs CAP_SETPCAP, so before capset)."""
    for i in range(last + 1):
        if not sets.bounding >> i & 1:
            L.capbset_drop(i)


def apply(sets: CapSets, last: int) -> None:
    """Set effective/permitted/inheritable, then raise the ambient ones."""
    L.capset(sets.effective, sets.permitted, sets.inheritable)
    if sets.ambient:
        for i in range(last + 1):
            if sets.ambient >> i & 1:
                try:
                    L.cap_ambient_raise(i)
                except OSError:
                    pass  # not in permitted+inheritable: the kernel refuses, runc ignores it too
