"""Route modules of the Engine API, one per group. Each exposes `ROUTES`, a list of
`(method, path, handler)` with paths as in the API reference (unversioned).

To add a group: create `dockyard/api/routes/<group>.py` with `ROUTES` and add its name to
`MODULES`. A module that is not there yet is skipped.
"""

from __future__ import annotations

import importlib
from typing import Any

MODULES = ["system", "containers", "exec", "volumes", "images", "networks", "build"]


def all_routes() -> list[tuple[str, str, Any]]:
    out: list[tuple[str, str, Any]] = []
    for name in MODULES:
        try:
            mod = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"{__name__}.{name}":
                continue  # that group has not landed yet
            raise
        out += list(getattr(mod, "ROUTES", []))
    return out
