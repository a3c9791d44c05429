"""Bind-mount propagation observed on the kernel, through a real daemon: a host mount made under an
rslave (or slave) bind after the container started appears inside, under rprivate (the default) it
does not; rshared needs a shared source (Docker's error otherwise) and a mount made inside the
container appears on the host. Every mount the test makes is undone, also on failure."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from typing import Any

import pytest

from support.daemon import TestDaemon, demux


def sh(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True)


def mount_point_of(path: str) -> str:
    """The mount point `path` lives on (the longest one containing it), as Docker finds it."""
    path = os.path.realpath(path)
    best = ""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4].encode().decode("unicode_escape")
            if (path == mp or path.startswith(mp.rstrip("/") + "/")) and len(mp) >= len(best):
                best = mp
    return best


@pytest.fixture
def shared_base(tmp_path):  # noqa: ANN001, ANN201
    """A tmpfs made a shared mount; everything mounted under it is unmounted at the end."""
    base = str(tmp_path / f"prop-{uuid.uuid4().hex[:6]}")
    os.makedirs(base)
    sh("mount", "-t", "tmpfs", "-o", "size=4m", "dytprop", base)
    try:
        sh("mount", "--make-shared", base)
        yield base
    finally:
        for _ in range(5):
            if subprocess.run(["umount", "-R", base], capture_output=True).returncode == 0:
                break
            time.sleep(0.2)
        else:
            subprocess.run(["umount", "-R", "-l", base], capture_output=True)


def run_sleeping(d: TestDaemon, binds: list[str] | None = None, mounts: list[dict[str, Any]] | None = None,
                 privileged: bool = False) -> str:  # fmt: skip
    hc: dict[str, Any] = {"Binds": binds or [], "Privileged": privileged}
    if mounts:
        hc["Mounts"] = mounts
    st, r = d.api("POST", "/containers/create", {"Image": "busybox", "Cmd": ["sleep", "600"], "HostConfig": hc})
    assert st == 201, r
    st, err = d.api("POST", f"/containers/{r['Id']}/start")
    assert st == 204, err
    return r["Id"]


def exec_out(d: TestDaemon, cid: str, cmd: str) -> str:
    st, r = d.api("POST", f"/containers/{cid}/exec", {"Cmd": ["sh", "-c", cmd], "AttachStdout": True, "AttachStderr": True})
    assert st == 201, r
    st, _hdrs, s, data = d.hijack(f"/exec/{r['Id']}/start", {})
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    return demux(data)[0].decode()


def test_source_mount_lookup_and_messages(tmp_path) -> None:  # noqa: ANN001
    from dockyard.daemon import propagation
    from dockyard.errors import SystemError_

    info = "\n".join([
        "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw",
        "40 27 0:50 / /srv rw shared:7 - tmpfs t rw",
        "41 40 0:51 / /srv/my\\040dir rw master:7 - tmpfs t rw",
        "42 40 0:52 / /srv/stack rw - tmpfs t rw",
        "43 42 0:53 / /srv/stack rw shared:9 - tmpfs t rw",
    ])  # fmt: skip
    assert propagation.source_mount("/srv/a/b", info) == ("/srv", ["shared:7"])
    assert propagation.source_mount("/srv/my dir/x", info) == ("/srv/my dir", ["master:7"])
    assert propagation.source_mount("/srvx", info) == ("/", [])
    assert propagation.source_mount("/srv/stack/y", info) == ("/srv/stack", ["shared:9"])  # the top of a stack
    propagation.check({"Type": "bind", "Source": "/srv/a", "Propagation": "rshared"}, info)
    propagation.check({"Type": "bind", "Source": "/srv/my dir", "Propagation": "rslave"}, info)
    propagation.check({"Type": "bind", "Source": "/opt", "Propagation": "rprivate"}, info)
    for prop, msg in (("shared", "path /srv/my dir is mounted on /srv/my dir but it is not a shared mount"),
                      ("rshared", "path /srv/my dir is mounted on /srv/my dir but it is not a shared mount")):
        with pytest.raises(SystemError_) as e:
            propagation.check({"Type": "bind", "Source": "/srv/my dir", "Propagation": prop}, info)
        assert e.value.message == msg
    with pytest.raises(SystemError_) as e:
        propagation.check({"Type": "bind", "Source": "/opt/x", "Propagation": "slave"}, info)
    assert e.value.message == "path /opt/x is mounted on / but it is not a shared or slave mount"


def test_slave_binds_see_host_mounts_private_ones_do_not(daemon: TestDaemon, shared_base: str) -> None:
    modes = {"rslave": True, "slave": True, "rprivate": False, "private": False, "": False}
    srcs = {}
    for mode in modes:
        src = os.path.join(shared_base, mode or "default")
        os.makedirs(os.path.join(src, "sub"))
        srcs[mode] = src
    cids = {mode: run_sleeping(daemon, [f"{src}:/ctr" + (f":{mode}" if mode else "")]) for mode, src in srcs.items()}
    # --mount type=bind,bind-propagation=rslave too
    msrc = os.path.join(shared_base, "mountflag")
    os.makedirs(os.path.join(msrc, "sub"))
    mcid = run_sleeping(daemon, mounts=[{"Type": "bind", "Source": msrc, "Target": "/ctr",
                                         "BindOptions": {"Propagation": "rslave"}}])  # fmt: skip
    try:
        # mounts made on the host after the containers started
        for src in [*srcs.values(), msrc]:
            sh("mount", "-t", "tmpfs", "-o", "size=1m", "dytpropsub", os.path.join(src, "sub"))
            with open(os.path.join(src, "sub", "marker"), "w") as f:
                f.write("from-host\n")
        for mode, cid in cids.items():
            seen = exec_out(daemon, cid, "cat /ctr/sub/marker 2>/dev/null || echo absent")
            assert seen == ("from-host\n" if modes[mode] else "absent\n"), (mode, seen)
        assert exec_out(daemon, mcid, "cat /ctr/sub/marker") == "from-host\n"
        st, c = daemon.api("GET", f"/containers/{cids['rslave']}/json")
        assert c["Mounts"][0]["Propagation"] == "rslave" and c["HostConfig"]["Binds"] == [f"{srcs['rslave']}:/ctr:rslave"]
        st, c = daemon.api("GET", f"/containers/{cids['']}/json")
        assert c["Mounts"][0]["Propagation"] == "rprivate"
    finally:
        for cid in [*cids.values(), mcid]:
            daemon.api("DELETE", f"/containers/{cid}?force=1")


def test_rshared_bind_propagates_both_ways(daemon: TestDaemon, shared_base: str) -> None:
    src = os.path.join(shared_base, "shared")
    os.makedirs(os.path.join(src, "inner"))
    os.makedirs(os.path.join(src, "fromhost"))
    cid = run_sleeping(daemon, [f"{src}:/ctr:rshared"], privileged=True)
    try:
        out = exec_out(daemon, cid, "mount -t tmpfs -o size=1m dytpropin /ctr/inner && echo made-inside > /ctr/inner/f && echo ok")
        assert out == "ok\n", out
        with open(os.path.join(src, "inner", "f")) as f:  # the container's mount is on the host
            assert f.read() == "made-inside\n"
        sh("mount", "-t", "tmpfs", "-o", "size=1m", "dytpropsub", os.path.join(src, "fromhost"))
        with open(os.path.join(src, "fromhost", "m"), "w") as f:
            f.write("host\n")
        assert exec_out(daemon, cid, "cat /ctr/fromhost/m") == "host\n"
        # the container's own root stays its own: nothing else of it reached the host
        with open("/proc/self/mountinfo") as f:
            host_mounts = [line.split()[4] for line in f]
        assert not [m for m in host_mounts if m.startswith(os.path.join(src, "")) and m not in
                    (os.path.join(src, "inner"), os.path.join(src, "fromhost"))]  # fmt: skip
    finally:
        daemon.api("DELETE", f"/containers/{cid}?force=1")


def test_shared_and_slave_need_a_shared_source(daemon: TestDaemon, tmp_path) -> None:  # noqa: ANN001
    src = str(tmp_path / "private-src")
    os.makedirs(src)
    on = mount_point_of(src)
    with open("/proc/self/mountinfo") as f:
        opts = next(line.split(" - ")[0].split()[6:] for line in f if line.split()[4] == on)
    if any(o.startswith(("shared:", "master:")) for o in opts):
        pytest.skip(f"{on} is a shared or slave mount on this host")
    cases = [
        ({"Binds": [f"{src}:/x:rshared"]}, f"path {src} is mounted on {on} but it is not a shared mount"),
        ({"Binds": [f"{src}:/x:shared"]}, f"path {src} is mounted on {on} but it is not a shared mount"),
        ({"Binds": [f"{src}:/x:rslave"]}, f"path {src} is mounted on {on} but it is not a shared or slave mount"),
        ({"Mounts": [{"Type": "bind", "Source": src, "Target": "/x", "BindOptions": {"Propagation": "slave"}}]},
         f"path {src} is mounted on {on} but it is not a shared or slave mount"),
    ]  # fmt: skip
    for hc, msg in cases:
        st, r = daemon.api("POST", "/containers/create", {"Image": "busybox", "Cmd": ["true"], "HostConfig": hc})
        assert st == 201, r
        cid = r["Id"]
        try:
            st, err = daemon.api("POST", f"/containers/{cid}/start")
            assert st == 500 and err["message"] == msg, (st, err)
            st, c = daemon.api("GET", f"/containers/{cid}/json")
            assert c["State"]["Status"] == "created" and c["State"]["Error"] == msg and c["State"]["ExitCode"] == 128
        finally:
            daemon.api("DELETE", f"/containers/{cid}?force=1")
    # private and rprivate binds of the same source start fine
    cid = run_sleeping(daemon, [f"{src}:/x:private"])
    daemon.api("DELETE", f"/containers/{cid}?force=1")
