"""Fixtures for CLI tests: one real daemon per module (tests/support/daemon.py) and a helper
that runs the real `dockyard` launcher against it."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest
from cliutil import CLI, REPO  # noqa: E402


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
