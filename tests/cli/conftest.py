"""Fixtures for CLI tests: one real daemon per module (tests/support/daemon.py) and a helper
that runs the real `dockyard` launcher against it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator

import pytest

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


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    sys.path.insert(0, os.path.join(REPO, "tests"))
    from support.daemon import TestDaemon, busybox_tar

    d = TestDaemon(str(tmp_path_factory.mktemp("dytcli")))
    try:
        d.import_image(busybox_tar(), "busybox:latest", changes=['CMD ["sh"]'])
        d.start()
        yield d
    finally:
        d.cleanup()


@pytest.fixture(scope="module")
def dy(daemon: object, tmp_path_factory: pytest.TempPathFactory) -> CLI:
    return CLI(daemon.host, str(tmp_path_factory.mktemp("dyconfig")))  # type: ignore[attr-defined]
