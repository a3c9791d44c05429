"""`exec` into running containers, and terminals: --console-socket with a real pty (SCM_RIGHTS),
and `run`/`exec -t` relaying a pty to our own terminal."""

from __future__ import annotations

import array
import json
import os
import socket
import subprocess
import time

import pexpect
from rtutil import RUNC, chown_tree, errmsg, read, userns, wait_for


def running(rt, args=("sleep", "1000"), mutate=None):
    b, cid = rt.bundle(list(args), mutate=mutate)
    rt.create(b, cid)
    rt.cmd("start", cid)
    return b, cid


def test_exec_output_exit_code_and_namespaces(rt):
    b, cid = running(rt)
    r = rt.cmd("exec", cid, "sh", "-c", "echo hi; hostname; tr '\\0' ' ' < /proc/1/cmdline; echo; exit 5", check=False)
    assert r.returncode == 5
    out = r.stdout.split("\n")
    assert out[0] == "hi" and out[1] == "dyt-box" and out[2] == "sleep 1000 "
    pid = rt.state(cid)["pid"]
    r = rt.cmd("exec", cid, "sh", "-c", "for n in pid net ipc uts mnt; do readlink /proc/self/ns/$n; done")
    assert r.stdout.split() == [os.readlink(f"/proc/{pid}/ns/{n}") for n in ("pid", "net", "ipc", "uts", "mnt")]
    # the exec'd process is in the container's cgroup while it runs
    r = rt.cmd("exec", cid, "cat", "/proc/self/cgroup")
    assert any(line.endswith("/" + cid) for line in r.stdout.splitlines() if ":pids:" in line)


def test_exec_env_cwd_user_caps(rt):
    b, cid = running(rt)
    r = rt.cmd("exec", "--env", "FOO=bar", "-e", "BAZ=qux", "--cwd", "/tmp", "--user", "1000:1001", cid,
               "sh", "-c", "echo $FOO $BAZ; echo $PATH; pwd; id -u; id -g")
    assert r.stdout.splitlines() == ["bar qux", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "/tmp",
                                     "1000", "1001"]
    r = rt.cmd("exec", "--cap", "CAP_SYS_ADMIN", cid, "grep", "CapEff", "/proc/self/status")
    assert int(r.stdout.split()[1], 16) & (1 << 21)
    r = rt.cmd("exec", cid, "grep", "CapEff", "/proc/self/status")
    assert r.stdout.split()[1] == "00000000a80425fb"  # the container's capabilities by default


def test_exec_process_file(rt, tmp_path):
    b, cid = running(rt)
    proc = {"args": ["sh", "-c", "echo $X; pwd; id -u"], "env": ["X=from-file", "PATH=/bin"], "cwd": "/etc",
            "user": {"uid": 7, "gid": 7}, "terminal": False}
    (tmp_path / "p.json").write_text(json.dumps(proc))
    r = rt.cmd("exec", "--process", str(tmp_path / "p.json"), cid)
    assert r.stdout.split() == ["from-file", "/etc", "7"]


def test_exec_detach_pid_file(rt, tmp_path):
    b, cid = running(rt)
    pidfile = tmp_path / "exec.pid"
    r = rt.cmd("exec", "-d", "--pid-file", str(pidfile), cid, "sleep", "500",
               capture_output=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert r.returncode == 0
    pid = int(pidfile.read_text())
    assert "sleep" in read(f"/proc/{pid}/cmdline")
    assert pid in json.loads(rt.cmd("ps", "--format", "json", cid).stdout)
    rt.cmd("delete", "-f", cid)
    assert wait_for(lambda: not os.path.exists(f"/proc/{pid}") or
                    read(f"/proc/{pid}/stat").rsplit(")", 1)[1].split()[0] == "Z", 5)


def test_exec_errors(rt):
    b, cid = running(rt)
    r = rt.cmd("exec", cid, "no-such-cmd", check=False)
    assert r.returncode != 0 and errmsg(r.stderr) == 'exec: "no-such-cmd": executable file not found in $PATH'
    r = rt.cmd("exec", cid, check=False)
    assert r.returncode == 1 and "exec args cannot be empty" in r.stderr
    rt.cmd("kill", cid, "KILL")
    rt.wait_status(cid, "stopped")
    r = rt.cmd("exec", cid, "true", check=False)
    assert r.returncode == 1 and "cannot exec in a stopped container" in r.stderr
    r = rt.cmd("exec", "dyt-nonexistent", "true", check=False)
    assert "container does not exist" in r.stderr


def test_exec_joins_the_user_namespace(public_rt):
    rt = public_rt
    b, cid = rt.bundle(["sleep", "1000"], mutate=userns)
    chown_tree(os.path.join(b, "rootfs"), 165536)
    rt.create(b, cid)
    rt.cmd("start", cid)
    r = rt.cmd("exec", cid, "sh", "-c", "cat /proc/self/uid_map; id -u")
    assert r.stdout.split() == ["0", "165536", "65536", "0"]
    pid = json.loads(rt.cmd("ps", "--format", "json", cid).stdout)[0]
    assert os.stat(f"/proc/{pid}").st_uid == 165536


# --- terminals ------------------------------------------------------------------------------------
def recv_master(sock: socket.socket) -> tuple[int, bytes]:
    conn, _ = sock.accept()
    with conn:
        fds = array.array("i")
        msg, anc, _flags, _addr = conn.recvmsg(4096, socket.CMSG_SPACE(4))
        for level, kind, data in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(data[: 4])
        assert len(fds) == 1
        return fds[0], msg


def read_until(fd: int, needle: bytes, timeout: float = 10) -> bytes:
    buf = b""
    deadline = time.monotonic() + timeout
    os.set_blocking(fd, False)
    while needle not in buf and time.monotonic() < deadline:
        try:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            buf += chunk
        except BlockingIOError:
            time.sleep(0.02)
        except OSError:  # EIO: the slave side closed
            break
    return buf


def test_create_with_console_socket_sends_a_real_pty(rt, tmp_path):
    path = str(tmp_path / "console.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    srv.settimeout(20)
    b, cid = rt.bundle(["sh", "-c", "tty; ls -l /dev/console | cut -c1; stty size; echo done-$((6*7)); read x; echo got-$x"],
                       mutate=lambda c: c["process"].update(terminal=True, consoleSize={"height": 33, "width": 111}))
    rt.ids.append(cid)
    p = subprocess.Popen([RUNC, "--root", rt.root, "create", "--bundle", b, "--console-socket", path, cid],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        master, name = recv_master(srv)
        assert p.wait(timeout=20) == 0, p.stderr.read()
    finally:
        if p.poll() is None:
            p.kill()
        srv.close()
    try:
        assert name.startswith(b"/dev/pts/")
        assert os.isatty(master)
        rt.cmd("start", cid)
        out = read_until(master, b"done-42")
        assert b"/dev/pts/0" in out
        assert b"\nc" in out.replace(b"\r", b"")  # /dev/console is the pty (a character device)
        assert b"33 111" in out  # process.consoleSize
        os.write(master, b"abc\n")
        out = read_until(master, b"got-abc")
        assert b"got-abc" in out
    finally:
        os.close(master)
    rt.wait_status(cid, "stopped")
    rt.cmd("delete", cid)


def test_terminal_without_console_socket_is_refused_for_create(rt):
    b, cid = rt.bundle(["sh"], mutate=lambda c: c["process"].update(terminal=True))
    r = rt.create(b, cid, check=False)
    assert r.returncode == 1
    assert "cannot allocate tty if runc will detach without setting console socket" in r.stderr


def test_run_with_terminal_relays_our_tty(rt):
    b, cid = rt.bundle(["sh"], mutate=lambda c: c["process"].update(terminal=True))
    rt.ids.append(cid)
    child = pexpect.spawn(RUNC, ["--root", rt.root, "run", "--bundle", b, cid], timeout=20, encoding="utf-8")
    try:
        child.expect(r"[#$] ")
        child.sendline("echo $((6*7)); tty")
        child.expect("42")
        child.expect("/dev/pts/0")
        child.sendline("exit 3")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 3


def test_exec_tty_relay_and_console_socket(rt, tmp_path):
    b, cid = running(rt)
    child = pexpect.spawn(RUNC, ["--root", rt.root, "exec", "-t", cid, "sh", "-c", "tty; echo $((2+3)); exit 4"],
                          timeout=20, encoding="utf-8")
    try:
        child.expect("/dev/pts/")
        child.expect("5")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 4
    path = str(tmp_path / "c.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    srv.settimeout(20)
    p = subprocess.Popen([RUNC, "--root", rt.root, "exec", "-d", "-t", "--console-socket", path, cid, "sh", "-c",
                          "echo exec-tty-ok; sleep 1"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    try:
        master, _ = recv_master(srv)
        assert p.wait(timeout=20) == 0, p.stderr.read()
    finally:
        if p.poll() is None:
            p.kill()
        srv.close()
    try:
        assert b"exec-tty-ok" in read_until(master, b"exec-tty-ok")
    finally:
        os.close(master)
