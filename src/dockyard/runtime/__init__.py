"""runtime/: `dockyard-runc`, a runc-compatible OCI runtime (runtime-spec 1.0.x, Linux).

Modules, from the command line down:
  cli.py        the command line (options.py: the parser; log.py: error output)
  create.py     create: fork, cgroups, id maps, hooks, state; run.py: run (+ signal forwarding, tty relay)
  nsenter.py    the intermediate child: join/create namespaces, fork the init
  init.py       the container's PID 1: rootfs, hostname, wait on the exec FIFO, then the process
  process.py    the final steps shared with exec: rlimits, no_new_privs, seccomp, caps, uid/gid, execve
  exec_.py      exec into a running container
  lifecycle.py  start, kill, delete, pause, resume, destroy; queries.py: state, list, ps, events, update, spec
  plan.py       config → ordered rootfs operations (pure); rootfs.py executes them (openat2-confined)
  cgroups/      v1 and v2 drivers behind one Manager, one module per controller
  caps.py rlimits.py signals.py seccomp.py hooks.py console.py config.py state.py jsonfast.py defaults.py
  stats.py      container_stats(): cgroup statistics for the daemon

Only the standard library is imported (the launcher runs `python -S`), lazily, per verb.
"""
