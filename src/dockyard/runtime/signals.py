"""Signal names and numbers (Linux x86_64/aarch64), parsed the way `runc kill` accepts them."""

from __future__ import annotations

NUMBERS = {
    "HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "TRAP": 5, "ABRT": 6, "IOT": 6, "BUS": 7, "FPE": 8,
    "KILL": 9, "USR1": 10, "SEGV": 11, "USR2": 12, "PIPE": 13, "ALRM": 14, "TERM": 15, "STKFLT": 16,
    "CHLD": 17, "CLD": 17, "CONT": 18, "STOP": 19, "TSTP": 20, "TTIN": 21, "TTOU": 22, "URG": 23,
    "XCPU": 24, "XFSZ": 25, "VTALRM": 26, "PROF": 27, "WINCH": 28, "IO": 29, "POLL": 29, "PWR": 30,
    "SYS": 31,
}
SIGRTMIN = 34
SIGRTMAX = 64

# what `run` and `exec` forward to the container (everything catchable except job control noise)
FORWARDED = (1, 2, 3, 10, 12, 14, 15, 23, 24, 25, 26, 27, 29, 30, 31)


def parse(text: str) -> int:
    """"9", "KILL", "SIGKILL", "sigkill", "RTMIN+3" → a signal number; ValueError otherwise."""
    s = text.strip()
    if s.isdigit():
        n = int(s)
        if 0 < n <= SIGRTMAX:
            return n
        raise ValueError(f"invalid signal: {text}")
    u = s.upper()
    if u.startswith("SIG"):
        u = u[3:]
    if u in NUMBERS:
        return NUMBERS[u]
    for base, num in (("RTMIN", SIGRTMIN), ("RTMAX", SIGRTMAX)):
        if u == base:
            return num
        if u.startswith(base + "+") and base == "RTMIN":
            n = num + int(u[len(base) + 1:])
            if n <= SIGRTMAX:
                return n
        if u.startswith(base + "-") and base == "RTMAX":
            n = num - int(u[len(base) + 1:])
            if n >= SIGRTMIN:
                return n
    raise ValueError(f"invalid signal: {text}")
