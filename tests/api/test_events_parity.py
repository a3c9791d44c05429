"""/events compared with what dockerd 20.10 emits (recorded on this machine with the Docker CLI
against Debian's dockerd): a container's volumes give "mount" (after the network's "connect",
before "start") and "unmount" (after "die"); execs give exec_create/exec_start ("<entrypoint>
<args>", a trailing space without args) and exec_die; the bus keeps a container's network and
volume events back while its exit is handled so they follow its "die". Checked through our
/events route with filters and docker-py's events API."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any
from urllib.parse import quote

from support.daemon import TestDaemon


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
        assert [x for x in mine(evs, cid) if x[0] != "network"] == [
            ("container", "create"), ("volume", "mount"), ("container", "start"), ("container", "die"),
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
