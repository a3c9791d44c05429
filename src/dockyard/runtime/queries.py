"""Read-mostly verbs: state, list, ps, events, update, spec."""

from __future__ import annotations

import os

from dockyard.runtime import jsonfast
from dockyard.runtime import state as st
from dockyard.runtime.state import StateError


def _out(text: str) -> None:
    data = (text + "\n").encode()
    view = memoryview(data)
    while view:
        view = view[os.write(1, view):]


def state_cmd(root: str, container_id: str) -> None:
    _out(jsonfast.dumps_pretty(st.load(root, container_id).oci_state()))


def list_cmd(root: str, fmt: str = "table", quiet: bool = False) -> None:
    items = []
    for cid in st.list_ids(root):
        try:
            items.append(st.load(root, cid).oci_state())
        except StateError:
            continue
    if quiet:
        if items:
            _out("\n".join(i["id"] for i in items))
        return
    if fmt == "json":
        _out(jsonfast.dumps(items))
        return
    if fmt != "table":
        raise StateError(f"invalid format option: {fmt}")
    rows = [["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]]
    for i in items:
        rows.append([i["id"], str(i["pid"]), i["status"], i["bundle"], i["created"], i["owner"] or "root"])
    widths = [max(12, max(len(r[k]) for r in rows) + 3) for k in range(6)]
    _out("\n".join("".join(c.ljust(widths[k]) for k, c in enumerate(r)).rstrip() for r in rows))


def ps_cmd(root: str, container_id: str, fmt: str = "table", ps_args: list[str] | None = None) -> None:
    from dockyard.runtime.cgroups import manager_for_state

    c = st.load(root, container_id)
    pids = manager_for_state(c.data).pids() if c.status() != "stopped" else []
    if fmt == "json":
        _out(jsonfast.dumps(pids))
        return
    if fmt != "table":
        raise StateError(f"invalid format option: {fmt}")
    import subprocess

    args = ps_args or ["-ef"]
    try:
        out = subprocess.run(["ps", *args], capture_output=True, text=True, check=True).stdout
    except FileNotFoundError:
        raise StateError("ps: the ps command is not installed") from None
    except subprocess.CalledProcessError as e:
        raise StateError(f"ps: {e.stderr.strip() or e}") from None
    lines = out.splitlines()
    if not lines:
        return
    header = lines[0].split()
    if "PID" not in header:
        raise StateError("couldn't find PID field in ps output")
    idx = header.index("PID")
    keep = [lines[0]]
    want = set(pids)
    for line in lines[1:]:
        fields = line.split()
        if len(fields) > idx and fields[idx].isdigit() and int(fields[idx]) in want:
            keep.append(line)
    _out("\n".join(keep))


def events_cmd(root: str, container_id: str, stats: bool = False, interval: str = "5s") -> None:
    import time

    from dockyard.runtime.stats import container_stats

    secs = _duration(interval)
    c = st.load(root, container_id)
    while True:
        if c.status() == "stopped":
            if stats:
                raise StateError("container not running")
            return
        _out(jsonfast.dumps({"type": "stats", "id": container_id, "data": container_stats(container_id, root)}))
        if stats:
            return
        time.sleep(secs)


def _duration(text: str) -> float:
    t = text.strip()
    for suffix, mult in (("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0)):
        if t.endswith(suffix):
            try:
                return float(t[: -len(suffix)]) * mult
            except ValueError:
                break
    try:
        return float(t)
    except ValueError:
        raise StateError(f"invalid duration {text!r}") from None


def merge_resources(current: dict, update: dict) -> dict:
    """Overlay `update` (an OCI linux.resources fragment) onto `current` (pure)."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in current.items()}
    for k, v in update.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = {**out[k], **v}
        else:
            out[k] = v
    return out


def update_cmd(root: str, container_id: str, resources: dict) -> None:
    from dockyard.runtime.cgroups import manager_for_state

    c = st.load(root, container_id)
    if c.status() == "stopped":
        raise StateError(f"container {container_id} is not running")
    linux = c.config.setdefault("linux", {})
    merged = merge_resources(linux.get("resources") or {}, resources)
    # the merged set, so memory and swap are written together in an order the kernel accepts
    manager_for_state(c.data).set({k: v for k, v in merged.items() if k != "devices"})
    linux["resources"] = merged
    c.save()


def spec_cmd(bundle: str, rootless: bool = False) -> None:
    from dockyard.runtime.defaults import default_spec

    path = os.path.join(bundle or ".", "config.json")
    if os.path.exists(path):
        raise StateError("File config.json exists. Remove it first.")
    with open(path, "w") as f:
        f.write(jsonfast.dumps_pretty(default_spec(rootless), "\t"))
