"""e2e tests: third-party clients against our daemon. Like tests/api, each test fails if the daemon
blocked its event loop while serving it (DOCKYARD_LOOP_GUARD=warn only prints it)."""

from __future__ import annotations

import os
import sys

import pytest

from support.daemon import TestDaemon


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
