"""Resource limits from `process.rlimits`: names → numbers, and applying them.

Never raises a limit on its own: only what the spec asks for is set. A request above the current
hard limit needs CAP_SYS_RESOURCE; without it the kernel says EPERM and we fail with a message
that names the limit and the hard limit in force.
"""

from __future__ import annotations

from dockyard.sys import linux as L

NUMBERS = {
    "RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3, "RLIMIT_CORE": 4,
    "RLIMIT_RSS": 5, "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7, "RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9,
    "RLIMIT_LOCKS": 10, "RLIMIT_SIGPENDING": 11, "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13,
    "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15,
}


class RlimitError(Exception):
    pass


def parse(rlimits: list[dict] | None) -> list[tuple[int, str, int, int]]:
    """(resource number, name, soft, hard) for each entry; unknown types are an error (as runc)."""
    out = []
    for r in rlimits or []:
        name = r.get("type", "")
        num = NUMBERS.get(name)
        if num is None:
            raise RlimitError(f"unknown rlimit type {name!r}")
        soft, hard = int(r.get("soft", 0)), int(r.get("hard", 0))
        if soft > hard and hard != -1 and hard != L.RLIM_INFINITY:
            raise RlimitError(f"rlimit {name}: soft limit {soft} is greater than the hard limit {hard}")
        out.append((num, name, soft, hard))
    return out


def apply(parsed: list[tuple[int, str, int, int]]) -> None:
    for num, name, soft, hard in parsed:
        try:
            L.prlimit(0, num, (soft, hard))
        except PermissionError:
            cur = L.prlimit(0, num)[1]
            shown = "unlimited" if cur == L.RLIM_INFINITY else str(cur)
            raise RlimitError(f"error setting rlimit type {name} to {soft}:{hard}: operation not permitted "
                              f"(the hard limit here is {shown} and raising it needs CAP_SYS_RESOURCE)") from None
        except OSError as e:
            raise RlimitError(f"error setting rlimit type {name} to {soft}:{hard}: {e.strerror}") from None
