"""Networking through a real daemon and real containers (dockyard-runc, busybox): the issue's
"how it is shown to work". Traffic goes only to 127.0.0.1 and to namespaces the test created
(the outside host at 198.18.x.x)."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from dockyard.network import links
from network.helpers import (
    FAKE_UPSTREAM_ANSWER,
    FakeUpstream,
    OutsideHost,
    free_port,
    http_get,
    udp_ask,
    unused_net10,
)
from support.daemon import TestDaemon, busybox_tar

pytestmark = pytest.mark.slow

# busybox wget's -T crashes the static 1.35 build, and `timeout` cannot kill a PID 1: run both
# under a shell that stays PID 1
FETCH = "timeout 5 wget -q -O- {url}; exit $?"


def _daemon(root: str, upstream: FakeUpstream) -> TestDaemon:
    """The shared test daemon (its own bridge, bridge prefix and nft table), a free address pool
    and the fake upstream resolver."""
    d = TestDaemon(
        root,
        config={
            "default-address-pools": [{"base": unused_net10(), "size": 24}],
            "dns-upstreams": [f"127.0.0.1:{upstream.port}"],
        },
    )
    d.import_image(busybox_tar(), "busybox:latest", changes=['CMD ["sh"]'])
    return d


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory, upstream: FakeUpstream) -> Iterator[TestDaemon]:
    d = _daemon(str(tmp_path_factory.mktemp("dytnetd")), upstream)
    try:
        d.start()
        yield d
        blocked = d.loop_violations()
        assert not blocked, "the daemon blocked its event loop:\n" + blocked[:3000]
    finally:
        d.cleanup()


@pytest.fixture
def dc(daemon: TestDaemon) -> Iterator[Any]:
    """docker-py against the daemon; every container and user network is removed afterwards."""
    client = daemon.docker_client()
    try:
        yield client
    finally:
        _remove_all(client)
        client.close()


def _remove_all(client: Any) -> None:
    import docker

    for c in client.containers.list(all=True):
        with contextlib.suppress(docker.errors.NotFound):
            c.remove(force=True)
    client.networks.prune()


def _ip(c: Any, network: str = "bridge") -> str:
    c.reload()
    return c.attrs["NetworkSettings"]["Networks"][network]["IPAddress"]


def _httpd(dc: Any, name: str, **kw: Any) -> Any:
    c = dc.containers.run("busybox", ["httpd", "-f", "-p", "80", "-h", "/etc"], name=name, detach=True, **kw)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if c.exec_run(["sh", "-c", "netstat -ltn | grep -q ':80 '"]).exit_code == 0:
            return c
        time.sleep(0.1)
    raise TimeoutError("httpd did not listen")


def _fetch(dc: Any, url: str, **kw: Any) -> tuple[int, str]:
    """Run a throwaway container that fetches `url`; (exit code, output)."""
    c = dc.containers.run("busybox", ["sh", "-c", FETCH.format(url=url)], detach=True, **kw)
    try:
        code = c.wait(timeout=30)["StatusCode"]
        return code, c.logs().decode()
    finally:
        c.remove(force=True)


def _hostname_of(c: Any) -> str:
    c.reload()
    return c.attrs["Config"]["Hostname"]


def test_default_bridge_two_containers_by_ip(dc: Any):
    web = _httpd(dc, "web")
    ip = _ip(web)
    assert web.attrs["NetworkSettings"]["MacAddress"] == "02:42:" + ":".join(f"{int(x):02x}" for x in ip.split("."))
    code, out = _fetch(dc, f"http://{ip}/hostname")
    assert (code, out.strip()) == (0, _hostname_of(web))
    ifaces = web.exec_run(["ip", "-o", "addr"]).output.decode()
    assert f"inet {ip}/" in ifaces and "eth0" in ifaces
    m = re.search(rf"eth0\s+inet {re.escape(ip)}/(\d+) brd (\S+) ", ifaces)  # the broadcast is set, as Docker's
    assert m and m[2] == str(ipaddress.IPv4Network(f"{ip}/{m[1]}", strict=False).broadcast_address), ifaces
    resolv = web.exec_run(["cat", "/etc/resolv.conf"]).output.decode()
    assert "127.0.0.11" not in resolv


def test_user_network_by_name_alias_not_across_networks(dc: Any, upstream: FakeUpstream):
    dc.networks.create("dytfront")
    dc.networks.create("dytback")
    web = _httpd(dc, "alpha", network="dytfront")
    net = dc.networks.get("dytfront")
    net.disconnect(web)
    net.connect(web, aliases=["www"])
    assert "nameserver 127.0.0.11" in web.exec_run(["cat", "/etc/resolv.conf"]).output.decode()
    for name in ("alpha", "www", web.id[:12]):
        code, out = _fetch(dc, f"http://{name}/hostname", network="dytfront")
        assert (code, out.strip()) == (0, _hostname_of(web)), name
    # another network: neither the name nor the address
    code, _ = _fetch(dc, "http://alpha/hostname", network="dytback")
    assert code != 0
    code, _ = _fetch(dc, f"http://{_ip(web, 'dytfront')}/hostname", network="dytback")
    assert code != 0
    # other names go to the upstream resolver
    out = dc.containers.run("busybox", ["nslookup", "example.test"], network="dytfront", remove=True).decode()
    assert FAKE_UPSTREAM_ANSWER in out


def test_outbound_nat_seen_from_outside(dc: Any, outside: OutsideHost):
    port = free_port()
    code = (
        "import socket,sys\n"
        "s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
        "s.bind(('0.0.0.0',int(sys.argv[1])));s.listen();print('ready',flush=True)\n"
        "c,addr=s.accept();print(addr[0],flush=True)\n"
    )
    listener = subprocess.Popen(["nsenter", f"--net={outside.ns}", sys.executable, "-c", code, str(port)], stdout=subprocess.PIPE, text=True)
    try:
        assert listener.stdout is not None and listener.stdout.readline().strip() == "ready"
        out = dc.containers.run("busybox", ["sh", "-c", f"echo hi | nc {outside.ip} {port}; echo rc=$?"], remove=True).decode()
        assert "rc=0" in out
        assert listener.stdout.readline().strip() == outside.host_ip
    finally:
        listener.kill()
        listener.wait()


def test_published_ports_from_outside_localhost_and_containers(dc: Any, daemon: TestDaemon, outside: OutsideHost):
    port = free_port()
    web = _httpd(dc, "pub", ports={"80/tcp": port})
    expect = _hostname_of(web)
    gw = web.attrs["NetworkSettings"]["Gateway"]
    assert http_get(f"http://127.0.0.1:{port}/hostname").strip() == expect
    assert http_get(f"http://{outside.host_ip}:{port}/hostname", ns=outside.ns).strip() == expect
    code, out = _fetch(dc, f"http://{gw}:{port}/hostname")
    assert (code, out.strip()) == (0, expect)
    code, out = _fetch(dc, f"http://{outside.host_ip}:{port}/hostname")
    assert (code, out.strip()) == (0, expect)


UDP_ECHO_C = r"""
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
int main(int argc, char **argv) {
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET; a.sin_port = htons(atoi(argv[1]));
    if (bind(s, (struct sockaddr *)&a, sizeof a)) return 1;
    for (;;) {
        char buf[2048]; struct sockaddr_in p; socklen_t pl = sizeof p;
        ssize_t n = recvfrom(s, buf + 5, sizeof buf - 5, 0, (struct sockaddr *)&p, &pl);
        if (n < 0) continue;
        memcpy(buf, "echo:", 5);
        sendto(s, buf, n + 5, 0, (struct sockaddr *)&p, pl);
    }
}
"""


@pytest.fixture(scope="module")
def udp_echo_bin(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A static UDP echo server (busybox has no UDP server) to bind-mount into a container."""
    d = tmp_path_factory.mktemp("udpecho")
    src, out = d / "udpecho.c", d / "udpecho"
    src.write_text(UDP_ECHO_C)
    r = subprocess.run(["gcc", "-O2", "-static", "-o", str(out), str(src)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot build a static test binary: {r.stderr[-300:]}")
    return str(out)


def test_random_port_reported_by_port_command_and_udp(dc: Any, daemon: TestDaemon, outside: OutsideHost, udp_echo_bin: str):
    c = dc.containers.run(
        "busybox",
        ["sh", "-c", "httpd -p 80 -h /etc; exec /udpecho 5353"],
        detach=True,
        ports={"80/tcp": None, "5353/udp": None},
        volumes={udp_echo_bin: {"bind": "/udpecho", "mode": "ro"}},
    )
    c.reload()
    ports = c.attrs["NetworkSettings"]["Ports"]
    tcp_port = int(ports["80/tcp"][0]["HostPort"])
    udp_port = int(ports["5353/udp"][0]["HostPort"])
    cli = subprocess.run(["dockyard", "-H", daemon.host, "port", c.id], capture_output=True, text=True, timeout=30)
    assert f"80/tcp -> 0.0.0.0:{tcp_port}" in cli.stdout
    assert f"5353/udp -> 0.0.0.0:{udp_port}" in cli.stdout
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and http_get(f"http://127.0.0.1:{tcp_port}/hostname", timeout=1).startswith("ERROR"):
        time.sleep(0.1)
    assert http_get(f"http://127.0.0.1:{tcp_port}/hostname").strip() == _hostname_of(c)
    assert udp_ask("127.0.0.1", udp_port, b"near") == b"echo:near"
    assert udp_ask(outside.host_ip, udp_port, b"far", ns=outside.ns) == b"echo:far"


def test_none_host_and_container_modes(dc: Any):
    out = dc.containers.run("busybox", ["ip", "-o", "link"], network_mode="none", remove=True).decode()
    assert [ln.split(":")[1].strip() for ln in out.splitlines()] == ["lo"]
    out = dc.containers.run("busybox", ["ip", "-o", "link"], network_mode="host", remove=True).decode()
    default_dev = subprocess.run(["ip", "route", "show", "default"], capture_output=True, text=True).stdout.split()
    if "dev" in default_dev:  # the host's own uplink is visible inside
        assert f" {default_dev[default_dev.index('dev') + 1]}:" in out
    web = _httpd(dc, "owner")
    out = dc.containers.run("busybox", ["sh", "-c", FETCH.format(url="http://127.0.0.1/hostname")],
                            network_mode=f"container:{web.id}", remove=True).decode()  # fmt: skip
    assert out.strip() == _hostname_of(web)


def _our_state(d: TestDaemon) -> dict[str, Any]:
    bridges = [b for b in links.bridges() if b.startswith(d.prefix)]
    veths = [p for b in bridges for p in links.ports_of(b)]
    table = subprocess.run(["nft", "list", "table", "ip", "dockyard_" + d.prefix], capture_output=True, text=True).stdout
    leases = {}
    ipam_dir = os.path.join(d.data_root, "network", "ipam")
    for name in os.listdir(ipam_dir) if os.path.isdir(ipam_dir) else []:
        with open(os.path.join(ipam_dir, name)) as f:
            leases.update(json.load(f)["Leases"])
    netns_dir = os.path.join(d.exec_root, "netns")
    return {
        "user bridges": [b for b in bridges if b.startswith(d.prefix + "-")],
        "veths": veths,
        "dnat": [ln for ln in table.splitlines() if "dnat to" in ln],
        "leases": leases,
        "netns": os.listdir(netns_dir) if os.path.isdir(netns_dir) else [],
    }


def test_rm_and_prune_leave_nothing(dc: Any, daemon: TestDaemon):
    dc.networks.create("dytgone")
    _httpd(dc, "ra", ports={"80/tcp": None})
    _httpd(dc, "rb", network="dytgone")
    assert _our_state(daemon)["veths"]
    _remove_all(dc)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_our_state(daemon).values()):
        time.sleep(0.2)
    assert _our_state(daemon) == {"user bridges": [], "veths": [], "dnat": [], "leases": {}, "netns": []}


def test_sigkill_restart_then_rm_leaves_nothing(tmp_path, upstream: FakeUpstream):
    d = _daemon(str(tmp_path / "d"), upstream)
    try:
        d.start()
        dc = d.docker_client()
        dc.networks.create("dytcrash")
        port = free_port()
        kept = _httpd(dc, "kept", ports={"80/tcp": port}, network="dytcrash")
        _httpd(dc, "other")
        dc.close()
        os.kill(d.pid, signal.SIGKILL)
        d.proc.wait(10)
        d.start()
        dc = d.docker_client()
        if dc.containers.get(kept.id).status == "running":  # it survived: still published
            assert http_get(f"http://127.0.0.1:{port}/hostname").strip() == kept.id[:12]
        _remove_all(dc)
        dc.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_our_state(d).values()):
            time.sleep(0.2)
        assert _our_state(d) == {"user bridges": [], "veths": [], "dnat": [], "leases": {}, "netns": []}
    finally:
        d.cleanup()


def test_networks_api_shapes_and_errors(daemon: TestDaemon):
    st, nets = daemon.api("GET", "/networks")
    assert st == 200 and {"bridge", "host", "none"} <= {n["Name"] for n in nets}
    st, br = daemon.api("GET", "/v1.43/networks/bridge")
    assert st == 200 and br["Driver"] == "bridge" and br["Scope"] == "local"
    assert br["Options"]["com.docker.network.bridge.name"] == daemon.prefix + "br0"
    assert br["IPAM"]["Config"][0]["Subnet"] and br["IPAM"]["Driver"] == "default"
    st, r = daemon.api("POST", "/networks/create", {"Name": "dytapi", "Labels": {"k": "v"}, "CheckDuplicate": True})
    assert st == 201 and len(r["Id"]) == 64 and r["Warning"] == ""
    assert daemon.api("POST", "/networks/create", {"Name": "dytapi"}) == (409, {"message": "network with name dytapi already exists"})
    st, r = daemon.api("GET", '/networks?filters={"label":["k=v"]}')
    assert st == 200 and [n["Name"] for n in r] == ["dytapi"]
    assert daemon.api("DELETE", "/networks/bridge") == (403, {"message": "bridge is a pre-defined network and cannot be removed"})
    assert daemon.api("DELETE", "/networks/nosuch") == (404, {"message": "network nosuch not found"})
    st, r = daemon.api("POST", "/containers/create", {"Image": "busybox", "HostConfig": {"NetworkMode": "nosuch"}})
    assert (st, r) == (404, {"message": "network nosuch not found"})
    st, r = daemon.api("POST", "/networks/dytapi/connect", {"Container": "nosuch"})
    assert (st, r) == (404, {"message": "No such container: nosuch"})
    st, r = daemon.api("POST", "/networks/prune", None)
    assert st == 200 and r["NetworksDeleted"] == ["dytapi"]


def test_docker_cli_network_commands(daemon: TestDaemon, dc: Any):
    """The Docker CLI (a third-party client) drives networks through our API."""
    if not shutil.which("docker"):
        pytest.skip("no docker CLI")

    def docker(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["docker", "-H", daemon.host, *args], capture_output=True, text=True, timeout=60)

    subnet = unused_net10().replace(".0.0/16", ".5.0/24")
    base = subnet.rsplit(".", 2)[0]
    r = docker("network", "create", "--subnet", subnet, "--gateway", f"{base}.5.254", "--ip-range", f"{base}.5.128/25",
               "--label", "a=b", "dytcli")  # fmt: skip
    assert r.returncode == 0, r.stderr
    ls = docker("network", "ls", "--format", "{{.Name}} {{.Driver}} {{.Scope}}").stdout.split("\n")
    assert "dytcli bridge local" in ls and "none null local" in ls
    ipam = json.loads(docker("network", "inspect", "dytcli", "--format", "{{json .IPAM.Config}}").stdout)
    assert ipam == [{"Subnet": subnet, "IPRange": f"{base}.5.128/25", "Gateway": f"{base}.5.254"}]
    port = free_port()
    r = docker("run", "-d", "--name", "clisvc", "--network", "dytcli", "--ip", f"{base}.5.7", "--network-alias", "svc",
               "-p", f"{port}:80", "busybox", "httpd", "-f", "-p", "80", "-h", "/etc")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert docker("port", "clisvc").stdout.strip() == f"80/tcp -> 0.0.0.0:{port}"
    out = docker("run", "--rm", "--network", "dytcli", "busybox", "nslookup", "svc", "127.0.0.11").stdout
    assert f"Address: {base}.5.7" in out
    r = docker("network", "rm", "bridge")
    assert r.returncode == 1 and "bridge is a pre-defined network and cannot be removed" in r.stderr
    r = docker("network", "rm", "dytcli")
    assert r.returncode == 1 and "has active endpoints" in r.stderr
    assert docker("rm", "-f", "clisvc").returncode == 0
    assert "dytcli" in docker("network", "prune", "-f").stdout
