"""The event bus behind GET /events: Docker's event messages, a bounded history for `since`, live
subscribers, and Docker's filters (container, image, event, type, label, volume, network, daemon,
scope).

`hold(container_id)` / `flush(container_id)` keep a container's network and volume events (those
whose attributes name the container) back while its exit is handled, so they come out after its
"die", in dockerd's order: die, network disconnect, volume unmount (each stamped when flushed)."""

from __future__ import annotations

import asyncio
import collections
import time
from typing import Any

from dockyard.errors import InvalidParameter

HISTORY = 1024
VALID_FILTERS = {"config", "container", "daemon", "event", "image", "label", "network", "node", "plugin", "scope",
                 "secret", "service", "type", "volume"}  # fmt: skip
VALID_TYPES = {"builder", "config", "container", "daemon", "image", "network", "node", "plugin", "secret", "service",
               "volume"}  # fmt: skip


def make_event(type_: str, action: str, actor_id: str, attributes: dict[str, str] | None = None) -> dict[str, Any]:
    ns = time.time_ns()
    ev: dict[str, Any] = {
        "Type": type_,
        "Action": action,
        "Actor": {"ID": actor_id, "Attributes": dict(attributes or {})},
        "scope": "local",
        "time": ns // 1_000_000_000,
        "timeNano": ns,
    }
    if type_ in ("container", "image"):
        # the deprecated top-level fields older clients (and docker-py) still read
        ev["status"] = action
        ev["id"] = actor_id
        if type_ == "container" and attributes and "image" in attributes:
            ev["from"] = attributes["image"]
    return ev


def validate_filters(filters: dict[str, list[str]]) -> None:
    for key in filters:
        if key not in VALID_FILTERS:
            raise InvalidParameter(f"invalid filter '{key}'")
    for t in filters.get("type", []):
        if t not in VALID_TYPES:
            raise InvalidParameter(f"Invalid filter: 'type'='{t}'")


def matches(ev: dict[str, Any], filters: dict[str, list[str]]) -> bool:
    if not filters:
        return True
    attrs = ev["Actor"]["Attributes"]
    actor = ev["Actor"]["ID"]

    def any_of(key: str, values: set[str]) -> bool:
        want = filters.get(key)
        return not want or any(w in values for w in want)

    if not any_of("type", {ev["Type"]}):
        return False
    action = ev["Action"]
    if not any_of("event", {action, action.split(":", 1)[0]}):
        return False
    if not any_of("scope", {ev.get("scope", "local")}):
        return False
    if "container" in filters:
        if ev["Type"] != "container":
            return False
        ids = {actor, attrs.get("name", "")}
        if not any(w in ids or (len(w) >= 1 and actor.startswith(w)) for w in filters["container"]):
            return False
    if "image" in filters:
        img = attrs.get("image", "") if ev["Type"] == "container" else actor
        names = {img, attrs.get("name", ""), img.split(":", 1)[0] if ":" in img and "@" not in img else img}
        if not any(w in names for w in filters["image"]):
            return False
    if "volume" in filters and (ev["Type"] != "volume" or actor not in filters["volume"]):
        return False
    if "network" in filters and (ev["Type"] != "network" or not ({actor, attrs.get("name", "")} & set(filters["network"]))):
        return False
    if "daemon" in filters and ev["Type"] != "daemon":
        return False
    for lab in filters.get("label", []):
        k, sep, v = lab.partition("=")
        if k not in attrs or (sep and attrs[k] != v):
            return False
    return True


class EventBus:
    def __init__(self) -> None:
        self.history: collections.deque[dict[str, Any]] = collections.deque(maxlen=HISTORY)
        self._subs: set[asyncio.Queue[dict[str, Any]]] = set()
        self._held: dict[str, list[tuple[str, str, str, dict[str, str] | None]]] = {}

    def hold(self, container_id: str) -> None:
        """Keep `container_id`'s network and volume events until `flush`."""
        self._held.setdefault(container_id, [])

    def flush(self, container_id: str) -> None:
        for args in self._held.pop(container_id, []):
            self.publish(*args)

    def publish(self, type_: str, action: str, actor_id: str, attributes: dict[str, str] | None = None) -> dict[str, Any] | None:
        if self._held and type_ in ("network", "volume") and attributes:
            held = self._held.get(attributes.get("container", ""))
            if held is not None:
                held.append((type_, action, actor_id, attributes))
                return None
        ev = make_event(type_, action, actor_id, attributes)
        self.history.append(ev)
        for q in list(self._subs):
            if q.qsize() < 10000:
                q.put_nowait(ev)
        return ev

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        q: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._subs.add(q)
        return q

    def unsubscribe(self, q: asyncio.Queue[dict[str, Any]]) -> None:
        self._subs.discard(q)

    def since(self, since_ns: int, until_ns: int | None) -> list[dict[str, Any]]:
        return [e for e in self.history if e["timeNano"] >= since_ns and (until_ns is None or e["timeNano"] <= until_ns)]
