"""GET /containers/json and /containers/{id}/json: Docker's list and inspect shapes."""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING, Any

from dockyard.daemon import filters as flt
from dockyard.daemon import timeutil
from dockyard.daemon.container import Container

if TYPE_CHECKING:
    from dockyard.daemon.daemon import Daemon


def graph_driver(d: Daemon, c: Container) -> dict[str, Any]:
    try:
        rw = d.layers.rw_layer(c.id)
    except Exception:  # noqa: BLE001 - no layer any more
        return {"Data": None, "Name": "overlay2"}
    home = d.layers.driver.home
    upper = os.path.join(home, rw.mount_id)
    lowers = [os.path.join(home, rw.init_id, "diff")]
    try:
        lowers += d.layers.driver.lower_diff_paths(rw.init_id)
    except Exception:  # noqa: BLE001
        pass
    return {
        "Data": {
            "LowerDir": ":".join(lowers),
            "MergedDir": os.path.join(upper, "merged"),
            "UpperDir": os.path.join(upper, "diff"),
            "WorkDir": os.path.join(upper, "work"),
        },
        "Name": "overlay2",
    }


def _network_view(d: Daemon, c: Container) -> None:
    svc = d.networking.service
    if svc is not None and hasattr(svc, "settings"):
        try:
            c.network_settings.update(svc.settings(c.id))
        except Exception:  # noqa: BLE001 - not known to the network layer (host/none/container modes)
            pass


async def inspect(d: Daemon, c: Container, size: bool = False) -> dict[str, Any]:
    gd = await asyncio.to_thread(graph_driver, d, c)
    sizes = await asyncio.to_thread(d.layers.sizes, c.id) if size else None
    _network_view(d, c)
    out = c.inspect(graph_driver=gd, sizes=sizes)
    if out["HostConfig"].get("Links"):  # Docker shows links as "/child:/parent/alias"
        out["HostConfig"]["Links"] = d.networking.links_view(c)
    out["HostConfig"].setdefault("MaskedPaths", None)
    if not c.host_config.get("Privileged"):
        from dockyard.daemon import oci_spec

        out["HostConfig"]["MaskedPaths"] = list(oci_spec.MASKED_PATHS)
        out["HostConfig"]["ReadonlyPaths"] = list(oci_spec.READONLY_PATHS)
    return out


def image_ref_for(d: Daemon, c: Container) -> str:
    """What `docker ps` shows in IMAGE: the name the user gave if it still points at the
    container's image, else the image id."""
    return c.config.get("Image") or c.image_id


async def list_containers(d: Daemon, all_: bool = False, limit: int = -1, size: bool = False, latest: bool = False,
                          filters: dict[str, list[str]] | None = None) -> list[dict[str, Any]]:  # fmt: skip
    f = filters or {}
    flt.check_container_filters(f)
    ancestor_ids: set[str] = set()
    for anc in f.get("ancestor", []):
        try:
            img = await d.image_get(anc)
            ancestor_ids.add(img.id)
        except Exception:  # noqa: BLE001 - unknown image: matches nothing by id
            pass
    if "before" in f or "since" in f:
        for ref in f.get("before", []) + f.get("since", []):
            d.store.get(ref)
    cs = sorted(d.store.all(), key=lambda c: (timeutil.parse_ns(c.created), c.id), reverse=True)
    if latest:
        limit = 1
    show_all = all_ or limit > 0 or "status" in f or "exited" in f
    out = []
    for c in cs:
        if not show_all and not c.state.running:
            continue
        if not flt.container_matches(c, f, d, ancestor_ids):
            continue
        out.append(c)
        if limit > 0 and len(out) >= limit:
            break
    result = []
    for c in out:
        sizes = await asyncio.to_thread(d.layers.sizes, c.id) if size else None
        _network_view(d, c)
        entry = c.summary(image_ref_for(d, c), sizes)
        svc = d.networking.service
        if svc is not None and hasattr(svc, "port_summary") and c.state.running:
            try:
                entry["Ports"] = svc.port_summary(c.id)
            except Exception:  # noqa: BLE001
                pass
        result.append(entry)
    return result
