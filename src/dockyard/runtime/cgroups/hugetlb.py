"""The hugetlb controller: per page size limits (hugepageLimits)."""

from __future__ import annotations

from dockyard.runtime.cgroups.fs import read_int, write


def set_v1(paths: dict[str, str], res: dict) -> None:
    d = paths.get("hugetlb")
    for h in res.get("hugepageLimits") or []:
        if d:
            write(d, f"hugetlb.{h['pageSize']}.limit_in_bytes", h["limit"])


def set_v2(path: str, res: dict) -> None:
    for h in res.get("hugepageLimits") or []:
        write(path, f"hugetlb.{h['pageSize']}.max", h["limit"])


def stats_v1(paths: dict[str, str], out: dict) -> None:
    d = paths.get("hugetlb")
    if not d:
        return
    import os

    sizes = sorted({n.split(".")[1] for n in os.listdir(d) if n.startswith("hugetlb.") and n.endswith(".usage_in_bytes")})
    out["hugetlb"] = {s: {"usage": read_int(d, f"hugetlb.{s}.usage_in_bytes"), "max": read_int(d, f"hugetlb.{s}.max_usage_in_bytes"),
                          "failcnt": read_int(d, f"hugetlb.{s}.failcnt")} for s in sizes}
