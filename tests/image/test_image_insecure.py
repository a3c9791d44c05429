"""Insecure registries as Docker treats them, against real registries: one over HTTPS with a
self-signed certificate (not in certs.d) and one over plain HTTP, both listening on an address of
a network namespace this test creates (so neither is loopback), plus an HTTPS-only registry on
127.0.0.1 (loopback is insecure by default: plain HTTP first, then HTTPS with any certificate).
`insecure-registries` entries work as `host:port` and as CIDRs; `GET /info` and `dockyard info`
list them. Traffic stays on the veth into the test's own namespace and on 127.0.0.0/8."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess

import pytest

from dockyard.errors import DockyardError, InvalidParameter
from dockyard.image.registry import Registry, RegistryConfig, parse_insecure
from image.conftest import build_image
from image.registry_server import RegistryServer
from storage.layertars import LayerTar


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


@pytest.fixture(scope="module")
def netns_net():
    """A netns joined to the host by a veth pair on a random /30 of 198.19.0.0/16."""
    name = "dyt" + secrets.token_hex(3)
    third, fourth = secrets.randbelow(250) + 2, secrets.randbelow(60) * 4
    host_ip, ns_ip = f"198.19.{third}.{fourth + 1}", f"198.19.{third}.{fourth + 2}"
    _ip("netns", "add", name)
    try:
        _ip("link", "add", name + "h", "type", "veth", "peer", "name", name + "n")
        _ip("link", "set", name + "n", "netns", name)
        _ip("addr", "add", host_ip + "/30", "dev", name + "h")
        _ip("link", "set", name + "h", "up")
        _ip("-n", name, "addr", "add", ns_ip + "/30", "dev", name + "n")
        _ip("-n", name, "link", "set", name + "n", "up")
        _ip("-n", name, "link", "set", "lo", "up")
        yield {"netns": name, "ip": ns_ip, "cidr": f"198.19.{third}.{fourth}/30"}
    finally:
        _ip("link", "del", name + "h", check=False)
        _ip("netns", "del", name, check=False)


@pytest.fixture(scope="module")
def remote(netns_net, tmp_path_factory):
    """(HTTPS self-signed registry, plain HTTP registry), both at the namespace's address."""
    base = tmp_path_factory.mktemp("insecure")
    tls = RegistryServer(str(base / "tls"), tls=True, host=netns_net["ip"], netns=netns_net["netns"], port=5443)
    plain = RegistryServer(str(base / "plain"), host=netns_net["ip"], netns=netns_net["netns"], port=5000)
    with tls, plain:
        yield tls, plain


@pytest.fixture(scope="module")
def loopback_tls(tmp_path_factory):
    with RegistryServer(str(tmp_path_factory.mktemp("lotls")), tls=True) as reg:
        yield reg


def _image(svc, tag: str) -> str:
    return build_image(svc, [LayerTar().file("hello.txt", tag.encode()).bytes()], tag)


def test_insecure_entries_are_validated_as_dockerd_does():
    cidrs, names = parse_insecure(["10.0.0.0/8", "http://reg.example:5000", "reg.example:5000", "other"])
    assert cidrs == ["10.0.0.0/8", "::1/128", "127.0.0.0/8"] and names == ["reg.example:5000", "other"]
    with pytest.raises(InvalidParameter, match="insecure registry ftp://x should not contain '://'"):
        parse_insecure(["ftp://x"])
    with pytest.raises(InvalidParameter, match="insecure registry 10.0.0.0/99 is not valid"):
        parse_insecure(["10.0.0.0/99"])
    with pytest.raises(InvalidParameter, match="is not valid"):
        parse_insecure(["reg:99999"])
    cfg = RegistryConfig.from_options({"insecure-registries": ["reg.example:5000", "198.19.0.0/16"]})
    assert cfg.transports("127.0.0.1:5000") == [("http", False), ("https", False)]
    assert cfg.transports("localhost:5000") == [("http", False), ("https", False)]
    assert cfg.transports("reg.example:5000") == [("https", False), ("http", False)]
    assert cfg.transports("reg.example:5001") == [("https", True)]  # the entry names one host:port
    assert cfg.transports("198.19.3.4:443") == [("https", False), ("http", False)]
    assert cfg.transports("registry-1.docker.io") == [("https", True)]
    info = cfg.info()
    assert info["InsecureRegistryCIDRs"] == ["198.19.0.0/16", "::1/128", "127.0.0.0/8"]
    assert info["IndexConfigs"]["reg.example:5000"] == {"Name": "reg.example:5000", "Mirrors": [], "Secure": False,
                                                         "Official": False}  # fmt: skip
    assert info["IndexConfigs"]["docker.io"]["Secure"] is True


def test_secure_by_default_refuses_self_signed_and_plain_http(services, remote):
    tls, plain = remote
    svc = services.new()
    for reg, words in ((tls, "x509: certificate signed by unknown authority"),
                       (plain, "http: server gave HTTP response to HTTPS client")):  # fmt: skip
        _image(svc, f"{reg.addr}/dyt/app:v1")
        with pytest.raises(DockyardError) as e:
            svc_push(svc, f"{reg.addr}/dyt/app:v1")
        assert words in e.value.message and f'"https://{reg.addr}/v2/"' in e.value.message, e.value.message


def test_certs_d_ca_makes_a_self_signed_registry_trusted(services, remote, tmp_path):
    tls, _plain = remote
    certs = tmp_path / "certs.d"
    (certs / tls.addr).mkdir(parents=True)
    shutil.copy(tls.ca_cert, certs / tls.addr / "ca.crt")
    cfg = {"certs-dir": str(certs)}
    r = Registry(tls.addr, None, RegistryConfig.from_options(cfg))
    assert r.verify is True
    r.ping()
    svc = services.new("certs", cfg)
    ref = f"{tls.addr}/dyt/trusted:v1"
    image_id = _image(svc, ref)
    svc_push(svc, ref)
    assert svc_pull(services.new("certs-pull", cfg), ref) == image_id


def svc_push(svc, ref: str) -> str:
    from dockyard.image.push import push_sync

    return push_sync(svc, ref)


def svc_pull(svc, ref: str) -> str:
    from dockyard.image.pull import pull_sync

    return pull_sync(svc, ref)


@pytest.mark.parametrize("entry", ["cidr", "hostport"])
def test_insecure_registry_https_any_cert_then_plain_http(services, remote, netns_net, entry):
    tls, plain = remote
    insecure = [netns_net["cidr"]] if entry == "cidr" else [tls.addr, plain.addr]
    cfg = {"insecure-registries": insecure}
    pusher, puller = services.new("pusher", cfg), services.new("puller", cfg)
    for reg, scheme in ((tls, "https"), (plain, "http")):
        r = Registry(reg.addr, None, RegistryConfig.from_options(cfg))
        r.ping()
        assert r.scheme == scheme, reg.addr
        ref = f"{reg.addr}/dyt/{entry}:v1"
        image_id = _image(pusher, ref)
        digest = svc_push(pusher, ref)
        assert svc_pull(puller, ref) == image_id
        assert f"{reg.addr}/dyt/{entry}@{digest}" in puller.get(ref).repo_digests


def test_loopback_tries_plain_http_then_https(services, loopback_tls):
    svc = services.new()
    r = Registry(loopback_tls.addr, None, RegistryConfig())
    assert r.scheme == "http"
    r.ping()
    assert r.scheme == "https"  # the plain HTTP attempt got the TLS server's refusal
    ref = f"{loopback_tls.addr}/dyt/lo:v1"
    image_id = _image(svc, ref)
    svc_push(svc, ref)
    other = services.new("other")
    assert svc_pull(other, ref) == image_id
    # nothing listening: the error names the plain HTTP attempt, Docker's words
    dead = Registry(f"127.0.0.1:{_closed_port()}", None, RegistryConfig())
    with pytest.raises(DockyardError, match=r'Get "http://127\.0\.0\.1:\d+/v2/": dial tcp .*connection refused'):
        dead.ping()


def _closed_port() -> int:
    from image.registry_server import free_port

    return free_port()


def test_daemon_info_lists_insecure_registries_and_pulls(tmp_path, remote, netns_net, services):
    from cli.cliutil import CLI
    from support.daemon import TestDaemon

    tls, _plain = remote
    pusher = services.new("pusher", {"insecure-registries": [tls.addr]})
    ref = f"{tls.addr}/dyt/daemon:v1"
    image_id = _image(pusher, ref)
    svc_push(pusher, ref)
    d = TestDaemon(str(tmp_path / "d"), config={"insecure-registries": [tls.addr, netns_net["cidr"]]})
    try:
        d.start()
        st, info = d.api("GET", "/info")
        assert st == 200
        reg = info["RegistryConfig"]
        assert reg["InsecureRegistryCIDRs"] == [netns_net["cidr"], "::1/128", "127.0.0.0/8"]
        assert reg["IndexConfigs"][tls.addr]["Secure"] is False
        out = CLI(d.host, str(tmp_path / "cfg")).ok("info")
        lines = out.split(" Insecure Registries:\n", 1)[1].split("\n")
        listed = [x.strip() for x in lines[: next(i for i, x in enumerate(lines) if not x.startswith("  "))]]
        assert listed == [tls.addr, netns_net["cidr"], "::1/128", "127.0.0.0/8"]
        docker = shutil.which("docker")
        if docker:
            cp = subprocess.run([docker, "-H", d.host, "info"], capture_output=True, text=True, timeout=60,
                                env=dict(os.environ, DOCKER_CONFIG=str(tmp_path / "dcfg")))  # fmt: skip
            assert f" Insecure Registries:\n  {tls.addr}\n" in cp.stdout, cp.stdout + cp.stderr
        st, lines = d.api("POST", f"/images/create?fromImage={tls.addr}/dyt/daemon&tag=v1")
        assert st == 200 and not any("error" in x for x in lines), lines
        st, img = d.api("GET", f"/images/{ref}/json")
        assert st == 200 and img["Id"] == image_id
    finally:
        d.cleanup()


def test_daemon_refuses_a_bad_insecure_registry(tmp_path):
    from support.daemon import TestDaemon

    d = TestDaemon(str(tmp_path / "d"), config={"insecure-registries": ["ftp://nope"]})
    try:
        with pytest.raises(RuntimeError, match="insecure registry ftp://nope should not contain '://'"):
            d.start(timeout=20)
    finally:
        d.cleanup()

