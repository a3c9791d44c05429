"""Published ports: parsing Docker's port syntax, and the host-port allocator.

Pure parsing (standard library only, the CLI may import it):
- `parse_publish("127.0.0.1:8080-8081:80-81/udp")` -> ``{"80/udp": [{"HostIp": ..., "HostPort":
  ...}], ...}``, the ``HostConfig.PortBindings`` shape, exactly as the Docker CLI expands ``-p``;
- `parse_port_key("80/tcp")`, `validate_bindings(PortBindings)` (daemon-side checks and messages);
- `plan(port_bindings, exposed_ports, publish_all, default_ip)` -> the list of wanted bindings.

`PortAllocator` gives out host ports. A port is taken when it is in our table AND bound: each
reservation holds a bound socket (TCP: bound, never listening) so no other process on the host can
take a port whose traffic is DNAT-ed to a container. Random ports come sequentially from the
kernel's ephemeral range (ip_local_port_range), like Docker's allocator.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import threading
from dataclasses import dataclass
from typing import Any

from dockyard.errors import DockyardError, InvalidParameter

PROTOS = ("tcp", "udp", "sctp")


@dataclass(frozen=True)
class Mapping:
    """One published port: host_ip:host_port/proto -> container_port."""

    proto: str
    container_port: int
    host_ip: str
    host_port: int

    def key(self) -> str:
        return f"{self.container_port}/{self.proto}"

    def to_json(self) -> dict[str, Any]:
        return {"proto": self.proto, "container_port": self.container_port, "host_ip": self.host_ip, "host_port": self.host_port}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Mapping:
        return cls(d["proto"], int(d["container_port"]), d["host_ip"], int(d["host_port"]))


@dataclass(frozen=True)
class Wanted:
    """A binding before allocation: host_port 0 = any; (lo, hi) a range to pick from."""

    proto: str
    container_port: int
    host_ip: str
    lo: int
    hi: int


# --- parsing ----------------------------------------------------------------------------------
def _port_range(text: str, what: str) -> tuple[int, int]:
    try:
        if "-" in text:
            a, b = text.split("-", 1)
            lo, hi = int(a), int(b)
        else:
            lo = hi = int(text)
    except ValueError:
        raise InvalidParameter(f"invalid {what}: {text}") from None
    if not (0 <= lo <= 65535 and 0 <= hi <= 65535) or hi < lo:
        raise InvalidParameter(f"invalid {what}: {text}")
    return lo, hi


def parse_port_key(key: str) -> tuple[int, int, str]:
    """'80/tcp' or '8000-8010/udp' -> (lo, hi, proto); a bare port means tcp."""
    port, _, proto = key.partition("/")
    proto = (proto or "tcp").lower()
    if proto not in PROTOS:
        raise InvalidParameter(f"invalid proto: {proto}")
    try:
        lo, hi = _port_range(port, "containerPort")
    except InvalidParameter:
        raise InvalidParameter(f"invalid port specification: {key!r}") from None
    if lo == 0:
        raise InvalidParameter(f"invalid port specification: {key!r}")
    return lo, hi, proto


def _split_ip(spec: str) -> tuple[str, str]:
    """Split '[::1]:80:80' or '1.2.3.4:80:80' into (ip, rest); no ip -> ('', spec)."""
    if spec.startswith("["):
        end = spec.find("]")
        if end < 0:
            raise InvalidParameter(f"invalid IP address: {spec}")
        return spec[1:end], spec[end + 2 :] if spec[end + 1 : end + 2] == ":" else spec[end + 1 :]
    parts = spec.split(":")
    if len(parts) == 3:
        return parts[0], ":".join(parts[1:])
    if len(parts) > 3:
        raise InvalidParameter(f"invalid IP address: {':'.join(parts[:-2])}")
    return "", spec


def parse_publish(spec: str) -> dict[str, list[dict[str, str]]]:
    """Expand one ``-p`` value into PortBindings entries, as the Docker CLI does."""
    body, _, proto = spec.rpartition("/") if "/" in spec else (spec, "", "tcp")
    proto = proto.lower() or "tcp"
    if proto not in PROTOS:
        raise InvalidParameter(f"invalid proto: {proto}")
    ip, rest = _split_ip(body)
    if ip:
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise InvalidParameter(f"invalid IP address: {ip}") from None
    host, _, container = rest.rpartition(":")
    if not container:
        raise InvalidParameter(f"no port specified: {spec}<empty>")
    clo, chi = _port_range(container, "containerPort")
    if clo == 0:
        raise InvalidParameter(f"invalid containerPort: {container}")
    hlo = hhi = 0
    if host:
        hlo, hhi = _port_range(host, "hostPort")
    out: dict[str, list[dict[str, str]]] = {}
    n = chi - clo + 1
    if host and n > 1 and hhi - hlo + 1 != n:
        raise InvalidParameter(f"invalid ranges specified for container and host Ports: {container} and {host}")
    for i in range(n):
        if not host:
            host_port = ""
        elif n == 1:
            host_port = f"{hlo}-{hhi}" if hhi != hlo else str(hlo)
        else:
            host_port = str(hlo + i)
        out.setdefault(f"{clo + i}/{proto}", []).append({"HostIp": ip, "HostPort": host_port})
    return out


def merge_bindings(*parts: dict[str, list[dict[str, str]]]) -> dict[str, list[dict[str, str]]]:
    out: dict[str, list[dict[str, str]]] = {}
    for part in parts:
        for k, v in part.items():
            out.setdefault(k, []).extend(v)
    return out


def validate_bindings(port_bindings: dict[str, Any] | None) -> None:
    """Daemon-side validation of HostConfig.PortBindings, with Docker's messages."""
    for key, bindings in (port_bindings or {}).items():
        parse_port_key(key)
        for b in bindings or []:
            ip = (b or {}).get("HostIp") or ""
            if ip:
                try:
                    ipaddress.ip_address(ip)
                except ValueError:
                    raise InvalidParameter(f"invalid IP address: {ip}") from None
            hp = (b or {}).get("HostPort") or ""
            if hp:
                try:
                    _port_range(hp, "hostPort")
                except InvalidParameter:
                    raise InvalidParameter(f"invalid port specification: {hp!r}") from None


def plan(
    port_bindings: dict[str, Any] | None,
    exposed_ports: dict[str, Any] | None,
    publish_all: bool,
    default_ip: str = "0.0.0.0",
) -> list[Wanted]:
    """What to allocate: every binding, plus every exposed port without one when `publish_all`."""
    wanted: list[Wanted] = []
    bound: set[str] = set()
    for key, bindings in sorted((port_bindings or {}).items()):
        lo, _hi, proto = parse_port_key(key)
        bound.add(f"{lo}/{proto}")
        for b in bindings or [{}]:
            b = b or {}
            ip = b.get("HostIp") or default_ip
            hp = b.get("HostPort") or ""
            hlo, hhi = _port_range(hp, "hostPort") if hp else (0, 0)
            wanted.append(Wanted(proto, lo, ip, hlo, hhi))
    if publish_all:
        for key in sorted(exposed_ports or {}):
            lo, _hi, proto = parse_port_key(key)
            if f"{lo}/{proto}" not in bound:
                wanted.append(Wanted(proto, lo, default_ip, 0, 0))
    return wanted


def ports_view(
    mappings: list[Mapping], exposed_ports: dict[str, Any] | None, port_bindings: dict[str, Any] | None
) -> dict[str, list[dict[str, str]] | None]:
    """NetworkSettings.Ports: every exposed or published port; null for unpublished ones."""
    out: dict[str, list[dict[str, str]] | None] = {}
    for key in list(exposed_ports or {}) + list(port_bindings or {}):
        lo, _hi, proto = parse_port_key(key)
        out.setdefault(f"{lo}/{proto}", None)
    for m in mappings:
        cur = out.get(m.key())
        if cur is None:
            cur = out[m.key()] = []
        cur.append({"HostIp": m.host_ip, "HostPort": str(m.host_port)})
    return out


def ports_summary(mappings: list[Mapping], exposed_ports: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The ``Ports`` list of GET /containers/json."""
    out: list[dict[str, Any]] = []
    published = set()
    for m in mappings:
        published.add(m.key())
        out.append({"IP": m.host_ip, "PrivatePort": m.container_port, "PublicPort": m.host_port, "Type": m.proto})
    for key in exposed_ports or {}:
        lo, _hi, proto = parse_port_key(key)
        if f"{lo}/{proto}" not in published:
            out.append({"PrivatePort": lo, "Type": proto})
    return out


# --- allocation -------------------------------------------------------------------------------
def ephemeral_range() -> tuple[int, int]:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
            return lo, hi
    except (OSError, ValueError):
        return 49153, 65535


class PortInUse(DockyardError):
    status = 500


_SOCK_TYPES = {"tcp": socket.SOCK_STREAM, "udp": socket.SOCK_DGRAM}


class PortAllocator:
    """Host ports handed out to containers, each held by a bound socket while published."""

    def __init__(self, port_range: tuple[int, int] | None = None) -> None:
        self.lo, self.hi = port_range or ephemeral_range()
        self._next = self.lo
        self._lock = threading.Lock()
        # (proto, port) -> {host_ip: (owner, socket | None)}
        self._taken: dict[tuple[str, int], dict[str, tuple[str, socket.socket | None]]] = {}

    def _conflicts(self, proto: str, port: int, ip: str) -> bool:
        holders = self._taken.get((proto, port), {})
        if not holders:
            return False
        return ip in holders or ip == "0.0.0.0" or "0.0.0.0" in holders

    @staticmethod
    def _bind(proto: str, ip: str, port: int) -> socket.socket | None:
        st = _SOCK_TYPES.get(proto)
        if st is None:  # sctp: no reservation socket
            return None
        s = socket.socket(socket.AF_INET, st)
        try:
            s.bind((ip, port))
        except OSError:
            s.close()
            raise
        s.set_inheritable(False)
        return s

    def reserve(self, w: Wanted, owner: str) -> Mapping:
        """Allocate and hold a host port for `w`; raises with Docker's messages when taken."""
        with self._lock:
            if w.lo and w.lo == w.hi:
                return self._take(w, w.lo, owner, explicit=True)
            lo, hi = (w.lo, w.hi) if w.lo else (self.lo, self.hi)
            span = hi - lo + 1
            start = self._next if not w.lo and lo <= self._next <= hi else lo
            for i in range(span):
                port = lo + (start - lo + i) % span
                if self._conflicts(w.proto, port, w.host_ip):
                    continue
                try:
                    m = self._take(w, port, owner, explicit=False)
                except PortInUse:
                    continue
                if not w.lo:
                    self._next = port + 1 if port < hi else lo
                return m
            if w.lo:
                raise PortInUse(f"Bind for {w.host_ip}:{w.lo}-{w.hi} failed: port is already allocated")
            raise PortInUse("all ports are allocated")

    def _take(self, w: Wanted, port: int, owner: str, explicit: bool) -> Mapping:
        if self._conflicts(w.proto, port, w.host_ip):
            raise PortInUse(f"Bind for {w.host_ip}:{port} failed: port is already allocated")
        try:
            sock = self._bind(w.proto, w.host_ip, port)
        except OSError as e:
            if not explicit:
                raise PortInUse(str(e)) from e
            if e.errno == errno.EADDRINUSE:
                raise PortInUse(
                    f"Error starting userland proxy: listen {w.proto}4 {w.host_ip}:{port}: bind: address already in use"
                ) from e
            raise PortInUse(f"Error starting userland proxy: listen {w.proto}4 {w.host_ip}:{port}: bind: {e.strerror.lower() if e.strerror else e}") from e
        self._taken.setdefault((w.proto, port), {})[w.host_ip] = (owner, sock)
        return Mapping(w.proto, w.container_port, w.host_ip, port)

    def adopt(self, m: Mapping, owner: str) -> bool:
        """Re-take a mapping after a daemon restart; False if someone else grabbed the port."""
        with self._lock:
            if self._conflicts(m.proto, m.host_port, m.host_ip):
                holders = self._taken.get((m.proto, m.host_port), {})
                return holders.get(m.host_ip, ("", None))[0] == owner
            try:
                sock = self._bind(m.proto, m.host_ip, m.host_port)
            except OSError:
                sock = None
                ok = False
            else:
                ok = True
            self._taken.setdefault((m.proto, m.host_port), {})[m.host_ip] = (owner, sock)
            return ok

    def release(self, m: Mapping) -> None:
        with self._lock:
            holders = self._taken.get((m.proto, m.host_port))
            if not holders:
                return
            entry = holders.pop(m.host_ip, None)
            if entry and entry[1] is not None:
                entry[1].close()
            if not holders:
                del self._taken[(m.proto, m.host_port)]

    def release_owner(self, owner: str) -> None:
        with self._lock:
            for key in list(self._taken):
                holders = self._taken[key]
                for ip in [ip for ip, (o, _) in holders.items() if o == owner]:
                    _, sock = holders.pop(ip)
                    if sock is not None:
                        sock.close()
                if not holders:
                    del self._taken[key]

    def close(self) -> None:
        with self._lock:
            for holders in self._taken.values():
                for _, sock in holders.values():
                    if sock is not None:
                        sock.close()
            self._taken.clear()
