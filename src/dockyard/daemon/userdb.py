"""`--user` and `--group-add` resolved against the image's /etc/passwd and /etc/group.

The files are opened inside the container's root with openat2(RESOLVE_IN_ROOT), so an image whose
/etc/passwd is a symlink to a host path reads its own tree, never the host's. `resolve_user` is
pure (it takes file contents); `lookup` does the reading (blocking).
"""

from __future__ import annotations

import os

from dockyard.errors import InvalidParameter


def _parse(text: str, fields: int) -> list[list[str]]:
    out = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split(":")
        if len(parts) >= fields:
            out.append(parts)
    return out


def resolve_user(spec: str, passwd: str, group: str, group_add: list[str] | None = None) -> tuple[int, int, tuple[int, ...]]:
    """-> (uid, gid, additional gids), with Docker's (runc's) rules and messages. The additional
    gids start with the primary one, as dockerd sets them (`id` in a container shows
    `groups=0(root)`), then the groups listing the user, then --group-add; no duplicates."""
    users = _parse(passwd, 7)
    groups = _parse(group, 4)
    user_part, _, group_part = (spec or "").partition(":")
    uid, gid, home_user = 0, 0, "root"
    if not user_part:
        user_part = "0"
    if user_part.isdigit():
        uid = int(user_part)
        match = next((u for u in users if u[2] == user_part), None)
        if match:
            gid, home_user = int(match[3]) if match[3].isdigit() else 0, match[0]
        else:
            home_user = ""
    else:
        match = next((u for u in users if u[0] == user_part), None)
        if match is None:
            raise InvalidParameter(f"unable to find user {user_part}: no matching entries in passwd file")
        uid, gid, home_user = int(match[2]), int(match[3]), match[0]
    if group_part:
        if group_part.isdigit():
            gid = int(group_part)
        else:
            g = next((g for g in groups if g[0] == group_part), None)
            if g is None:
                raise InvalidParameter(f"unable to find group {group_part}: no matching entries in group file")
            gid = int(g[2])
    extra: list[int] = [gid]
    if home_user and not group_part:
        for g in groups:
            members = [m for m in g[3].split(",") if m]
            if home_user in members and g[2].isdigit():
                extra.append(int(g[2]))
    for ga in group_add or []:
        if ga.isdigit():
            extra.append(int(ga))
            continue
        g = next((g for g in groups if g[0] == ga), None)
        if g is None:
            raise InvalidParameter(f"Unable to find group {ga}: no matching entries in group file")
        extra.append(int(g[2]))
    seen: list[int] = []
    for x in extra:
        if x not in seen:
            seen.append(x)
    return uid, gid, tuple(seen)


def read_in_root(root: str, rel: str, limit: int = 4 << 20) -> str:
    """Read `rel` inside `root` with symlinks resolved inside it; '' if absent or not a regular
    file (an image's FIFO would block the daemon, its device node would be the host's device)."""
    import stat

    from dockyard.sys import linux

    rootfd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try:
            fd = linux.openat2(rootfd, rel, os.O_PATH, 0, linux.RESOLVE_IN_ROOT | linux.RESOLVE_NO_MAGICLINKS)
        except OSError:
            return ""
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return ""
            data = os.open(f"/proc/self/fd/{fd}", os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            return ""
        finally:
            os.close(fd)
        try:
            return os.read(data, limit).decode(errors="replace")
        finally:
            os.close(data)
    finally:
        os.close(rootfd)


def lookup(root: str, spec: str, group_add: list[str] | None = None) -> tuple[int, int, tuple[int, ...]]:
    return resolve_user(spec, read_in_root(root, "etc/passwd"), read_in_root(root, "etc/group"), group_add)
