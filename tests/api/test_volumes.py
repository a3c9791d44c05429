"""Volumes: the /volumes routes and volumes in containers (-v name, anonymous, --mount bind/volume/
tmpfs, --volumes-from, copy-up from the image, read-only, rm -v, prune)."""

from __future__ import annotations

import json
import os
import urllib.parse

from support.daemon import TestDaemon


def run(d: TestDaemon, cmd: list[str], **hc: object) -> tuple[str, int, bytes]:
    return d.run(cmd, HostConfig=hc)


def test_volume_routes(daemon: TestDaemon) -> None:
    st, v = daemon.api("POST", "/volumes/create", {"Name": "vol1", "Labels": {"l": "1"}})
    assert st == 201
    assert v["Name"] == "vol1" and v["Driver"] == "local" and v["Scope"] == "local" and v["Labels"] == {"l": "1"}
    assert v["Mountpoint"] == os.path.join(daemon.data_root, "volumes", "vol1", "_data")
    assert os.path.isdir(v["Mountpoint"]) and v["CreatedAt"].endswith("Z")
    st, v2 = daemon.api("POST", "/volumes/create", {"Name": "vol1"})
    assert st == 201 and v2["Name"] == "vol1"  # creating an existing volume returns it
    st, v = daemon.api("GET", "/volumes/vol1")
    assert st == 200 and v["Name"] == "vol1"
    st, lst = daemon.api("GET", "/volumes")
    assert "vol1" in [x["Name"] for x in lst["Volumes"]] and lst["Warnings"] is None
    f = urllib.parse.quote(json.dumps({"label": ["l=1"]}))
    st, lst = daemon.api("GET", f"/volumes?filters={f}")
    assert [x["Name"] for x in lst["Volumes"]] == ["vol1"]
    st, anon = daemon.api("POST", "/volumes/create", {})
    assert st == 201 and len(anon["Name"]) == 64
    st, r = daemon.api("POST", "/volumes/create", {"Name": "a/b"})
    assert st == 400 and "includes invalid characters for a local volume name" in r["message"]
    st, r = daemon.api("POST", "/volumes/create", {"Name": "x1", "Driver": "nfsplugin"})
    assert st == 404 and r["message"] == 'error looking up volume plugin nfsplugin: plugin "nfsplugin" not found'
    st, r = daemon.api("GET", "/volumes/nope")
    assert st == 404 and r["message"] == "get nope: no such volume"
    st, r = daemon.api("DELETE", "/volumes/nope")
    assert st == 404
    st, _ = daemon.api("DELETE", "/volumes/nope?force=1")
    assert st == 204
    st, _ = daemon.api("DELETE", "/volumes/vol1")
    assert st == 204 and not os.path.exists(os.path.join(daemon.data_root, "volumes", "vol1"))
    st, r = daemon.api("POST", "/volumes/prune")
    assert st == 200 and anon["Name"] in (r["VolumesDeleted"] or [])


def test_named_volume_copy_up_and_in_use(daemon: TestDaemon) -> None:
    # a new named volume over /etc gets the image's /etc (Docker's copy-up)
    cid, code, out = run(daemon, ["sh", "-c", "ls /etc; echo new > /etc/added"], Binds=["cfg:/etc"])
    assert code == 0 and b"passwd" in out
    path = os.path.join(daemon.data_root, "volumes", "cfg", "_data")
    assert os.path.exists(os.path.join(path, "passwd"))
    with open(os.path.join(path, "added")) as f:
        assert f.read() == "new\n"
    st, c = daemon.api("GET", f"/containers/{cid}/json")
    m = c["Mounts"][0]
    assert m["Type"] == "volume" and m["Name"] == "cfg" and m["Destination"] == "/etc" and m["RW"] is True
    assert m["Driver"] == "local" and m["Source"] == path
    st, r = daemon.api("DELETE", "/volumes/cfg")
    assert st == 409 and r["message"] == f"remove cfg: volume is in use - [{cid}]"
    # a second container sees the data; the volume is not copied into again
    cid2, code, out = run(daemon, ["cat", "/etc/added"], Binds=["cfg:/etc:ro"])
    assert out == b"new\n"
    cid3, code, out = run(daemon, ["sh", "-c", "echo x > /etc/y"], Binds=["cfg:/etc:ro"])
    assert code != 0 and b"Read-only file system" in out
    for c in (cid, cid2, cid3):
        daemon.api("DELETE", f"/containers/{c}")
    st, _ = daemon.api("DELETE", "/volumes/cfg")
    assert st == 204


def test_anonymous_volumes_rm_v(daemon: TestDaemon) -> None:
    st, r = daemon.api("POST", "/containers/create", {"Image": "busybox", "Cmd": ["true"], "Volumes": {"/anon": {}},
                                                      "HostConfig": {"Binds": ["/anon2"]}})
    cid = r["Id"]
    st, c = daemon.api("GET", f"/containers/{cid}/json")
    names = [m["Name"] for m in c["Mounts"]]
    assert len(names) == 2 and all(len(n) == 64 for n in names)
    st, _ = daemon.api("DELETE", f"/containers/{cid}?v=1")
    assert st == 204
    for n in names:
        st, _ = daemon.api("GET", f"/volumes/{n}")
        assert st == 404
    # --rm removes anonymous volumes too, keeps named ones
    st, r = daemon.api("POST", "/containers/create", {"Image": "busybox", "Cmd": ["true"],
                                                      "HostConfig": {"AutoRemove": True, "Binds": ["/a3", "kept:/k"]}})
    cid = r["Id"]
    st, c = daemon.api("GET", f"/containers/{cid}/json")
    anon = next(m["Name"] for m in c["Mounts"] if m["Destination"] == "/a3")
    daemon.api("POST", f"/containers/{cid}/start")
    daemon.api("POST", f"/containers/{cid}/wait?condition=removed")
    assert daemon.api("GET", f"/volumes/{anon}")[0] == 404
    assert daemon.api("GET", "/volumes/kept")[0] == 200
    daemon.api("DELETE", "/volumes/kept")


def test_mount_types_and_volumes_from(daemon: TestDaemon, tmp_path) -> None:  # noqa: ANN001
    host = tmp_path / "src"
    host.mkdir()
    (host / "f").write_text("bound")
    mounts = [
        {"Type": "bind", "Source": str(host), "Target": "/b", "ReadOnly": True},
        {"Type": "volume", "Source": "mvol", "Target": "/v"},
        {"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1 << 20}},
    ]
    cid, code, out = run(daemon, ["sh", "-c", "cat /b/f; echo w > /v/w; grep ' /t ' /proc/mounts; touch /b/no"],
                         Mounts=mounts)
    assert b"bound" in out and b"tmpfs /t tmpfs" in out and b"size=1024k" in out
    assert b"Read-only file system" in out
    cid2, code, out = run(daemon, ["cat", "/v/w"], VolumesFrom=[f"{cid}:ro"])
    assert out == b"w\n"
    st, c = daemon.api("GET", f"/containers/{cid2}/json")
    assert {m["Destination"] for m in c["Mounts"]} == {"/b", "/v"}  # volumes and binds, not tmpfs
    assert all(m["RW"] is False for m in c["Mounts"])
    st, r = daemon.api("POST", "/containers/create", {"Image": "busybox", "HostConfig": {
        "Mounts": [{"Type": "bind", "Source": str(tmp_path / "missing"), "Target": "/m"}]}})
    assert st == 400 and r["message"] == ('invalid mount config for type "bind": bind source path does not exist: '
                                         f"{tmp_path / 'missing'}")
    # -v creates a missing host directory
    missing = tmp_path / "created"
    cid3, code, out = run(daemon, ["true"], Binds=[f"{missing}:/c"])
    assert missing.is_dir()
    st, r = daemon.api("POST", "/containers/create", {"Image": "busybox", "HostConfig": {"Binds": ["/x:/d", "/y:/d"]}})
    assert st == 400 and r["message"] == "Duplicate mount point: /d"
    for c in (cid, cid2, cid3):
        daemon.api("DELETE", f"/containers/{c}")
    daemon.api("DELETE", "/volumes/mvol")
