"""Fixtures for the runtime tests: bundles made from a base config plus overrides, and a driver
that runs the real `dockyard-runc` launcher with a private --root and removes every container it
made (delete --force), even when the test fails."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from rtutil import RT  # noqa: E402


@pytest.fixture
def rt(tmp_path, busybox_rootfs):
    r = RT(str(tmp_path), busybox_rootfs)
    try:
        yield r
    finally:
        r.cleanup()


@pytest.fixture
def public_rt(busybox_rootfs):
    """An RT whose files a user namespace's root may traverse (pytest's tmp dirs are 0700)."""
    import shutil
    import tempfile

    d = tempfile.mkdtemp(prefix="dyt-userns-", dir="/tmp")
    os.chmod(d, 0o755)
    r = RT(d, busybox_rootfs)
    try:
        yield r
    finally:
        r.cleanup()
        shutil.rmtree(d, ignore_errors=True)
