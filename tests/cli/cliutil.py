"""Helpers for CLI tests: the real `dockyard` launcher, run against a test daemon."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PYTHON = os.path.join(REPO, ".venv", "bin", "python")


def launcher() -> list[str]:
    """The installed launcher if it runs this tree's code, else the same thing spelled out."""
    path = shutil.which("dockyard")
    if path:
        try:
            with open(path) as f:
                if os.path.join(REPO, "src") in f.read():
                    return [path]
        except OSError:
            pass
    code = f"import sys; sys.path.insert(0, {os.path.join(REPO, 'src')!r}); from dockyard.cli.main import main; sys.exit(main())"
    return [PYTHON if os.path.exists(PYTHON) else sys.executable, "-S", "-c", code]


class CLI:
    """Runs `dockyard -H <daemon> ...` and returns the CompletedProcess (text mode)."""

    def __init__(self, host: str, config_dir: str) -> None:
        self.host = host
        self.base = launcher()
        self.env = dict(os.environ, DOCKYARD_CONFIG=config_dir)
        self.env.pop("DOCKYARD_HOST", None)

    def argv(self, *args: str) -> list[str]:
        return [*self.base, "-H", self.host, *args]

    def __call__(self, *args: str, input: str | bytes | None = None, timeout: float = 120,
                 check: bool = False) -> subprocess.CompletedProcess:
        text = not isinstance(input, bytes)
        cp = subprocess.run(self.argv(*args), input=input, capture_output=True, text=text, timeout=timeout,
                            env=self.env)
        if check and cp.returncode != 0:
            raise AssertionError(f"dockyard {' '.join(args)} -> {cp.returncode}\n{cp.stdout}\n{cp.stderr}")
        return cp

    def ok(self, *args: str, input: str | None = None, timeout: float = 120) -> str:
        return self(*args, input=input, timeout=timeout, check=True).stdout
