"""`--userns-remap` end to end on real daemons: `default` (the dockremap user is created, with a
subordinate range in /etc/subuid and /etc/subgid) and the `uid:gid` form.

Observed on the host and inside containers: the remapped data root and `info`, layer files owned
by shifted ids, uid_map, files the container makes in its rw layer, a named volume, a bind mount
and a `cp` owned by the remapped root, Permission denied on a root-owned host file, commit and
push shifting owners back (the pushed image pulls into another mapping unchanged), `--userns=host`
and Docker's refusals (--privileged, --network=host, --pid=host without it), start-up errors.

/etc/passwd, /etc/group, /etc/subuid and /etc/subgid are restored afterwards: the dockremap user
and group are deleted if this module created them, and the id files get their old content back.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import pwd
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.parse

import pytest

from support.daemon import PYTHON, SRC, TestDaemon, busybox_tar, demux

SYSTEM_FILES = ("/etc/subuid", "/etc/subgid")
SECOND_RANGE = 300000  # the uid:gid daemon's subordinate range (added by the test, then removed)


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


# held while the id files and the dockremap user are in use, so two runs on one machine (another
# checkout's suite, bench/userns_remap.py) take turns instead of undoing each other's changes
LOCK = "/run/lock/dockyard-userns-remap.lock"


@pytest.fixture(scope="module")
def system_ids():
    """Snapshot /etc/subuid and /etc/subgid and whether dockremap exists; restore afterwards."""
    import fcntl

    os.makedirs(os.path.dirname(LOCK), exist_ok=True)
    lock = open(LOCK, "a")  # noqa: SIM115 - held for the module
    fcntl.flock(lock, fcntl.LOCK_EX)
    saved = {p: _read(p) for p in SYSTEM_FILES}
    had_user = _user_exists("dockremap")
    try:
        yield
    finally:
        try:
            _restore(saved, had_user)
        finally:
            lock.close()


def _restore(saved: dict[str, bytes | None], had_user: bool) -> None:
    if not had_user:
        import grp

        if _user_exists("dockremap"):
            subprocess.run(["userdel", "dockremap"], capture_output=True, check=False)
        with contextlib.suppress(KeyError):
            grp.getgrnam("dockremap")
            subprocess.run(["groupdel", "dockremap"], capture_output=True, check=False)
    for p, data in saved.items():
        if data is None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(p)
        else:
            with open(p, "wb") as f:
                f.write(data)


def _public_root(prefix: str) -> str:
    """A temp dir the remapped root may traverse (tmp dirs are 0700; Docker demands o+x above)."""
    d = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
    os.chmod(d, 0o755)
    return d


def _import_busybox(d: TestDaemon) -> None:
    q = urllib.parse.urlencode({"fromSrc": "-", "repo": "busybox", "tag": "latest", "changes": 'CMD ["sh"]'})
    st, r = d.api("POST", f"/images/create?{q}", busybox_tar())
    assert st == 200, r


def _start(root: str, remap: str) -> TestDaemon:
    d = TestDaemon(os.path.join(root, "d"), args=[f"--userns-remap={remap}"])
    try:
        d.start()
    except BaseException:
        d.cleanup()
        raise
    return d


def _stop(d: TestDaemon, root: str) -> None:
    try:
        d.stop()
        # the network layer keeps its records under the remapped root: purge from there
        with contextlib.suppress(Exception):
            sys.path.insert(0, SRC)
            from dockyard.network import cleanup

            for sub in os.listdir(d.data_root) if os.path.isdir(d.data_root) else []:
                if "." in sub:
                    cleanup.purge(os.path.join(d.data_root, sub), d.exec_root, {"nft-table": "dockyard_" + d.prefix})
    finally:
        d.cleanup()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def remap(system_ids):  # noqa: ANN001, ANN201
    root = _public_root("dyt-uns-")
    d = _start(root, "default")
    try:
        _import_busybox(d)
    except BaseException:
        _stop(d, root)
        raise
    yield d
    violations = d.loop_violations()
    _stop(d, root)
    assert not violations, "the daemon blocked its event loop:\n" + violations[:4000]


def _range_of(name: str, path: str) -> tuple[int, int]:
    with open(path) as f:
        for line in f:
            who, start, count = line.strip().split(":")
            if who == name:
                return int(start), int(count)
    raise AssertionError(f"no range for {name} in {path}")


def _sh(d: TestDaemon, script: str, **kw: object) -> tuple[str, int, str]:
    cid, code, out = d.run(["sh", "-c", script], **kw)
    return cid, code, out.decode()


def _rm(d: TestDaemon, cid: str) -> None:
    d.api("DELETE", f"/containers/{cid}?force=1&v=1")


def _upper(d: TestDaemon, cid: str) -> str:
    st, info = d.api("GET", f"/containers/{cid}/json")
    assert st == 200, info
    return info["GraphDriver"]["Data"]["UpperDir"]


def _owner(path: str) -> tuple[int, int]:
    st = os.lstat(path)
    return st.st_uid, st.st_gid


# --- the daemon, the data root, info -------------------------------------------------------------------
def test_default_creates_dockremap_and_remapped_root(remap: TestDaemon) -> None:
    pw = pwd.getpwnam("dockremap")
    assert pw.pw_shell == "/bin/false" and pw.pw_uid < 1000  # a system account, no login
    start, count = _range_of("dockremap", "/etc/subuid")
    gstart, gcount = _range_of("dockremap", "/etc/subgid")
    assert start >= 100000 and count == 65536 and gstart >= 100000 and gcount == 65536
    remapped = os.path.join(remap.data_root, f"{start}.{gstart}")
    st = os.stat(remap.data_root)
    assert oct(st.st_mode & 0o777) == oct(0o711) and st.st_gid == gstart
    st = os.stat(remapped)
    assert oct(st.st_mode & 0o777) == oct(0o710) and (st.st_uid, st.st_gid) == (0, gstart)
    for sub in ("containers", "volumes", "image", "overlay2"):
        assert os.path.isdir(os.path.join(remapped, sub)), sub
    assert not os.path.exists(os.path.join(remap.data_root, "containers"))  # nothing outside it

    status, info = remap.api("GET", "/info")
    assert status == 200
    assert info["DockerRootDir"] == remapped
    assert "name=userns" in info["SecurityOptions"]
    # as `dockyard info` and the Docker CLI print it
    from cli.cliutil import launcher

    clients = [[*launcher(), "-H", remap.host, "info"]]
    if shutil.which("docker"):
        clients.append(["docker", "-H", remap.host, "info"])
    for argv in clients:
        cp = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=dict(os.environ, DOCKER_CONFIG=remap.root))
        assert cp.returncode == 0, cp.stderr
        lines = [x.strip() for x in cp.stdout.splitlines()]
        assert f"Docker Root Dir: {remapped}" in lines, (argv[0], cp.stdout)
        sec = lines.index("Security Options:")
        assert "userns" in lines[sec + 1 : sec + 6], (argv[0], cp.stdout)


def test_layers_are_owned_by_shifted_ids(remap: TestDaemon) -> None:
    start, _ = _range_of("dockremap", "/etc/subuid")
    st, img = remap.api("GET", "/images/busybox/json")
    assert st == 200, img
    diff = img["GraphDriver"]["Data"]["UpperDir"]
    assert diff.startswith(os.path.join(remap.data_root, f"{start}."))
    assert _owner(os.path.join(diff, "bin", "busybox")) == (start, start)
    assert _owner(os.path.join(diff, "etc")) == (start, start)


# --- containers ----------------------------------------------------------------------------------------
def test_container_runs_mapped_and_owns_its_files(remap: TestDaemon) -> None:
    start, count = _range_of("dockremap", "/etc/subuid")
    cid, code, out = _sh(remap, "cat /proc/self/uid_map /proc/self/gid_map; id -u; "
                                "touch /made-by-root; mkdir /dir; chown 1000:1000 /dir; "
                                "echo 10.9.9.9 extra >> /etc/hosts && echo HOSTS-OK; "
                                "stat -c '%u:%g %a' /dev/shm; echo x > /dev/shm/f && echo SHM-OK; "
                                "echo name > /etc/hostname && echo HOSTNAME-OK; "
                                "ping -c1 -W2 127.0.0.1 >/dev/null && echo PING-OK; "
                                "cat /sys/class/net/lo/mtu && echo SYSFS-OK")
    try:
        assert code == 0, out
        lines = out.splitlines()
        assert lines[0].split() == ["0", str(start), str(count)]
        assert lines[1].split() == ["0", str(start), str(count)]
        assert lines[2] == "0"
        assert "HOSTS-OK" in lines and "SHM-OK" in lines and "HOSTNAME-OK" in lines
        # its network namespace belongs to its user namespace, as with Docker: raw sockets work
        # and /sys is its own sysfs
        assert "PING-OK" in lines and "SYSFS-OK" in lines, out
        assert os.listdir(os.path.join(remap.exec_root, "userns")) == []  # pins only live during start
        assert "0:0 1777" in lines  # /dev/shm belongs to the container's root
        upper = _upper(remap, cid)
        assert _owner(os.path.join(upper, "made-by-root")) == (start, start)
        assert _owner(os.path.join(upper, "dir")) == (start + 1000, start + 1000)
        # the container's /etc/hosts is its own file, owned by the remapped root on the host
        st, info = remap.api("GET", f"/containers/{cid}/json")
        assert _owner(info["HostsPath"]) == (start, start)
        with open(info["HostsPath"]) as f:
            assert "10.9.9.9 extra" in f.read()
    finally:
        _rm(remap, cid)


def test_network_capabilities_inside_its_own_namespace(remap: TestDaemon) -> None:
    cid, code, out = _sh(remap, "ip link set lo mtu 1400 && cat /sys/class/net/lo/mtu; "
                                "ip link set lo mtu 1300 2>&1 | head -1",
                         HostConfig={"CapAdd": ["NET_ADMIN"]})
    _rm(remap, cid)
    assert code == 0 and out.splitlines()[0] == "1400", out
    cid, code, out = _sh(remap, "ip link set lo mtu 1400 2>&1; echo rc=$?")  # without NET_ADMIN
    _rm(remap, cid)
    assert "rc=0" not in out, out


def test_exec_joins_the_mapping(remap: TestDaemon) -> None:
    start, count = _range_of("dockremap", "/etc/subuid")
    st, r = remap.api("POST", "/containers/create", {"Image": "busybox", "Cmd": ["sleep", "60"]})
    assert st == 201, r
    cid = r["Id"]
    try:
        assert remap.api("POST", f"/containers/{cid}/start")[0] == 204
        st, r = remap.api("POST", f"/containers/{cid}/exec", {"Cmd": ["sh", "-c", "cat /proc/self/uid_map; id -u; touch /by-exec"],
                                                              "AttachStdout": True, "AttachStderr": True})
        assert st == 201, r
        st, out = remap.api("POST", f"/exec/{r['Id']}/start", {"Detach": False, "Tty": False})
        assert st == 200
        lines = demux(out)[1].decode().splitlines()
        assert lines[0].split() == ["0", str(start), str(count)] and lines[1] == "0", lines
        assert _owner(os.path.join(_upper(remap, cid), "by-exec")) == (start, start)
    finally:
        _rm(remap, cid)


def test_root_cannot_modify_root_owned_host_files(remap: TestDaemon) -> None:
    host = _public_root("dyt-uns-bind-")
    try:
        with open(os.path.join(host, "rootfile"), "w") as f:
            f.write("host\n")
        os.chmod(os.path.join(host, "rootfile"), 0o644)
        cid, code, out = _sh(remap, "echo evil > /host/rootfile; echo rc=$?; rm /host/rootfile; echo rc=$?; "
                                    "touch /host/new; echo rc=$?; stat -c %u /host/rootfile",
                             HostConfig={"Binds": [f"{host}:/host"]})
        _rm(remap, cid)
        assert "Permission denied" in out, out
        assert out.count("rc=1") == 3, out
        assert "65534" in out.splitlines()  # host root is not mapped: the overflow id
        with open(os.path.join(host, "rootfile")) as f:
            assert f.read() == "host\n"
        assert sorted(os.listdir(host)) == ["rootfile"]
        # a missing -v source is created for the container's root, as Docker does
        start, _ = _range_of("dockremap", "/etc/subuid")
        newdir = os.path.join(host, "made")
        cid, code, out = _sh(remap, "touch /m/file && echo OK", HostConfig={"Binds": [f"{newdir}:/m"]})
        _rm(remap, cid)
        assert "OK" in out, out
        assert _owner(newdir) == (start, start) and _owner(os.path.join(newdir, "file")) == (start, start)
    finally:
        shutil.rmtree(host, ignore_errors=True)


def test_named_volume_is_owned_by_remapped_root(remap: TestDaemon) -> None:
    start, _ = _range_of("dockremap", "/etc/subuid")
    cid, code, out = _sh(remap, "touch /data/f && mkdir /data/d && chown 7:7 /data/d && echo OK",
                         HostConfig={"Binds": ["dytunsvol:/data"]})
    try:
        assert code == 0 and "OK" in out, out
        st, vol = remap.api("GET", "/volumes/dytunsvol")
        assert st == 200, vol
        data = vol["Mountpoint"]
        assert data.startswith(os.path.join(remap.data_root, f"{start}."))
        assert _owner(data) == (start, start)
        assert _owner(os.path.join(data, "f")) == (start, start)
        assert _owner(os.path.join(data, "d")) == (start + 7, start + 7)
    finally:
        _rm(remap, cid)
        remap.api("DELETE", "/volumes/dytunsvol")


def test_cp_shifts_owners_both_ways(remap: TestDaemon) -> None:
    start, _ = _range_of("dockremap", "/etc/subuid")
    st, r = remap.api("POST", "/containers/create", {"Image": "busybox", "Cmd": ["true"]})
    cid = r["Id"]
    try:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tf:
            for name, uid in (("copied-root", 0), ("copied-500", 500)):
                ti = tarfile.TarInfo(name)
                ti.size, ti.uid, ti.gid = 2, uid, uid
                tf.addfile(ti, io.BytesIO(b"hi"))
        st, r = remap.api("PUT", f"/containers/{cid}/archive?path=/tmp&copyUIDGID=1", buf.getvalue())
        assert st == 200, r
        upper = _upper(remap, cid)
        assert _owner(os.path.join(upper, "tmp", "copied-root")) == (start, start)
        assert _owner(os.path.join(upper, "tmp", "copied-500")) == (start + 500, start + 500)
        st, (data, _h) = remap.api("GET", f"/containers/{cid}/archive?path=/tmp", raw=True)
        assert st == 200
        with tarfile.open(fileobj=io.BytesIO(data)) as tf:
            owners = {m.name: (m.uid, m.gid) for m in tf.getmembers()}
        assert owners["tmp/copied-root"] == (0, 0) and owners["tmp/copied-500"] == (500, 500)
    finally:
        _rm(remap, cid)


def test_docker_refusals_and_userns_host(remap: TestDaemon) -> None:
    for hc, msg in (({"Privileged": True}, "privileged mode is incompatible with user namespaces"),
                    ({"NetworkMode": "host"}, "cannot share the host's network namespace when user namespaces are enabled"),
                    ({"PidMode": "host"}, "cannot share the host PID namespace when user namespaces are enabled")):
        st, r = remap.api("POST", "/containers/create", {"Image": "busybox", "Cmd": ["true"], "HostConfig": hc})
        assert st == 400 and msg in r["message"], (hc, r)
    # --userns=host opts out: the host's ids, and privileged mode is allowed again
    cid, code, out = _sh(remap, "cat /proc/self/uid_map; id -u; grep CapEff /proc/self/status",
                         HostConfig={"UsernsMode": "host", "Privileged": True})
    _rm(remap, cid)
    assert code == 0, out
    assert out.splitlines()[0].split() == ["0", "0", "4294967295"]
    assert int(out.splitlines()[2].split()[1], 16) > 0xA80425FB  # all capabilities
    cid, code, out = _sh(remap, "cat /proc/self/uid_map", HostConfig={"UsernsMode": "host", "NetworkMode": "host"})
    _rm(remap, cid)
    assert code == 0 and out.split() == ["0", "0", "4294967295"], out


def test_container_namespace_sharing_joins_its_user_namespace(remap: TestDaemon) -> None:
    st, r = remap.api("POST", "/containers/create", {"Image": "busybox", "Cmd": ["sleep", "60"]})
    first = r["Id"]
    try:
        assert remap.api("POST", f"/containers/{first}/start")[0] == 204
        cid, code, out = _sh(remap, "readlink /proc/self/ns/user; readlink /proc/self/ns/net",
                             HostConfig={"NetworkMode": f"container:{first}", "PidMode": f"container:{first}"})
        _rm(remap, cid)
        assert code == 0, out
        st, info = remap.api("GET", f"/containers/{first}/json")
        pid = info["State"]["Pid"]
        assert out.split() == [os.readlink(f"/proc/{pid}/ns/user"), os.readlink(f"/proc/{pid}/ns/net")]
    finally:
        _rm(remap, first)


# --- images: commit, save, push and pull across mappings ---------------------------------------------
def _layer_members(tar_bytes: bytes, layer_digest: str) -> dict[str, tuple[int, int]]:
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as outer:
        names = outer.getnames()
        # docker save: <hex>/layer.tar (or blobs/sha256/<hex>)
        for cand in (f"{layer_digest[7:]}/layer.tar", f"blobs/sha256/{layer_digest[7:]}"):
            if cand in names:
                data = outer.extractfile(cand).read()  # type: ignore[union-attr]
                break
        else:
            raise AssertionError(f"layer {layer_digest} not in the archive: {names}")
    assert "sha256:" + hashlib.sha256(data).hexdigest() == layer_digest
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        return {m.name: (m.uid, m.gid) for m in tf.getmembers()}


def _save_layers(d: TestDaemon, ref: str) -> tuple[dict, bytes]:
    st, (data, _h) = d.api("GET", f"/images/{ref}/get", raw=True)
    assert st == 200
    with tarfile.open(fileobj=io.BytesIO(data)) as outer:
        manifest = json.loads(outer.extractfile("manifest.json").read())  # type: ignore[union-attr]
    return manifest[0], data


def test_commit_shifts_back_and_image_round_trips(remap: TestDaemon, tmp_path) -> None:  # noqa: ANN001
    from image.registry_server import RegistryServer

    cid, code, out = _sh(remap, "echo hi > /hello; mkdir -p /srv/app; chown -R 1000:1000 /srv/app; rm /bin/vi")
    try:
        assert code == 0, out
        st, r = remap.api("POST", f"/commit?container={cid}&repo=dytuns/committed&tag=v1")
        assert st == 201, r
        image_id = r["Id"]
    finally:
        _rm(remap, cid)
    st, img = remap.api("GET", f"/images/{image_id}/json")
    top = img["RootFS"]["Layers"][-1]
    manifest, data = _save_layers(remap, "dytuns/committed:v1")
    members = _layer_members(data, top)
    assert members["hello"] == (0, 0)
    assert members["srv/app"] == (1000, 1000)
    assert members["bin/.wh.vi"] == (0, 0)  # the kernel's whiteout, shown as the container's root's
    # the committed image runs, with the shifted owners back on disk
    cid, code, out = _sh(remap, "cat /hello; stat -c %u /srv/app; ls /bin/vi 2>&1", Image="dytuns/committed:v1")
    _rm(remap, cid)
    assert out.splitlines()[:2] == ["hi", "1000"] and "No such file" in out

    # push from the remapped daemon; a daemon with another mapping pulls the same image
    with RegistryServer(str(tmp_path / "reg")) as reg:
        ref = f"{reg.addr}/dytuns/committed:v1"
        assert remap.api("POST", f"/images/dytuns/committed:v1/tag?repo={reg.addr}/dytuns/committed&tag=v1")[0] == 201
        st, r = remap.api("POST", f"/images/{reg.addr}/dytuns/committed/push?tag=v1",
                          headers={"X-Registry-Auth": "e30="})
        assert st == 200 and not any("error" in x for x in r if isinstance(x, dict)), r
        st, busybox = remap.api("GET", "/images/busybox/json")
        _, saved = _save_layers(remap, "busybox:latest")
        _pull_into_second_mapping(ref, image_id, saved, busybox["Id"])


def _pull_into_second_mapping(ref: str, image_id: str, saved: bytes, saved_id: str) -> None:
    """A daemon started with the uid:gid form (nobody:nogroup's range, added to /etc/sub[ug]id):
    pulls what the first pushed, and loads what it saved."""
    for path, name in (("/etc/subuid", "nobody"), ("/etc/subgid", "nogroup")):
        with open(path, "a") as f:
            f.write(f"{name}:{SECOND_RANGE}:65536\n")
    root = _public_root("dyt-uns2-")
    d = _start(root, "65534:65534")
    try:
        st, info = d.api("GET", "/info")
        assert info["DockerRootDir"].endswith(f"/{SECOND_RANGE}.{SECOND_RANGE}")
        repo, _, tag = ref.rpartition(":")
        st, r = d.api("POST", f"/images/create?fromImage={urllib.parse.quote(repo, safe='')}&tag={tag}")
        assert st == 200 and not any("error" in x for x in r if isinstance(x, dict)), r
        st, img = d.api("GET", f"/images/{urllib.parse.quote(ref, safe='')}/json")
        assert st == 200 and img["Id"] == image_id  # the same config, the same diff ids
        diff = img["GraphDriver"]["Data"]["UpperDir"]
        assert _owner(os.path.join(diff, "hello")) == (SECOND_RANGE, SECOND_RANGE)
        assert _owner(os.path.join(diff, "srv", "app")) == (SECOND_RANGE + 1000, SECOND_RANGE + 1000)
        cid, code, out = _sh(d, "cat /proc/self/uid_map; cat /hello; stat -c %u /srv/app", Image=ref)
        _rm(d, cid)
        lines = out.splitlines()
        assert lines[0].split() == ["0", str(SECOND_RANGE), "65536"] and lines[1:] == ["hi", "1000"], out
        # docker save on one mapping, docker load on another: the same image, owners shifted anew
        st, r = d.api("POST", "/images/load?quiet=1", saved)
        assert st == 200, r
        st, img = d.api("GET", "/images/busybox:latest/json")
        assert st == 200 and img["Id"] == saved_id
        assert _owner(os.path.join(img["GraphDriver"]["Data"]["UpperDir"], "bin", "busybox")) == (SECOND_RANGE, SECOND_RANGE)
        # the state survives a restart under the same mapping
        d.stop()
        d.start()
        st, img = d.api("GET", f"/images/{image_id}/json")
        assert st == 200
    finally:
        _stop(d, root)


def test_out_of_range_ids_are_refused(remap: TestDaemon) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        ti = tarfile.TarInfo("far")
        ti.size, ti.uid, ti.gid = 1, 70000, 0
        tf.addfile(ti, io.BytesIO(b"x"))
    st, r = remap.api("POST", "/images/create?fromSrc=-&repo=dytuns/far", buf.getvalue())
    text = json.dumps(r)
    assert "Container ID 70000 cannot be mapped to a host ID" in text, text


# --- start-up errors -----------------------------------------------------------------------------------
def _daemon_error(remap_spec: str, tmp: str) -> str:
    args = ["--data-root", os.path.join(tmp, "data"), "--exec-root", os.path.join(tmp, "exec"),
            "-H", "unix://" + os.path.join(tmp, "s.sock"), "--config-file", os.path.join(tmp, "daemon.json"),
            "--userns-remap", remap_spec]
    with open(os.path.join(tmp, "daemon.json"), "w") as f:
        f.write("{}")
    env = dict(os.environ, PYTHONPATH=SRC)
    cp = subprocess.run([PYTHON, "-m", "dockyard.daemon", *args], capture_output=True, text=True, timeout=60, env=env)
    assert cp.returncode == 1, cp.stdout + cp.stderr
    return cp.stderr


def test_startup_errors(system_ids, tmp_path) -> None:  # noqa: ANN001
    err = _daemon_error("dytnosuchuser", str(tmp_path))
    assert 'Error during uid lookup for "dytnosuchuser"' in err
    err = _daemon_error("a:b:c", str(tmp_path))
    assert 'Invalid user/group specification in --userns-remap: "a:b:c"' in err
    err = _daemon_error("daemon", str(tmp_path))  # a real user without subordinate ranges
    assert 'Can\'t create ID mappings: no subuid ranges found for user "daemon"' in err
    # the data root's parents must let the remapped root through
    with open("/etc/subuid", "a") as f:
        f.write("daemon:400000:65536\n")
    with open("/etc/subgid", "a") as f:
        f.write("daemon:400000:65536\n")
    os.chmod(tmp_path, 0o700)
    err = _daemon_error("daemon", str(tmp_path))
    assert "restricts access to the remapped root uid/gid" in err


def test_tty_read_only_rootfs_and_volume_copy_up(remap: TestDaemon) -> None:
    start, _ = _range_of("dockremap", "/etc/subuid")
    cid, code, out = _sh(remap, "tty; stat -c %u $(tty)", Tty=True)
    _rm(remap, cid)
    assert code == 0 and out.replace("\r", "").splitlines()[1:2] == ["0"], out
    cid, code, out = _sh(remap, "touch /x 2>&1; echo rc=$?", HostConfig={"ReadonlyRootfs": True})
    _rm(remap, cid)
    assert "Read-only file system" in out and "rc=1" in out, out
    # a fresh volume is filled from the image with the (already shifted) owners
    cid, code, out = _sh(remap, "stat -c %u /etc/passwd", HostConfig={"Binds": ["dytunsetc:/etc"]})
    try:
        assert code == 0 and out.split() == ["0"], out
        st, vol = remap.api("GET", "/volumes/dytunsetc")
        assert _owner(os.path.join(vol["Mountpoint"], "passwd")) == (start, start)
    finally:
        _rm(remap, cid)
        remap.api("DELETE", "/volumes/dytunsetc")


def test_live_restore_keeps_a_remapped_container(remap: TestDaemon) -> None:
    """SIGKILL the daemon while a remapped container runs: after a restart exec still joins its
    mapping and no user namespace pin is left behind. (Last in the module: it restarts the daemon.)"""
    start, count = _range_of("dockremap", "/etc/subuid")
    st, r = remap.api("POST", "/containers/create", {"Image": "busybox", "Cmd": ["sleep", "60"]})
    cid = r["Id"]
    try:
        assert remap.api("POST", f"/containers/{cid}/start")[0] == 204
        remap.kill()
        remap.start()
        st, info = remap.api("GET", f"/containers/{cid}/json")
        assert info["State"]["Running"], info["State"]
        st, r = remap.api("POST", f"/containers/{cid}/exec", {"Cmd": ["cat", "/proc/self/uid_map"], "AttachStdout": True})
        st, out = remap.api("POST", f"/exec/{r['Id']}/start", {"Detach": False, "Tty": False})
        assert demux(out)[1].decode().split() == ["0", str(start), str(count)]
        assert os.listdir(os.path.join(remap.exec_root, "userns")) == []
    finally:
        _rm(remap, cid)
