"""Seccomp profiles: Dockyard's default policy and Docker-format profiles, as OCI `linux.seccomp`.

The default policy lives in `seccomp_default.json` (our own data: an allow-list plus rules gated
on capabilities or architectures). Users pass Docker-format profiles (`--security-opt
seccomp=<file>`; the CLI sends the file's JSON), with `archMap`, `includes`/`excludes` on caps,
arches and minKernel. Both are reduced here, purely, for one container's capability set.
"""

from __future__ import annotations

import functools
import json
import os
from typing import Any

from dockyard.errors import InvalidParameter

_DATA = os.path.join(os.path.dirname(__file__), "seccomp_default.json")

# GOARCH-style names used by Docker profiles -> libseccomp architecture names
ARCH_NAMES = {
    "amd64": "SCMP_ARCH_X86_64",
    "x86": "SCMP_ARCH_X86",
    "x32": "SCMP_ARCH_X32",
    "arm64": "SCMP_ARCH_AARCH64",
    "arm": "SCMP_ARCH_ARM",
}
_MACHINE_TO_GOARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


def host_arch() -> str:
    return _MACHINE_TO_GOARCH.get(os.uname().machine, os.uname().machine)


@functools.lru_cache(maxsize=1)
def _default_data() -> dict[str, Any]:
    with open(_DATA) as f:
        return json.load(f)


def _arch_matches(arches: list[str], arch: str) -> bool:
    # a rule for "amd64" also covers the 32-bit sub-architectures a 64-bit host runs
    related = {"amd64": {"amd64", "x86", "x32"}, "arm64": {"arm64", "arm"}}.get(arch, {arch})
    return any(a in related for a in arches)


def _syscall(rule: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"names": list(rule["names"]), "action": rule["action"]}
    if rule.get("args"):
        out["args"] = [
            {k: a[k] for k in ("index", "value", "valueTwo", "op") if k in a} | {"valueTwo": a.get("valueTwo", 0)}
            for a in rule["args"]
        ]
    if "errnoRet" in rule:
        out["errnoRet"] = rule["errnoRet"]
    return out


def default_profile(caps: list[str], arch: str | None = None) -> dict[str, Any]:
    """The default policy for a container holding `caps` (e.g. ["CAP_CHOWN", ...])."""
    arch = arch or host_arch()
    data = _default_data()
    capset = set(caps)
    syscalls = [{"names": list(data["allow"]), "action": "SCMP_ACT_ALLOW"}]
    for rule in data["rules"]:
        if "arches" in rule and not _arch_matches(rule["arches"], arch):
            continue
        if "caps" in rule and not capset.intersection(rule["caps"]):
            continue
        if "notCaps" in rule and capset.intersection(rule["notCaps"]):
            continue
        syscalls.append(_syscall(rule))
    return {
        "defaultAction": data["defaultAction"],
        "defaultErrnoRet": data["defaultErrnoRet"],
        "architectures": list(data["architectures"].get(arch, [])),
        "syscalls": syscalls,
    }


def _kernel_at_least(version: str, kernel: str) -> bool:
    def parts(v: str) -> tuple[int, ...]:
        out = []
        for p in v.split("-")[0].split(".")[:3]:
            digits = "".join(ch for ch in p if ch.isdigit())
            out.append(int(digits or 0))
        return tuple(out)

    return parts(kernel) >= parts(version)


def from_docker_profile(text: str, caps: list[str], arch: str | None = None, kernel: str | None = None) -> dict[str, Any]:
    """Reduce a Docker-format seccomp profile (JSON text) to OCI `linux.seccomp` for this container."""
    arch = arch or host_arch()
    kernel = kernel or os.uname().release
    try:
        prof = json.loads(text)
    except ValueError as e:
        raise InvalidParameter(f"Decoding seccomp profile failed: {e}") from None
    if not isinstance(prof, dict):
        raise InvalidParameter("Decoding seccomp profile failed: not a JSON object")
    if prof.get("architectures") and prof.get("archMap"):
        raise InvalidParameter("'architectures' and 'archMap' were specified in the seccomp profile, use either 'architectures' or 'archMap'")
    capset = set(caps)
    out: dict[str, Any] = {"defaultAction": prof.get("defaultAction", "SCMP_ACT_ERRNO")}
    if "defaultErrnoRet" in prof:
        out["defaultErrnoRet"] = prof["defaultErrnoRet"]
    arches: list[str] = list(prof.get("architectures") or [])
    for entry in prof.get("archMap") or []:
        if entry.get("architecture") == ARCH_NAMES.get(arch):
            arches = [entry["architecture"], *(entry.get("subArchitectures") or [])]
    if arches:
        out["architectures"] = arches
    if prof.get("flags"):
        out["flags"] = list(prof["flags"])
    syscalls = []
    for rule in prof.get("syscalls") or []:
        inc, exc = rule.get("includes") or {}, rule.get("excludes") or {}
        if inc.get("arches") and not _arch_matches(inc["arches"], arch):
            continue
        if exc.get("arches") and _arch_matches(exc["arches"], arch):
            continue
        if inc.get("caps") and not capset.issuperset(inc["caps"]):
            continue
        if exc.get("caps") and capset.intersection(exc["caps"]):
            continue
        if inc.get("minKernel") and not _kernel_at_least(inc["minKernel"], kernel):
            continue
        names = rule.get("names") or ([rule["name"]] if rule.get("name") else [])
        if not names:
            continue
        syscalls.append(_syscall({**rule, "names": names}))
    out["syscalls"] = syscalls
    return out
