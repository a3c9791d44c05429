"""These tests share one daemon per module (busybox imported); every test fails if the daemon's
event loop ran blocking work while serving it (DOCKYARD_LOOP_GUARD=warn only prints it)."""

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
