"""The network layer on the real kernel: namespaces, veths on a bridge, NAT and published ports,
the embedded DNS, user networks and their isolation. "Containers" are processes the test runs in
the namespaces the service created (nsenter --net); the outside world is a namespace the test
created at 198.18.x.x. Traffic goes nowhere else."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from dockyard.errors import Conflict, Forbidden, InvalidParameter, NotFound
from dockyard.network import cleanup, links, netns
from dockyard.network.ports import PortInUse
from network.helpers import (
    FAKE_UPSTREAM_ANSWER,
    Harness,
    OutsideHost,
    dns_query,
    dns_query_tcp,
    free_port,
    http_get,
    udp_ask,
    unused_net10,
)

HELLO = "hello from dockyard\n"


def _ip_addr(h: Harness, cid: str) -> list[dict]:
    return json.loads(h.sh(cid, ["ip", "-j", "addr"]).stdout)


def _routes(h: Harness, cid: str) -> str:
    return h.sh(cid, ["ip", "route"]).stdout


def test_default_bridge_container_gets_veth_ip_mac_route_and_files(net: Harness):
    cid, sb = net.container("web", hostname="web1", extra_hosts=["db:10.1.2.3"])
    ep = sb.settings["Networks"]["bridge"]
    ip, gw = ep["IPAddress"], ep["Gateway"]
    assert sb.netns_path == os.path.join(net.exec_root, "netns", cid) and netns.is_mounted(sb.netns_path)
    assert sb.settings["IPAddress"] == ip and sb.settings["SandboxKey"] == sb.netns_path
    addrs = {a["ifname"]: a for a in _ip_addr(net, cid)}
    assert set(addrs) == {"lo", "eth0"}
    assert addrs["lo"]["operstate"] == "UNKNOWN" and "UP" in addrs["lo"]["flags"]
    eth0 = addrs["eth0"]
    assert eth0["address"] == ep["MacAddress"] == "02:42:" + ":".join(f"{int(x):02x}" for x in ip.split("."))
    assert [(a["local"], a["prefixlen"]) for a in eth0["addr_info"] if a["family"] == "inet"] == [(ip, ep["IPPrefixLen"])]
    assert f"default via {gw} dev eth0" in _routes(net, cid)
    # the host end sits on the default bridge, in hairpin mode
    bridge = net.options["bridge-name"]
    ports = links.ports_of(bridge)
    assert len(ports) == 1 and ports[0].startswith("veth")
    assert "hairpin on" in subprocess.run(["bridge", "-d", "link", "show", "dev", ports[0]], capture_output=True, text=True).stdout
    assert sb.hosts.endswith(f"10.1.2.3\tdb\n{ip}\tweb1\n")
    assert "127.0.0.11" not in sb.resolv_conf  # the default bridge has no embedded DNS


def test_mac_address_dns_and_add_host_options(net: Harness):
    cid, sb = net.container(
        "custom", mac_address="02:42:de:ad:be:ef", dns=["10.9.9.9"], dns_search=["corp.example"],
        dns_options=["ndots:3"], extra_hosts=["gw:host-gateway"],
    )  # fmt: skip
    eth0 = {a["ifname"]: a for a in _ip_addr(net, cid)}["eth0"]
    assert eth0["address"] == "02:42:de:ad:be:ef" == sb.settings["MacAddress"]
    assert sb.resolv_conf == "search corp.example\nnameserver 10.9.9.9\noptions ndots:3\n"
    assert f"{sb.settings['Gateway']}\tgw\n" in sb.hosts


def test_two_containers_on_default_bridge_talk_by_ip(net: Harness):
    a, sa = net.container("a")
    b, sb = net.container("b")
    ip_a = sa.settings["IPAddress"]
    assert ip_a != sb.settings["IPAddress"]
    net.httpd(a)
    assert http_get(f"http://{ip_a}/", ns=net.key(b)) == HELLO


def test_published_port_from_localhost_outside_and_containers(net: Harness, outside: OutsideHost):
    port = free_port()
    a, sa = net.container("web", port_bindings={"80/tcp": [{"HostPort": str(port)}]}, exposed_ports={"80/tcp": {}})
    assert sa.settings["Ports"] == {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": str(port)}]}
    net.httpd(a)
    b, sb = net.container("client")
    gw = sa.settings["Gateway"]
    assert http_get(f"http://127.0.0.1:{port}/") == HELLO  # host, through route_localnet + DNAT in output
    assert http_get(f"http://{outside.host_ip}:{port}/", ns=outside.ns) == HELLO  # another host
    assert http_get(f"http://{gw}:{port}/", ns=net.key(b)) == HELLO  # another container, host address
    assert http_get(f"http://{outside.host_ip}:{port}/", ns=net.key(b)) == HELLO  # hairpin via another host address
    assert http_get(f"http://{gw}:{port}/", ns=net.key(a)) == HELLO  # the container itself


def test_published_port_bound_to_loopback_only(net: Harness, outside: OutsideHost):
    port = free_port()
    a, _ = net.container("web", port_bindings={"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]})
    net.httpd(a)
    assert http_get(f"http://127.0.0.1:{port}/") == HELLO
    assert http_get(f"http://{outside.host_ip}:{port}/", ns=outside.ns, timeout=2).startswith("ERROR")


def test_random_host_ports_publish_all_and_udp(net: Harness, outside: OutsideHost):
    a, sa = net.container(
        "svc",
        port_bindings={"80/tcp": [{"HostPort": ""}], "5353/udp": [{}]},
        exposed_ports={"80/tcp": {}, "5353/udp": {}, "8080/tcp": {}},
        publish_all=True,
    )
    ports = sa.settings["Ports"]
    assert set(ports) == {"80/tcp", "5353/udp", "8080/tcp"}
    host_ports = {k: int(v[0]["HostPort"]) for k, v in ports.items()}
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        lo, hi = (int(x) for x in f.read().split())
    assert all(lo <= p <= hi for p in host_ports.values()) and len(set(host_ports.values())) == 3
    assert net.svc.port_summary(a)[0]["PublicPort"] in host_ports.values()
    net.httpd(a)
    net.udp_echo(a, 5353)
    assert http_get(f"http://127.0.0.1:{host_ports['80/tcp']}/") == HELLO
    assert udp_ask("127.0.0.1", host_ports["5353/udp"], b"ping") == b"echo:ping"
    assert udp_ask(outside.host_ip, host_ports["5353/udp"], b"far", ns=outside.ns) == b"echo:far"


def test_outbound_traffic_is_masqueraded(net: Harness, outside: OutsideHost):
    a, _ = net.container("client")
    port = free_port()
    code = (
        "import socket,sys\n"
        "s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
        "s.bind(('0.0.0.0',int(sys.argv[1])));s.listen();print('ready',flush=True)\n"
        "c,addr=s.accept();print(addr[0],flush=True)\n"
    )
    listener = subprocess.Popen(["nsenter", f"--net={outside.ns}", sys.executable, "-c", code, str(port)], stdout=subprocess.PIPE, text=True)
    net.procs.append(listener)
    assert listener.stdout is not None and listener.stdout.readline().strip() == "ready"
    r = net.sh(a, [sys.executable, "-c", f"import socket;socket.create_connection(('{outside.ip}',{port}),timeout=5).close()"])
    assert r.returncode == 0, r.stderr
    assert listener.stdout.readline().strip() == outside.host_ip  # the host's address, not the container's


def test_port_conflict_gives_docker_message_and_leaves_nothing(net: Harness):
    port = free_port()
    net.container("first", port_bindings={"80/tcp": [{"HostPort": str(port)}]})
    before_ports = set(links.ports_of(net.options["bridge-name"]))
    with pytest.raises(PortInUse) as e:
        net.container("second", port_bindings={"80/tcp": [{"HostPort": str(port)}]})
    assert f"Bind for 0.0.0.0:{port} failed: port is already allocated" in e.value.message
    assert e.value.message.startswith("driver failed programming external connectivity on endpoint second (")
    assert set(links.ports_of(net.options["bridge-name"])) == before_ports
    second = net.cids[-1]
    assert net.svc.sandbox_key(second) is None
    assert not os.path.exists(os.path.join(net.exec_root, "netns", second))
    bridge_net = net.svc.find_network("bridge")
    assert len(net.svc.pools[bridge_net.id].leases) == 1


def test_user_network_dns_by_name_alias_short_id_and_forwarding(net: Harness, upstream):
    net.run(net.svc.create_network({"Name": "dytapp", "Labels": {"t": "1"}}))
    a, sa = net.container("alpha", network_mode="dytapp", endpoints={"dytapp": {"Aliases": ["db"]}})
    b, sb = net.container("beta", network_mode="dytapp")
    ip_a = sa.settings["Networks"]["dytapp"]["IPAddress"]
    assert [ln for ln in sb.resolv_conf.splitlines() if ln.startswith("nameserver")] == ["nameserver 127.0.0.11"]
    assert "ndots:0" in sb.resolv_conf
    assert sa.settings["Networks"]["dytapp"]["Aliases"] == ["db", a[:12]]
    kb = net.key(b)
    assert dns_query(kb, "alpha") == [ip_a]
    assert dns_query(kb, "ALPHA.") == [ip_a]
    assert dns_query(kb, "db") == [ip_a]
    assert dns_query(kb, a[:12]) == [ip_a]
    assert dns_query(kb, "alpha.dytapp") == [ip_a]
    assert dns_query(kb, "db", qtype=28) == []  # AAAA: NOERROR, nothing
    assert dns_query_tcp(kb, "alpha") == [ip_a]  # DNS over TCP too
    # names that are not ours go to the upstream resolver
    assert dns_query(kb, "example.test") == [FAKE_UPSTREAM_ANSWER]
    assert "example.test" in upstream.queries
    # and the name works for a real client inside the namespace
    net.httpd(a)
    r = net.sh(b, ["busybox", "nslookup", "alpha", "127.0.0.11"])
    assert ip_a in r.stdout
    assert http_get(f"http://{ip_a}/", ns=kb) == HELLO


def test_networks_are_isolated_from_each_other(net: Harness):
    net.run(net.svc.create_network({"Name": "dytone"}))
    net.run(net.svc.create_network({"Name": "dyttwo"}))
    a, sa = net.container("one", network_mode="dytone")
    b, _ = net.container("two", network_mode="dyttwo")
    c, _ = net.container("three", network_mode="dytone")
    net.httpd(a)
    ip_a = sa.settings["Networks"]["dytone"]["IPAddress"]
    assert http_get(f"http://{ip_a}/", ns=net.key(c)) == HELLO
    assert http_get(f"http://{ip_a}/", ns=net.key(b), timeout=2).startswith("ERROR")
    assert dns_query(net.key(b), "one") == [FAKE_UPSTREAM_ANSWER]  # not visible: forwarded


def test_internal_network_and_icc_false(net: Harness, outside: OutsideHost):
    net.run(net.svc.create_network({"Name": "dytint", "Internal": True}))
    net.run(net.svc.create_network({"Name": "dytnoicc", "Options": {"com.docker.network.bridge.enable_icc": "false"}}))
    a, sa = net.container("inside", network_mode="dytint")
    assert "default" not in _routes(net, a)
    assert sa.settings["Networks"]["dytint"]["Gateway"] == ""
    r = net.sh(a, ["curl", "-sS", "-m", "2", f"http://{outside.ip}/"])
    assert r.returncode != 0
    x, sx = net.container("x", network_mode="dytnoicc")
    y, _ = net.container("y", network_mode="dytnoicc")
    net.httpd(x)
    assert http_get(f"http://{sx.settings['Networks']['dytnoicc']['IPAddress']}/", ns=net.key(y), timeout=2).startswith("ERROR")


def test_connect_and_disconnect_a_running_container(net: Harness, tmp_path):
    net.run(net.svc.create_network({"Name": "dytlive", "IPAM": {"Config": [{"Subnet": "10.251.7.0/24", "IPRange": "10.251.7.128/25"}]}}))
    hosts = tmp_path / "hosts"
    a, sa = net.container("mover", hosts_path=str(hosts))
    hosts.write_text(sa.hosts)
    b, _ = net.container("peer", network_mode="dytlive")
    # as asked (Docker shows no Gateway it was not given; the network still uses the first address)
    assert net.svc.inspect_network("dytlive")["IPAM"]["Config"] == [{"Subnet": "10.251.7.0/24", "IPRange": "10.251.7.128/25"}]
    net.run(net.svc.connect("dytlive", a, {"IPAMConfig": {"IPv4Address": "10.251.7.9"}, "Aliases": ["mv"]}))
    names = {x["ifname"] for x in _ip_addr(net, a)}
    assert names == {"lo", "eth0", "eth1"}
    assert "10.251.7.9\t" in hosts.read_text()
    settings = net.svc.settings(a)
    assert settings["Networks"]["dytlive"]["IPAddress"] == "10.251.7.9"
    assert a in net.svc.inspect_network("dytlive")["Containers"]
    assert dns_query(net.key(b), "mv") == ["10.251.7.9"]
    net.httpd(a)
    assert http_get("http://10.251.7.9/", ns=net.key(b)) == HELLO
    with pytest.raises(Forbidden, match="endpoint with name mover already exists in network dytlive"):
        net.run(net.svc.connect("dytlive", a))
    net.run(net.svc.disconnect("dytlive", a))
    assert {x["ifname"] for x in _ip_addr(net, a)} == {"lo", "eth0"}
    assert "10.251.7.9" not in hosts.read_text()
    assert "dytlive" not in net.svc.settings(a)["Networks"]
    pool = net.svc.pools[net.svc.find_network("dytlive").id]
    assert "10.251.7.9" not in pool.leases
    with pytest.raises(Forbidden, match="is not connected to network dytlive"):
        net.run(net.svc.disconnect("dytlive", a))


def test_none_host_and_container_modes(net: Harness):
    n, sn = net.container("lonely", network_mode="none")
    assert [x["ifname"] for x in _ip_addr(net, n)] == ["lo"]
    assert sn.settings["Networks"]["none"]["IPAddress"] == ""
    h, sh_ = net.container("hosty", network_mode="host")
    assert sh_.netns_path is None and sh_.netns == "host"
    assert "host" in sh_.settings["Networks"]
    owner, so = net.container("owner")
    joiner, sj = net.container("joiner", network_mode=f"container:{owner}")
    assert sj.netns_path == so.netns_path
    assert sj.hosts == so.hosts
    assert sj.settings["Networks"] == {}
    with pytest.raises(InvalidParameter, match="conflicting options: port publishing and the container type network mode"):
        net.container("bad", network_mode=f"container:{owner}", port_bindings={"80/tcp": [{}]})


def test_create_time_validation_messages(net: Harness):
    with pytest.raises(InvalidParameter, match="user specified IP address is supported on user defined networks only"):
        net.container("x", endpoints={"bridge": {"IPAMConfig": {"IPv4Address": "172.17.0.9"}}})
    net.run(net.svc.create_network({"Name": "dytauto"}))
    with pytest.raises(InvalidParameter, match="user configured subnets"):
        net.container("x", network_mode="dytauto", endpoints={"dytauto": {"IPAMConfig": {"IPv4Address": "10.0.0.9"}}})
    with pytest.raises(InvalidParameter, match="network-scoped alias is supported only for containers in user defined networks"):
        net.container("x", endpoints={"bridge": {"Aliases": ["a"]}})
    with pytest.raises(NotFound, match="network nosuchnet not found"):
        net.container("x", network_mode="nosuchnet")


def test_network_create_inspect_list_remove_prune(net: Harness):
    svc = net.svc
    r = net.run(svc.create_network({"Name": "dytcrud", "Labels": {"team": "a"}, "Internal": True}))
    nid = r["Id"]
    assert len(nid) == 64 and r["Warning"] == ""
    info = svc.inspect_network("dytcrud")
    assert info["Id"] == nid and info["Driver"] == "bridge" and info["Internal"] is True and info["Scope"] == "local"
    assert svc.inspect_network(nid[:10])["Name"] == "dytcrud"
    bridge = f"{net.options['bridge-prefix']}{nid[: 15 - len(net.options['bridge-prefix'])]}"
    assert links.link_exists(bridge)
    with pytest.raises(Conflict, match="network with name dytcrud already exists"):
        net.run(svc.create_network({"Name": "dytcrud"}))
    with pytest.raises(Conflict, match="network with name bridge already exists"):
        net.run(svc.create_network({"Name": "bridge"}))
    subnet = info["IPAM"]["Config"][0]["Subnet"]
    with pytest.raises(Forbidden, match="Pool overlaps with other one on this address space"):
        net.run(svc.create_network({"Name": "dytover", "IPAM": {"Config": [{"Subnet": subnet}]}}))
    with pytest.raises(NotFound, match='plugin "overlay" not found'):
        net.run(svc.create_network({"Name": "dytov", "Driver": "overlay"}))
    names = {n["Name"] for n in svc.list_networks()}
    assert {"bridge", "host", "none", "dytcrud"} <= names
    assert [n["Name"] for n in svc.list_networks({"label": ["team=a"]})] == ["dytcrud"]
    assert {n["Name"] for n in svc.list_networks({"type": ["builtin"]})} == {"bridge", "host", "none"}
    assert [n["Name"] for n in svc.list_networks({"driver": ["null"]})] == ["none"]
    with pytest.raises(InvalidParameter, match="invalid filter 'bogus'"):
        svc.list_networks({"bogus": ["x"]})
    for name in ("bridge", "host", "none"):
        with pytest.raises(Forbidden, match=f"{name} is a pre-defined network and cannot be removed"):
            net.run(svc.remove_network(name))
    c, _ = net.container("member", network_mode="dytcrud")
    with pytest.raises(Forbidden, match=f"error while removing network: network dytcrud id {nid} has active endpoints"):
        net.run(svc.remove_network("dytcrud"))
    assert net.run(svc.prune_networks()) == []
    net.run(svc.teardown(c))
    assert net.run(svc.prune_networks({"label": ["team=b"]})) == []
    assert net.run(svc.prune_networks({"label": ["team=a"]})) == ["dytcrud"]
    assert not links.link_exists(bridge)
    with pytest.raises(NotFound, match="network dytcrud not found"):
        svc.inspect_network("dytcrud")
    named = f"dyt{net.tag}named"
    net.run(svc.create_network({"Name": "dytgone", "Options": {"com.docker.network.bridge.name": named}}))
    assert links.link_exists(named)
    net.run(svc.remove_network("dytgone"))
    assert not links.link_exists(named)
    with pytest.raises(NotFound):
        net.run(svc.remove_network("dytgone"))


def test_teardown_releases_everything_and_ip_is_reused(net: Harness):
    port = free_port()
    a, sa = net.container("tmp", port_bindings={"80/tcp": [{"HostPort": str(port)}]})
    key = sa.netns_path
    ip = sa.settings["IPAddress"]
    veths = links.ports_of(net.options["bridge-name"])
    net.run(net.svc.teardown(a))
    assert not os.path.exists(key)
    net.run(net.svc.settle())  # veths are deleted in the background, then the address is free
    assert not any(links.link_exists(v) for v in veths)
    table = subprocess.run(["nft", "list", "table", "ip", net.options["nft-table"]], capture_output=True, text=True).stdout
    assert f"dport {port}" not in table
    assert net.svc.settings(a)["IPAddress"] == ""
    net.run(net.svc.teardown(a))  # idempotent
    sb = net.run(net.svc.setup(a))  # restart: same lowest free address, same MAC
    assert sb.settings["IPAddress"] == ip


def test_reconcile_after_a_crash(tmp_path, upstream, outside: OutsideHost):
    """A daemon dies with containers set up; the next one keeps the live ones, frees the rest."""
    import secrets

    tag = secrets.token_hex(2)
    h1 = Harness(str(tmp_path / "one"), tag, upstream)
    h2: Harness | None = None
    try:
        h1.start()
        net_id = net_id_of(h1, "dytcrash")
        port = free_port()
        alive, sa = h1.container("alive", network_mode="dytcrash", port_bindings={"80/tcp": [{"HostPort": str(port)}]})
        dead, sd = h1.container("dead", network_mode="dytcrash")
        h1.httpd(alive)  # a process in `alive`'s namespace; none in `dead`'s
        veth_dead = h1.svc.containers[dead].sandbox.endpoints[net_id].veth
        veth_alive = h1.svc.containers[alive].sandbox.endpoints[net_id].veth
        # "SIGKILL": the old service disappears without tearing anything down
        procs = h1.procs
        h1.procs = []
        h1.run(h1.svc.dns.close())
        h1.svc.allocator.close()
        h1.loop.call_soon_threadsafe(h1.loop.stop)
        h1.thread.join(5)
        h2 = Harness(str(tmp_path / "one"), tag, upstream)
        h2.procs = procs
        h2.cids = [alive, dead]
        h2.start()
        assert not links.link_exists(veth_dead) and links.link_exists(veth_alive)
        assert not os.path.exists(sd.netns_path) and netns.is_mounted(sa.netns_path)
        pool = h2.svc.pools[net_id]
        assert set(pool.leases) == {sa.settings["Networks"]["dytcrash"]["IPAddress"]}
        assert h2.svc.settings(dead)["Networks"]["dytcrash"]["IPAddress"] == ""
        assert http_get(f"http://{outside.host_ip}:{port}/", ns=outside.ns) == HELLO  # rules rewritten
        assert dns_query(sa.netns_path, "alive") == [sa.settings["Networks"]["dytcrash"]["IPAddress"]]  # DNS again
        # the port is held again: nobody else can take it
        with pytest.raises(PortInUse):
            h2.container("thief", network_mode="dytcrash", port_bindings={"80/tcp": [{"HostPort": str(port)}]})
        # a stray veth on our bridge and a stray namespace mount are removed by the next start
        bridge = h2.svc.find_network("dytcrash").bridge
        with links.host() as ipr:
            ipr.link("add", ifname=f"veth{tag}x", kind="veth", peer={"ifname": f"dyt{tag}y"})
            ipr.link("set", index=links.index_of(ipr, f"veth{tag}x"), master=links.index_of(ipr, bridge))
        stray = os.path.join(h2.exec_root, "netns", "stray")
        netns.create(stray)
        h2.kill_procs()
        h2.run(h2.svc.close())
        h3 = Harness(str(tmp_path / "one"), tag, upstream)
        try:
            h3.cids = [alive, dead]
            h3.start(alive=[])
            assert not links.link_exists(f"veth{tag}x") and not links.link_exists(f"dyt{tag}y")
            assert not os.path.exists(stray) and not os.path.exists(sa.netns_path)
            assert h3.svc.pools[net_id].leases == {}
        finally:
            h3.close()
    finally:
        if h2 is not None:
            h2.kill_procs()
        if h1.thread.is_alive():
            h1.close()
        cleanup.purge(h1.data_root, h1.exec_root, h1.options)
    assert not any(b.startswith(f"dyt{tag}") for b in links.bridges())
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    assert f"dockyard_dyt{tag}" not in tables


def net_id_of(h: Harness, name: str) -> str:
    return h.run(h.svc.create_network({"Name": name}))["Id"]


def test_setup_is_fast_enough_to_measure(net: Harness):
    """Not a timing assertion (see bench/net.py): just that setup and teardown complete."""
    t = time.perf_counter()
    a, _ = net.container("quick")
    net.run(net.svc.teardown(a))
    assert time.perf_counter() - t < 10


def test_default_bridge_follows_changed_daemon_options(tmp_path, upstream):
    """--bip/--icc changed between two runs: the default network keeps its id, so stopped
    containers stay attached, and gets the new subnet and rules."""
    import secrets

    from dockyard.network.config import ContainerNetConfig

    tag = secrets.token_hex(2)
    h1 = Harness(str(tmp_path / "d"), tag, upstream)
    try:
        h1.start()
        first = h1.svc.find_network("bridge")
        cid = secrets.token_hex(32)
        h1.run(h1.svc.register(ContainerNetConfig(id=cid, name="sleeper")))
        h1.run(h1.svc.close())
        base = unused_net10().replace(".0.0/16", ".9.1/24")
        h2 = Harness(str(tmp_path / "d"), tag, upstream, bip=base, icc=False)
        try:
            h2.start()
            second = h2.svc.find_network("bridge")
            assert second.id == first.id and not second.icc
            assert second.ipam_config[0]["Subnet"] == base.replace(".9.1/24", ".9.0/24")
            sb = h2.run(h2.svc.setup(cid))
            assert sb.settings["IPAddress"] == base.replace(".9.1/24", ".9.2")
            table = subprocess.run(["nft", "list", "table", "ip", h2.options["nft-table"]], capture_output=True, text=True).stdout
            assert f'iifname "{h2.options["bridge-name"]}" oifname "{h2.options["bridge-name"]}" drop' in table
        finally:
            h2.close()
    finally:
        if h1.thread.is_alive():
            h1.loop.call_soon_threadsafe(h1.loop.stop)
            h1.thread.join(5)
        cleanup.purge(h1.data_root, h1.exec_root, h1.options)
