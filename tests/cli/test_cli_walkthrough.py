"""The seed's walkthrough through a real terminal (pexpect), plus the terminal behaviours:
raw mode, exit codes, window-size propagation, Ctrl-P Ctrl-Q detach and attach again.
"""

from __future__ import annotations

import os
import platform
import re

import pexpect
from cliutil import CLI

PROMPT = r"/ # "


def spawn(dy: CLI, *args: str, rows: int = 24, cols: int = 80) -> pexpect.spawn:
    argv = dy.argv(*args)
    return pexpect.spawn(argv[0], argv[1:], dimensions=(rows, cols), timeout=30, env=dy.env, encoding="utf-8")


def layer_dirs(daemon: object) -> set[str]:
    return set(os.listdir(os.path.join(daemon.data_root, "overlay2")))  # type: ignore[attr-defined]


def test_seed_walkthrough(daemon: object, dy: CLI) -> None:
    before = layer_dirs(daemon)
    c = spawn(dy, "run", "-it", "--name", "demo", "busybox", "sh")
    try:
        c.expect(PROMPT)
        c.sendline("uname -r")
        c.expect(re.escape(platform.release()))
        c.expect(PROMPT)
        c.sendline("ps -ef")
        c.expect(r"\n\s*1 root\s+(\d+:\d+ )?sh\r?\n")
        c.expect(PROMPT)
        cid = dy.ok("inspect", "-f", "{{.Id}}", "demo").strip()
        c.sendline("hostname")
        c.expect(cid[:12])
        c.expect(PROMPT)
        # the window size follows the local terminal
        c.sendline("stty size")
        c.expect("24 80")
        c.expect(PROMPT)
        c.setwinsize(33, 101)
        c.sendline("stty size")
        c.expect("33 101")
        c.expect(PROMPT)
        c.sendline("exit 7")
        c.expect(pexpect.EOF)
    finally:
        c.close()
    assert c.exitstatus == 7
    assert len(layer_dirs(daemon) - before) >= 1  # the container's init and rw layers
    status = dy.ok("ps", "-a", "--filter", "name=demo", "--format", "{{.Status}}")
    assert status.startswith("Exited (7) ")

    c = spawn(dy, "start", "-ai", "demo")
    try:
        c.expect(PROMPT)
        c.sendline("echo again-$((40+2))")
        c.expect("again-42")
        c.sendline("exit")
        c.expect(pexpect.EOF)
    finally:
        c.close()
    assert c.exitstatus == 0
    assert dy.ok("rm", "demo") == "demo\n"
    assert dy("inspect", "demo").returncode == 1
    assert layer_dirs(daemon) == before
    mounts = os.path.join(daemon.data_root, "image", "overlay2", "layerdb", "mounts", cid)  # type: ignore[attr-defined]
    assert not os.path.exists(mounts)


def test_detach_keys_and_attach(dy: CLI) -> None:
    c = spawn(dy, "run", "-it", "--name", "detachme", "busybox", "sh")
    try:
        c.expect(PROMPT)
        c.send("\x10\x11")  # Ctrl-P Ctrl-Q
        c.expect(pexpect.EOF)
    finally:
        c.close()
    assert c.exitstatus == 0
    try:
        assert dy.ok("inspect", "-f", "{{.State.Running}}", "detachme") == "true\n"
        c = spawn(dy, "attach", "--detach-keys", "ctrl-x,x", "detachme")
        try:
            c.sendline("echo back-$((1+1))")
            c.expect("back-2")
            c.send("\x18x")
            c.expect(pexpect.EOF)
        finally:
            c.close()
        assert c.exitstatus == 0
        assert dy.ok("inspect", "-f", "{{.State.Running}}", "detachme") == "true\n"
        c = spawn(dy, "attach", "detachme")
        try:
            c.sendline("exit 3")
            c.expect(pexpect.EOF)
        finally:
            c.close()
        assert c.exitstatus == 3
    finally:
        dy("rm", "-f", "detachme")


def test_exec_it_and_rm_flag(dy: CLI) -> None:
    dy.ok("run", "-d", "--name", "execit", "busybox", "sleep", "300")
    try:
        c = spawn(dy, "exec", "-it", "execit", "sh", rows=30, cols=90)
        try:
            c.expect(PROMPT)
            c.sendline("stty size; tty")
            c.expect("30 90")
            c.expect("/dev/pts/")
            c.sendline("exit 4")
            c.expect(pexpect.EOF)
        finally:
            c.close()
        assert c.exitstatus == 4
    finally:
        dy("rm", "-f", "execit")
    c = spawn(dy, "run", "--rm", "-it", "--name", "gone", "busybox", "sh", "-c", "echo bye")
    try:
        c.expect("bye")
        c.expect(pexpect.EOF)
    finally:
        c.close()
    assert c.exitstatus == 0
    assert dy("inspect", "gone").returncode == 1


def test_tty_without_terminal_is_refused(dy: CLI) -> None:
    cp = dy("run", "-it", "--rm", "busybox", "true", input="")
    assert cp.returncode == 1 and cp.stderr.strip() == "the input device is not a TTY"
