"""/events compared with what dockerd 20.10 emits (recorded on this machine with the Docker CLI
against Debian's dockerd): `docker run --rm` gives container create, attach, network connect,
(volume mount,) start, die, network disconnect, (volume unmount,) destroy; `--network none|host`
are networks too (types null, host); connect/disconnect of a running container are network events
naming it in Actor.Attributes.container, announced once each; execs give exec_create/exec_start
("<entrypoint> <args>", a trailing space without args) and exec_die. The bus keeps a container's
network and volume events back while its exit is handled so they follow its "die". Checked through
our /events route with filters, docker-py's events API and the Docker CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from typing import Any
from urllib.parse import quote

import pytest

from support.daemon import TestDaemon

DOCKER = shutil.which("docker") or "/usr/local/bin/docker"


def events(d: TestDaemon, since: float, **filters: list[str]) -> list[dict[str, Any]]:
    q = f"since={since:.9f}&until={time.time() + 0.05:.9f}"
    if filters:
        q += "&filters=" + quote(json.dumps(filters))
    st, r = d.api("GET", "/events?" + q)
    assert st == 200, r
    return [r] if isinstance(r, dict) else list(r or [])


def mine(evs: list[dict[str, Any]], cid: str) -> list[tuple[str, str]]:
    """(Type, Action) of the events about container `cid` (its own, and network/volume ones naming it)."""
    return [(e["Type"], e["Action"]) for e in evs if e["Actor"]["ID"] == cid or e["Actor"]["Attributes"].get("container") == cid]


def settle(d: TestDaemon, since: float, cid: str, last: tuple[str, str]) -> list[dict[str, Any]]:
    """Events since `since` once `last` was published for `cid` (polled)."""
    end = time.time() + 20
    while True:
        evs = events(d, since)
        if last in mine(evs, cid) or time.time() > end:
            return evs
        time.sleep(0.05)


def docker(d: TestDaemon, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    env["DOCKER_CONFIG"] = os.path.join(d.root, "docker-config")
    return subprocess.run([DOCKER, "-H", d.host, *args], capture_output=True, text=True, timeout=60, env=env)


def bridge_id(d: TestDaemon) -> str:
    st, r = d.api("GET", "/networks/bridge")
    assert st == 200, r
    return r["Id"]


def test_bus_holds_a_containers_network_and_volume_events_until_flushed() -> None:
    from dockyard.daemon.events import EventBus

    bus = EventBus()
    bus.hold("c1")
    bus.publish("network", "disconnect", "n1", {"container": "c1", "name": "bridge", "type": "bridge"})
    bus.publish("network", "disconnect", "n1", {"container": "c2", "name": "bridge", "type": "bridge"})
    bus.publish("volume", "unmount", "v1", {"container": "c1", "driver": "local"})
    bus.publish("container", "die", "c1", {"exitCode": "0"})
    assert [(e["Action"], e["Actor"]["ID"]) for e in bus.history] == [("disconnect", "n1"), ("die", "c1")]
    bus.flush("c1")
    assert [e["Action"] for e in bus.history] == ["disconnect", "die", "disconnect", "unmount"]
    assert bus.history[1]["timeNano"] <= bus.history[2]["timeNano"]  # stamped when let out
    bus.publish("volume", "mount", "v1", {"container": "c1"})
    assert bus.history[-1]["Action"] == "mount"  # nothing held any more
    bus.flush("c1")


@pytest.mark.skipif(not os.path.exists(DOCKER), reason="no docker CLI")
def test_docker_run_rm_sequence(daemon: TestDaemon) -> None:
    t0 = time.time()
    name = "evrm-" + uuid.uuid4().hex[:6]
    r = docker(daemon, "run", "--rm", "--name", name, "busybox", "true")
    assert r.returncode == 0, r.stderr
    evs = events(daemon, t0)
    cid = next(e["Actor"]["ID"] for e in evs if e["Action"] == "create" and e["Actor"]["Attributes"].get("name") == name)
    evs = settle(daemon, t0, cid, ("container", "destroy"))
    assert mine(evs, cid) == [("container", "create"), ("container", "attach"), ("network", "connect"),
                              ("container", "start"), ("container", "die"), ("network", "disconnect"),
                              ("container", "destroy")]  # fmt: skip
    net = [e for e in evs if e["Type"] == "network" and e["Actor"]["Attributes"].get("container") == cid]
    for e in net:
        assert e["Actor"]["ID"] == bridge_id(daemon) and e["scope"] == "local"
        assert e["Actor"]["Attributes"] == {"container": cid, "name": "bridge", "type": "bridge"}
        assert "status" not in e and "id" not in e  # only container and image events carry the old fields
    die = next(e for e in evs if e["Actor"]["ID"] == cid and e["Action"] == "die")
    assert die["Actor"]["Attributes"] == {"exitCode": "0", "image": "busybox", "name": name}
    assert die["status"] == "die" and die["id"] == cid and die["from"] == "busybox"
    times = [e["timeNano"] for e in evs if e["Actor"]["ID"] == cid or e["Actor"]["Attributes"].get("container") == cid]
    assert times == sorted(times)


def test_volume_mount_and_unmount(daemon: TestDaemon) -> None:
    vol = "evvol-" + uuid.uuid4().hex[:6]
    assert daemon.api("POST", "/volumes/create", {"Name": vol})[0] == 201
    try:
        t0 = time.time()
        st, r = daemon.api("POST", "/containers/create", {"Image": "busybox", "Cmd": ["true"],
                                                          "HostConfig": {"Binds": [f"{vol}:/data:ro"], "AutoRemove": True}})
        assert st == 201, r
        cid = r["Id"]
        assert daemon.api("POST", f"/containers/{cid}/start")[0] == 204
        evs = settle(daemon, t0, cid, ("container", "destroy"))
        assert mine(evs, cid) == [("container", "create"), ("network", "connect"), ("volume", "mount"),
                                  ("container", "start"), ("container", "die"), ("network", "disconnect"),
                                  ("volume", "unmount"), ("container", "destroy")]  # fmt: skip
        mount = next(e for e in evs if e["Type"] == "volume" and e["Action"] == "mount")
        assert mount["Actor"]["ID"] == vol and mount["Actor"]["Attributes"] == {
            "container": cid, "destination": "/data", "driver": "local", "propagation": "", "read/write": "false"}
        unmount = next(e for e in evs if e["Type"] == "volume" and e["Action"] == "unmount")
        assert unmount["Actor"]["Attributes"] == {"container": cid, "driver": "local"}
        assert "status" not in mount and mount["scope"] == "local"
        # filters: type=volume&volume=<name> gives exactly the volume's events
        assert [e["Action"] for e in events(daemon, t0, type=["volume"], volume=[vol])] == ["mount", "unmount"]
    finally:
        daemon.api("DELETE", f"/volumes/{vol}")


def test_network_modes_and_running_connect_disconnect(daemon: TestDaemon) -> None:
    # --network none and host are networks too (drivers "null" and "host"), with their events
    for mode, driver in (("none", "null"), ("host", "host")):
        t0 = time.time()
        st, r = daemon.api("POST", "/containers/create", {"Image": "busybox", "Cmd": ["true"],
                                                          "HostConfig": {"NetworkMode": mode, "AutoRemove": True}})
        assert st == 201, r
        cid = r["Id"]
        assert daemon.api("POST", f"/containers/{cid}/start")[0] == 204
        evs = settle(daemon, t0, cid, ("container", "destroy"))
        assert mine(evs, cid) == [("container", "create"), ("network", "connect"), ("container", "start"),
                                  ("container", "die"), ("network", "disconnect"), ("container", "destroy")]
        net = next(e for e in evs if e["Type"] == "network" and e["Actor"]["Attributes"].get("container") == cid)
        assert net["Actor"]["Attributes"] == {"container": cid, "name": mode, "type": driver}
    # a running container: connect and disconnect are announced at once (each once)
    netname = "evnet-" + uuid.uuid4().hex[:6]
    st, r = daemon.api("POST", "/networks/create", {"Name": netname})
    assert st == 201, r
    nid = r["Id"]
    st, r = daemon.api("POST", "/containers/create", {"Image": "busybox", "Cmd": ["sleep", "600"]})
    cid = r["Id"]
    try:
        assert daemon.api("POST", f"/containers/{cid}/start")[0] == 204
        t0 = time.time()
        assert daemon.api("POST", f"/networks/{nid}/connect", {"Container": cid})[0] == 200
        assert daemon.api("POST", f"/networks/{nid}/disconnect", {"Container": cid})[0] == 200
        assert daemon.api("POST", f"/networks/{nid}/connect", {"Container": cid})[0] == 200
        evs = events(daemon, t0, type=["network"], network=[netname])
        assert [(e["Action"], e["Actor"]["Attributes"]["container"]) for e in evs] == \
            [("connect", cid), ("disconnect", cid), ("connect", cid)]  # fmt: skip
        assert all(e["Actor"]["ID"] == nid and e["Actor"]["Attributes"]["name"] == netname and
                   e["Actor"]["Attributes"]["type"] == "bridge" for e in evs)  # fmt: skip
        # the stop: "die", one disconnect per network, then "stop" (dockerd's order)
        t1 = time.time()
        assert daemon.api("POST", f"/containers/{cid}/stop?t=0")[0] == 204
        evs = settle(daemon, t1, cid, ("container", "stop"))
        seq = mine(evs, cid)
        die = seq.index(("container", "die"))
        assert seq[die + 1:] == [("network", "disconnect"), ("network", "disconnect"), ("container", "stop")]
        names = {e["Actor"]["Attributes"]["name"] for e in evs if e["Type"] == "network" and e["Action"] == "disconnect"
                 and e["Actor"]["Attributes"]["container"] == cid}  # fmt: skip
        assert names == {"bridge", netname}
    finally:
        daemon.api("DELETE", f"/containers/{cid}?force=1")
        daemon.api("DELETE", f"/networks/{nid}")


def test_exec_events_through_docker_py(daemon: TestDaemon) -> None:
    client = daemon.docker_client()
    c = client.containers.run("busybox", ["sleep", "600"], detach=True)
    try:
        since = int(time.time()) - 1
        assert c.exec_run(["sh", "-c", "exit 3"]).exit_code == 3
        assert c.exec_run("true").exit_code == 0
        until = int(time.time()) + 2
        got = []
        for e in client.events(since=since, until=until, decode=True, filters={"container": c.id, "type": "container"}):
            got.append((e["Action"], e["Actor"]["Attributes"].get("exitCode")))
        actions = [a for a, _ in got]
        i = actions.index("exec_create: sh -c exit 3")
        assert actions[i:i + 3] == ["exec_create: sh -c exit 3", "exec_start: sh -c exit 3", "exec_die"]
        assert got[i + 2][1] == "3"
        j = actions.index("exec_create: true ")  # dockerd's trailing space when there are no arguments
        assert actions[j:j + 3] == ["exec_create: true ", "exec_start: true ", "exec_die"] and got[j + 2][1] == "0"
        exec_events = client.events(since=since, until=until, decode=True, filters={"event": "exec_die"})
        assert {e["Actor"]["Attributes"]["execID"] for e in exec_events if e["Actor"]["ID"] == c.id}
    finally:
        c.remove(force=True)
        client.close()
