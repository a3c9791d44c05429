"""Resource statistics of a container, for `dockyard-runc events --stats` and for the daemon
(`docker stats`). Import-light: the daemon calls it in a worker thread.

    from dockyard.runtime.stats import container_stats
    container_stats(container_id, root="/run/dockyard/runtime") -> dict

The dict has runc's `events --stats` "data" shape: "cpu" {"usage": {"total", "percpu",
"kernel", "user"} (nanoseconds), "throttling": {"periods", "throttledPeriods", "throttledTime"}},
"memory" {"usage": {"usage", "max", "failcnt", "limit"}, "swap", "kernel", "cache", "raw" (the
memory.stat counters), "oomKillCount"}, "pids" {"current", "limit"} and "blkio"
{"ioServiceBytesRecursive", "ioServicedRecursive": [{"major", "minor", "op", "value"}]}.
Raises dockyard.runtime.state.StateError if the container does not exist.
"""

from __future__ import annotations

from dockyard.runtime import state as st


def container_stats(container_id: str, root: str = st.DEFAULT_ROOT) -> dict:
    from dockyard.runtime.cgroups import manager_for_state

    c = st.load(root, container_id)
    return manager_for_state(c.data).stats()
