"""Fixtures for the security review tests: one busybox daemon per module, small static probe
programs (compiled once per session from probes/*.c, bind-mounted read-only into containers at
/p), image tars with hostile content, and the event-loop guard of tests/daemon."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from support.daemon_fixtures import _loop_guard, daemon  # noqa: E402, F401  (fixtures)

PROBE_SRC = os.path.join(os.path.dirname(__file__), "probes")


@pytest.fixture(scope="session")
def probes(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A directory with the static probe binaries (sysprobe, euid, exewatch)."""
    if not shutil.which("gcc") or not os.path.exists("/usr/lib/x86_64-linux-gnu/libc.a"):
        pytest.skip("gcc and a static libc are needed to build the probes")
    out = tmp_path_factory.mktemp("probes")
    os.chmod(out, 0o755)
    for src in sorted(os.listdir(PROBE_SRC)):
        if src.endswith(".c"):
            subprocess.run(["gcc", "-static", "-O2", "-pthread", "-o", str(out / src[:-2]), os.path.join(PROBE_SRC, src)],
                           check=True, capture_output=True)  # fmt: skip
    return str(out)
