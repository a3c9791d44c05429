"""Mount specifications -> the container's mount points, as Docker parses them.

Sources: HostConfig.Binds (`-v src:dst[:opts]`), HostConfig.Mounts (`--mount`), HostConfig.
VolumesFrom, and the image's (and Config's) Volumes, which become anonymous volumes. `parse_*`
are pure and unit-tested; `oci_mounts()` turns stored mount points into OCI mounts once volume
paths are known.

A stored mount point is a dict: Type (bind|volume|tmpfs), Source, Destination, Name, Driver,
Mode, RW, Propagation, plus private keys: NoCopy, TmpfsOptions, NonRecursive, CreateMountpoint,
Anonymous.
"""

from __future__ import annotations

import os
import posixpath
import re
from typing import Any

from dockyard.errors import InvalidParameter

VOLUME_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
PROPAGATIONS = {"shared", "rshared", "slave", "rslave", "private", "rprivate"}
CONSISTENCY = {"consistent", "cached", "delegated"}
LABEL_MODES = {"z", "Z"}


def _bad(spec: str, why: str = "") -> InvalidParameter:
    return InvalidParameter(f"invalid volume specification: '{spec}'" + (f": {why}" if why else ""))


def _check_dest(spec: str, kind: str, dest: str) -> str:
    if not dest.startswith("/"):
        raise _bad(spec, f"invalid mount config for type \"{kind}\": invalid mount path: '{dest}' mount path must be absolute")
    clean = posixpath.normpath(dest)
    if clean == "/":
        raise _bad(spec, f"invalid mount config for type \"{kind}\": invalid specification: destination can't be '/'")
    return clean


def parse_bind(spec: str) -> dict[str, Any]:
    """One `-v` entry: /host:/ctr[:opts], name:/ctr[:opts], or /ctr (anonymous volume)."""
    parts = spec.split(":")
    if len(parts) == 1:
        src, dest, mode = "", parts[0], ""
    elif len(parts) == 2:
        if parts[1].startswith("/"):
            src, dest, mode = parts[0], parts[1], ""
        else:
            src, dest, mode = "", parts[0], parts[1]
            if not dest.startswith("/"):
                raise _bad(spec)
    elif len(parts) == 3:
        src, dest, mode = parts
    else:
        raise _bad(spec)
    if not dest:
        raise _bad(spec)
    opts = [o for o in mode.split(",") if o]
    rw, propagation, nocopy = True, "", False
    for o in opts:
        if o in ("ro", "rw"):
            rw = o == "rw"
        elif o in PROPAGATIONS:
            propagation = o
        elif o == "nocopy":
            nocopy = True
        elif o in LABEL_MODES or o in CONSISTENCY:
            continue
        else:
            raise InvalidParameter(f"invalid mode: {mode}")
    if src.startswith("/") or src.startswith("."):
        if not src.startswith("/"):
            raise _bad(spec, "invalid mount config for type \"bind\": invalid mount path: '" + src + "' mount path must be absolute")
        dest = _check_dest(spec, "bind", dest)
        if nocopy:
            raise InvalidParameter(f"invalid mode: {mode}")
        return {"Type": "bind", "Source": posixpath.normpath(src), "Destination": dest, "Mode": mode, "RW": rw,
                "Propagation": propagation or "rprivate", "CreateMountpoint": True}  # fmt: skip
    dest = _check_dest(spec, "volume", dest)
    if propagation:
        raise InvalidParameter(f"invalid mode: {mode}")
    if src and not VOLUME_NAME.match(src):
        raise InvalidParameter(
            f'create {src}: "{src}" includes invalid characters for a local volume name, only '
            '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path'
        )
    return {"Type": "volume", "Name": src, "Source": "", "Destination": dest, "Driver": "local",
            "Mode": mode or "z", "RW": rw, "Propagation": "", "NoCopy": nocopy, "Anonymous": not src}  # fmt: skip


def parse_mount(m: dict[str, Any]) -> dict[str, Any]:
    """One HostConfig.Mounts entry (`--mount type=...`)."""
    kind = m.get("Type") or ""
    target = m.get("Target") or m.get("Destination") or ""
    source = m.get("Source") or ""
    ro = bool(m.get("ReadOnly"))
    if kind not in ("bind", "volume", "tmpfs"):
        if kind in ("npipe", "cluster", "image"):
            raise InvalidParameter(f'invalid mount config for type "{kind}": mount type unknown')
        raise InvalidParameter(f'mount type unknown: "{kind}"' if kind else "invalid mount config: mount type unknown")
    if not target:
        raise InvalidParameter(f'invalid mount config for type "{kind}": field Target must not be empty')
    if not target.startswith("/"):
        raise InvalidParameter(f"invalid mount config for type \"{kind}\": invalid mount path: '{target}' mount path must be absolute")
    dest = posixpath.normpath(target)
    if dest == "/":
        raise InvalidParameter(f"invalid mount config for type \"{kind}\": invalid specification: destination can't be '/'")
    if kind == "bind":
        if not source:
            raise InvalidParameter('invalid mount config for type "bind": field Source must not be empty')
        if not source.startswith("/"):
            raise InvalidParameter(f"invalid mount config for type \"bind\": invalid mount path: '{source}' mount path must be absolute")
        bo = m.get("BindOptions") or {}
        prop = bo.get("Propagation") or "rprivate"
        if prop not in PROPAGATIONS:
            raise InvalidParameter(f'invalid mount config for type "bind": invalid propagation mode: {prop}')
        if m.get("VolumeOptions") or m.get("TmpfsOptions"):
            raise InvalidParameter('invalid mount config for type "bind": field VolumeOptions must not be specified')
        return {"Type": "bind", "Source": posixpath.normpath(source), "Destination": dest, "Mode": "", "RW": not ro,
                "Propagation": prop, "NonRecursive": bool(bo.get("NonRecursive")),
                "CreateMountpoint": bool(bo.get("CreateMountpoint")), "MustExist": True}  # fmt: skip
    if kind == "volume":
        vo = m.get("VolumeOptions") or {}
        if m.get("BindOptions") or m.get("TmpfsOptions"):
            raise InvalidParameter('invalid mount config for type "volume": field BindOptions must not be specified')
        if source and not VOLUME_NAME.match(source):
            raise InvalidParameter(
                f'create {source}: "{source}" includes invalid characters for a local volume name, only '
                '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path'
            )
        dc = vo.get("DriverConfig") or {}
        return {"Type": "volume", "Name": source, "Source": "", "Destination": dest,
                "Driver": dc.get("Name") or "local", "DriverOpts": dc.get("Options") or {},
                "Labels": vo.get("Labels") or {}, "Mode": "", "RW": not ro, "Propagation": "",
                "NoCopy": bool(vo.get("NoCopy")), "Anonymous": not source}  # fmt: skip
    # tmpfs
    if source:
        raise InvalidParameter('invalid mount config for type "tmpfs": field Source must not be specified')
    to = m.get("TmpfsOptions") or {}
    opts = []
    if to.get("SizeBytes"):
        opts.append(f"size={int(to['SizeBytes'])}")
    if to.get("Mode"):
        opts.append(f"mode={int(to['Mode']) & 0o7777:o}")
    return {"Type": "tmpfs", "Source": "", "Destination": dest, "Mode": "", "RW": not ro, "Propagation": "",
            "TmpfsOptions": opts}  # fmt: skip


def parse_volumes_from(spec: str) -> tuple[str, str]:
    """`container[:ro|rw]` -> (container, mode)."""
    name, sep, mode = spec.partition(":")
    if not name:
        raise InvalidParameter(f"invalid volumes-from specification: '{spec}'")
    if sep and mode not in ("ro", "rw", "z", "Z", "ro,z", "rw,z", "ro,Z", "rw,Z"):
        raise InvalidParameter(f"invalid mode: {mode}")
    return name, mode


def collect(host_config: dict[str, Any], config: dict[str, Any]) -> list[dict[str, Any]]:
    """Mount points from Binds, Mounts and Tmpfs (VolumesFrom and image volumes are added by the
    daemon, which can look containers and images up). Raises on duplicates, as Docker does."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()

    def add(mp: dict[str, Any]) -> None:
        if mp["Destination"] in seen:
            raise InvalidParameter(f"Duplicate mount point: {mp['Destination']}")
        seen.add(mp["Destination"])
        out.append(mp)

    for spec in host_config.get("Binds") or []:
        add(parse_bind(spec))
    for m in host_config.get("Mounts") or []:
        add(parse_mount(m))
    for dest in host_config.get("Tmpfs") or {}:
        if not dest.startswith("/"):
            raise InvalidParameter(f"invalid mount path: '{dest}' mount path must be absolute")
        if posixpath.normpath(dest) in seen:
            raise InvalidParameter(f"Duplicate mount point: {posixpath.normpath(dest)}")
    return out


def oci_mounts(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stored mount points (Source resolved) -> OCI mounts."""
    out = []
    for mp in points:
        if mp["Type"] == "tmpfs":
            opts = ["nosuid", "nodev", "noexec", *mp.get("TmpfsOptions", [])]
            if not mp.get("RW", True):
                opts.append("ro")
            out.append({"destination": mp["Destination"], "type": "tmpfs", "source": "tmpfs", "options": opts})
            continue
        bind = "bind" if mp.get("NonRecursive") else "rbind"
        opts = [bind, mp.get("Propagation") or "rprivate", "rw" if mp.get("RW", True) else "ro"]
        out.append({"destination": mp["Destination"], "type": "bind", "source": mp["Source"], "options": opts})
    return out


def ensure_bind_source(mp: dict[str, Any], owner: tuple[int, int] | None = None) -> None:
    """-v creates a missing host directory (owned by `owner`, the remapped root under
    userns-remap, as Docker makes it); --mount refuses it (blocking)."""
    src = mp["Source"]
    if os.path.exists(src):
        return
    if mp.get("MustExist"):
        raise InvalidParameter(f'invalid mount config for type "bind": bind source path does not exist: {src}')
    os.makedirs(src, mode=0o755, exist_ok=True)
    if owner is not None:
        os.chown(src, *owner)
