"""The pids controller: the maximum number of tasks (OCI `limit` <= 0 means unlimited)."""

from __future__ import annotations

from dockyard.runtime.cgroups.fs import read_int, write


def _value(res: dict) -> str | None:
    pids = res.get("pids")
    if not pids or "limit" not in pids:
        return None
    limit = int(pids["limit"])
    return "max" if limit <= 0 else str(limit)


def set_v1(paths: dict[str, str], res: dict) -> None:
    v = _value(res)
    if v is not None and paths.get("pids"):
        write(paths["pids"], "pids.max", v)


def set_v2(path: str, res: dict) -> None:
    v = _value(res)
    if v is not None:
        write(path, "pids.max", v)


def _stats(d: str, out: dict) -> None:
    out["pids"] = {"current": read_int(d, "pids.current"), "limit": read_int(d, "pids.max", -1)}


def stats_v1(paths: dict[str, str], out: dict) -> None:
    if paths.get("pids"):
        _stats(paths["pids"], out)


def stats_v2(path: str, out: dict) -> None:
    _stats(path, out)
