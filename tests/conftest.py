"""Suite-wide fixtures: a busybox root filesystem, and a leak check over the whole run.

Conventions every test follows (see docs/testing.md):
- tests run as root against the real kernel; each test uses its own data root, exec root and
  socket under a temp dir, and names its bridges, cgroups and nft tables with a unique `dyt` prefix;
- a test removes what it creates even when it fails (fixtures with finalisers);
- only processes the test started are stopped, by PID.
"""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from dockyard.image.busybox_rootfs import build_busybox_rootfs  # noqa: E402
from support import leaks  # noqa: E402

_BEFORE: dict[str, set[str]] = {}


def _is_controller(config: pytest.Config) -> bool:
    return not hasattr(config, "workerinput")


def pytest_sessionstart(session: pytest.Session) -> None:
    if os.geteuid() != 0:
        pytest.exit("the Dockyard suite runs as root (it creates namespaces, mounts and cgroups)", 2)
    if _is_controller(session.config):
        _BEFORE.update(leaks.snapshot())


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not _is_controller(session.config) or not _BEFORE:
        return
    left = leaks.diff(_BEFORE, leaks.snapshot())
    if left:
        lines = [f"  {kind}: {', '.join(sorted(items))}" for kind, items in left.items()]
        sys.stderr.write("\nLEAK CHECK FAILED: the suite left these behind:\n" + "\n".join(lines) + "\n")
        session.exitstatus = 1


@pytest.fixture(scope="session")
def busybox_rootfs(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A read-only-by-convention busybox rootfs shared by the session (copy it to modify it)."""
    return build_busybox_rootfs(str(tmp_path_factory.mktemp("busybox") / "rootfs"))
