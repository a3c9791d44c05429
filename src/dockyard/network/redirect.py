"""Published TCP ports reached from the host's own 127.0.0.1: connect straight to the container.

Why: through nftables, a connection from 127.0.0.1 to a published port is DNAT-ed to the
container and its source masqueraded to the bridge's address, and because the socket's own
addresses differ from the wire's, the kernel re-routes EVERY packet of it (ip_route_me_harder on
each ACK the client sends, a route lookup in br_netfilter on each segment it receives) and
rewrites both addresses of each. Profiled here, that costs ~10% more CPU per byte when the client
reads in 16 KB chunks (curl), enough to lose 10-15% of throughput on a busy 2-core host.

How: two cgroup sock_addr programs attached to the root of the cgroup v2 hierarchy, as
bpf_links held by the daemon:
- ``connect4``: a TCP connect() from a socket in the daemon's network namespace to
  ``127.0.0.1:<published port>`` is rewritten to ``<container ip>:<container port>`` before the
  kernel routes it, so the socket is an ordinary connection to the container (the source is the
  bridge's address, as the masquerade gave before); the original address is remembered by socket
  cookie;
- ``getpeername4``/``getsockname4``: such a socket still reports ``127.0.0.1:<published port>``
  as its peer and an address on 127.0.0.1 as its own.
The map ``(netns cookie, 127.0.0.1, port) -> (container ip, port)`` is kept in step with the
published ports (`sync`). Everything else (other addresses, UDP, other namespaces) still goes
through the nftables rules, which stay in place: when the daemon stops (or is killed) its links
close, the programs detach, and new connections simply take the DNAT path again; established
ones are ordinary connections and are not affected. Without cgroup v2 or bpf(2) permission
`start()` reports why and the DNAT path is used alone.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import struct
import threading

from dockyard.sys import bpf_net as bpf

log = logging.getLogger("dockyard.network")

LOOPBACK = "127.0.0.1"
KEY = struct.Struct("<Q4s4s")  # netns cookie, ip (network order), port (network order, in a u32)
VALUE = struct.Struct("<4s4s")  # ip, port
CTX_USER_IP4, CTX_USER_PORT, CTX_PROTOCOL = 4, 24, 36  # offsets in struct bpf_sock_addr


def _port(p: int) -> bytes:
    return struct.pack("<I", socket.htons(p))


def key(cookie: int, ip: str, port: int) -> bytes:
    return KEY.pack(cookie, socket.inet_aton(ip), _port(port))


def value(ip: str, port: int) -> bytes:
    return VALUE.pack(socket.inet_aton(ip), _port(port))


def connect4_program(ports_fd: int, origin_fd: int) -> bytes:
    """r6 = ctx; TCP only; look (netns cookie, ip, port) up; on a hit remember the original
    address under the socket's cookie and rewrite the destination. Always allows (returns 1)."""
    a = bpf.Asm()
    a.mov(6, 1).ldxw(2, 6, CTX_PROTOCOL).jnei(2, socket.IPPROTO_TCP, "out")
    a.mov(1, 6).call(bpf.FUNC_GET_NETNS_COOKIE).stxdw(10, -16, 0)
    a.ldxw(2, 6, CTX_USER_IP4).stxw(10, -8, 2)
    a.ldxw(2, 6, CTX_USER_PORT).stxw(10, -4, 2)
    a.ld_map_fd(1, ports_fd).mov(2, 10).addi(2, -16).call(bpf.FUNC_MAP_LOOKUP_ELEM)
    a.jeqi(0, 0, "out").mov(7, 0)
    a.mov(1, 6).call(bpf.FUNC_GET_SOCKET_COOKIE).stxdw(10, -24, 0)
    a.ld_map_fd(1, origin_fd).mov(2, 10).addi(2, -24).mov(3, 10).addi(3, -8).movi(4, 0).call(bpf.FUNC_MAP_UPDATE_ELEM)
    a.ldxw(2, 7, 0).stxw(6, CTX_USER_IP4, 2)
    a.ldxw(2, 7, 4).stxw(6, CTX_USER_PORT, 2)
    a.label("out").movi(0, 1).exit()
    return a.bytes()


def getname4_program(origin_fd: int, peer: bool) -> bytes:
    """A redirected socket's peer is the address it asked for (`peer`), and its own address is
    on 127.0.0.1 (its port is the real one)."""
    a = bpf.Asm()
    a.mov(6, 1).ldxw(2, 6, CTX_PROTOCOL).jnei(2, socket.IPPROTO_TCP, "out")
    a.mov(1, 6).call(bpf.FUNC_GET_SOCKET_COOKIE).stxdw(10, -8, 0)
    a.ld_map_fd(1, origin_fd).mov(2, 10).addi(2, -8).call(bpf.FUNC_MAP_LOOKUP_ELEM)
    a.jeqi(0, 0, "out")
    a.ldxw(2, 0, 0).stxw(6, CTX_USER_IP4, 2)
    if peer:
        a.ldxw(2, 0, 4).stxw(6, CTX_USER_PORT, 2)
    a.label("out").movi(0, 1).exit()
    return a.bytes()


def cgroup2_root() -> str | None:
    """The mount point of the cgroup v2 hierarchy's root (/sys/fs/cgroup, or .../unified on a
    hybrid host), or None."""
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                left, _, right = line.partition(" - ")
                fields = left.split()
                if right.split()[:1] == ["cgroup2"] and fields[3] == "/":
                    return fields[4]
    except OSError:
        pass
    return None


class LocalRedirect:
    """The programs, their maps and links for one daemon. Blocking: call from worker threads."""

    def __init__(self) -> None:
        self.active = False
        self.reason = ""
        self._fds: list[int] = []
        self._ports_fd = -1
        self._cookie = 0
        self._entries: dict[bytes, bytes] = {}
        self._lock = threading.Lock()

    def start(self) -> bool:
        """Load and attach; False (with `reason`) when this host cannot."""
        root = cgroup2_root()
        if root is None:
            self.reason = "no cgroup v2 hierarchy is mounted"
            return False
        try:
            self._cookie = bpf.netns_cookie()
            self._ports_fd = self._keep(bpf.map_create(bpf.BPF_MAP_TYPE_HASH, KEY.size, VALUE.size, 65536, "dy_ports"))
            origin = self._keep(bpf.map_create(bpf.BPF_MAP_TYPE_LRU_HASH, 8, VALUE.size, 65536, "dy_origin"))
            connect = self._keep(bpf.prog_load(bpf.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, connect4_program(self._ports_fd, origin),
                                               bpf.BPF_CGROUP_INET4_CONNECT, "dy_connect4"))  # fmt: skip
            peer = self._keep(bpf.prog_load(bpf.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, getname4_program(origin, True),
                                            bpf.BPF_CGROUP_INET4_GETPEERNAME, "dy_getpeername4"))  # fmt: skip
            name = self._keep(bpf.prog_load(bpf.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, getname4_program(origin, False),
                                            bpf.BPF_CGROUP_INET4_GETSOCKNAME, "dy_getsockname4"))  # fmt: skip
            cg = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                # the name fix-ups first: a redirected socket never reports the container's address
                self._keep(bpf.link_create(peer, cg, bpf.BPF_CGROUP_INET4_GETPEERNAME))
                self._keep(bpf.link_create(name, cg, bpf.BPF_CGROUP_INET4_GETSOCKNAME))
                self._keep(bpf.link_create(connect, cg, bpf.BPF_CGROUP_INET4_CONNECT))
            finally:
                os.close(cg)
        except OSError as e:
            self.close()
            self.reason = str(e)
            return False
        self.active = True
        return True

    def _keep(self, fd: int) -> int:
        os.set_inheritable(fd, False)
        self._fds.append(fd)
        return fd

    def sync(self, wanted: dict[int, tuple[str, int]]) -> None:
        """Make the map hold exactly: published port -> (container ip, container port)."""
        if not self.active:
            return
        want = {key(self._cookie, LOOPBACK, p): value(ip, cp) for p, (ip, cp) in wanted.items()}
        with self._lock:
            for k in [k for k in self._entries if k not in want]:
                with contextlib.suppress(OSError):
                    bpf.map_delete(self._ports_fd, k)
                del self._entries[k]
            for k, v in want.items():
                if self._entries.get(k) != v:
                    bpf.map_update(self._ports_fd, k, v)
                    self._entries[k] = v

    def close(self) -> None:
        """Detach (closing the links) and free the maps."""
        with self._lock:
            for fd in reversed(self._fds):
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._fds.clear()
            self._entries.clear()
            self.active = False
