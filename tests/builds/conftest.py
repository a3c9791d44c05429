"""These tests share one busybox daemon per module; every test fails if the daemon's event loop
ran blocking work while serving it (see support/daemon_fixtures.py)."""

from support.daemon_fixtures import _loop_guard, daemon  # noqa: F401  (fixtures)
