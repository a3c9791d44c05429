"""e2e tests: third-party clients against our daemon. Like tests/api, each test fails if the daemon
blocked its event loop while serving it (see support/daemon_fixtures.py)."""

from support.daemon_fixtures import _loop_guard  # noqa: F401  (fixture)
