"""Helpers for the security tests: image tars with hostile content, imported through the API, and
short ways to run a container or an exec and collect its exit code and output."""

from __future__ import annotations

import io
import json
import tarfile
import urllib.parse
from typing import Any

from support.daemon import TestDaemon, busybox_tar, demux


# --- images with hostile content ------------------------------------------------------------------
def _entry(name: str, kind: bytes, **kw: Any) -> tarfile.TarInfo:
    t = tarfile.TarInfo(name)
    t.type = kind
    t.mode = kw.pop("mode", 0o755)
    for k, v in kw.items():
        setattr(t, k, v)
    return t


def symlink(name: str, target: str) -> tuple[tarfile.TarInfo, bytes | None]:
    return _entry(name, tarfile.SYMTYPE, linkname=target, mode=0o777), None


def directory(name: str, mode: int = 0o755) -> tuple[tarfile.TarInfo, bytes | None]:
    return _entry(name, tarfile.DIRTYPE, mode=mode), None


def regular(name: str, data: bytes, mode: int = 0o644) -> tuple[tarfile.TarInfo, bytes | None]:
    return _entry(name, tarfile.REGTYPE, mode=mode, size=len(data)), data


def device(name: str, kind: str, major: int, minor: int) -> tuple[tarfile.TarInfo, bytes | None]:
    return _entry(name, tarfile.BLKTYPE if kind == "b" else tarfile.CHRTYPE, mode=0o600, devmajor=major,
                  devminor=minor), None  # fmt: skip


def fifo(name: str) -> tuple[tarfile.TarInfo, bytes | None]:
    return _entry(name, tarfile.FIFOTYPE, mode=0o644), None


def busybox_with(extra: list[tuple[tarfile.TarInfo, bytes | None]], drop: tuple[str, ...] = ()) -> bytes:
    """The busybox rootfs tar with the top-level (or nested) paths in `drop` left out and `extra`
    entries added at the end."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(busybox_tar())) as src, tarfile.open(fileobj=buf, mode="w") as out:
        for m in src.getmembers():
            name = m.name.lstrip("./").rstrip("/")
            if any(name == d or name.startswith(d + "/") for d in drop):
                continue
            out.addfile(m, src.extractfile(m) if m.isreg() else None)
        for ti, data in extra:
            out.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def import_image(d: TestDaemon, tar: bytes, tag: str, changes: list[str] | None = None) -> str:
    """POST /images/create?fromSrc=- (docker import) on a running daemon."""
    q = [("fromSrc", "-"), ("repo", tag.split(":")[0]), ("tag", tag.split(":")[1] if ":" in tag else "latest")]
    for c in changes or ['CMD ["sh"]']:
        q.append(("changes", c))
    st, body = d.api("POST", "/images/create?" + urllib.parse.urlencode(q), body=tar)
    assert st == 200, body
    return tag


# --- running things -------------------------------------------------------------------------------
def run(d: TestDaemon, cmd: list[str] | str, image: str = "busybox", **config: Any) -> tuple[int, str]:
    """create + start + wait + logs + rm; (exit code, combined output). A start error is returned
    as (-1, message)."""
    if isinstance(cmd, str):
        cmd = ["sh", "-c", cmd]
    st, r = d.api("POST", "/containers/create", {"Image": image, "Cmd": cmd, **config})
    assert st == 201, r
    cid = r["Id"]
    try:
        st, r = d.api("POST", f"/containers/{cid}/start")
        if st != 204:
            return -1, r.get("message", "") if isinstance(r, dict) else str(r)
        st, r = d.api("POST", f"/containers/{cid}/wait")
        code = r["StatusCode"]
        st, out = d.api("GET", f"/containers/{cid}/logs?stdout=1&stderr=1")
        raw = out if config.get("Tty") else demux(out)[0]  # a tty's log is not multiplexed
        return code, raw.decode(errors="replace").replace("\r\n", "\n")
    finally:
        d.api("DELETE", f"/containers/{cid}?force=1&v=1")


def start(d: TestDaemon, cmd: list[str], image: str = "busybox", **config: Any) -> str:
    st, r = d.api("POST", "/containers/create", {"Image": image, "Cmd": cmd, **config})
    assert st == 201, r
    cid = r["Id"]
    st, r = d.api("POST", f"/containers/{cid}/start")
    assert st == 204, r
    return cid


def exec_(d: TestDaemon, cid: str, cmd: list[str], **kw: Any) -> tuple[int | None, str]:
    """Exec `cmd` in a running container; (exit code, combined output), or (None, error message)
    when the exec could not start."""
    st, r = d.api("POST", f"/containers/{cid}/exec", {"Cmd": cmd, "AttachStdout": True, "AttachStderr": True, **kw})
    assert st == 201, r
    eid = r["Id"]
    st, out = d.api("POST", f"/exec/{eid}/start", {"Detach": False, "Tty": False})
    text = demux(out)[0].decode(errors="replace") if isinstance(out, bytes) else json.dumps(out)
    st2, info = d.api("GET", f"/exec/{eid}/json")
    if st != 200:
        return None, text
    return info.get("ExitCode"), text


def probe_mount(probes: str) -> dict[str, Any]:
    return {"Binds": [f"{probes}:/p:ro"]}

