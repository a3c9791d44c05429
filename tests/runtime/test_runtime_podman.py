"""A real client: podman (through conmon) drives dockyard-runc as its OCI runtime.

Podman runs with a storage root, run root, tmp dir, events file and file locks private to this
module (vfs storage: no overlay mounts), no network, the cgroupfs manager and no cgroup for
conmon; the image is a busybox rootfs imported offline. Everything is removed afterwards."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tarfile

import pexpect
import pytest
from rtutil import RUNC, cgroup_dirs

pytestmark = pytest.mark.e2e

ULIMITS = ["--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768"]


class Podman:
    def __init__(self, base: str) -> None:
        self.base = base
        self.parent = "dyt-pod-" + secrets.token_hex(3)
        conf = os.path.join(base, "containers.conf")
        with open(conf, "w") as f:
            f.write('[containers]\ncgroups = "no-conmon"\nnetns = "none"\n'
                    '[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n'
                    f'events_logfile_path = "{base}/events.log"\nlock_type = "file"\n')
        self.env = dict(os.environ, CONTAINERS_CONF=conf)
        self.argv = ["podman", "--root", f"{base}/root", "--runroot", f"{base}/runroot", "--tmpdir", f"{base}/tmp",
                     "--storage-driver", "vfs", "--runtime", RUNC]

    def __call__(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        r = subprocess.run([*self.argv, *args], capture_output=True, text=True, env=self.env, timeout=timeout,
                           stdin=subprocess.DEVNULL)
        if check and r.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)} failed ({r.returncode}): {r.stderr}{r.stdout}")
        return r

    def spawn(self, *args: str) -> pexpect.spawn:
        return pexpect.spawn(self.argv[0], [*self.argv[1:], *args], env=self.env, timeout=60, encoding="utf-8")

    def run_args(self) -> list[str]:
        return ["--cgroup-parent", f"/{self.parent}", *ULIMITS]


@pytest.fixture(scope="module")
def podman(busybox_rootfs, tmp_path_factory):
    if not shutil.which("podman") or not shutil.which("conmon"):
        pytest.skip("podman and conmon are needed")
    base = str(tmp_path_factory.mktemp("podman"))
    p = Podman(base)
    tar = os.path.join(base, "busybox.tar")
    with tarfile.open(tar, "w") as t:
        t.add(busybox_rootfs, arcname=".")
    p("import", tar, "localhost/dyt-busybox:latest")
    try:
        yield p
    finally:
        p("rm", "-af", "-t", "0", check=False)
        p("system", "reset", "-f", check=False)
        subprocess.run(["umount", "-R", "-l", f"{base}/root"], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
        assert cgroup_dirs(p.parent) == []


def test_podman_run_without_tty(podman):
    r = podman("run", "--rm", *podman.run_args(), "localhost/dyt-busybox",
               "sh", "-c", "echo hello from $(hostname); echo $$; ls /proc | grep -c '^[0-9]'")
    lines = r.stdout.splitlines()
    assert lines[0].startswith("hello from ")
    assert lines[1] == "1"
    assert int(lines[2]) <= 3
    r = podman("run", "--rm", *podman.run_args(), "localhost/dyt-busybox", "sh", "-c", "exit 3", check=False)
    assert r.returncode == 3


def test_podman_run_with_tty(podman):
    child = podman.spawn("run", "--rm", "-t", *podman.run_args(), "localhost/dyt-busybox",
                         "sh", "-c", "tty; echo answer=$((6*7))")
    try:
        child.expect("/dev/pts/0")
        child.expect("answer=42")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0


def test_podman_exec(podman):
    name = "dyt-exec-" + secrets.token_hex(3)
    podman("run", "-d", "--name", name, *podman.run_args(), "localhost/dyt-busybox", "sleep", "1000")
    try:
        r = podman("exec", name, "sh", "-c", "echo exec-ok; cat /proc/1/cmdline | tr '\\0' ' '")
        assert r.stdout.splitlines() == ["exec-ok", "sleep 1000 "]
        r = podman("exec", name, "sh", "-c", "exit 5", check=False)
        assert r.returncode == 5
        child = podman.spawn("exec", "-it", name, "sh")
        try:
            child.expect(r"[#$] ")
            child.sendline("tty; echo $((7*6))")
            child.expect("/dev/pts/")
            child.expect("42")
            child.sendline("exit")
            child.expect(pexpect.EOF)
        finally:
            child.close()
        assert podman("inspect", "--format", "{{.State.Status}}", name).stdout.strip() == "running"
    finally:
        podman("rm", "-f", "-t", "0", name, check=False)
    assert cgroup_dirs(f"libpod-{name}") == []
