"""Helpers for the network tests: a NetworkService on its own bridge, table and address pool,
driven from a background event loop (`Harness`); "containers" as processes in the service's
namespaces (run with nsenter); a namespace playing the outside host at 198.18.x.x
(`OutsideHost`); a fake upstream DNS server on 127.0.0.1 (`FakeUpstream`); small clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import secrets
import socket
import struct
import subprocess
import sys
import threading
import time
from typing import Any

from dockyard.network import cleanup, links, netns
from dockyard.network.config import ContainerNetConfig, Sandbox
from dockyard.network.service import NetworkService

FAKE_UPSTREAM_ANSWER = "127.0.0.99"  # loopback: a client that connects stays in its own namespace


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unused_net10() -> str:
    """A 10.x.0.0/16 base no host route or address uses (tests run side by side)."""
    used = links.host_networks()
    for _ in range(200):
        base = f"10.{random.randint(100, 250)}.0.0/16"
        import ipaddress

        net = ipaddress.ip_network(base)
        if not any(net.overlaps(u) for u in used):
            return base
    raise RuntimeError("no free 10.x.0.0/16")


class FakeUpstream:
    """A UDP DNS server on 127.0.0.1 answering every A query with FAKE_UPSTREAM_ANSWER."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.queries: list[str] = []
        self._stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        from dockyard.network import dns

        self.sock.settimeout(0.2)
        while not self._stop:
            try:
                data, addr = self.sock.recvfrom(4096)
            except (TimeoutError, OSError):
                continue
            try:
                q = dns.parse_query(data)
            except ValueError:
                continue
            self.queries.append(q.name)
            rec = [(1, socket.inet_aton(FAKE_UPSTREAM_ANSWER))] if q.qtype == 1 else []
            self.sock.sendto(dns.build_answer(q, 0, rec), addr)

    def close(self) -> None:
        self._stop = True
        self.thread.join(2)
        self.sock.close()


class Harness:
    """A NetworkService plus the processes standing in for containers."""

    def __init__(self, root: str, tag: str, upstream: FakeUpstream | None, **extra: Any) -> None:
        self.tag = tag
        self.data_root = os.path.join(root, "data")
        self.exec_root = os.path.join(root, "exec")
        self.www = os.path.join(root, "www")
        os.makedirs(self.www, exist_ok=True)
        with open(os.path.join(self.www, "index.html"), "w") as f:
            f.write("hello from dockyard\n")
        self.options: dict[str, Any] = {
            "bridge-name": f"dyt{tag}b0",
            "bridge-prefix": f"dyt{tag}-",
            "nft-table": f"dockyard_dyt{tag}",
            "default-address-pools": [{"base": unused_net10(), "size": 24}],
        }
        if upstream is not None:
            self.options["dns-upstreams"] = [f"127.0.0.1:{upstream.port}"]
        self.options.update(extra)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.svc = self.run(self._make())
        self.procs: list[subprocess.Popen[Any]] = []
        self.cids: list[str] = []

    async def _make(self) -> NetworkService:
        return NetworkService(self.data_root, self.exec_root, self.options)

    def run(self, coro: Any, timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self, alive: Any = None) -> None:
        self.run(self.svc.start(alive))

    # --- containers ------------------------------------------------------------------------
    def container(self, name: str, **kw: Any) -> tuple[str, Sandbox]:
        cid = secrets.token_hex(32)
        cfg = ContainerNetConfig(id=cid, name=name, **kw)
        self.run(self.svc.register(cfg))
        self.cids.append(cid)
        sb = self.run(self.svc.setup(cid))
        return cid, sb

    def remove(self, cid: str) -> None:
        self.run(self.svc.unregister(cid))

    def key(self, cid: str) -> str:
        k = self.svc.sandbox_key(cid)
        assert k, f"{cid[:12]} has no namespace"
        return k

    def spawn(self, cid: str, argv: list[str], **kw: Any) -> subprocess.Popen[Any]:
        p = subprocess.Popen(["nsenter", f"--net={self.key(cid)}", *argv], **kw)
        self.procs.append(p)
        return p

    def sh(self, cid: str, argv: list[str], timeout: float = 15, **kw: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["nsenter", f"--net={self.key(cid)}", *argv], capture_output=True, text=True, timeout=timeout, **kw
        )

    def httpd(self, cid: str, port: int = 80) -> None:
        self.spawn(cid, ["busybox", "httpd", "-f", "-p", str(port), "-h", self.www])
        wait_listening(self.key(cid), port)

    def udp_echo(self, cid: str, port: int) -> None:
        code = (
            "import socket,sys\n"
            "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(('0.0.0.0',int(sys.argv[1])))\n"
            "print('ready',flush=True)\n"
            "while True:\n d,a=s.recvfrom(2048);s.sendto(b'echo:'+d,a)\n"
        )
        p = self.spawn(cid, [sys.executable, "-c", code, str(port)], stdout=subprocess.PIPE, text=True)
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"

    def kill_procs(self) -> None:
        for p in self.procs:
            with contextlib.suppress(ProcessLookupError):
                p.kill()
            with contextlib.suppress(Exception):
                p.wait(5)
        self.procs.clear()

    def reset(self) -> None:
        """Per test: stop the processes, remove the containers and the user networks."""
        self.kill_procs()
        for cid in self.cids:
            with contextlib.suppress(Exception):
                self.remove(cid)
        self.cids.clear()
        with contextlib.suppress(Exception):
            self.run(self.svc.prune_networks())

    def close(self) -> None:
        self.kill_procs()
        try:
            self.run(self.svc.destroy())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)
            cleanup.purge(self.data_root, self.exec_root, self.options)
            for name in links.bridges():
                if name.startswith(f"dyt{self.tag}"):
                    links.delete_link(name)


def wait_listening(ns_path: str, port: int, proto: str = "tcp", timeout: float = 5) -> None:
    """Wait until something listens on `port` inside the namespace."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with netns.entered(ns_path):
            s = socket.socket()
        try:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        finally:
            s.close()
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port} in {ns_path}")


def http_get(url: str, ns: str | None = None, timeout: float = 5) -> str:
    argv = ["curl", "-sS", "--noproxy", "*", "-m", str(timeout), url]
    if ns:
        argv = ["nsenter", f"--net={ns}", *argv]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 5)
    return r.stdout if r.returncode == 0 else f"ERROR({r.returncode}): {r.stderr.strip()}"


def udp_ask(host: str, port: int, payload: bytes, ns: str | None = None, timeout: float = 3) -> bytes:
    def ask() -> bytes:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(timeout)
            s.sendto(payload, (host, port))
            return s.recvfrom(2048)[0]

    if ns is None:
        return ask()
    result: list[Any] = []

    def in_ns() -> None:
        try:
            with netns.entered(ns):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            with s:
                s.settimeout(timeout)
                s.sendto(payload, (host, port))
                result.append(s.recvfrom(2048)[0])
        except Exception as e:  # noqa: BLE001
            result.append(e)

    t = threading.Thread(target=in_ns)
    t.start()
    t.join(timeout + 2)
    if isinstance(result[0], Exception):
        raise result[0]
    return result[0]


def dns_query(ns: str, name: str, server: str = "127.0.0.11", qtype: int = 1, timeout: float = 3) -> list[str]:
    """A queries through the embedded DNS inside namespace `ns`; returns the addresses."""
    from dockyard.network import dns

    q = struct.pack("!HHHHHH", random.randint(0, 65535), 0x0100, 1, 0, 0, 0) + dns.encode_name(name) + struct.pack("!HH", qtype, 1)
    reply = udp_ask(server, 53, q, ns=ns, timeout=timeout)
    rcode = struct.unpack("!H", reply[2:4])[0] & 0xF
    if rcode != 0:
        return [f"rcode={rcode}"]
    ancount = struct.unpack("!H", reply[6:8])[0]
    out = []
    pos = len(q)
    for _ in range(ancount):
        rtype, _cls, _ttl, rdlen = struct.unpack("!HHIH", reply[pos + 2 : pos + 12])
        rdata = reply[pos + 12 : pos + 12 + rdlen]
        if rtype == 1:
            out.append(socket.inet_ntoa(rdata))
        pos += 12 + rdlen
    return out


class OutsideHost:
    """A namespace standing in for another machine: veth to the host, 198.18.N.2/24 inside,
    198.18.N.1 on the host side, default route back through the host."""

    def __init__(self, root: str, tag: str) -> None:
        n = random.randint(1, 254)
        used = links.host_networks()
        import ipaddress

        for _ in range(100):
            if not any(ipaddress.ip_network(f"198.18.{n}.0/24").overlaps(u) for u in used):
                break
            n = random.randint(1, 254)
        self.host_ip = f"198.18.{n}.1"
        self.ip = f"198.18.{n}.2"
        self.veth = f"dyt{tag}out"
        self.ns = os.path.join(root, "outside.ns")
        netns.create(self.ns)
        try:
            fd = os.open(self.ns, os.O_RDONLY)
            try:
                with links.host() as ipr:
                    ipr.link("add", ifname=self.veth, kind="veth", peer={"ifname": "eth0", "net_ns_fd": fd})
                    i = links.index_of(ipr, self.veth)
                    ipr.addr("add", index=i, address=self.host_ip, prefixlen=24)
                    ipr.link("set", index=i, state="up")
            finally:
                os.close(fd)
            with links.in_netns(self.ns) as ipr:
                i = links.index_of(ipr, "eth0")
                ipr.addr("add", index=i, address=self.ip, prefixlen=24)
                ipr.link("set", index=i, state="up")
                ipr.link("set", index=links.index_of(ipr, "lo"), state="up")
                ipr.route("add", dst="0.0.0.0/0", gateway=self.host_ip)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        links.delete_link(self.veth)
        netns.remove(self.ns)


def dns_query_tcp(ns: str, name: str, server: str = "127.0.0.11", timeout: float = 3) -> list[str]:
    """The same A query over TCP (length-prefixed), from inside namespace `ns`."""
    from dockyard.network import dns

    q = struct.pack("!HHHHHH", random.randint(0, 65535), 0x0100, 1, 0, 0, 0) + dns.encode_name(name) + struct.pack("!HH", 1, 1)
    result: list[Any] = []

    def in_ns() -> None:
        try:
            with netns.entered(ns):
                s = socket.socket()
            with s:
                s.settimeout(timeout)
                s.connect((server, 53))
                s.sendall(struct.pack("!H", len(q)) + q)
                buf = b""
                while len(buf) < 2 or len(buf) < 2 + struct.unpack("!H", buf[:2])[0]:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    buf += chunk
                result.append(buf[2:])
        except Exception as e:  # noqa: BLE001
            result.append(e)

    t = threading.Thread(target=in_ns)
    t.start()
    t.join(timeout + 2)
    if isinstance(result[0], Exception):
        raise result[0]
    reply = result[0]
    out, pos = [], len(q)
    for _ in range(struct.unpack("!H", reply[6:8])[0]):
        rtype, _cls, _ttl, rdlen = struct.unpack("!HHIH", reply[pos + 2 : pos + 12])
        if rtype == 1:
            out.append(socket.inet_ntoa(reply[pos + 12 : pos + 12 + rdlen]))
        pos += 12 + rdlen
    return out
