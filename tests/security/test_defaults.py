"""Docker's container defaults, observed from inside real containers: masked and read-only /proc
and /sys paths, the device cgroup, the 14 capabilities and the --cap-add/--cap-drop/--privileged
knobs, no-new-privileges against a setuid binary, rlimits, the environment and file descriptors a
container starts with, PID 1 and signals, and the 126/127 exit codes."""

from __future__ import annotations

import os
import stat
import time

import pytest
from secutil import busybox_with, exec_, import_image, probe_mount, regular, run, start

from dockyard.daemon.oci_spec import MASKED_PATHS, READONLY_PATHS

DEFAULT_CAPEFF = 0x00000000A80425FB


def _status(out: str, key: str) -> str:
    return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith(key + ":"))


def _host_bounding() -> int:
    with open("/proc/self/status") as f:
        return int(_status(f.read(), "CapBnd"), 16)


# --- /proc and /sys -----------------------------------------------------------------------------------
def test_masked_paths_are_dockers() -> None:
    docker = ["/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
              "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
              "/sys/devices/virtual/powercap"]  # fmt: skip
    assert MASKED_PATHS[: len(docker)] == docker
    assert all(p.startswith("/sys/devices/system/cpu/cpu") and p.endswith("/thermal_throttle") for p in MASKED_PATHS[len(docker):])
    assert READONLY_PATHS == ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]


def test_masked_and_readonly_paths_in_a_container(daemon) -> None:  # noqa: ANN001
    present = [p for p in MASKED_PATHS if os.path.exists(p)]
    script = "; ".join(
        f"if [ -d {p} ]; then echo \"{p}=$(ls -A {p} | wc -l)\"; else echo \"{p}=$(cat {p} | wc -c)\"; fi" for p in present
    )
    script += ("; echo x > /proc/sys/kernel/domainname 2>&1; echo x > /proc/sysrq-trigger 2>&1; touch /sys/x 2>&1; "
               "echo 1 > /sys/fs/cgroup/pids/pids.max 2>&1; grep -E ' /(sys|proc/sys|proc/irq|proc/bus) ' /proc/mounts")
    code, out = run(daemon, script)
    for p in present:
        assert f"{p}=0" in out, out  # an empty file (/dev/null) or an empty read-only tmpfs
    assert "/proc/interrupts" in present  # (this kernel has it)
    assert out.count("Read-only file system") >= 3, out
    for line in out.splitlines():
        if line.startswith(("proc ", "sysfs ")):
            assert " ro," in line, line
    code, out = run(daemon, "wc -c < /proc/interrupts", HostConfig={"SecurityOpt": ["systempaths=unconfined"]})
    assert int(out) > 0
    code, out = run(daemon, "wc -c < /proc/interrupts; grep ' /sys ' /proc/mounts", HostConfig={"Privileged": True})
    assert int(out.split()[0]) > 0 and " rw," in out


# --- devices ----------------------------------------------------------------------------------------
def test_device_cgroup(daemon) -> None:  # noqa: ANN001
    code, out = run(daemon, "mknod /tmp/sda b 8 0 && echo mknod-ok; head -c1 /tmp/sda 2>&1; "
                            "mknod /tmp/mem c 1 1; head -c1 /tmp/mem 2>&1; mknod /tmp/fuse c 10 229; cat /tmp/fuse 2>&1; "
                            "head -c1 /dev/zero | wc -c; echo > /dev/null && echo null-ok; head -c1 /dev/urandom | wc -c; "
                            "ls /dev | tr '\\n' ' '")  # fmt: skip
    assert "mknod-ok" in out and out.count("Operation not permitted") == 3, out
    assert "null-ok" in out and out.splitlines().count("1") == 2
    devs = out.splitlines()[-1].split()
    assert {"null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "mqueue", "fd", "stdin", "ptmx"} <= set(devs)
    assert not {"vda", "sda", "kmsg", "mem", "loop0", "fuse"} & set(devs)


def test_privileged_gets_host_devices_and_can_mount(daemon) -> None:  # noqa: ANN001
    code, out = run(daemon, "ls /dev | tr '\\n' ' '; echo; mkdir /m && mount -t tmpfs none /m && echo mounted; "
                            "grep -E 'CapEff|Seccomp:' /proc/self/status", HostConfig={"Privileged": True})  # fmt: skip
    devs = set(out.splitlines()[0].split())
    host = {n for n in os.listdir("/dev") if stat.S_ISBLK(os.stat("/dev/" + n).st_mode) or n.startswith("loop")}
    assert host <= devs, host - devs
    assert "mounted" in out and int(_status(out, "CapEff"), 16) == _host_bounding() and _status(out, "Seccomp") == "0"


# --- capabilities --------------------------------------------------------------------------------------
@pytest.mark.parametrize("hc, want", [
    ({}, DEFAULT_CAPEFF),
    ({"CapDrop": ["ALL"]}, 0),
    ({"CapDrop": ["all"], "CapAdd": ["chown"]}, 1),
    ({"CapAdd": ["net_admin"]}, DEFAULT_CAPEFF | 1 << 12),
    ({"CapAdd": ["CAP_NET_ADMIN"], "CapDrop": ["CAP_CHOWN", "kill"]}, (DEFAULT_CAPEFF | 1 << 12) & ~1 & ~(1 << 5)),
    ({"CapAdd": ["ALL"]}, None),  # everything the daemon has
    ({"CapAdd": ["ALL"], "CapDrop": ["NET_RAW"]}, -(1 << 13)),
])  # fmt: skip
def test_capabilities(daemon, hc: dict, want: int | None) -> None:  # noqa: ANN001
    code, out = run(daemon, "grep -E '^Cap' /proc/self/status", HostConfig=hc)
    eff, bnd = int(_status(out, "CapEff"), 16), int(_status(out, "CapBnd"), 16)
    if want is None:
        want = _host_bounding()
    elif want < 0:
        want = _host_bounding() & ~(-want)
    assert eff == want and bnd == want and int(_status(out, "CapPrm"), 16) == want, out
    assert _status(out, "CapInh") == _status(out, "CapAmb") == "0000000000000000"


def test_unknown_capability_is_refused(daemon) -> None:  # noqa: ANN001
    code, msg = run(daemon, "true", HostConfig={"CapAdd": ["CAP_NOPE"]})
    assert code == -1 and msg == 'invalid CapAdd: unknown capability: "CAP_NOPE"'


def test_no_new_privileges_blocks_setuid(daemon, probes: str) -> None:  # noqa: ANN001
    script = "cp /p/euid /tmp/e && chmod 4755 /tmp/e && chmod 1777 /tmp && su nobody -s /bin/sh -c /tmp/e"
    code, out = run(daemon, script, HostConfig=probe_mount(probes))
    assert out.strip() == "euid=0", out  # the setuid bit works by default, as in Docker
    code, out = run(daemon, script + "; grep NoNewPrivs /proc/self/status",
                    HostConfig={**probe_mount(probes), "SecurityOpt": ["no-new-privileges"]})  # fmt: skip
    assert out.splitlines()[0] == "euid=65534" and _status(out, "NoNewPrivs") == "1", out


def test_rlimits(daemon) -> None:  # noqa: ANN001
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    code, out = run(daemon, "ulimit -n; ulimit -Hn")
    assert out.split() == [str(soft), str(hard)]  # inherited from the daemon, never raised
    code, out = run(daemon, "ulimit -n; ulimit -Hn; ulimit -Hu",
                    HostConfig={"Ulimits": [{"Name": "nofile", "Soft": 100, "Hard": 200},
                                            {"Name": "nproc", "Soft": 50, "Hard": 60}]})  # fmt: skip
    assert out.split() == ["100", "200", "60"]
    code, msg = run(daemon, "true", HostConfig={"Ulimits": [{"Name": "nofile", "Soft": 1, "Hard": hard + 1}]})
    assert code == -1 and "exceeds the daemon's hard limit" in msg


# --- what a container starts with ---------------------------------------------------------------
def test_environment_and_descriptors(daemon) -> None:  # noqa: ANN001
    # the test daemon runs with PYTHONPATH and DOCKYARD_LOOP_GUARD in its environment
    code, out = run(daemon, "env | sort", Env=["FOO=bar"])
    hostname = out.split("HOSTNAME=")[1].split()[0]
    assert sorted(out.split()) == sorted([f"HOSTNAME={hostname}", "FOO=bar", "HOME=/root", "PWD=/", "SHLVL=1",
                                          "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]), out
    # PID 1 (and, with --init, its child) holds only 0, 1, 2; so does an exec'd process
    for hc, cfg in (({}, {}), ({"Init": True}, {}), ({}, {"Tty": True, "OpenStdin": True})):
        cid = start(daemon, ["sleep", "60"], HostConfig=hc, **cfg)
        try:
            code, out = exec_(daemon, cid, ["sh", "-c", "for p in /proc/[0-9]*; do [ $p = /proc/$$ ] || "
                                            "echo $p $(ls $p/fd | tr '\\n' ' ') $(tr '\\0' ' ' < $p/environ); done; "
                                            "sleep 30 & p=$!; echo /proc/exec $(ls /proc/$p/fd | tr '\\n' ' '); "
                                            "kill $p; env"])  # fmt: skip
            assert "PYTHONPATH" not in out and "DOCKYARD" not in out, out
            lines = [x.split() for x in out.splitlines() if x.startswith("/proc/")]
            assert all(x[1:4] == ["0", "1", "2"] and not x[4:5] or not x[4].isdigit() for x in lines), out
            assert {"/proc/1", "/proc/exec"} <= {x[0] for x in lines} and "HOME=/root" in out, out
        finally:
            daemon.api("DELETE", f"/containers/{cid}?force=1")


def test_home_follows_the_user(daemon) -> None:  # noqa: ANN001
    assert run(daemon, "echo $HOME", User="nobody")[1].strip() == "/nonexistent"
    assert run(daemon, "echo $HOME", User="4321")[1].strip() == "/"
    assert run(daemon, "echo $HOME", Env=["HOME=/custom"])[1].strip() == "/custom"


# --- PID 1 and signals ----------------------------------------------------------------------------------
def _wait_running(daemon, cid: str) -> None:  # noqa: ANN001
    for _ in range(100):
        code, out = exec_(daemon, cid, ["true"])
        if code == 0:
            return
        time.sleep(0.05)


def test_stop_kills_a_pid1_that_ignores_sigterm(daemon) -> None:  # noqa: ANN001
    cid = start(daemon, ["sh", "-c", "sleep 1000"])
    try:
        _wait_running(daemon, cid)
        st, _ = daemon.api("POST", f"/containers/{cid}/stop?t=1")
        assert st == 204
        st, c = daemon.api("GET", f"/containers/{cid}/json")
        assert c["State"]["ExitCode"] == 137 and not c["State"]["Running"]  # SIGKILL after the timeout
    finally:
        daemon.api("DELETE", f"/containers/{cid}?force=1")


def test_init_forwards_signals_and_reaps_zombies(daemon) -> None:  # noqa: ANN001
    # without --init a PID 1 that never waits collects zombies; docker-init (tini) reaps them
    for init, zombies in ((False, True), (True, False)):
        cid = start(daemon, ["sh", "-c", 'sh -c "sleep 0.1 &"; exec sleep 1000'], HostConfig={"Init": init})
        try:
            for _ in range(200):  # until the orphaned `sleep 0.1` has exited (reaped, or a zombie)
                code, out = exec_(daemon, cid, ["ps", "-o", "stat,args"])
                procs = [line.split()[1:] for line in out.splitlines() if not line.startswith("Z")]
                if ["sleep", "1000"] in procs and ["sleep", "0.1"] not in procs:
                    break
                time.sleep(0.05)
            assert any(line.startswith("Z") for line in out.splitlines()) == zombies, out
        finally:
            daemon.api("DELETE", f"/containers/{cid}?force=1")
    cid = start(daemon, ["sh", "-c", "trap 'echo got-usr1; exit 3' USR1; while :; do sleep 0.1; done"],
                HostConfig={"Init": True})  # fmt: skip
    try:
        _wait_running(daemon, cid)
        daemon.api("POST", f"/containers/{cid}/kill?signal=USR1")
        st, r = daemon.api("POST", f"/containers/{cid}/wait")
        st, logs = daemon.api("GET", f"/containers/{cid}/logs?stdout=1")
        assert r["StatusCode"] == 3 and b"got-usr1" in logs
        cid2 = start(daemon, ["sleep", "1000"], HostConfig={"Init": True})
        daemon.api("POST", f"/containers/{cid2}/stop?t=10")
        st, c = daemon.api("GET", f"/containers/{cid2}/json")
        daemon.api("DELETE", f"/containers/{cid2}?force=1")
        assert c["State"]["ExitCode"] == 143  # SIGTERM reached sleep through tini
    finally:
        daemon.api("DELETE", f"/containers/{cid}?force=1")


def test_exit_codes_126_and_127(daemon) -> None:  # noqa: ANN001
    for cmd, code, words in ((["nonexistent"], 127, 'exec: "nonexistent": executable file not found in $PATH'),
                             (["/no/such/file"], 127, "no such file or directory"),
                             (["/etc/passwd"], 126, 'exec: "/etc/passwd": permission denied'),
                             (["/etc"], 126, 'exec: "/etc": is a directory')):  # fmt: skip
        st, r = daemon.api("POST", "/containers/create", {"Image": "busybox", "Cmd": cmd})
        cid = r["Id"]
        try:
            st, r = daemon.api("POST", f"/containers/{cid}/start")
            assert st == 400 and words in r["message"], r
            st, c = daemon.api("GET", f"/containers/{cid}/json")
            assert c["State"]["ExitCode"] == code, (cmd, c["State"])
        finally:
            daemon.api("DELETE", f"/containers/{cid}?force=1")
    # a file the kernel cannot execute: runc's init reports it on stderr and exits 1
    img = import_image(daemon, busybox_with([regular("x", b"\x7fELFjunk", mode=0o755)]), "dyt-badexe:latest")
    code, out = run(daemon, ["/x"], image=img)
    assert (code, out.strip()) == (1, "exec /x: exec format error")
