"""User-namespace id mappings (Docker's `IdentityMapping`): container ids <-> host ids.

With `--userns-remap` the daemon keeps every layer with its owners shifted into the remapped
range: a file owned by 0:0 in a layer tar is 100000:100000 on disk when the range starts at
100000. This module is the pure arithmetic for it, shared by storage/ (extraction shifts to the
host, diff export shifts back), volume/ and daemon/ (the OCI spec's uid/gid maps).

    m = IdentityMapping((IDMap(0, 100000, 65536),), (IDMap(0, 100000, 65536),))
    m.root_pair() -> (100000, 100000)        the host ids of the container's root
    m.to_host(uid, gid)                      InvalidParameter("Container ID 70000 cannot be mapped to a host ID")
    m.to_container(uid, gid)                 InvalidParameter("Host ID 0 cannot be mapped to a container ID")
    m.to_container_or_overflow(uid, gid)     unmapped ids become 65534, as the kernel shows them inside
    m.oci()                                  (uidMappings, gidMappings) for config.json
    IDENTITY (no mapping) passes every id through unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dockyard.errors import InvalidParameter

OVERFLOW_ID = 65534  # /proc/sys/kernel/overflowuid: what a user namespace shows for unmapped ids


@dataclass(frozen=True)
class IDMap:
    container_id: int
    host_id: int
    size: int


def _to_host(cid: int, maps: tuple[IDMap, ...]) -> int:
    if not maps:
        return cid
    for m in maps:
        if m.container_id <= cid < m.container_id + m.size:
            return m.host_id + (cid - m.container_id)
    raise InvalidParameter(f"Container ID {cid} cannot be mapped to a host ID")


def _to_container(hid: int, maps: tuple[IDMap, ...]) -> int:
    if not maps:
        return hid
    for m in maps:
        if m.host_id <= hid < m.host_id + m.size:
            return m.container_id + (hid - m.host_id)
    raise InvalidParameter(f"Host ID {hid} cannot be mapped to a container ID")


@dataclass(frozen=True)
class IdentityMapping:
    uids: tuple[IDMap, ...] = ()
    gids: tuple[IDMap, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.uids and not self.gids

    def root_pair(self) -> tuple[int, int]:
        """Host uid and gid of the container's root (0, 0 without a mapping)."""
        return _to_host(0, self.uids), _to_host(0, self.gids)

    def to_host(self, uid: int, gid: int) -> tuple[int, int]:
        return _to_host(uid, self.uids), _to_host(gid, self.gids)

    def to_container(self, uid: int, gid: int) -> tuple[int, int]:
        return _to_container(uid, self.uids), _to_container(gid, self.gids)

    def to_container_or_overflow(self, uid: int, gid: int) -> tuple[int, int]:
        try:
            u = _to_container(uid, self.uids)
        except InvalidParameter:
            u = OVERFLOW_ID
        try:
            g = _to_container(gid, self.gids)
        except InvalidParameter:
            g = OVERFLOW_ID
        return u, g

    def oci(self) -> tuple[list[dict[str, int]], list[dict[str, int]]]:
        """The OCI runtime spec's linux.uidMappings and linux.gidMappings."""

        def conv(maps: tuple[IDMap, ...]) -> list[dict[str, int]]:
            return [{"containerID": m.container_id, "hostID": m.host_id, "size": m.size} for m in maps]

        return conv(self.uids), conv(self.gids)

    def to_json(self) -> dict[str, Any]:
        u, g = self.oci()
        return {"uidMappings": u, "gidMappings": g}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> IdentityMapping:
        def conv(items: list[dict[str, int]]) -> tuple[IDMap, ...]:
            return tuple(IDMap(int(m["containerID"]), int(m["hostID"]), int(m["size"])) for m in items or [])

        return cls(conv(data.get("uidMappings") or []), conv(data.get("gidMappings") or []))

    @classmethod
    def from_ranges(cls, uid_ranges: list[tuple[int, int]], gid_ranges: list[tuple[int, int]]) -> IdentityMapping:
        """Subordinate (start, count) ranges laid end to end from container id 0, as Docker does."""

        def conv(ranges: list[tuple[int, int]]) -> tuple[IDMap, ...]:
            out, cid = [], 0
            for start, count in ranges:
                out.append(IDMap(cid, start, count))
                cid += count
            return tuple(out)

        return cls(conv(uid_ranges), conv(gid_ranges))


IDENTITY = IdentityMapping()
