"""Docker's `filters` query parameter: parsing (both the map-of-lists and the older
map-of-maps JSON) and the container filters of GET /containers/json and /containers/prune."""

from __future__ import annotations

import json
import re
import time
from typing import Any

from dockyard.daemon import timeutil
from dockyard.errors import InvalidParameter

CONTAINER_FILTERS = {"ancestor", "before", "expose", "exited", "health", "id", "isolation", "is-task", "label",
                     "name", "network", "publish", "since", "status", "volume"}  # fmt: skip
STATUSES = {"created", "restarting", "running", "removing", "paused", "exited", "dead"}


def parse(raw: str | None) -> dict[str, list[str]]:
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise InvalidParameter("invalid filter: invalid character in filters JSON") from None
    if not isinstance(data, dict):
        raise InvalidParameter("invalid filter: filters must be a JSON object")
    out: dict[str, list[str]] = {}
    for k, v in data.items():
        if isinstance(v, dict):
            out[k] = [kk for kk, on in v.items() if on]
        elif isinstance(v, list):
            out[k] = [str(x) for x in v]
        elif isinstance(v, str):
            out[k] = [v]
        else:
            raise InvalidParameter(f"invalid filter '{k}'")
    return out


def check_container_filters(f: dict[str, list[str]]) -> None:
    for k in f:
        if k not in CONTAINER_FILTERS:
            raise InvalidParameter(f"invalid filter '{k}'")
    for s in f.get("status", []):
        if s not in STATUSES:
            raise InvalidParameter(f"invalid filter 'status={s}'")
    for e in f.get("exited", []):
        try:
            int(e)
        except ValueError:
            raise InvalidParameter(f"invalid filter 'exited={e}'") from None
    for h in f.get("health", []):
        if h not in ("starting", "healthy", "unhealthy", "none"):
            raise InvalidParameter(f"Unrecognised filter value for health: {h}")
    for t in f.get("is-task", []):
        if t not in ("true", "false"):
            raise InvalidParameter(f"invalid filter 'is-task={t}'")


def labels_match(labels: dict[str, str], wanted: list[str]) -> bool:
    for lab in wanted:
        k, sep, v = lab.partition("=")
        if k not in labels or (sep and labels[k] != v):
            return False
    return True


def _port_match(spec: str, ports: set[str]) -> bool:
    port, _, proto = spec.partition("/")
    proto = proto or "tcp"
    if "-" in port:
        a, _, b = port.partition("-")
        try:
            return any(f"{p}/{proto}" in ports for p in range(int(a), int(b) + 1))
        except ValueError:
            raise InvalidParameter(f"invalid filter '{spec}'") from None
    return f"{port}/{proto}" in ports


def container_matches(c: Any, f: dict[str, list[str]], d: Any, ancestor_ids: set[str] | None = None) -> bool:
    if not f:
        return True
    if "id" in f and not any(c.id.startswith(x) for x in f["id"]):
        return False
    if "name" in f:
        name = "/" + c.name
        ok = False
        for pat in f["name"]:
            try:
                if re.search(pat, name) or re.search(pat, c.name):
                    ok = True
                    break
            except re.error:
                if pat in name:
                    ok = True
                    break
        if not ok:
            return False
    if "label" in f and not labels_match(c.config.get("Labels") or {}, f["label"]):
        return False
    if "status" in f and c.state.status not in f["status"]:
        return False
    if "exited" in f and (c.state.status != "exited" or str(c.state.exit_code) not in f["exited"]):
        return False
    if "ancestor" in f:
        ok = False
        for anc in f["ancestor"]:
            if anc in (c.image_id, c.config.get("Image")) or c.image_id.startswith("sha256:" + anc):
                ok = True
                break
            if ancestor_ids and c.image_id in ancestor_ids:
                ok = True
                break
        if not ok:
            return False
    if "before" in f:
        for ref in f["before"]:
            other = d.store.get(ref)
            if timeutil.parse_ns(c.created) >= timeutil.parse_ns(other.created):
                return False
    if "since" in f:
        for ref in f["since"]:
            other = d.store.get(ref)
            if timeutil.parse_ns(c.created) <= timeutil.parse_ns(other.created):
                return False
    if "volume" in f:
        names = {mp.get("Name") for mp in c.mount_points} | {mp.get("Destination") for mp in c.mount_points}
        names |= {mp.get("Source") for mp in c.mount_points}
        if not any(v in names for v in f["volume"]):
            return False
    if "network" in f:
        nets = c.network_settings.get("Networks") or {}
        ids = set(nets) | {n.get("NetworkID", "") for n in nets.values()}
        mode = c.host_config.get("NetworkMode") or ""
        ids.add(mode)
        if not any(n in ids or any(i.startswith(n) for i in ids if i) for n in f["network"]):
            return False
    if "publish" in f:
        ports = {k for k, v in (c.network_settings.get("Ports") or {}).items() if v}
        ports |= set((c.host_config.get("PortBindings") or {}).keys())
        if not any(_port_match(p, ports) for p in f["publish"]):
            return False
    if "expose" in f:
        ports = set((c.config.get("ExposedPorts") or {}).keys())
        if not any(_port_match(p, ports) for p in f["expose"]):
            return False
    if "health" in f:
        health = c.state.health.get("Status") if c.state.health else "none"
        if health not in f["health"]:
            return False
    return not ("is-task" in f and "true" in f["is-task"])


def check_prune_filters(f: dict[str, list[str]]) -> None:
    for k in f:
        if k not in ("until", "label", "label!"):
            raise InvalidParameter(f"invalid filter '{k}'")
    for u in f.get("until", []):
        try:
            timeutil.parse_api_time(u)
        except ValueError:
            raise InvalidParameter(f"invalid filter 'until={u}'") from None


def prune_matches(c: Any, f: dict[str, list[str]]) -> bool:
    labels = c.config.get("Labels") or {}
    if "label" in f and not labels_match(labels, f["label"]):
        return False
    for lab in f.get("label!", []):
        k, sep, v = lab.partition("=")
        if k in labels and (not sep or labels[k] == v):
            return False
    for u in f.get("until", []):
        if timeutil.parse_ns(c.created) >= timeutil.parse_api_time(u, time.time_ns()):
            return False
    return True
