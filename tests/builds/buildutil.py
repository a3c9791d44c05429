"""Helpers for the build tests: a context tar from a dict, POST /build, and what a build left."""

from __future__ import annotations

import io
import json
import tarfile
import urllib.parse
from typing import Any

from support.daemon import TestDaemon


def context_tar(files: dict[str, bytes | str], mode: int = 0o644) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in files.items():
            raw = data.encode() if isinstance(data, str) else data
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode, ti.mtime = len(raw), mode, 1_700_000_000
            tf.addfile(ti, io.BytesIO(raw))
    return buf.getvalue()


def build(d: TestDaemon, files: dict[str, bytes | str], **query: Any) -> tuple[int, Any]:
    """POST /build; (status, [messages]) or (status, error body)."""
    q: list[tuple[str, str]] = []
    for k, v in query.items():
        if isinstance(v, list):
            q += [(k, x) for x in v]
        elif isinstance(v, dict):
            q.append((k, json.dumps(v)))
        else:
            q.append((k, str(v)))
    path = "/build" + ("?" + urllib.parse.urlencode(q) if q else "")
    st, body = d.api("POST", path, context_tar(files), timeout=120)
    if isinstance(body, dict) and st == 200:
        body = [body]
    return st, body


def stream_text(msgs: list[dict]) -> str:
    return "".join(m.get("stream", "") for m in msgs)


def image_id(msgs: list[dict]) -> str:
    ids = [m["aux"]["ID"] for m in msgs if "aux" in m]
    assert ids, msgs
    return ids[-1]


def containers(d: TestDaemon) -> list[dict]:
    st, r = d.api("GET", "/containers/json?all=1")
    assert st == 200
    return r
