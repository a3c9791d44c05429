"""`dockyard daemon [flags]`: exec the daemon (`python -m dockyard.daemon`) in the foreground.

Owns: finding the interpreter (the venv's python, `sys.executable` under the launcher) and the
source tree (from this package's location), and replacing the CLI process with the daemon so
signals (SIGTERM for a clean shutdown) reach it directly. Flags are passed through unparsed.
"""

from __future__ import annotations

import os
import sys

from dockyard.cli.command import Command, Ctx


def daemon_argv(args: list[str]) -> tuple[list[str], dict[str, str]]:
    import dockyard

    src = os.path.dirname(os.path.dirname(os.path.abspath(dockyard.__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return [sys.executable, "-m", "dockyard.daemon", *args], env


def daemon(ctx: Ctx, opts: object, args: list[str]) -> int:
    argv, env = daemon_argv(args)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(argv[0], argv, env)
    return 127  # not reached


DAEMON = Command("[OPTIONS]", daemon, raw=True)
