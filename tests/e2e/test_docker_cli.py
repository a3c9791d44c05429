"""The Docker CLI (/usr/local/bin/docker, a client we did not write) against our daemon,
including `run -it` through a real pty (pexpect)."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import time

import pytest

from support.daemon import TestDaemon, busybox_daemon

DOCKER = shutil.which("docker") or "/usr/local/bin/docker"
pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not os.path.exists(DOCKER), reason="no docker CLI")]


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    d = busybox_daemon(str(tmp_path_factory.mktemp("e2e-cli")))
    yield d
    d.cleanup()


def docker(d: TestDaemon, *args: str, input: bytes | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    env["DOCKER_CONFIG"] = os.path.join(d.root, "docker-config")
    return subprocess.run([DOCKER, "-H", d.host, *args], input=input.decode() if input else None, capture_output=True,
                          text=True, timeout=timeout, env=env)  # fmt: skip


def test_run_ps_logs_exec_inspect_stop_rm(daemon: TestDaemon) -> None:
    r = docker(daemon, "run", "--rm", "busybox", "echo", "hello")
    assert r.returncode == 0 and r.stdout == "hello\n", r.stderr
    r = docker(daemon, "run", "--rm", "-i", "busybox", "cat", input=b"from stdin\n")
    assert r.stdout == "from stdin\n"
    r = docker(daemon, "run", "--rm", "busybox", "sh", "-c", "exit 13")
    assert r.returncode == 13
    r = docker(daemon, "run", "--rm", "busybox", "nonexistent")
    assert r.returncode == 127 and "executable file not found" in r.stderr
    r = docker(daemon, "run", "-d", "--name", "web", "busybox", "sh", "-c", "while true; do echo tick; sleep 0.2; done")
    assert r.returncode == 0 and len(r.stdout.strip()) == 64
    try:
        r = docker(daemon, "ps")
        assert "web" in r.stdout and "Up " in r.stdout and "CONTAINER ID" in r.stdout
        r = docker(daemon, "ps", "-q", "--no-trunc")
        assert len(r.stdout.split()) == 1
        p = subprocess.Popen([DOCKER, "-H", daemon.host, "logs", "-f", "web"], stdout=subprocess.PIPE, text=True)
        assert p.stdout is not None
        assert p.stdout.readline() == "tick\n"
        p.terminate()
        p.wait(5)
        r = docker(daemon, "exec", "web", "sh", "-c", "echo in-exec $HOSTNAME")
        assert r.stdout.startswith("in-exec ")
        r = docker(daemon, "exec", "web", "sh", "-c", "exit 9")
        assert r.returncode == 9
        r = docker(daemon, "inspect", "-f", "{{.State.Running}} {{.Name}} {{.HostConfig.NetworkMode}}", "web")
        assert r.stdout.split()[:2] == ["true", "/web"]
        r = docker(daemon, "top", "web")
        assert "PID" in r.stdout
        r = docker(daemon, "stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}} {{.MemUsage}}", "web")
        name, pids, *_ = r.stdout.split()
        assert (name, r.stderr) == ("web", "") and int(pids) >= 1, r.stdout
        t = time.time()
        r = docker(daemon, "stop", "-t", "1", "web")
        assert r.returncode == 0 and r.stdout.strip() == "web" and time.time() - t < 10
        r = docker(daemon, "ps", "-a", "--filter", "name=web", "--format", "{{.Status}}")
        assert r.stdout.startswith("Exited (137)")
    finally:
        r = docker(daemon, "rm", "-f", "web")
    assert r.returncode == 0
    r = docker(daemon, "ps", "-a", "-q")
    assert r.stdout.strip() == ""
    r = docker(daemon, "rm", "nope")
    assert r.returncode == 1 and "No such container: nope" in r.stderr


def test_images_volumes_cp(daemon: TestDaemon, tmp_path) -> None:  # noqa: ANN001
    r = docker(daemon, "images")
    assert "busybox" in r.stdout and "latest" in r.stdout, r.stderr
    r = docker(daemon, "volume", "create", "clivol")
    assert r.stdout.strip() == "clivol"
    r = docker(daemon, "volume", "ls")
    assert "clivol" in r.stdout
    r = docker(daemon, "run", "--rm", "-v", "clivol:/v", "busybox", "sh", "-c", "echo persisted > /v/f")
    assert r.returncode == 0
    r = docker(daemon, "run", "--rm", "--mount", "type=volume,source=clivol,target=/w", "busybox", "cat", "/w/f")
    assert r.stdout == "persisted\n"
    r = docker(daemon, "volume", "inspect", "-f", "{{.Mountpoint}}", "clivol")
    assert r.stdout.strip().endswith("/volumes/clivol/_data")
    r = docker(daemon, "volume", "rm", "clivol")
    assert r.returncode == 0
    # cp both ways
    r = docker(daemon, "create", "--name", "cpc", "busybox", "sleep", "30")
    src = tmp_path / "in.txt"
    src.write_text("copied in")
    r = docker(daemon, "cp", str(src), "cpc:/tmp/in.txt")
    assert r.returncode == 0, r.stderr
    out = tmp_path / "out"
    r = docker(daemon, "cp", "cpc:/tmp/in.txt", str(out))
    assert r.returncode == 0 and out.read_text() == "copied in", r.stderr
    r = docker(daemon, "cp", "cpc:/etc", str(tmp_path / "etc"))
    assert (tmp_path / "etc" / "passwd").exists()
    r = docker(daemon, "diff", "cpc")
    assert "A /tmp/in.txt" in r.stdout
    docker(daemon, "rm", "-f", "cpc")


def test_run_interactive_tty(daemon: TestDaemon) -> None:
    pexpect = pytest.importorskip("pexpect")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    env["DOCKER_CONFIG"] = os.path.join(daemon.root, "docker-config")
    child = pexpect.spawn(DOCKER, ["-H", daemon.host, "run", "-it", "--name", "demo", "busybox", "sh"],
                          env=env, timeout=20, dimensions=(30, 100))  # fmt: skip
    try:
        child.expect(r"[#$] ")
        child.sendline("uname -r")
        child.expect(platform.release().replace("+", r"\+"))
        child.sendline("echo PID1=$$")
        child.expect("PID1=1")
        child.sendline("stty size")
        child.expect("30 100")
        child.setwinsize(40, 120)  # SIGWINCH -> the CLI posts resize
        time.sleep(0.5)
        child.sendline("stty size")
        child.expect("40 120")
        child.sendline("hostname")
        cid = docker(daemon, "inspect", "-f", "{{.Id}}", "demo").stdout.strip()
        child.expect(cid[:12])
        child.sendline("exit 3")
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 3
    finally:
        if child.isalive():
            child.terminate(force=True)
    r = docker(daemon, "ps", "-a", "--filter", "name=demo", "--format", "{{.Status}}")
    assert r.stdout.startswith("Exited (3)")
    # detach with ctrl-p ctrl-q, then attach again
    child = pexpect.spawn(DOCKER, ["-H", daemon.host, "start", "-ai", "demo"], env=env, timeout=20)
    child.expect(r"[#$] ")
    child.send("\x10\x11")
    child.expect(pexpect.EOF)
    child.close()
    r = docker(daemon, "inspect", "-f", "{{.State.Running}}", "demo")
    assert r.stdout.strip() == "true"
    docker(daemon, "rm", "-f", "demo")


def test_update_rename_and_system_prune(daemon: TestDaemon) -> None:
    """Commands whose requests carry Docker CLI habits: `update` sends every field (zeros for the
    flags not given), `system prune` also prunes the build cache (POST /build/prune)."""
    r = docker(daemon, "run", "-d", "--name", "upd1", "busybox", "sleep", "60")
    assert r.returncode == 0, r.stderr
    try:
        assert docker(daemon, "update", "--cpus", "0.25", "upd1").returncode == 0
        assert docker(daemon, "update", "--restart", "always", "upd1").returncode == 0
        r = docker(daemon, "inspect", "-f", "{{.HostConfig.NanoCpus}} {{.HostConfig.RestartPolicy.Name}}", "upd1")
        assert r.stdout.strip() == "250000000 always"
        docker(daemon, "create", "--name", "upd2", "busybox", "true")
        r = docker(daemon, "rename", "upd2", "upd1")
        assert r.returncode == 1 and "Error when allocating new name: Conflict." in r.stderr
    finally:
        docker(daemon, "rm", "-f", "upd1", "upd2")
    r = docker(daemon, "system", "prune", "-f")
    assert r.returncode == 0 and "Total reclaimed space:" in r.stdout, r.stderr
