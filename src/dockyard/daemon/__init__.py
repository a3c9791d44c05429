"""The Dockyard daemon: containers, their supervisor (shim), volumes, events, restart policies.

Entry point: `python -m dockyard.daemon` (daemon/main.py). Layout: config.py (flags and
daemon.json), daemon.py (the services), store.py + container.py (records), create.py,
lifecycle.py, monitor.py, remove.py, exec.py, attach.py, logs.py, archive.py, ops.py, stats.py,
inspect.py, system.py (verbs), oci_spec.py + seccomp.py (pure spec generation), shim.py +
runtime.py (processes), networking.py (the network seam), reconcile.py (start-up repair),
backend.py (what api/ calls).
"""
