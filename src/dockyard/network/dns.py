"""The embedded DNS server: 127.0.0.11:53 inside every container on a user-defined network.

One asyncio server in the daemon. For each container it binds a UDP and a TCP socket on
127.0.0.11:53 INSIDE the container's network namespace (a worker thread setns'es in, creates and
binds the sockets, and setns'es back; the sockets stay in that namespace), then serves them from the
daemon's event loop. Queries are answered from the daemon's own tables through two callbacks:

- ``lookup(container_id, name) -> list[ip] | None``: names, aliases and short ids of containers on
  the networks the asking container is attached to (None: not ours, forward it);
- ``reverse(container_id, ip) -> name | None`` for PTR queries of those addresses;

and everything else is forwarded, unchanged, to ``upstreams(container_id)`` (the container's
``--dns`` or the host's resolvers) from the daemon's namespace, so the host's loopback resolvers
work. AAAA for our names answers NOERROR with no records (no IPv6 here).

The wire format is handled here in a few functions: a header, one question, answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from dockyard.network import netns

log = logging.getLogger("dockyard.network.dns")

DNS_IP = "127.0.0.11"
DNS_PORT = 53
TTL = 600
QTYPE_A, QTYPE_PTR, QTYPE_AAAA = 1, 12, 28
RCODE_OK, RCODE_FORMERR, RCODE_SERVFAIL, RCODE_NXDOMAIN = 0, 1, 2, 3
FORWARD_TIMEOUT = 3.0

Lookup = Callable[[str, str], "list[str] | None"]
Reverse = Callable[[str, str], "str | None"]
Upstreams = Callable[[str], "list[tuple[str, int]]"]


# --- wire format ------------------------------------------------------------------------------
@dataclass
class Query:
    id: int
    flags: int
    name: str  # lower case, no trailing dot
    qtype: int
    qclass: int
    question: bytes  # the raw question section, echoed in the answer


def parse_query(data: bytes) -> Query:
    if len(data) < 12:
        raise ValueError("short message")
    qid, flags, qd = struct.unpack("!HHH", data[:6])
    if qd < 1:
        raise ValueError("no question")
    pos = 12
    labels = []
    while True:
        if pos >= len(data):
            raise ValueError("truncated name")
        n = data[pos]
        if n & 0xC0:
            raise ValueError("compressed name in question")
        pos += 1
        if n == 0:
            break
        labels.append(data[pos : pos + n].decode("ascii", "replace"))
        pos += n
    if pos + 4 > len(data):
        raise ValueError("truncated question")
    qtype, qclass = struct.unpack("!HH", data[pos : pos + 4])
    pos += 4
    return Query(qid, flags, ".".join(labels).lower(), qtype, qclass, data[12:pos])


def encode_name(name: str) -> bytes:
    out = b""
    for label in name.rstrip(".").split("."):
        if label:
            raw = label.encode()
            out += bytes([len(raw)]) + raw
    return out + b"\0"


def build_answer(q: Query, rcode: int, records: list[tuple[int, bytes]] | None = None) -> bytes:
    records = records or []
    opcode = (q.flags >> 11) & 0xF
    rd = q.flags & 0x0100
    # QR, the query's opcode and RD, RA; never AA: dockerd's resolver does not claim authority
    # either, so `nslookup` prints "Non-authoritative answer:" for our names as it does there
    flags = 0x8000 | (opcode << 11) | rd | 0x0080 | rcode
    head = struct.pack("!HHHHHH", q.id, flags, 1, len(records), 0, 0)
    body = b"".join(struct.pack("!HHHIH", 0xC00C, rtype, 1, TTL, len(rdata)) + rdata for rtype, rdata in records)
    return head + q.question + body


def ptr_to_ip(name: str) -> str | None:
    """'2.0.17.172.in-addr.arpa' -> '172.17.0.2'."""
    suffix = ".in-addr.arpa"
    if not name.endswith(suffix):
        return None
    parts = name[: -len(suffix)].split(".")
    if len(parts) != 4:
        return None
    try:
        return str(ipaddress.IPv4Address(".".join(reversed(parts))))
    except ValueError:
        return None


# --- the server -------------------------------------------------------------------------------
@dataclass
class _Binding:
    udp: socket.socket
    tcp: socket.socket
    transport: asyncio.DatagramTransport | None = None
    server: asyncio.AbstractServer | None = None
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


def bind_in_netns(ns_path: str, ip: str = DNS_IP, port: int = DNS_PORT) -> tuple[socket.socket, socket.socket]:
    """Create UDP+TCP sockets bound to ip:port inside the namespace. Blocks: call in a thread."""
    with netns.entered(ns_path):
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        udp.bind((ip, port))
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        tcp.bind((ip, port))
        tcp.listen(64)
        udp.setblocking(False)
        tcp.setblocking(False)
    except BaseException:
        udp.close()
        tcp.close()
        raise
    return udp, tcp


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: EmbeddedDNS, cid: str) -> None:
        self.server = server
        self.cid = cid
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.server._spawn(self.cid, self._answer(data, addr))

    async def _answer(self, data: bytes, addr: tuple[str, int]) -> None:
        reply = await self.server.handle(self.cid, data, tcp=False)
        if reply is not None and self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(reply, addr)


class EmbeddedDNS:
    def __init__(self, lookup: Lookup, reverse: Reverse, upstreams: Upstreams) -> None:
        self.lookup = lookup
        self.reverse = reverse
        self.upstreams = upstreams
        self._bindings: dict[str, _Binding] = {}

    def attached(self, cid: str) -> bool:
        return cid in self._bindings

    async def attach(self, cid: str, ns_path: str) -> None:
        """Start answering inside `ns_path` for container `cid` (idempotent)."""
        if cid in self._bindings:
            return
        udp, tcp = await asyncio.to_thread(bind_in_netns, ns_path)
        await self.adopt(cid, udp, tcp)

    async def adopt(self, cid: str, udp: socket.socket, tcp: socket.socket) -> None:
        """Serve sockets already bound inside the container's namespace."""
        loop = asyncio.get_running_loop()
        b = _Binding(udp, tcp)
        self._bindings[cid] = b
        transport, _ = await loop.create_datagram_endpoint(lambda: _UdpProtocol(self, cid), sock=udp)
        b.transport = transport
        b.server = await asyncio.start_server(lambda r, w: self._tcp_client(cid, r, w), sock=tcp)

    async def detach(self, cid: str) -> None:
        b = self._bindings.pop(cid, None)
        if b is None:
            return
        if b.transport is not None:
            b.transport.close()
        else:
            b.udp.close()
        if b.server is not None:
            b.server.close()
            with contextlib.suppress(Exception):
                await b.server.wait_closed()
        else:
            b.tcp.close()
        for t in list(b.tasks):
            t.cancel()

    async def close(self) -> None:
        for cid in list(self._bindings):
            await self.detach(cid)

    def _spawn(self, cid: str, coro: object) -> None:
        b = self._bindings.get(cid)
        task = asyncio.ensure_future(coro)  # type: ignore[arg-type]
        if b is not None:
            b.tasks.add(task)
            task.add_done_callback(b.tasks.discard)

    async def _tcp_client(self, cid: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await asyncio.wait_for(reader.readexactly(2), 30)
                (n,) = struct.unpack("!H", head)
                data = await reader.readexactly(n)
                reply = await self.handle(cid, data, tcp=True)
                if reply is None:
                    break
                writer.write(struct.pack("!H", len(reply)) + reply)
                await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    # --- answering ---------------------------------------------------------------------------
    def answer_locally(self, cid: str, q: Query) -> bytes | None:
        """The reply for names we own, or None to forward."""
        if q.qclass != 1:
            return None
        if q.qtype == QTYPE_PTR:
            ip = ptr_to_ip(q.name)
            name = self.reverse(cid, ip) if ip else None
            if name is None:
                return None
            return build_answer(q, RCODE_OK, [(QTYPE_PTR, encode_name(name))])
        ips = self.lookup(cid, q.name)
        if ips is None:
            return None
        if q.qtype == QTYPE_A:
            return build_answer(q, RCODE_OK, [(QTYPE_A, ipaddress.IPv4Address(ip).packed) for ip in ips])
        return build_answer(q, RCODE_OK, [])

    async def handle(self, cid: str, data: bytes, tcp: bool) -> bytes | None:
        try:
            q = parse_query(data)
        except ValueError:
            if len(data) >= 2:
                return struct.pack("!HHHHHH", struct.unpack("!H", data[:2])[0], 0x8000 | RCODE_FORMERR, 0, 0, 0, 0)
            return None
        local = self.answer_locally(cid, q)
        if local is not None:
            return local
        reply = await self.forward(cid, data, tcp)
        return reply if reply is not None else build_answer(q, RCODE_SERVFAIL)

    async def forward(self, cid: str, data: bytes, tcp: bool) -> bytes | None:
        for host, port in self.upstreams(cid):
            try:
                if tcp:
                    return await asyncio.wait_for(_forward_tcp(host, port, data), FORWARD_TIMEOUT)
                return await asyncio.wait_for(_forward_udp(host, port, data), FORWARD_TIMEOUT)
            except (TimeoutError, OSError, asyncio.IncompleteReadError) as e:
                log.debug("dns forward to %s:%s failed: %s", host, port, e)
        return None


async def _forward_udp(host: str, port: int, data: bytes) -> bytes:
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.setblocking(False)
        await loop.sock_connect(s, (host, port))
        await loop.sock_sendall(s, data)
        while True:
            reply = await loop.sock_recv(s, 65535)
            if reply[:2] == data[:2]:
                return reply


async def _forward_tcp(host: str, port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(struct.pack("!H", len(data)) + data)
        await writer.drain()
        (n,) = struct.unpack("!H", await reader.readexactly(2))
        return await reader.readexactly(n)
    finally:
        writer.close()
