"""Bind-mount propagation against the host's mount table, checked at start as dockerd does.

A bind with `shared`/`rshared` propagation only propagates if its source lives on a shared mount,
and `slave`/`rslave` only if it lives on a shared or slave one; otherwise the start fails with
Docker's words: "path /src is mounted on / but it is not a shared mount" (or "... not a shared or
slave mount"). The mount a path lives on is the longest mount point of /proc/self/mountinfo that
contains the path with its symlinks resolved (moby's getSourceMount; the topmost of stacked mounts).
"""

from __future__ import annotations

import os
from typing import Any

from dockyard.errors import SystemError_

SHARED = {"shared", "rshared"}
SLAVE = {"slave", "rslave"}


def _unescape(field: str) -> str:
    """mountinfo's octal escapes (\\040 for a space, \\011, \\012, \\134)."""
    if "\\" not in field:
        return field
    out, i = bytearray(), 0
    raw = field.encode()
    while i < len(raw):
        octal = raw[i + 1 : i + 4]
        if raw[i] == 0x5C and len(octal) == 3 and octal.isdigit():
            out.append(int(octal, 8))
            i += 4
        else:
            out.append(raw[i])
            i += 1
    return out.decode(errors="surrogateescape")


def source_mount(path: str, mountinfo: str | None = None) -> tuple[str, list[str]]:
    """(mount point, optional fields such as "shared:5" "master:3") of the mount `path` is on."""
    real = os.path.realpath(path)
    if mountinfo is None:
        with open("/proc/self/mountinfo") as f:
            mountinfo = f.read()
    best, best_opts = "", []
    for line in mountinfo.splitlines():
        head, sep, _ = line.partition(" - ")
        fields = head.split()
        if not sep or len(fields) < 6:
            continue
        mp = _unescape(fields[4])
        # the longest containing mount point; on a tie the later line (mounted on top) wins
        if (real == mp or real.startswith(mp.rstrip("/") + "/")) and len(mp) >= len(best):
            best, best_opts = mp, fields[6:]
    if not best:
        raise SystemError_(f"Can't find mount point of {path}")
    return best, best_opts


def check(mp: dict[str, Any], mountinfo: str | None = None) -> None:
    """Refuse a shared/slave bind whose source cannot propagate (blocking: reads mountinfo)."""
    if mp.get("Type") != "bind":
        return
    prop = mp.get("Propagation") or ""
    if prop not in SHARED and prop not in SLAVE:
        return
    src = mp["Source"]
    where, opts = source_mount(src, mountinfo)
    shared = any(o.startswith("shared:") for o in opts)
    slave = any(o.startswith("master:") for o in opts)
    if prop in SHARED and not shared:
        raise SystemError_(f"path {src} is mounted on {where} but it is not a shared mount")
    if prop in SLAVE and not shared and not slave:
        raise SystemError_(f"path {src} is mounted on {where} but it is not a shared or slave mount")
