"""Docker-parity behaviour of the network layer on the real kernel (checked against dockerd 20.10
on this machine): which network gives the default route, interface numbering, connecting a
stopped container, legacy links (hosts lines, icc=false holes, a child that moves), links on user
networks as names for the linker only, `network ls` filters and inspect shapes. "Containers" are
processes in the service's namespaces (nsenter); traffic stays in namespaces the test made."""

from __future__ import annotations

import secrets

import pytest

from dockyard.errors import InvalidParameter, SystemError_
from network.helpers import FAKE_UPSTREAM_ANSWER, Harness, dns_query, free_port, http_get

HELLO = "hello from dockyard\n"


def _default_route(h: Harness, cid: str) -> str:
    for line in h.sh(cid, ["ip", "route"]).stdout.splitlines():
        if line.startswith("default"):
            return line.split(" proto")[0].strip()
    return ""


def _ifnames(h: Harness, cid: str) -> set[str]:
    return {line.split(":")[1].strip().split("@")[0] for line in h.sh(cid, ["ip", "-o", "link"]).stdout.splitlines()}


def _gw(h: Harness, name: str) -> str:
    cfg = h.svc.inspect_network(name)["IPAM"]["Config"][0]
    return cfg.get("Gateway") or str(__import__("ipaddress").ip_network(cfg["Subnet"]).network_address + 1)


def test_default_route_goes_to_the_first_network_by_name_and_ports_follow(net: Harness):
    """Docker orders a container's networks: internal ones last, then by name; the first gives
    the default route, re-decided at every connect and disconnect. ethN numbers are not reused."""
    for name, internal in (("dytzz", False), ("dytaa", False), ("dytab", True)):
        net.run(net.svc.create_network({"Name": name, "Internal": internal}))
    port = free_port()
    a, _ = net.container("mover", network_mode="dytzz", port_bindings={"80/tcp": [{"HostPort": str(port)}]})
    net.httpd(a)
    assert _default_route(net, a) == f"default via {_gw(net, 'dytzz')} dev eth0"
    assert net.run(net.svc.connect("dytaa", a)) is True
    assert _default_route(net, a) == f"default via {_gw(net, 'dytaa')} dev eth1"
    assert http_get(f"http://127.0.0.1:{port}/") == HELLO  # the published port follows the route
    net.run(net.svc.disconnect("dytaa", a))
    assert _default_route(net, a) == f"default via {_gw(net, 'dytzz')} dev eth0"
    assert http_get(f"http://127.0.0.1:{port}/") == HELLO
    net.run(net.svc.connect("dytab", a))  # internal: sorts last, and eth1 is not handed out again
    assert _default_route(net, a) == f"default via {_gw(net, 'dytzz')} dev eth0"
    assert _ifnames(net, a) == {"lo", "eth0", "eth2"}
    # at start too: created on dytzz with dytaa given as well -> dytaa routes
    b, _ = net.container("both", network_mode="dytzz", endpoints={"dytaa": {}})
    assert _default_route(net, b) == f"default via {_gw(net, 'dytaa')} dev eth1"


def test_connect_a_stopped_container_attaches_it_at_start(net: Harness):
    net.run(net.svc.create_network({"Name": "dytlate"}))
    peer, _ = net.container("peer", network_mode="dytlate")
    a, _ = net.container("sleeper")
    net.run(net.svc.teardown(a))  # stopped
    assert net.run(net.svc.connect("dytlate", a, {"Aliases": ["late"]})) is False  # recorded only
    assert net.run(net.svc.connect("dytlate", a)) is False  # again: Docker changes nothing, no error
    view = net.svc.settings(a)["Networks"]
    assert set(view) == {"bridge", "dytlate"} and view["dytlate"]["IPAddress"] == ""
    assert a not in net.svc.inspect_network("dytlate")["Containers"]
    sb = net.run(net.svc.setup(a))
    ip = sb.settings["Networks"]["dytlate"]["IPAddress"]
    assert ip and _ifnames(net, a) == {"lo", "eth0", "eth1"}
    assert dns_query(net.key(peer), "late") == [ip]
    entry = net.svc.inspect_network("dytlate")["Containers"][a]
    assert set(entry) == {"Name", "EndpointID", "MacAddress", "IPv4Address", "IPv6Address"}
    assert entry["Name"] == "sleeper" and entry["IPv4Address"].startswith(ip + "/") and len(entry["EndpointID"]) == 64


def test_user_network_link_is_a_name_for_the_linker_only(net: Harness):
    net.run(net.svc.create_network({"Name": "dytlnk"}))
    t, st = net.container("target", network_mode="dytlnk")
    linker, sl = net.container("linker", network_mode="dytlnk", endpoints={"dytlnk": {"Links": ["target:tt"]}})
    other, _ = net.container("other", network_mode="dytlnk")
    ip = st.settings["Networks"]["dytlnk"]["IPAddress"]
    assert dns_query(net.key(linker), "tt") == [ip]
    assert dns_query(net.key(other), "tt") == [FAKE_UPSTREAM_ANSWER]  # unknown there: forwarded
    assert sl.settings["Networks"]["dytlnk"]["Links"] == ["target:tt"]
    assert net.svc.links_view(linker) is None  # no legacy link on a user network


def test_legacy_links_on_the_default_bridge_with_icc_false(tmp_path, upstream):
    """--link on the default bridge: the parent's hosts line and env targets, a hole through
    icc=false for the child's exposed ports only, the line follows a child that restarts with
    another address; Docker's errors."""
    h = Harness(str(tmp_path), secrets.token_hex(2), upstream, icc=False)
    try:
        h.start()
        web, sw = h.container("web", hostname="webhost", exposed_ports={"80/tcp": {}})
        h.httpd(web)
        h.httpd(web, 8080)  # listening, but not exposed
        ip = sw.settings["IPAddress"]
        hosts = tmp_path / "hosts"
        app, sa = h.container("app", links=["web:db"], hosts_path=str(hosts))
        hosts.write_text(sa.hosts)
        assert sa.hosts.endswith(f"{ip}\tdb webhost web\n{sa.settings['IPAddress']}\t{app[:12]}\n")
        assert sa.links == [(web, "db", ip)]
        assert h.svc.links_view(app) == ["/web:/app/db"]
        stranger, _ = h.container("stranger")
        assert http_get(f"http://{ip}/", ns=h.key(app)) == HELLO  # the link's hole: exposed port 80
        assert http_get(f"http://{ip}:8080/", ns=h.key(app), timeout=2).startswith("ERROR")  # not exposed
        assert http_get(f"http://{ip}/", ns=h.key(stranger), timeout=2).startswith("ERROR")  # icc=false
        # the child restarts with another address: the parent's hosts line follows
        h.kill_procs()
        h.run(h.svc.teardown(web))
        h.run(h.svc.settle())
        squatter, _ = h.container("squatter")  # takes web's old address
        sw2 = h.run(h.svc.setup(web))
        ip2 = sw2.settings["IPAddress"]
        assert ip2 != ip
        assert f"{ip2}\tdb webhost web\n" in hosts.read_text() and f"{ip}\t" not in hosts.read_text()
        # a stopped child: the parent cannot start (Docker's message)
        h.run(h.svc.teardown(web))
        h.run(h.svc.teardown(app))
        with pytest.raises(SystemError_, match=r"Cannot link to a non running container: /web AS /app/db"):
            h.run(h.svc.setup(app))
        with pytest.raises(InvalidParameter, match="could not get container for nosuch: No such container: nosuch"):
            h.container("bad", links=["nosuch:x"])
        with pytest.raises(InvalidParameter, match="host type networking can't be used with links"):
            h.container("bad2", network_mode="host", links=["web"])
        assert squatter
    finally:
        h.close()


def test_ls_filters_name_regexp_id_and_dangling(net: Harness):
    one = net.run(net.svc.create_network({"Name": "dytf1"}))["Id"]
    net.run(net.svc.create_network({"Name": "dytf10"}))
    names = lambda f: sorted(n["Name"] for n in net.svc.list_networks(f))  # noqa: E731
    assert names({"name": ["^dytf1$"]}) == ["dytf1"]
    assert names({"name": ["dytf1"]}) == ["dytf1", "dytf10"]
    assert names({"id": [one[:8]]}) == ["dytf1"]
    net.container("user", network_mode="dytf10")
    assert names({"dangling": ["true"]}) == ["dytf1"]
    assert "dytf10" in names({"dangling": ["false"]}) and "bridge" in names({"dangling": ["0"]})
    with pytest.raises(InvalidParameter, match="invalid value for filter 'dangling'"):
        net.svc.list_networks({"dangling": ["maybe"]})


def test_inspect_shows_the_ipam_config_as_asked(net: Harness):
    net.run(net.svc.create_network({"Name": "dytsub", "IPAM": {"Options": {}, "Config": [{"Subnet": "10.252.9.0/24"}]}}))
    info = net.svc.inspect_network("dytsub")
    assert info["IPAM"] == {"Driver": "default", "Options": {}, "Config": [{"Subnet": "10.252.9.0/24"}]}
    c, sb = net.container("member", network_mode="dytsub")
    assert sb.settings["Networks"]["dytsub"]["Gateway"] == "10.252.9.1"  # the first address, still
    net.run(net.svc.create_network({"Name": "dytauto2"}))
    auto = net.svc.inspect_network("dytauto2")["IPAM"]
    assert auto["Options"] is None and set(auto["Config"][0]) == {"Subnet", "Gateway"}
    assert list(info) == ["Name", "Id", "Created", "Scope", "Driver", "EnableIPv6", "IPAM", "Internal", "Attachable",
                          "Ingress", "ConfigFrom", "ConfigOnly", "Containers", "Options", "Labels"]  # fmt: skip
