"""Docker-parity of networking through a real daemon, real containers and the real CLIs (the
behaviour checked against dockerd 20.10 + Docker CLI 28 on this machine): legacy --link (the
parent's environment and /etc/hosts, inspect's HostConfig.Links), network events when containers
start and stop, --dns-search/--dns-option/--add-host host-gateway, -p with an address and a range
onto a range and the `port` output, --ip/--mac-address/--network-alias on a user network.
Traffic goes only to 127.0.0.1 and the containers."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest

from cli.cliutil import CLI
from network.helpers import FakeUpstream, free_port, http_get, unused_net10
from support.daemon import TestDaemon, busybox_tar

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory, upstream: FakeUpstream) -> Iterator[TestDaemon]:
    d = TestDaemon(
        str(tmp_path_factory.mktemp("dytparity")),
        config={
            "default-address-pools": [{"base": unused_net10(), "size": 24}],
            "dns-upstreams": [f"127.0.0.1:{upstream.port}"],
        },
    )
    d.import_image(busybox_tar(), "busybox:latest", changes=['CMD ["sh"]'])
    try:
        d.start()
        yield d
        blocked = d.loop_violations()
        assert not blocked, "the daemon blocked its event loop:\n" + blocked[:3000]
    finally:
        d.cleanup()


@pytest.fixture
def cli(daemon: TestDaemon, tmp_path) -> Iterator[CLI]:
    c = CLI(daemon.host, str(tmp_path / "cfg"))
    try:
        yield c
    finally:
        ids = c("ps", "-aq").stdout.split()
        if ids:
            c("rm", "-f", *ids)
        c("network", "prune", "-f")


def _inspect(cli: CLI, ref: str) -> dict[str, Any]:
    return json.loads(cli.ok("inspect", ref))[0]


def _wait_running(cli: CLI, ref: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if _inspect(cli, ref)["State"]["Running"]:
            return
        time.sleep(0.05)
    raise TimeoutError(ref)


def test_legacy_link_env_hosts_and_inspect(cli: CLI):
    cli.ok("run", "-d", "--name", "dytweb", "-e", "FOO=bar", "-e", "HOME=/h", "--expose", "8000-8001", "--expose", "53/udp",
           "busybox", "sleep", "300")  # fmt: skip
    web = _inspect(cli, "dytweb")
    ip, hostname = web["NetworkSettings"]["IPAddress"], web["Config"]["Hostname"]
    out = cli.ok("run", "--name", "dytapp", "--link", "dytweb:db-x", "busybox", "sh", "-c", "env; echo ===; cat /etc/hosts")
    env_text, hosts = out.split("===\n")
    env = set(env_text.split())
    assert {
        f"DB_X_PORT=udp://{ip}:53",
        f"DB_X_PORT_53_UDP={'udp'}://{ip}:53",
        f"DB_X_PORT_8000_TCP_ADDR={ip}",
        "DB_X_PORT_8001_TCP_PORT=8001",
        f"DB_X_PORT_8000_TCP_START=tcp://{ip}:8000",
        "DB_X_PORT_8000_TCP_PORT_END=8001",
        "DB_X_NAME=/dytapp/db-x",
        "DB_X_ENV_FOO=bar",
    } <= env
    assert not any(e.startswith("DB_X_ENV_HOME=") or e.startswith("DB_X_ENV_PATH=") for e in env)
    assert f"{ip}\tdb-x {hostname} dytweb\n" in hosts
    app = _inspect(cli, "dytapp")
    assert app["HostConfig"]["Links"] == ["/dytweb:/dytapp/db-x"]
    assert app["NetworkSettings"]["Networks"]["bridge"]["Links"] is None
    # the child stopped: the parent does not start (Docker's message)
    cli.ok("stop", "-t", "0", "dytweb")
    r = cli("start", "dytapp")
    assert r.returncode != 0 and "Cannot link to a non running container: /dytweb AS /dytapp/db-x" in r.stderr
    r = cli("create", "--link", "nosuch:x", "busybox")
    assert r.returncode != 0 and "could not get container for nosuch: No such container: nosuch" in r.stderr


def test_network_events_at_start_and_stop(cli: CLI, daemon: TestDaemon):
    cli.ok("network", "create", "dytev")
    since = time.time()
    cid = cli.ok("create", "--name", "dytevc", "busybox", "sleep", "300").strip()
    cli.ok("network", "connect", "dytev", "dytevc")  # stopped: recorded, no event yet
    cli.ok("start", "dytevc")
    _wait_running(cli, "dytevc")
    cli.ok("stop", "-t", "0", "dytevc")
    cli.ok("network", "disconnect", "dytev", "dytevc")
    cli.ok("run", "--rm", "--network", "none", "busybox", "true")
    time.sleep(0.2)
    q = urllib.parse.quote(json.dumps({"type": ["network"]}))
    st, (raw, _) = daemon.api("GET", f"/events?since={since:.3f}&until={time.time() + 0.5:.3f}&filters={q}", raw=True)
    assert st == 200
    events = [json.loads(line) for line in raw.decode().splitlines() if line.strip()]
    seen = [(e["Action"], e["Actor"]["Attributes"]["name"], e["Actor"]["Attributes"]["type"]) for e in events
            if e["Actor"]["Attributes"].get("container") in (cid, None) or e["Actor"]["Attributes"]["name"] == "none"]  # fmt: skip
    mine = [s for s in seen if s[1] in ("bridge", "dytev")]
    assert sorted(mine[:2]) == [("connect", "bridge", "bridge"), ("connect", "dytev", "bridge")]  # at start only
    assert sorted(mine[2:4]) == [("disconnect", "bridge", "bridge"), ("disconnect", "dytev", "bridge")]  # at stop
    assert mine[4:] == [("disconnect", "dytev", "bridge")]  # the API disconnect of the stopped container
    assert ("connect", "none", "null") in seen and ("disconnect", "none", "null") in seen


def test_dns_search_dns_option_and_host_gateway(cli: CLI):
    out = cli.ok("run", "--rm", "--dns-search", "a.example", "--dns-search", "b.example", "--dns-option", "ndots:3",
                 "--dns-option", "timeout:2", "--add-host", "gw:host-gateway", "--add-host", "x.example:1.2.3.4",
                 "busybox", "sh", "-c", "cat /etc/resolv.conf; echo ===; cat /etc/hosts")  # fmt: skip
    resolv, hosts = out.split("===\n")
    lines = resolv.splitlines()
    assert lines[0] == "search a.example b.example" and lines[-1] == "options ndots:3 timeout:2"
    assert "127.0.0.11" not in resolv
    gw = json.loads(cli.ok("network", "inspect", "bridge"))[0]["IPAM"]["Config"][0]["Gateway"]
    assert f"{gw}\tgw\n1.2.3.4\tx.example\n" in hosts
    cli.ok("network", "create", "dytdns")
    out = cli.ok("run", "--rm", "--network", "dytdns", "--dns-search", "a.example", "--dns-option", "timeout:2",
                 "busybox", "cat", "/etc/resolv.conf")  # fmt: skip
    assert out == "search a.example\nnameserver 127.0.0.11\noptions timeout:2 ndots:0\n"


def test_publish_address_and_range_onto_range_and_port_output(cli: CLI, daemon: TestDaemon):
    lo = free_port()
    while True:  # two consecutive free ports
        try:
            with socket.socket() as s1, socket.socket() as s2:
                s1.bind(("127.0.0.1", lo))
                s2.bind(("127.0.0.1", lo + 1))
            break
        except OSError:
            lo = free_port()
    cli.ok("run", "-d", "--name", "dytpr", "-p", f"127.0.0.1:{lo}-{lo + 1}:80-81", "-p", "5353/udp", "busybox",
           "sh", "-c", "httpd -p 80 -h /etc; httpd -f -p 81 -h /etc")  # fmt: skip
    ports = _inspect(cli, "dytpr")["NetworkSettings"]["Ports"]
    udp = ports["5353/udp"][0]["HostPort"]
    assert ports["80/tcp"] == [{"HostIp": "127.0.0.1", "HostPort": str(lo)}]
    assert ports["81/tcp"] == [{"HostIp": "127.0.0.1", "HostPort": str(lo + 1)}]
    expect = f"80/tcp -> 127.0.0.1:{lo}\n81/tcp -> 127.0.0.1:{lo + 1}\n5353/udp -> 0.0.0.0:{udp}\n"
    assert cli.ok("port", "dytpr") == expect
    assert cli.ok("port", "dytpr", "81") == f"127.0.0.1:{lo + 1}\n"
    assert cli.ok("port", "dytpr", "5353/udp") == f"0.0.0.0:{udp}\n"
    r = cli("port", "dytpr", "82")
    assert r.returncode != 0 and "No public port '82' published for dytpr" in r.stderr
    hn = _inspect(cli, "dytpr")["Config"]["Hostname"]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and http_get(f"http://127.0.0.1:{lo + 1}/hostname", timeout=1).startswith("ERROR"):
        time.sleep(0.1)
    assert http_get(f"http://127.0.0.1:{lo}/hostname").strip() == hn
    assert http_get(f"http://127.0.0.1:{lo + 1}/hostname").strip() == hn
    if shutil.which("docker"):  # the Docker CLI reads the same NetworkSettings.Ports
        env = dict(os.environ, DOCKER_CONFIG=os.path.join(daemon.root, "dockercfg"))
        out = subprocess.run(["docker", "-H", daemon.host, "port", "dytpr"], capture_output=True, text=True, env=env, timeout=30)
        assert out.stdout == expect, out.stderr  # its "natural" order: 80 < 81 < 5353


def test_ip_mac_and_alias_on_a_user_network(cli: CLI):
    subnet = unused_net10().replace(".0.0/16", ".9.0/24")
    base = subnet.rsplit(".", 1)[0]
    cli.ok("network", "create", "--subnet", subnet, "dytuser")
    cli.ok("run", "-d", "--name", "dytfixed", "--network", "dytuser", "--ip", f"{base}.77", "--mac-address",
           "02:11:22:33:44:55", "--network-alias", "fixed", "busybox", "sleep", "300")  # fmt: skip
    out = cli.ok("exec", "dytfixed", "ip", "-o", "link", "show", "eth0") + cli.ok("exec", "dytfixed", "ip", "-o", "addr", "show", "eth0")
    assert "02:11:22:33:44:55" in out and f"inet {base}.77/24" in out
    ep = _inspect(cli, "dytfixed")["NetworkSettings"]["Networks"]["dytuser"]
    assert (ep["IPAddress"], ep["MacAddress"], ep["IPAMConfig"]) == (f"{base}.77", "02:11:22:33:44:55", {"IPv4Address": f"{base}.77"})
    assert "fixed" in ep["Aliases"]
    out = cli.ok("run", "--rm", "--network", "dytuser", "busybox", "nslookup", "fixed", "127.0.0.11")
    assert f"Address: {base}.77" in out
    r = cli("run", "--rm", "--network", "dytuser", "--ip", f"{base}.77", "busybox", "true")
    assert r.returncode != 0 and "Address already in use" in r.stderr
    with contextlib.suppress(Exception):
        cli("rm", "-f", "dytfixed")
