"""The connect-time redirect of 127.0.0.1 to published TCP ports (network/redirect.py): the
client's socket really is connected to the container (no NAT on its packets), still reports
127.0.0.1 on both ends, follows the published ports, leaves other namespaces and UDP to
nftables, and when it is gone (daemon stopped or the option off) nftables carries 127.0.0.1."""

from __future__ import annotations

import secrets
import socket
import subprocess

import pytest

from dockyard.network import redirect
from network.helpers import Harness, free_port, http_get, udp_ask

HELLO = "hello from dockyard\n"


def _get(port: int) -> tuple[str, tuple[str, int], tuple[str, int], str]:
    """GET / through 127.0.0.1:port with a plain socket: (body, peer, own address, the kernel's
    view of the connection's remote end)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        peer, own = s.getpeername(), s.getsockname()
        ss = subprocess.run(["ss", "-Htn", "state", "established", f"sport = :{own[1]}"], capture_output=True, text=True).stdout
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data.decode().split("\r\n\r\n", 1)[-1], peer, own, ss.split()[-1] if ss.split() else ""


def test_programs_assemble_to_what_the_kernel_accepts():
    prog = redirect.connect4_program(3, 4)
    assert len(prog) % 8 == 0 and prog[-8] == 0x95  # ends with exit
    assert prog[-16] == 0xB7 and int.from_bytes(prog[-12:-8], "little") == 1  # always allows: r0 = 1
    assert redirect.key(7, "127.0.0.1", 8080) == (7).to_bytes(8, "little") + bytes([127, 0, 0, 1]) + bytes([0x1F, 0x90, 0, 0])
    assert redirect.value("10.0.0.2", 80) == bytes([10, 0, 0, 2, 0, 80, 0, 0])


def test_localhost_connects_straight_to_the_container(net: Harness):
    if not net.svc.redirect.active:
        pytest.skip(f"no connect-time redirect on this host: {net.svc.redirect.reason}")
    port = free_port()
    a, sa = net.container("web", port_bindings={"80/tcp": [{"HostPort": str(port)}]})
    net.httpd(a)
    ip = sa.settings["IPAddress"]
    body, peer, own, remote = _get(port)
    assert body == HELLO
    assert peer == ("127.0.0.1", port) and own[0] == "127.0.0.1"  # what the client asked for
    assert remote == f"{ip}:80"  # what the kernel really connected: the container, no NAT
    assert http_get(f"http://127.0.0.1:{port}/") == HELLO  # any client (curl)
    # another namespace's 127.0.0.1 is its own: not redirected
    other, _ = net.container("other")
    assert http_get(f"http://127.0.0.1:{port}/", ns=net.key(other), timeout=2).startswith("ERROR")
    # unpublished: the redirect goes with the rule
    net.kill_procs()
    net.run(net.svc.teardown(a))
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass


def test_udp_and_a_detached_redirect_fall_back_to_nftables(net: Harness):
    port, uport = free_port(), free_port(socket.SOCK_DGRAM)
    a, sa = net.container("svc", port_bindings={"80/tcp": [{"HostPort": str(port)}], "5353/udp": [{"HostPort": str(uport)}]})
    net.httpd(a)
    net.udp_echo(a, 5353)
    assert udp_ask("127.0.0.1", uport, b"ping") == b"echo:ping"  # UDP is never redirected
    net.svc.redirect.close()  # what a stopped or killed daemon leaves: no programs attached
    try:
        body, peer, _own, remote = _get(port)
        assert body == HELLO and peer == ("127.0.0.1", port) and remote == f"127.0.0.1:{port}"  # DNAT
    finally:
        net.svc.redirect.start()
        net.run(net.svc.teardown(a))  # the map is rebuilt at the next rule change
    b, _ = net.container("again", port_bindings={"80/tcp": [{"HostPort": str(port)}]})
    net.httpd(b)
    if net.svc.redirect.active:
        assert _get(port)[3] == f"{net.svc.settings(b)['IPAddress']}:80"


def test_option_off_uses_nftables_for_localhost(tmp_path, upstream):
    h = Harness(str(tmp_path), secrets.token_hex(2), upstream, **{"port-redirect": False})
    try:
        h.start()
        assert not h.svc.redirect.active
        port = free_port()
        a, _ = h.container("web", port_bindings={"80/tcp": [{"HostPort": str(port)}]})
        h.httpd(a)
        body, peer, _own, remote = _get(port)
        assert (body, peer, remote) == (HELLO, ("127.0.0.1", port), f"127.0.0.1:{port}")
    finally:
        h.close()
