"""Networking across daemon restarts, through a real daemon and real containers: after a clean
restart with live-restore and after SIGKILL + restart, running containers keep their addresses,
their published ports keep answering (and stay reserved), the embedded DNS keeps answering, new
containers get other addresses; stopped containers get a fresh attach when they start; a clean
shutdown without live-restore brings restart=always containers back with working ports; at the end
nothing of ours is left (veths, namespaces, DNAT rules, IPAM leases, user bridges)."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import subprocess
import time
from typing import Any

import pytest

from dockyard.network import links
from network.helpers import FakeUpstream, free_port, http_get, unused_net10
from support.daemon import TestDaemon, busybox_tar

pytestmark = pytest.mark.slow


@pytest.fixture
def upstream():
    u = FakeUpstream()
    yield u
    u.close()


def _inspect(d: TestDaemon, ref: str) -> dict[str, Any]:
    st, body = d.api("GET", f"/containers/{ref}/json")
    assert st == 200, body
    return body


def _run(d: TestDaemon, name: str, cmd: list[str], network: str = "", ports: dict[str, int] | None = None,
         restart: str = "", aliases: list[str] | None = None) -> str:  # fmt: skip
    hc: dict[str, Any] = {"NetworkMode": network or "default"}
    if ports:
        hc["PortBindings"] = {k: [{"HostPort": str(v)}] for k, v in ports.items()}
    if restart:
        hc["RestartPolicy"] = {"Name": restart}
    body: dict[str, Any] = {"Image": "busybox", "Cmd": cmd, "HostConfig": hc}
    if aliases and network:
        body["NetworkingConfig"] = {"EndpointsConfig": {network: {"Aliases": aliases}}}
    st, r = d.api("POST", f"/containers/create?name={name}", body)
    assert st == 201, r
    st, r = d.api("POST", f"/containers/{r['Id']}/start")
    assert st == 204, r
    return _inspect(d, name)["Id"]


def _ip(d: TestDaemon, ref: str, network: str) -> str:
    return _inspect(d, ref)["NetworkSettings"]["Networks"][network]["IPAddress"]


def _exec(d: TestDaemon, ref: str, cmd: list[str]) -> str:
    st, r = d.api("POST", f"/containers/{ref}/exec", {"Cmd": cmd, "AttachStdout": True, "AttachStderr": True})
    assert st == 201, r
    st, hdrs, s, rest = d.hijack(f"/exec/{r['Id']}/start", {})
    data = rest
    s.settimeout(20)
    while chunk := s.recv(65536):
        data += chunk
    s.close()
    out, i = b"", 0
    while i + 8 <= len(data):  # the multiplexed stream
        n = int.from_bytes(data[i + 4 : i + 8], "big")
        out += data[i + 8 : i + 8 + n]
        i += 8 + n
    return out.decode(errors="replace")


def _get(url: str, want: str, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    got = http_get(url, timeout=2)
    while got.strip() != want and time.monotonic() < deadline:
        time.sleep(0.1)
        got = http_get(url, timeout=2)
    return got.strip()


def _port_reserved(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("0.0.0.0", port))
        except OSError as e:
            return e.errno == errno.EADDRINUSE
        return False


def _state(d: TestDaemon) -> dict[str, Any]:
    bridges = [b for b in links.bridges() if b.startswith(d.prefix)]
    table = subprocess.run(["nft", "list", "table", "ip", "dockyard_" + d.prefix], capture_output=True, text=True).stdout
    leases: dict[str, Any] = {}
    ipam_dir = os.path.join(d.data_root, "network", "ipam")
    for name in os.listdir(ipam_dir) if os.path.isdir(ipam_dir) else []:
        with open(os.path.join(ipam_dir, name)) as f:
            leases.update(json.load(f)["Leases"])
    netns_dir = os.path.join(d.exec_root, "netns")
    return {
        "user bridges": [b for b in bridges if b.startswith(d.prefix + "-")],
        "veths": [p for b in bridges for p in links.ports_of(b)],
        "dnat": [ln.strip() for ln in table.splitlines() if "dnat to" in ln],
        "leases": leases,
        "netns": os.listdir(netns_dir) if os.path.isdir(netns_dir) else [],
    }


def test_restarts_keep_running_containers_networked_and_leak_nothing(tmp_path, upstream: FakeUpstream):
    d = TestDaemon(
        str(tmp_path / "d"),
        args=["--live-restore"],
        config={"default-address-pools": [{"base": unused_net10(), "size": 24}], "dns-upstreams": [f"127.0.0.1:{upstream.port}"]},
    )
    d.import_image(busybox_tar(), "busybox:latest", changes=['CMD ["sh"]'])
    try:
        d.start()
        assert d.api("POST", "/networks/create", {"Name": "dytrs"})[0] == 201
        p_kept, p_stopped, p_always = free_port(), free_port(), free_port()
        httpd = ["httpd", "-f", "-p", "80", "-h", "/etc"]
        kept = _run(d, "kept", httpd, "dytrs", {"80/tcp": p_kept}, aliases=["svc"])
        _run(d, "peer", ["sleep", "600"], "dytrs")
        stopped = _run(d, "stopped", httpd, ports={"80/tcp": p_stopped})
        assert d.api("POST", f"/containers/{stopped}/stop?t=0")[0] == 204
        ip_kept, ip_peer = _ip(d, "kept", "dytrs"), _ip(d, "peer", "dytrs")
        mac_kept = _inspect(d, "kept")["NetworkSettings"]["Networks"]["dytrs"]["MacAddress"]
        assert _get(f"http://127.0.0.1:{p_kept}/hostname", kept[:12]) == kept[:12]

        def still_networked(when: str) -> None:
            assert _inspect(d, "kept")["State"]["Running"], when
            ep = _inspect(d, "kept")["NetworkSettings"]["Networks"]["dytrs"]
            assert (ep["IPAddress"], ep["MacAddress"]) == (ip_kept, mac_kept), when
            assert _inspect(d, "kept")["NetworkSettings"]["Ports"]["80/tcp"] == [{"HostIp": "0.0.0.0", "HostPort": str(p_kept)}]
            assert _get(f"http://127.0.0.1:{p_kept}/hostname", kept[:12]) == kept[:12], when
            assert _port_reserved(p_kept), f"{when}: nothing holds the published port"
            for name in ("svc", "kept"):
                out = _exec(d, "peer", ["nslookup", name, "127.0.0.11"])
                assert f"Address: {ip_kept}" in out, f"{when}: {name}: {out}"
            assert _ip(d, "peer", "dytrs") == ip_peer

        # 1. a clean restart with live-restore: the containers never stop
        d.stop()
        assert _get(f"http://127.0.0.1:{p_kept}/hostname", kept[:12]) == kept[:12]  # kernel rules stay
        d.start()
        still_networked("after a clean restart")
        new = _run(d, "new1", ["sleep", "600"], "dytrs")
        assert _ip(d, new, "dytrs") not in (ip_kept, ip_peer)
        # 2. SIGKILL and restart
        d.kill()
        d.start()
        still_networked("after SIGKILL")
        new2 = _run(d, "new2", ["sleep", "600"], "dytrs")
        assert _ip(d, new2, "dytrs") not in (ip_kept, ip_peer, _ip(d, new, "dytrs"))
        # 3. a container stopped before the restarts gets a fresh attach when it starts
        assert d.api("POST", f"/containers/{stopped}/start")[0] == 204
        assert _inspect(d, stopped)["NetworkSettings"]["IPAddress"]
        assert _get(f"http://127.0.0.1:{p_stopped}/hostname", stopped[:12]) == stopped[:12]
        # ... and so does a restored one that stops and starts again
        assert d.api("POST", "/containers/kept/stop?t=0")[0] == 204
        assert not _port_reserved(p_kept)
        assert d.api("POST", "/containers/kept/start")[0] == 204
        assert _get(f"http://127.0.0.1:{p_kept}/hostname", kept[:12]) == kept[:12]
        assert f"Address: {_ip(d, 'kept', 'dytrs')}" in _exec(d, "peer", ["nslookup", "svc", "127.0.0.11"])
        # 4. without live-restore a clean shutdown stops containers; restart=always ones come back
        always = _run(d, "always", httpd, ports={"80/tcp": p_always}, restart="always")
        d.stop()  # still the live-restore daemon: nothing stops
        d.args.remove("--live-restore")
        d.start()
        d.stop()  # this one stops them
        assert not _port_reserved(p_always)
        d.start()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not _inspect(d, always)["State"]["Running"]:
            time.sleep(0.1)
        assert _get(f"http://127.0.0.1:{p_always}/hostname", always[:12]) == always[:12]
        assert not _inspect(d, "kept")["State"]["Running"]
        # 5. remove everything: nothing of ours is left
        st, all_ = d.api("GET", "/containers/json?all=1")
        for c in all_:
            assert d.api("DELETE", f"/containers/{c['Id']}?force=1")[0] == 204
        assert d.api("POST", "/networks/prune")[0] == 200
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_state(d).values()):
            time.sleep(0.2)
        assert _state(d) == {"user bridges": [], "veths": [], "dnat": [], "leases": {}, "netns": []}
    finally:
        with contextlib.suppress(Exception):
            d.cleanup()
