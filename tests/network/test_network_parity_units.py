"""Docker-parity details of the network layer that need no kernel objects: legacy links (parsing,
the parent's variables and hosts names, where they go in the environment), `network ls` filter
matching, the nftables holes links open through icc=false, and the shapes inspect shows. The
expected values were taken from dockerd 20.10 on this machine."""

from __future__ import annotations

import pytest

from dockyard.daemon.networking import merge_link_env
from dockyard.errors import InvalidParameter
from dockyard.network import legacy_links
from dockyard.network.config import ContainerNetConfig
from dockyard.network.firewall import BridgeRule, LinkRule, render
from dockyard.network.service import _dangling_value, _filter_match
from dockyard.network.state import Attachment, ContainerRecord, Link, SandboxState
from dockyard.network.views import endpoint_settings


@pytest.mark.parametrize(
    "spec,expected",
    [("web", ("web", "web")), ("web:db", ("web", "db")), ("/web:/app/db", ("web", "db")), ("/web", ("web", "web"))],
)
def test_parse_link(spec, expected):
    assert legacy_links.parse_link(spec) == expected


@pytest.mark.parametrize("spec,message", [("", "empty string specified for links"), ("a:b:c", "bad format for links: a:b:c")])
def test_parse_link_errors(spec, message):
    with pytest.raises(InvalidParameter) as e:
        legacy_links.parse_link(spec)
    assert e.value.message == message


def test_link_env_like_docker():
    """`docker run --link web:db-x` where web has --expose 8000-8002 --expose 53/udp --expose 80
    and -e FOO=bar -e PATH=... -e HOME=...: dockerd 20.10's variables, in its order."""
    exposed = {"8000/tcp": {}, "8001/tcp": {}, "8002/tcp": {}, "53/udp": {}, "80/tcp": {}}
    env = legacy_links.link_env("/app", "db-x", "10.79.0.3", exposed, ["FOO=bar", "PATH=/x:/bin", "HOME=/h"])
    ip = "10.79.0.3"
    expect = [f"DB_X_PORT=udp://{ip}:53"]
    for port, proto in ((53, "udp"), (80, "tcp"), (8000, "tcp"), (8001, "tcp"), (8002, "tcp")):
        p = f"DB_X_PORT_{port}_{proto.upper()}"
        expect += [f"{p}={proto}://{ip}:{port}", f"{p}_ADDR={ip}", f"{p}_PORT={port}", f"{p}_PROTO={proto}"]
    expect += [
        f"DB_X_PORT_8000_TCP_START=tcp://{ip}:8000",
        "DB_X_PORT_8000_TCP_PORT_START=8000",
        f"DB_X_PORT_8000_TCP_END=tcp://{ip}:8002",
        "DB_X_PORT_8000_TCP_PORT_END=8002",
        "DB_X_NAME=/app/db-x",
        "DB_X_ENV_FOO=bar",
    ]
    assert env == expect
    assert legacy_links.link_env("app", "web", ip, None, None) == ["WEB_NAME=/app/web"]


def test_link_hosts_names():
    assert legacy_links.hosts_names("db-x", "2f5bd5cc172d", "web") == "db-x 2f5bd5cc172d web"
    assert legacy_links.hosts_names("web", "2f5bd5cc172d", "web") == "web 2f5bd5cc172d"


def test_link_env_goes_before_the_containers_own_which_wins():
    spec_env = ["PATH=/usr/bin", "HOSTNAME=abc", "TERM=xterm", "FOO=mine", "DB_NAME=mine"]
    merged = merge_link_env(spec_env, ["DB_PORT=tcp://1.2.3.4:80", "DB_NAME=/app/db"], ["FOO=mine", "DB_NAME=mine"])
    assert merged == ["PATH=/usr/bin", "HOSTNAME=abc", "TERM=xterm", "DB_PORT=tcp://1.2.3.4:80", "FOO=mine", "DB_NAME=mine"]
    assert merge_link_env(["PATH=/bin", "HOSTNAME=h"], ["X_NAME=/a/x"], None) == ["PATH=/bin", "HOSTNAME=h", "X_NAME=/a/x"]


def test_links_come_from_the_create_request():
    cfg = ContainerNetConfig.from_api("c" * 64, "/app", {}, {"Links": ["web:db"]})
    assert cfg.links == ["web:db"]
    rec = ContainerRecord(id="c" * 64, name="app", links=[Link("d" * 64, "db", "web")], sandbox=SandboxState(id="s", key="k"))
    rec.sandbox.link_hosts["db"] = ["db h web", "10.0.0.2"]  # type: ignore[union-attr]
    assert ContainerRecord.from_json(rec.to_json()) == rec


@pytest.mark.parametrize(
    "pattern,value,ok",
    [("^front$", "front", True), ("^front$", "frontend", False), ("front", "my-frontend", True), ("a", "bridge", False),
     ("[", "[", True), ("[", "x[", False), ("4f3a", "4f3a9c", True)],
)  # fmt: skip
def test_ls_name_and_id_filters_are_docker_regexps(pattern, value, ok):
    assert _filter_match(pattern, value) is ok


def test_dangling_filter_values():
    assert _dangling_value(["true"]) is True and _dangling_value(["1"]) is True
    assert _dangling_value(["false"]) is False and _dangling_value(["0"]) is False
    with pytest.raises(InvalidParameter) as e:
        _dangling_value(["maybe"])
    assert e.value.message == "invalid value for filter 'dangling', must be \"true\" (or \"1\"), or \"false\" (or \"0\")"
    with pytest.raises(InvalidParameter) as e:
        _dangling_value(["true", "false"])
    assert e.value.message == 'got more than one value for filter key "dangling"'


def test_links_open_holes_in_icc_false_only_for_the_childs_ports():
    bridges = [BridgeRule("br0", "172.17.0.0/16", icc=False), BridgeRule("br1", "10.1.0.0/24")]
    links = [
        LinkRule("br0", "172.17.0.3", "172.17.0.2", "tcp", 80, 80),
        LinkRule("br0", "172.17.0.3", "172.17.0.2", "udp", 5000, 5010),
    ]
    text = render("t", bridges, [], links)
    fwd = text[text.index("chain forward") :]
    accept = 'iifname "br0" oifname "br0" ip saddr 172.17.0.3 ip daddr 172.17.0.2 tcp dport 80 accept'
    back = 'iifname "br0" oifname "br0" ip saddr 172.17.0.2 ip daddr 172.17.0.3 udp sport 5000-5010 accept'
    assert accept in fwd and back in fwd
    assert fwd.index(accept) < fwd.index('iifname "br0" oifname "br0" drop')
    # icc on: links change nothing
    assert "saddr 172.17.0.3" not in render("t", [BridgeRule("br0", "172.17.0.0/16")], [], links)


def test_endpoint_links_show_on_user_networks_only():
    att = Attachment(network_id="n" * 64, name="front", links=["web:db"])
    assert endpoint_settings(att, None, "abc", user_defined=True)["Links"] == ["web:db"]
    assert endpoint_settings(att, None, "abc", user_defined=False)["Links"] is None
