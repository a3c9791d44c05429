"""Snapshots of the kernel objects a container engine can leak: mounts, veths, bridges, named
network namespaces, nftables tables and cgroup directories whose names mention dockyard.

The suite takes one snapshot at start and one at the end; anything new at the end is a leak.
"""

from __future__ import annotations

import os
import subprocess


def _run(args: list[str]) -> str:
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""


def mounts() -> set[str]:
    out = set()
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            mountpoint = fields[4]
            fstype = fields[fields.index("-") + 1]
            if "dockyard" in line or fstype == "overlay" or "/dyt" in mountpoint:
                out.add(f"{fstype} {mountpoint}")
    return out


def links(kind: str) -> set[str]:
    out = set()
    for line in _run(["ip", "-o", "link", "show", "type", kind]).splitlines():
        name = line.split(":")[1].strip().split("@")[0]
        if "docker0" in line or "podman" in line or "cni-" in line:
            continue
        out.add(name)
    return out


def netns() -> set[str]:
    return {line.split()[0] for line in _run(["ip", "netns", "list"]).splitlines() if line.strip()}


def nft_tables() -> set[str]:
    return {line.strip() for line in _run(["nft", "list", "tables"]).splitlines() if "dockyard" in line.lower()}


def cgroups() -> set[str]:
    out = set()
    root = "/sys/fs/cgroup"
    for dirpath, dirnames, _ in os.walk(root):
        depth = dirpath[len(root):].count("/")
        if depth >= 7:
            dirnames[:] = []
            continue
        for d in dirnames:
            if "dockyard" in d.lower() or d.startswith("dyt"):
                out.add(os.path.join(dirpath, d))
    return out


def snapshot() -> dict[str, set[str]]:
    return {
        "mounts": mounts(),
        "veth": links("veth"),
        "bridges": links("bridge"),
        "netns": netns(),
        "nft tables": nft_tables(),
        "cgroups": cgroups(),
    }


def diff(before: dict[str, set[str]], after: dict[str, set[str]]) -> dict[str, set[str]]:
    return {k: after[k] - before.get(k, set()) for k in after if after[k] - before.get(k, set())}
