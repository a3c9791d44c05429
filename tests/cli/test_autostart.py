"""Daemon discovery: with no -H and no DOCKYARD_HOST, a silent default socket makes the CLI start
a daemon in the background, say so on stderr, and carry on; an explicit -H never does.

DOCKYARD_DEFAULT_HOST moves the default socket into the test's directory and
DOCKYARD_DAEMON_ARGS gives the started daemon private roots (the test daemon's flags), so the
machine's /run/dockyard and /var/lib/dockyard are never touched.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time

from cliutil import REPO, launcher


def test_autostart_on_default_socket_only(tmp_path) -> None:  # noqa: ANN001
    sys.path.insert(0, os.path.join(REPO, "tests"))
    from support.daemon import TestDaemon

    d = TestDaemon(str(tmp_path / "auto"))
    argv = d.command()
    h = argv.index("-H")
    daemon_args = argv[3:h] + argv[h + 2:]  # drop python -m dockyard.daemon and -H <socket>
    env = dict(os.environ, DOCKYARD_DEFAULT_HOST=d.host, DOCKYARD_DAEMON_ARGS=shlex.join(daemon_args),
               DOCKYARD_DAEMON_LOG=d.logfile, DOCKYARD_CONFIG=str(tmp_path / "cfg"))
    env.pop("DOCKYARD_HOST", None)
    try:
        explicit = subprocess.run([*launcher(), "-H", d.host, "ps"], capture_output=True, text=True, env=env, timeout=30)
        assert explicit.returncode == 1
        assert explicit.stderr.startswith(f"Cannot connect to the Dockyard daemon at {d.host}.")
        cp = subprocess.run([*launcher(), "ps"], capture_output=True, text=True, env=env, timeout=120)
        assert cp.returncode == 0, cp.stderr + d.log_tail()
        assert f"dockyard: no daemon answered at {d.host}; started one in the background" in cp.stderr
        assert cp.stdout.startswith("CONTAINER ID")
        again = subprocess.run([*launcher(), "version", "--format", "{{.Server.Version}}"], capture_output=True,
                               text=True, env=env, timeout=30)
        assert again.returncode == 0 and again.stderr == ""  # the daemon is reused, nothing said
    finally:
        try:
            with open(d.pidfile) as f:
                pid = int(f.read().strip())
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                assert d.data_root.encode() in f.read()  # the daemon this test started, nothing else
            os.kill(pid, signal.SIGTERM)
            for _ in range(200):
                os.kill(pid, 0)
                time.sleep(0.05)
        except (OSError, ValueError, AssertionError):
            pass
        d.cleanup()


def test_daemon_subcommand_execs_the_daemon() -> None:
    cp = subprocess.run([*launcher(), "daemon", "--help"], capture_output=True, text=True, timeout=60)
    assert cp.returncode == 0
    assert "--data-root" in cp.stdout and "--exec-root" in cp.stdout


def test_tcp_host_and_dockyard_host_env(tmp_path) -> None:  # noqa: ANN001
    import socket as pysocket

    sys.path.insert(0, os.path.join(REPO, "tests"))
    from support.daemon import TestDaemon

    with pysocket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    d = TestDaemon(str(tmp_path / "tcp"), args=["-H", f"tcp://127.0.0.1:{port}"])
    try:
        d.start()
        env = dict(os.environ, DOCKYARD_CONFIG=str(tmp_path / "cfg"))
        env.pop("DOCKYARD_HOST", None)
        cp = subprocess.run([*launcher(), "-H", f"tcp://127.0.0.1:{port}", "version", "--format", "{{.Server.ApiVersion}}"],
                            capture_output=True, text=True, env=env, timeout=30)
        assert (cp.returncode, cp.stdout) == (0, "1.43\n"), cp.stderr
        env["DOCKYARD_HOST"] = d.host
        env["DOCKER_HOST"] = "unix:///nonexistent/docker.sock"  # not read
        cp = subprocess.run([*launcher(), "ps", "-q"], capture_output=True, text=True, env=env, timeout=30)
        assert cp.returncode == 0 and cp.stderr == ""
        cp = subprocess.run([*launcher(), "-H", d.host, "-H", d.host, "ps"], capture_output=True, text=True, env=env, timeout=30)
        assert (cp.returncode, cp.stderr) == (1, "Specify only one -H\n")
    finally:
        d.cleanup()
