"""`make run` without a terminal: scripts/quickstart makes the busybox image if missing and prints
the seed's walkthrough (uname, PID 1, hostname, ps -a Exited, start -ai, rm) against a daemon."""

from __future__ import annotations

import os
import platform
import subprocess

from cliutil import CLI, REPO


def test_quickstart_walkthrough_without_tty(dy: CLI) -> None:
    dy("rmi", "-f", "busybox")  # the script must make it offline (mkimage busybox)
    env = dict(dy.env, DOCKYARD_HOST=dy.host)
    if len(dy.base) == 1:
        env["DOCKYARD"] = dy.base[0]
    cp = subprocess.run([os.path.join(REPO, "scripts", "quickstart")], stdin=subprocess.DEVNULL,
                        capture_output=True, text=True, env=env, timeout=300)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    out = cp.stdout
    assert "mkimage busybox" in out
    assert f"# uname -r\n{platform.release()}\n" in out
    ps = out.split("# ps -ef\n", 1)[1].split("# hostname", 1)[0]
    assert ps.splitlines()[1].split()[:3] == ["1", "root", "sh"]
    assert "Exited (0)" in out
    assert "again from " in out
    assert dy("inspect", "demo").returncode == 1  # removed at the end
    assert dy.ok("images", "-q", "busybox").strip()
