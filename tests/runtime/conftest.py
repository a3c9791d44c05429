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
