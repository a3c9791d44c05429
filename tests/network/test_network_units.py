"""Pure logic of the network layer: port syntax, IPAM, resolv.conf/hosts text, the nftables text,
the DNS wire format, options and Docker-shaped views. No kernel objects are created here."""

from __future__ import annotations

import ipaddress
import json
import struct

import pytest

from dockyard.errors import Forbidden, InvalidParameter, SystemError_
from dockyard.network import dns, files, ipam, ports
from dockyard.network.config import ContainerNetConfig
from dockyard.network.firewall import BridgeRule, PortRule, render
from dockyard.network.options import NetworkOptions
from dockyard.network.state import Attachment, ContainerRecord, EndpointState, NetworkRecord, SandboxState
from dockyard.network.views import network_json, network_settings


# --- ports ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "spec,expected",
    [
        ("80", {"80/tcp": [{"HostIp": "", "HostPort": ""}]}),
        ("8080:80", {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}),
        ("127.0.0.1:8080:80/udp", {"80/udp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]}),
        ("127.0.0.1::80", {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]}),
        (
            "8000-8001:80-81",
            {"80/tcp": [{"HostIp": "", "HostPort": "8000"}], "81/tcp": [{"HostIp": "", "HostPort": "8001"}]},
        ),
        ("8000-8010:80", {"80/tcp": [{"HostIp": "", "HostPort": "8000-8010"}]}),
        ("80-81", {"80/tcp": [{"HostIp": "", "HostPort": ""}], "81/tcp": [{"HostIp": "", "HostPort": ""}]}),
        ("[::1]:80:80", {"80/tcp": [{"HostIp": "::1", "HostPort": "80"}]}),
    ],
)
def test_parse_publish(spec, expected):
    assert ports.parse_publish(spec) == expected


@pytest.mark.parametrize(
    "spec,message",
    [
        ("8080:http", "invalid containerPort: http"),
        ("x:80", "invalid hostPort: x"),
        ("80/icmp", "invalid proto: icmp"),
        ("1.2.3.999:80:80", "invalid IP address: 1.2.3.999"),
        ("8000-8002:80-81", "invalid ranges specified for container and host Ports: 80-81 and 8000-8002"),
        ("70000:80", "invalid hostPort: 70000"),
    ],
)
def test_parse_publish_errors(spec, message):
    with pytest.raises(InvalidParameter) as e:
        ports.parse_publish(spec)
    assert e.value.message == message


def test_validate_bindings_messages():
    ports.validate_bindings({"80/tcp": [{"HostIp": "", "HostPort": "8080"}], "53/udp": None})
    with pytest.raises(InvalidParameter, match="invalid port specification: 'abc/tcp'"):
        ports.validate_bindings({"abc/tcp": []})
    with pytest.raises(InvalidParameter, match="invalid port specification: '99999'"):
        ports.validate_bindings({"80/tcp": [{"HostPort": "99999"}]})


def test_plan_publish_all_adds_unbound_exposed_ports():
    wanted = ports.plan({"80/tcp": [{"HostPort": "8080"}]}, {"80/tcp": {}, "53/udp": {}, "443/tcp": {}}, True)
    assert ports.Wanted("tcp", 80, "0.0.0.0", 8080, 8080) in wanted
    assert ports.Wanted("udp", 53, "0.0.0.0", 0, 0) in wanted
    assert ports.Wanted("tcp", 443, "0.0.0.0", 0, 0) in wanted
    assert len(wanted) == 3
    assert ports.plan(None, {"80/tcp": {}}, False) == []


def test_ports_view_and_summary_shapes():
    maps = [ports.Mapping("tcp", 80, "0.0.0.0", 8080)]
    view = ports.ports_view(maps, {"80/tcp": {}, "53/udp": {}}, {"80/tcp": [{"HostPort": "8080"}]})
    assert view == {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}], "53/udp": None}
    summary = ports.ports_summary(maps, {"80/tcp": {}, "53/udp": {}})
    assert {"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"} in summary
    assert {"PrivatePort": 53, "Type": "udp"} in summary


def test_port_allocator_random_explicit_conflicts_and_release():
    alloc = ports.PortAllocator((42000, 42999))
    try:
        m1 = alloc.reserve(ports.Wanted("tcp", 80, "127.0.0.1", 0, 0), "a")
        m2 = alloc.reserve(ports.Wanted("tcp", 80, "127.0.0.1", 0, 0), "b")
        assert 42000 <= m1.host_port <= 42999 and m2.host_port != m1.host_port
        with pytest.raises(ports.PortInUse, match=f"Bind for 127.0.0.1:{m1.host_port} failed: port is already allocated"):
            alloc.reserve(ports.Wanted("tcp", 81, "127.0.0.1", m1.host_port, m1.host_port), "c")
        # 0.0.0.0 conflicts with any address on the same port and protocol
        with pytest.raises(ports.PortInUse, match="port is already allocated"):
            alloc.reserve(ports.Wanted("tcp", 81, "0.0.0.0", m1.host_port, m1.host_port), "c")
        # the same number over UDP is a different port
        alloc.reserve(ports.Wanted("udp", 81, "127.0.0.1", m1.host_port, m1.host_port), "c")
        alloc.release_owner("a")
        again = alloc.reserve(ports.Wanted("tcp", 81, "127.0.0.1", m1.host_port, m1.host_port), "d")
        assert again.host_port == m1.host_port
    finally:
        alloc.close()


def test_port_allocator_refuses_a_port_another_process_holds():
    import socket

    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    alloc = ports.PortAllocator((42000, 42999))
    try:
        with pytest.raises(ports.PortInUse, match="address already in use"):
            alloc.reserve(ports.Wanted("tcp", 80, "127.0.0.1", port, port), "a")
    finally:
        alloc.close()
        holder.close()


def test_port_allocator_range_picks_a_free_port():
    alloc = ports.PortAllocator((42000, 42999))
    try:
        a = alloc.reserve(ports.Wanted("tcp", 80, "127.0.0.1", 42100, 42101), "a")
        b = alloc.reserve(ports.Wanted("tcp", 80, "127.0.0.1", 42100, 42101), "b")
        assert {a.host_port, b.host_port} == {42100, 42101}
        with pytest.raises(ports.PortInUse, match="Bind for 127.0.0.1:42100-42101 failed"):
            alloc.reserve(ports.Wanted("tcp", 80, "127.0.0.1", 42100, 42101), "c")
    finally:
        alloc.close()


# --- IPAM ----------------------------------------------------------------------------------
def test_mac_derived_from_ip_like_docker():
    assert ipam.mac_for("172.17.0.2") == "02:42:ac:11:00:02"


def test_pool_lowest_free_never_twice_persisted(tmp_path):
    path = str(tmp_path / "pool.json")
    pool = ipam.Pool(ipaddress.IPv4Network("10.9.0.0/29"), path=path, network="n")
    got = [str(pool.allocate(f"o{i}")) for i in range(5)]
    assert got == ["10.9.0.2", "10.9.0.3", "10.9.0.4", "10.9.0.5", "10.9.0.6"]
    with pytest.raises(SystemError_, match="no available IPv4 addresses"):
        pool.allocate("o9")
    # a reload sees every lease: nothing is handed out twice across a restart
    again = ipam.Pool.load(path)
    assert set(again.leases) == set(got)
    again.release("10.9.0.3")
    assert str(again.allocate("x")) == "10.9.0.3"
    with pytest.raises(Forbidden, match="Address already in use"):
        again.allocate("y", "10.9.0.4")
    with pytest.raises(Forbidden, match="Address already in use"):
        again.allocate("y", "10.9.0.1")  # the gateway
    freed = again.reconcile({"o0", "x"})
    assert sorted(freed) == ["10.9.0.4", "10.9.0.5", "10.9.0.6"]
    with open(path) as f:
        assert json.load(f)["Leases"] == {"10.9.0.2": "o0", "10.9.0.3": "x"}


def test_pool_ip_range_gateway_and_errors():
    pool = ipam.Pool(
        ipaddress.IPv4Network("10.9.0.0/24"),
        ipaddress.IPv4Address("10.9.0.254"),
        ipaddress.IPv4Network("10.9.0.128/25"),
    )
    assert str(pool.allocate("a")) == "10.9.0.129"
    assert str(pool.allocate("b", "10.9.0.5")) == "10.9.0.5"  # --ip may be outside --ip-range
    with pytest.raises(InvalidParameter, match="no configured subnet or ip-range contain the IP address 10.8.0.1"):
        pool.allocate("c", "10.8.0.1")
    with pytest.raises(InvalidParameter, match="no matching subnet for gateway 10.8.0.1"):
        ipam.Pool(ipaddress.IPv4Network("10.9.0.0/24"), ipaddress.IPv4Address("10.8.0.1"))
    with pytest.raises(InvalidParameter, match="no matching subnet for range"):
        ipam.Pool(ipaddress.IPv4Network("10.9.0.0/24"), None, ipaddress.IPv4Network("10.10.0.0/25"))


def test_choose_subnet_skips_used_ranges():
    pools = [{"base": "172.17.0.0/16", "size": 16}, {"base": "172.18.0.0/15", "size": 16}]
    used = [ipaddress.IPv4Network("172.17.5.0/24"), ipaddress.IPv4Network("172.18.0.0/16")]
    assert str(ipam.choose_subnet(pools, used)) == "172.19.0.0/16"
    with pytest.raises(Forbidden, match="could not find an available, non-overlapping IPv4 address pool"):
        ipam.choose_subnet(pools[:1], used)
    assert str(ipam.choose_subnet([{"base": "10.1.0.0/16", "size": 24}], [ipaddress.IPv4Network("10.1.0.0/24")])) == "10.1.1.0/24"
    with pytest.raises(InvalidParameter, match="invalid CIDR address: 10.1.0.300/24"):
        ipam.parse_subnet("10.1.0.300/24")


# --- resolv.conf and hosts -----------------------------------------------------------------------
HOST_RESOLV = "# comment\nnameserver 127.0.0.53\nnameserver 10.0.0.2\nnameserver ::1\nnameserver 2001:db8::1\nsearch example.com lab\noptions edns0\n"


def test_resolv_conf_default_bridge_filters_loopback_and_ipv6():
    out = files.resolv_conf(HOST_RESOLV, "bridge")
    assert out == "search example.com lab\nnameserver 10.0.0.2\noptions edns0\n"


def test_resolv_conf_falls_back_to_public_resolvers():
    out = files.resolv_conf("nameserver 127.0.0.53\n", "bridge")
    assert "nameserver 8.8.8.8\nnameserver 8.8.4.4\n" in out


def test_resolv_conf_overrides_and_user_network():
    out = files.resolv_conf(HOST_RESOLV, "bridge", ["9.9.9.9"], ["corp"], ["ndots:2"])
    assert out == "search corp\nnameserver 9.9.9.9\noptions ndots:2\n"
    user = files.resolv_conf(HOST_RESOLV, "user")
    assert user == "search example.com lab\nnameserver 127.0.0.11\noptions edns0 ndots:0\n"
    assert files.upstreams(HOST_RESOLV) == ["127.0.0.53", "10.0.0.2"]  # forwarded from the host's namespace
    assert files.upstreams(HOST_RESOLV, ["1.1.1.1"]) == ["1.1.1.1"]
    host = files.resolv_conf(HOST_RESOLV, "host")
    assert "nameserver 127.0.0.53" in host


def test_hosts_file_like_docker():
    extra = files.parse_extra_hosts(["db:10.0.0.5", "gw:host-gateway", "x=10.0.0.6"], "172.17.0.1")
    out = files.hosts("web", "", ["172.17.0.2"], extra)
    assert out.startswith("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
    assert out.endswith("10.0.0.5\tdb\n172.17.0.1\tgw\n10.0.0.6\tx\n172.17.0.2\tweb\n")
    # dockerd: a tab after the address, a space between the names (checked against dockerd 20.10)
    assert "172.17.0.2\tweb.example.org web\n" in files.hosts("web", "example.org", ["172.17.0.2"])
    with pytest.raises(InvalidParameter):
        files.parse_extra_hosts(["nocolon"], None)
    with pytest.raises(InvalidParameter):
        files.parse_extra_hosts(["a:not-an-ip"], None)


# --- nftables text ---------------------------------------------------------------------------
def test_firewall_render_is_one_replacing_transaction():
    text = render(
        "dockyard_t",
        [BridgeRule("br0", "172.17.0.0/16"), BridgeRule("br1", "10.1.0.0/24", internal=True, icc=False)],
        [PortRule("tcp", "0.0.0.0", 8080, "172.17.0.2", 80), PortRule("udp", "127.0.0.1", 5353, "172.17.0.2", 53)],
    )
    first, second, rest = text.split("\n", 2)
    assert first == "table ip dockyard_t {}" and second == "delete table ip dockyard_t"
    assert "meta l4proto tcp tcp dport 8080 dnat to 172.17.0.2:80" in rest
    assert "ip daddr 127.0.0.1 meta l4proto udp udp dport 5353 dnat to 172.17.0.2:53" in rest
    assert 'ip saddr 172.17.0.0/16 oifname != "br0" masquerade' in rest
    assert 'ip saddr 10.1.0.0/24 oifname != "br1" masquerade' not in rest  # internal: no NAT out
    assert 'iifname "br1" oifname "br1" drop' in rest  # icc=false
    assert 'iifname "br0" oifname { "br1" } drop' in rest  # isolation between networks
    assert "fib daddr type local jump ports" in rest
    assert "table ip" not in rest.replace("table ip dockyard_t {", "", 1)  # one table only


# --- DNS wire format --------------------------------------------------------------------------
def _query(name: str, qtype: int = 1, qid: int = 0x1234) -> bytes:
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + dns.encode_name(name) + struct.pack("!HH", qtype, 1)


def test_dns_parse_and_answer():
    q = dns.parse_query(_query("Web.Example."))
    assert (q.id, q.name, q.qtype) == (0x1234, "web.example", 1)
    ans = dns.build_answer(q, dns.RCODE_OK, [(1, bytes([10, 0, 0, 2]))])
    qid, flags, qd, an, _, _ = struct.unpack("!HHHHHH", ans[:12])
    assert qid == 0x1234 and flags & 0x8000 and flags & 0x0100 and flags & 0xF == 0 and (qd, an) == (1, 1)
    assert ans.endswith(struct.pack("!HHHIH", 0xC00C, 1, 1, dns.TTL, 4) + bytes([10, 0, 0, 2]))
    assert dns.ptr_to_ip("2.0.17.172.in-addr.arpa") == "172.17.0.2"
    with pytest.raises(ValueError):
        dns.parse_query(b"\x00\x01")


def test_dns_local_answers_and_forward_decision():
    server = dns.EmbeddedDNS(
        lambda cid, name: ["10.0.0.2", "10.0.0.3"] if name == "web" else None,
        lambda cid, ip: "web.net" if ip == "10.0.0.2" else None,
        lambda cid: [],
    )
    a = server.answer_locally("c", dns.parse_query(_query("web")))
    assert a is not None and struct.unpack("!H", a[6:8])[0] == 2
    aaaa = server.answer_locally("c", dns.parse_query(_query("web", 28)))
    assert aaaa is not None and struct.unpack("!H", aaaa[6:8])[0] == 0  # NOERROR, no records
    ptr = server.answer_locally("c", dns.parse_query(_query("2.0.0.10.in-addr.arpa", 12)))
    assert ptr is not None and dns.encode_name("web.net") in ptr
    assert server.answer_locally("c", dns.parse_query(_query("example.com"))) is None


# --- options, config, views -------------------------------------------------------------------------
def test_options_from_daemon_json_and_flags():
    o = NetworkOptions.from_config(
        {
            "bip": "10.66.0.1/24",
            "bridge-name": "dyt0",
            "icc": "false",
            "default-address-pools": ["base=10.70.0.0/16,size=24"],
            "nft-table": "dockyard_dyt1",
            "dns": "1.1.1.1,8.8.8.8",
            "userland-proxy": False,
        }
    )
    assert o.bip == "10.66.0.1/24" and o.bridge_name == "dyt0" and o.icc is False
    assert o.default_address_pools == [{"base": "10.70.0.0/16", "size": 24}]
    assert o.dns == ["1.1.1.1", "8.8.8.8"] and o.nft_table == "dockyard_dyt1"
    assert NetworkOptions.from_config({"bridge": "none"}).disable_bridge
    with pytest.raises(InvalidParameter):
        NetworkOptions.from_config({"nft-table": "bad table; flush ruleset"})
    with pytest.raises(InvalidParameter):
        NetworkOptions.from_config({"bridge-name": "a-very-long-bridge-name"})


def test_container_net_config_from_api():
    cfg = ContainerNetConfig.from_api(
        "a" * 64,
        "/web",
        {"Hostname": "h", "ExposedPorts": {"53/udp": {}}, "MacAddress": "02:42:ac:11:00:09"},
        {"NetworkMode": "mynet", "PortBindings": {"80/tcp": [{"HostPort": "8080"}]}, "Dns": ["1.1.1.1"], "ExtraHosts": ["a:1.2.3.4"]},
        {"EndpointsConfig": {"mynet": {"Aliases": ["w"]}}},
    )
    assert cfg.name == "web" and cfg.network_mode == "mynet" and cfg.mac_address == "02:42:ac:11:00:09"
    assert set(cfg.exposed_ports) == {"53/udp", "80/tcp"} and cfg.endpoints == {"mynet": {"Aliases": ["w"]}}


def test_views_network_and_settings_shapes():
    net = NetworkRecord(id="n" * 64, name="bridge", ipam_config=[{"Subnet": "172.17.0.0/16", "Gateway": "172.17.0.1"}], predefined=True, default_bridge=True)
    j = network_json(net)
    assert set(j) == {
        "Name", "Id", "Created", "Scope", "Driver", "EnableIPv6", "IPAM", "Internal", "Attachable", "Ingress",
        "ConfigFrom", "ConfigOnly", "Containers", "Options", "Labels",
    }  # fmt: skip
    ep = EndpointState(net.id, "e" * 64, "172.17.0.2", 16, "172.17.0.1", "02:42:ac:11:00:02", "vethx", "eth0")
    rec = ContainerRecord(
        id="c" * 64,
        name="web",
        exposed_ports={"80/tcp": {}},
        port_bindings={"80/tcp": [{"HostPort": "8080"}]},
        attachments=[Attachment(net.id, "bridge")],
        sandbox=SandboxState(id="s" * 64, key="/run/x", endpoints={net.id: ep}, ports=[ports.Mapping("tcp", 80, "0.0.0.0", 8080)], gateway_network=net.id),
    )
    s = network_settings(rec, {net.id: net})
    assert s["IPAddress"] == "172.17.0.2" and s["Gateway"] == "172.17.0.1" and s["MacAddress"] == "02:42:ac:11:00:02"
    assert s["Ports"] == {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}
    assert s["Networks"]["bridge"]["IPAddress"] == "172.17.0.2" and s["Networks"]["bridge"]["Aliases"] is None
    rec.sandbox = None
    stopped = network_settings(rec, {net.id: net})
    assert stopped["IPAddress"] == "" and stopped["Networks"]["bridge"]["IPAddress"] == "" and stopped["Ports"] == {}
