"""Fixtures shared by the test folders that drive a real daemon (api, daemon, e2e, security):
`daemon`, one busybox daemon per module, and `_loop_guard`, which fails a test when the daemon ran
blocking work on its event loop while serving it (DOCKYARD_LOOP_GUARD=warn only prints it).

A conftest takes them with `from support.daemon_fixtures import _loop_guard, daemon`."""

from __future__ import annotations

import os
import sys

import pytest

from support.daemon import TestDaemon, busybox_daemon


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    d = busybox_daemon(str(tmp_path_factory.mktemp("daemon")))
    yield d
    d.cleanup()


@pytest.fixture(autouse=True)
def _loop_guard(request: pytest.FixtureRequest):  # noqa: ANN202
    yield
    if "daemon" not in request.fixturenames:
        return
    d: TestDaemon = request.getfixturevalue("daemon")
    found = d.loop_violations()
    if found:
        open(d.guardfile, "w").close()  # type: ignore[arg-type]
        if os.environ.get("DOCKYARD_LOOP_GUARD") == "warn":
            sys.stderr.write("the daemon blocked its event loop:\n" + found[:4000])
            return
        pytest.fail("the daemon blocked its event loop:\n" + found[:4000])
