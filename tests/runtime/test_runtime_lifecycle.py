"""create/start/state/kill/delete, run, exit codes, signals, pid files, list and ps, against the
real kernel with the real `dockyard-runc` launcher."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

from rtutil import RUNC, cgroup_dirs, errmsg, proc_state, read, wait_for


def test_run_true_exits_zero_and_leaves_nothing(rt):
    b, cid = rt.bundle(["true"])
    r = rt.run(b, cid)
    assert r.returncode == 0, r.stderr
    assert not os.path.exists(os.path.join(rt.root, cid))
    assert cgroup_dirs(cid) == []


def test_run_exit_code_and_output(rt):
    b, cid = rt.bundle(["sh", "-c", "echo out; echo err >&2; exit 7"])
    r = rt.run(b, cid)
    assert r.returncode == 7
    assert r.stdout == "out\n"
    assert r.stderr == "err\n"


def test_run_killed_by_signal_is_128_plus_n(rt):
    # (PID 1 of a namespace cannot SIGKILL itself: the signal comes from outside, via `kill`)
    b, cid = rt.bundle(["sh", "-c", "echo up; exec sleep 1000"])
    rt.ids.append(cid)
    p = subprocess.Popen([RUNC, "--root", rt.root, "run", "--bundle", b, cid], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline() == "up\n"
        rt.cmd("kill", cid, "KILL")
        p.communicate(timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 128 + 9
    assert not os.path.exists(os.path.join(rt.root, cid))


def test_run_forwards_sigterm_to_the_container(rt):
    script = "trap 'echo got-term; exit 42' TERM; echo ready; while true; do sleep 0.05; done"
    b, cid = rt.bundle(["sh", "-c", script])
    rt.ids.append(cid)
    p = subprocess.Popen([RUNC, "--root", rt.root, "run", "--bundle", b, cid], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline() == "ready\n"
        p.send_signal(signal.SIGTERM)
        out, _ = p.communicate(timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert "got-term" in out
    assert p.returncode == 42


def test_run_pid1_is_the_command(rt):
    b, cid = rt.bundle(["sh", "-c", "echo $$; cat /proc/1/cmdline | tr '\\0' ' '"])
    r = rt.run(b, cid)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "1"
    assert lines[1].startswith("sh -c")


def test_run_missing_executable_fails_at_create_with_runc_message(rt):
    b, cid = rt.bundle(["no-such-program"])
    r = rt.run(b, cid)
    assert r.returncode != 0
    assert errmsg(r.stderr) == 'exec: "no-such-program": executable file not found in $PATH'
    assert not os.path.exists(os.path.join(rt.root, cid))
    assert cgroup_dirs(cid) == []


def test_create_start_state_kill_delete(rt, tmp_path):
    marker = "/tmp/started"
    b, cid = rt.bundle(["sh", "-c", f"touch {marker}; exec sleep 1000"])
    rt.create(b, cid, "--pid-file", str(tmp_path / "pid"))
    st = rt.state(cid)
    assert st["status"] == "created"
    assert st["id"] == cid and st["bundle"] == b and st["ociVersion"]
    pid = st["pid"]
    assert int((tmp_path / "pid").read_text()) == pid
    # the process waits before exec: the program has not run yet
    assert not os.path.exists(os.path.join(b, "rootfs", marker.lstrip("/")))
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        assert b"sleep" not in f.read()

    rt.cmd("start", cid)
    rt.wait_status(cid, "running")
    deadline = time.monotonic() + 5
    while not os.path.exists(os.path.join(b, "rootfs", marker.lstrip("/"))) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert os.path.exists(os.path.join(b, "rootfs", marker.lstrip("/")))
    assert rt.state(cid)["pid"] == pid  # the init became the program: PID 1 is the user's process

    r = rt.cmd("start", cid, check=False)
    assert r.returncode == 1 and "cannot start an already running container" in r.stderr
    r = rt.cmd("delete", cid, check=False)
    assert r.returncode == 1 and "is not stopped: running" in r.stderr

    rt.cmd("kill", cid, "KILL")
    rt.wait_status(cid, "stopped")
    assert rt.state(cid)["pid"] == 0
    r = rt.cmd("kill", cid, check=False)
    assert "container not running" in r.stderr
    rt.cmd("delete", cid)
    assert not os.path.exists(os.path.join(rt.root, cid))
    assert cgroup_dirs(cid) == []
    r = rt.cmd("state", cid, check=False)
    assert r.returncode == 1 and "container does not exist" in r.stderr


def test_kill_signal_names_and_numbers(rt):
    b, cid = rt.bundle(["sh", "-c", "trap 'echo usr1 >> /tmp/log' USR1; trap 'exit 0' TERM; "
                                    "while true; do sleep 0.05; done"])
    rt.create(b, cid)
    rt.cmd("start", cid)
    rt.wait_status(cid, "running")
    time.sleep(0.2)
    for sig in ("USR1", "SIGUSR1", "10"):
        rt.cmd("kill", cid, sig)
        time.sleep(0.15)
    log = os.path.join(b, "rootfs/tmp/log")
    wait_for(lambda: os.path.exists(log) and read(log).count("usr1") >= 3, 5)
    assert read(log).count("usr1") == 3
    r = rt.cmd("kill", cid, "NOPE", check=False)
    assert r.returncode == 1 and errmsg(r.stderr) == 'unknown signal "NOPE"'
    rt.cmd("kill", cid)  # SIGTERM by default
    rt.wait_status(cid, "stopped")
    rt.cmd("delete", cid)


def test_kill_all_signals_every_process(rt):
    b, cid = rt.bundle(["sh", "-c", "sleep 1000 & sleep 1000 & wait"])
    rt.create(b, cid)
    rt.cmd("start", cid)
    rt.wait_status(cid, "running")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and len(json.loads(rt.cmd("ps", "--format", "json", cid).stdout)) < 3:
        time.sleep(0.05)
    pids = json.loads(rt.cmd("ps", "--format", "json", cid).stdout)
    assert len(pids) == 3
    rt.cmd("kill", "--all", cid, "KILL")
    rt.wait_status(cid, "stopped")
    for p in pids:
        assert proc_state(p) in ("gone", "Z")
    rt.cmd("delete", cid)


def test_delete_force_kills_running_container(rt):
    b, cid = rt.bundle(["sleep", "1000"])
    rt.create(b, cid)
    rt.cmd("start", cid)
    pid = rt.state(cid)["pid"]
    rt.cmd("delete", "--force", cid)
    assert not os.path.exists(os.path.join(rt.root, cid))
    assert cgroup_dirs(cid) == []
    assert proc_state(pid) in ("gone", "Z")


def test_delete_of_created_container_needs_no_force(rt):
    b, cid = rt.bundle(["true"])
    rt.create(b, cid)
    rt.cmd("delete", cid)
    assert cgroup_dirs(cid) == []


def test_duplicate_id_is_refused(rt):
    b, cid = rt.bundle(["sleep", "100"])
    rt.create(b, cid)
    r = rt.create(b, cid, check=False)
    assert r.returncode == 1 and f"container with id exists: {cid}" in r.stderr
    assert rt.status(cid) == "created"


def test_bad_bundle_errors(rt, tmp_path):
    r = rt.cmd("create", "--bundle", str(tmp_path), "dyt-nocfg", check=False)
    assert r.returncode == 1 and "JSON specification file config.json not found" in r.stderr
    r = rt.cmd("create", "--bundle", str(tmp_path), "bad/id", check=False)
    assert r.returncode == 1 and "invalid id format" in r.stderr
    b, cid = rt.bundle(mutate=lambda c: c["root"].update(path="/nonexistent-rootfs"))
    r = rt.cmd("create", "--bundle", b, cid, check=False)
    assert "rootfs (/nonexistent-rootfs) does not exist" in r.stderr
    assert not os.path.exists(os.path.join(rt.root, cid))


def test_list_and_ps(rt):
    b, cid = rt.bundle(["sleep", "1000"])
    rt.create(b, cid)
    out = rt.cmd("list").stdout.splitlines()
    assert out[0].split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    assert any(line.split()[0] == cid and line.split()[2] == "created" for line in out[1:])
    assert rt.cmd("list", "-q").stdout.split() == [cid]
    items = json.loads(rt.cmd("list", "--format", "json").stdout)
    assert items[0]["id"] == cid and items[0]["status"] == "created" and items[0]["pid"] > 0
    rt.cmd("start", cid)
    pid = rt.state(cid)["pid"]
    assert json.loads(rt.cmd("ps", "--format", "json", cid).stdout) == [pid]
    table = rt.cmd("ps", cid).stdout.splitlines()
    assert "PID" in table[0].split() and len(table) == 2 and "sleep" in table[1]


def test_run_detach_then_delete(rt):
    b, cid = rt.bundle(["sleep", "1000"])
    r = rt.cmd("run", "-d", "--bundle", b, cid, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
               capture_output=False)
    rt.ids.append(cid)
    assert r.returncode == 0
    assert rt.status(cid) == "running"
    rt.cmd("delete", "-f", cid)


def test_run_keep_leaves_a_stopped_container(rt):
    b, cid = rt.bundle(["true"])
    assert rt.run(b, cid, "--keep").returncode == 0
    assert rt.status(cid) == "stopped"
    rt.cmd("delete", cid)
    assert cgroup_dirs(cid) == []


def test_zombies_are_reaped_and_orphans_adopted(rt):
    # PID 1 (sh) forks a child that forks a grandchild and exits: orphans go to PID 1 and the
    # container still ends cleanly with PID 1's status
    b, cid = rt.bundle(["sh", "-c", "(sleep 0.2 &) ; sleep 0.5; exit 3"])
    assert rt.run(b, cid).returncode == 3


def test_version_and_help():
    r = subprocess.run([RUNC, "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and "dockyard-runc version" in r.stdout
    r = subprocess.run([RUNC, "--help"], capture_output=True, text=True)
    assert "create" in r.stdout and "exec" in r.stdout
    r = subprocess.run([RUNC, "frobnicate"], capture_output=True, text=True)
    assert r.returncode == 1 and "frobnicate" in r.stderr


def test_sigterm_stops_a_created_container(rt):
    b, cid = rt.bundle(["sleep", "1000"])
    rt.create(b, cid)
    rt.cmd("kill", cid, "TERM")
    rt.wait_status(cid, "stopped")
    rt.cmd("delete", cid)
    assert cgroup_dirs(cid) == []


def test_log_file_in_json(rt, tmp_path):
    log = tmp_path / "log.json"
    r = rt.cmd("--log", str(log), "--log-format", "json", "state", "dyt-missing", check=False)
    # (global flags after --root: runc accepts them anywhere before the verb)
    assert r.returncode == 1
    entry = json.loads(log.read_text().splitlines()[-1])
    assert entry["level"] == "error" and entry["msg"] == "container does not exist: dyt-missing" and entry["time"]
