"""Escapes through the filesystem: symlinks planted in images or by a container where the daemon
or the runtime puts a mount, copies a file or reads one on the container's behalf (bind and volume
targets, --volumes-from, docker cp in and out, /proc, /sys, /dev and /etc/hosts as symlinks, a
restart after the container replaced its /etc/hosts), and hostile special files (an image's
device node in a VOLUME directory, a FIFO as /etc/passwd). Each test checks the host is untouched
and what the container sees is its own."""

from __future__ import annotations

import io
import os
import shutil
import sys
import tarfile
import tempfile

import pytest
from secutil import busybox_with, device, directory, exec_, fifo, import_image, regular, run, start, symlink

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "runtime"))

from rtutil import RT, errmsg  # noqa: E402


def _hostdirs(tmp_path) -> tuple[str, str]:  # noqa: ANN001
    """(a directory to bind into the container, a host directory a symlink will point at)."""
    src = tmp_path / "src"
    victim = tmp_path / "victim"
    src.mkdir()
    victim.mkdir()
    (src / "marker").write_text("from the bind source")
    (victim / "precious").write_text("host data")
    return str(src), str(victim)


def _untouched(victim: str) -> None:
    assert sorted(os.listdir(victim)) == ["precious"]
    with open(os.path.join(victim, "precious")) as f:
        assert f.read() == "host data"


# --- mounts through symlinks in the image ---------------------------------------------------------
def test_bind_target_symlink_to_a_host_path_stays_inside(daemon, tmp_path) -> None:  # noqa: ANN001
    src, victim = _hostdirs(tmp_path)
    img = import_image(daemon, busybox_with([symlink("etc/evil", "/../../../.." + victim)]), "dyt-bindsym:latest")
    code, out = run(daemon, f"ls {victim}; echo new > {victim}/written; ls /etc/evil/", image=img,
                    HostConfig={"Binds": [f"{src}:/etc/evil"]})  # fmt: skip
    assert code == 0 and out.split() == ["marker", "marker", "written"], out
    _untouched(victim)
    with open(os.path.join(src, "written")) as f:  # the write went to the bind source, as it should
        assert f.read() == "new\n"


def test_volumes_from_with_mounts_on_symlinks(daemon, tmp_path) -> None:  # noqa: ANN001
    src, victim = _hostdirs(tmp_path)
    a = start(daemon, ["sleep", "60"], HostConfig={"Binds": [f"{src}:/etc/evil:ro"]})
    try:
        img = import_image(daemon, busybox_with([symlink("etc/evil", "/../../../.." + victim)]), "dyt-vfsym:latest")
        code, out = run(daemon, f"ls {victim}; touch {victim}/x 2>&1; cat /proc/mounts | grep -c ' {victim} '",
                        image=img, HostConfig={"VolumesFrom": [a]})  # fmt: skip
        lines = out.splitlines()
        assert lines[0] == "marker" and "Read-only file system" in lines[1] and lines[2] == "1", out
        _untouched(victim)
    finally:
        daemon.api("DELETE", f"/containers/{a}?force=1")


@pytest.mark.parametrize("name, target", [("proc", "/tmp"), ("sys", "/etc"), ("dev", "/")])
def test_images_with_system_dirs_as_symlinks(daemon, name: str, target: str) -> None:  # noqa: ANN001
    """Docker's init layer makes /proc, /sys, /dev (pts, shm) real directories whatever the image
    has there: the container gets its procfs, sysfs and /dev tmpfs where they belong."""
    img = import_image(daemon, busybox_with([symlink(name, target)], drop=(name,)), f"dyt-{name}sym:latest")
    code, out = run(daemon, "stat -c '%F' /proc /sys /dev; grep -E ' /(proc|sys|dev) ' /proc/mounts | cut -d' ' -f2,3",
                    image=img)  # fmt: skip
    lines = out.splitlines()
    assert code == 0 and lines[:3] == ["directory"] * 3, out
    assert sorted(lines[3:6]) == ["/dev tmpfs", "/proc proc", "/sys sysfs"], out


def test_image_etc_hosts_symlink_is_shadowed(daemon) -> None:  # noqa: ANN001
    img = import_image(daemon, busybox_with([symlink("etc/hosts", "/etc/passwd")], drop=("etc/hosts",)),
                       "dyt-hostsym:latest")  # fmt: skip
    code, out = run(daemon, "grep -q localhost /etc/hosts && echo hosts; head -1 /etc/passwd; stat -c %F /etc/hosts",
                    image=img)  # fmt: skip
    assert out.splitlines() == ["hosts", "root:x:0:0:root:/root:/bin/sh", "regular file"], out


def test_restart_after_the_container_replaced_etc_hosts_with_a_symlink(daemon, tmp_path) -> None:  # noqa: ANN001
    _, victim = _hostdirs(tmp_path)
    target = os.path.join(victim, "precious")
    cid = start(daemon, ["sh", "-c", f"[ -L /etc/hosts ] || {{ umount /etc/hosts && rm -f /etc/hosts && "
                                     f"ln -s /../../..{target} /etc/hosts; }}; sleep 60"],
                HostConfig={"CapAdd": ["SYS_ADMIN"]})  # fmt: skip
    try:
        code, out = exec_(daemon, cid, ["sh", "-c", "while ! [ -L /etc/hosts ]; do sleep 0.1; done; echo replaced"])
        assert "replaced" in out
        st, r = daemon.api("POST", f"/containers/{cid}/restart?t=0")
        assert st == 204, r
        code, out = exec_(daemon, cid, ["sh", "-c", f"grep -q localhost {target} && echo hosts"])
        assert out.strip() == "hosts", out  # the hosts file landed on the container's own path
        _untouched(victim)
    finally:
        daemon.api("DELETE", f"/containers/{cid}?force=1")


# --- the runtime on its own: bundles whose rootfs has symlinks where mounts go ----------------------
@pytest.fixture
def rt(tmp_path, busybox_rootfs):  # noqa: ANN001, ANN201
    r = RT(str(tmp_path), busybox_rootfs)
    try:
        yield r
    finally:
        r.cleanup()


def _replace(rootfs: str, name: str, target: str) -> None:
    path = os.path.join(rootfs, name)
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    os.symlink(target, path)


@pytest.mark.parametrize("name, fstype", [("proc", "proc"), ("sys", "sysfs")])
def test_runtime_refuses_procfs_and_sysfs_on_a_symlink(rt, name: str, fstype: str) -> None:  # noqa: ANN001
    b, cid = rt.bundle(["true"])
    _replace(os.path.join(b, "rootfs"), name, "/tmp")
    r = rt.run(b, cid)
    assert r.returncode != 0 and f'filesystem "{fstype}" must be mounted on ordinary directory' in errmsg(r.stderr)


def test_runtime_refuses_mounts_inside_proc_and_onto_the_root(rt, tmp_path) -> None:  # noqa: ANN001
    src, _ = _hostdirs(tmp_path)
    b, cid = rt.bundle(["true"], mutate=lambda c: c["mounts"].append(
        {"destination": "/proc/sys/kernel", "type": "bind", "source": src, "options": ["rbind"]}))
    r = rt.run(b, cid)
    assert r.returncode != 0 and '"/proc/sys/kernel" cannot be mounted because it is inside /proc' in errmsg(r.stderr)
    b, cid = rt.bundle(["cat", "/proc/uptime"], mutate=lambda c: c["mounts"].append(
        {"destination": "/proc/uptime", "type": "bind", "source": os.path.join(src, "marker"), "options": ["bind"]}))
    r = rt.run(b, cid)
    assert r.returncode == 0 and r.stdout == "from the bind source", r.stderr  # lxcfs-style files are allowed
    b, cid = rt.bundle(["true"])
    _replace(os.path.join(b, "rootfs"), "dev", "/")
    r = rt.run(b, cid)
    assert r.returncode != 0 and "resolves to the container's root directory" in errmsg(r.stderr), r.stderr


def test_runtime_refuses_a_cwd_outside_the_root(rt, tmp_path) -> None:  # noqa: ANN001
    """CVE-2024-21626's shape: a descriptor of a host directory reaches the container and the cwd
    goes through it (/proc/self/fd/N): the process must not start there."""
    import subprocess

    from rtutil import RUNC

    _, victim = _hostdirs(tmp_path)
    b, cid = rt.bundle(["sh", "-c", "ls .."], mutate=lambda c: c["process"].update(cwd="/proc/self/fd/3"))
    rt.ids.append(cid)
    r = subprocess.run(["bash", "-c", f'exec 3<"{victim}"; exec "$0" --root "$1" run --preserve-fds 1 --bundle "$2" "$3"',
                        RUNC, rt.root, b, cid], capture_output=True, text=True, timeout=60)  # fmt: skip
    assert r.returncode != 0 and "possible container breakout detected" in r.stderr + r.stdout, (r.stdout, r.stderr)
    assert "victim" not in r.stdout
    # and no descriptor the runtime itself holds is a directory a cwd could go through
    for n in range(3, 16):
        b, cid = rt.bundle(["pwd"], mutate=lambda c, n=n: c["process"].update(cwd=f"/proc/self/fd/{n}"))
        r = rt.run(b, cid)
        assert r.returncode != 0 or not r.stdout.strip() or r.stdout.startswith("/proc/"), (n, r.stdout, r.stderr)


# --- docker cp ----------------------------------------------------------------------------------------
def _tar(entries: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for ti, data in entries:
            tf.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _hardlink(name: str, target: str) -> tuple[tarfile.TarInfo, None]:
    t = tarfile.TarInfo(name)
    t.type, t.linkname = tarfile.LNKTYPE, target
    return t, None


def test_cp_into_a_running_container_through_symlinks(daemon, tmp_path) -> None:  # noqa: ANN001
    _, victim = _hostdirs(tmp_path)
    cid = start(daemon, ["sh", "-c", f"mkdir -p {victim} /dst; ln -s /../../..{victim} /escape; sleep 60"])
    try:
        exec_(daemon, cid, ["sh", "-c", "while ! [ -L /escape ]; do sleep 0.1; done"])
        # through a symlinked destination directory
        st, r = daemon.api("PUT", f"/containers/{cid}/archive?path=/escape", _tar([regular("precious", b"owned")]))
        assert st == 200, r
        # a tar that plants a symlink and then writes through it
        st, r = daemon.api("PUT", f"/containers/{cid}/archive?path=/dst", _tar(
            [symlink("link", "/../../.." + victim), regular("link/precious", b"owned"), regular("link/new", b"x")]))
        assert st == 200, r
        # entries that climb out, and a hard link to a file outside the destination
        for entries in ([regular(f"../../../../../../..{victim}/new", b"x")],
                        [_hardlink("h", "../../../../../../.." + victim + "/precious")]):
            st, r = daemon.api("PUT", f"/containers/{cid}/archive?path=/dst", _tar(entries))
            assert st == 400, r
        _untouched(victim)
        code, out = exec_(daemon, cid, ["cat", f"{victim}/precious", f"{victim}/new"])
        assert out == "ownedx", out  # it all landed in the container's own tree
    finally:
        daemon.api("DELETE", f"/containers/{cid}?force=1")


def test_cp_out_of_a_running_container_through_symlinks(daemon, tmp_path) -> None:  # noqa: ANN001
    _, victim = _hostdirs(tmp_path)
    cid = start(daemon, ["sh", "-c", f"ln -s /../../..{victim} /escape; ln -s ../../../..{victim}/precious /file; "
                                     "sleep 60"])  # fmt: skip
    try:
        exec_(daemon, cid, ["sh", "-c", "while ! [ -L /file ]; do sleep 0.1; done"])
        st, r = daemon.api("GET", f"/containers/{cid}/archive?path=/escape/precious")
        assert st == 404, r  # resolved in the container, where there is no such file
        st, data = daemon.api("GET", f"/containers/{cid}/archive?path=/file")
        assert st == 200
        with tarfile.open(fileobj=io.BytesIO(data)) as tf:
            m = tf.getmembers()
            assert [(x.name, x.issym()) for x in m] == [("file", True)]  # the link itself, not the host file
        st, data = daemon.api("GET", f"/containers/{cid}/archive?path=/escape/")
        assert st == 404
    finally:
        daemon.api("DELETE", f"/containers/{cid}?force=1")


# --- hostile special files --------------------------------------------------------------------------
@pytest.fixture
def loop_secret():  # noqa: ANN201
    """A loop device whose first bytes are a secret: a host block device the container must not read."""
    import subprocess

    fd, img = tempfile.mkstemp(prefix="dyt-loop-")
    os.write(fd, b"TOPSECRET-HOST-DISK" + b"\0" * (1 << 20))
    os.close(fd)
    dev = subprocess.run(["losetup", "-f", "--show", img], capture_output=True, text=True)
    if dev.returncode != 0:
        os.unlink(img)
        pytest.skip(f"no loop device: {dev.stderr.strip()}")
    path = dev.stdout.strip()
    try:
        yield os.stat(path).st_rdev
    finally:
        subprocess.run(["losetup", "-d", path], capture_output=True)
        os.unlink(img)


def test_volume_copy_up_keeps_device_nodes_as_nodes(daemon, loop_secret: int) -> None:  # noqa: ANN001
    major, minor = os.major(loop_secret), os.minor(loop_secret)
    img = import_image(daemon, busybox_with([directory("data"), device("data/disk", "b", major, minor),
                                             fifo("data/pipe"), regular("data/file", b"plain")]),
                       "dyt-devvol:latest", changes=['CMD ["sh"]', "VOLUME /data"])  # fmt: skip
    code, out = run(daemon, "stat -c '%n %F' /data/disk /data/pipe /data/file; head -c 9 /data/disk 2>&1", image=img)
    assert "TOPSECRET" not in out, out
    assert out.splitlines()[:3] == ["/data/disk block special file", "/data/pipe fifo", "/data/file regular file"], out
    assert "Operation not permitted" in out  # the device cgroup denies it, as in Docker


def test_user_lookup_never_blocks_on_or_reads_special_files(daemon) -> None:  # noqa: ANN001
    img = import_image(daemon, busybox_with([fifo("etc/passwd")], drop=("etc/passwd",)), "dyt-fifopw:latest")
    st, r = daemon.api("POST", "/containers/create", {"Image": img, "Cmd": ["id"], "User": "someone"})
    assert st == 201, r
    cid = r["Id"]
    try:
        st, r = daemon.api("POST", f"/containers/{cid}/start", timeout=20)
        assert st == 400 and r["message"] == "unable to find user someone: no matching entries in passwd file", r
    finally:
        daemon.api("DELETE", f"/containers/{cid}?force=1")
