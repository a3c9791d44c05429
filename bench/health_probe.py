"""Health-check probes: Dockyard against dockerd, in the same run.

Starts, on private roots, a Dockyard daemon (tests/support/daemon.py) and Debian's dockerd with its
own containerd (`--bridge=none --iptables=false`), imports the same busybox image into both, and
runs in each, at the same time, one container with `--health-cmd true --health-interval 200ms
--network none`. For `--seconds` it polls inspect and collects every distinct probe result from
State.Health.Log, then prints for each engine:

  - probe duration (End - Start of each result: exec set-up, the process, the result; median, mean, p90)
  - time from the container's start to its first "healthy"
  - probes per second achieved, and the daemon's own CPU time per probe (dockyard daemon vs
    dockerd + containerd; the per-probe processes are not counted on either side)

and the ratios. Both containers run side by side, so machine drift hits both alike. Everything it
started is stopped by PID and removed.

    .venv/bin/python bench/health_probe.py [--seconds 20] [--runtime runc]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from cli_ps import RefDocker  # noqa: E402

from support.daemon import TestDaemon, busybox_tar  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(HERE), "src"))
from dockyard.daemon import timeutil  # noqa: E402

HEALTH = {"Test": ["CMD", "true"], "Interval": 200_000_000}


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Engine:
    def __init__(self, name: str, inspect, pids) -> None:  # noqa: ANN001
        self.name = name
        self.inspect = inspect
        self.pids = pids
        self.results: dict[str, dict] = {}
        self.started_ns = 0
        self.first_healthy_ns = 0
        self.cpu0 = 0.0
        self.cpu1 = 0.0

    def cpu(self) -> float:
        return sum(cpu_seconds(p) for p in self.pids())

    def poll(self) -> None:
        st = self.inspect()["State"]
        self.started_ns = timeutil.parse_ns(st["StartedAt"])
        for r in (st.get("Health") or {}).get("Log") or []:
            self.results[r["Start"]] = r
        if not self.first_healthy_ns and (st.get("Health") or {}).get("Status") == "healthy":
            self.first_healthy_ns = time.time_ns()


def summary(xs: list[float]) -> tuple[float, float, float]:
    xs = sorted(xs)
    return statistics.median(xs), statistics.mean(xs), xs[max(0, int(len(xs) * 0.9) - 1)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--runtime", default=None, help="Dockyard's runtime (default dockyard-runc; e.g. runc)")
    ns = ap.parse_args()
    root = tempfile.mkdtemp(prefix="dyt-bench-health-")
    d = TestDaemon(os.path.join(root, "dockyard"), runtime=ns.runtime, loop_guard=False)
    ref = RefDocker(os.path.join(root, "docker"))
    os.makedirs(ref.base)
    tar = os.path.join(root, "busybox.tar")
    with open(tar, "wb") as f:
        f.write(busybox_tar())
    try:
        d.import_image(busybox_tar(), "busybox:latest", changes=['CMD ["sh"]'])
        d.start()
        ref.start()
        ref.docker("import", "--change", 'CMD ["sh"]', tar, "busybox:latest")
        st, r = d.api("POST", "/containers/create", {"Image": "busybox", "Cmd": ["sleep", "3600"], "Healthcheck": HEALTH,
                                                     "HostConfig": {"NetworkMode": "none"}})  # fmt: skip
        assert st == 201, r
        dy_id = r["Id"]
        dk_id = ref.docker("create", "--network", "none", "--health-cmd", "true", "--health-interval", "200ms",
                           "busybox", "sleep", "3600").strip()  # fmt: skip
        dockerd_pid = int(open(os.path.join(ref.base, "docker.pid")).read())  # noqa: SIM115
        engines = [
            Engine("dockyard", lambda: d.api("GET", f"/containers/{dy_id}/json")[1], lambda: [d.pid]),
            Engine("docker", lambda: json.loads(ref.docker("inspect", dk_id))[0],
                   lambda: [dockerd_pid, ref.procs[0].pid]),
        ]  # fmt: skip
        for e in engines:
            e.cpu0 = e.cpu()
        d.api("POST", f"/containers/{dy_id}/start")
        ref.docker("start", dk_id)
        end = time.time() + ns.seconds
        while time.time() < end:
            for e in engines:
                e.poll()
            time.sleep(0.3)
        for e in engines:
            e.cpu1 = e.cpu()
        rows = {}
        print(f"health probes, CMD true every 200ms, {ns.seconds:.0f} s, both engines side by side "
              f"(Dockyard's runtime: {d.runtime})")
        for e in engines:
            durs = [(timeutil.parse_ns(r["End"]) - timeutil.parse_ns(r["Start"])) / 1e6 for r in e.results.values()]
            first = (e.first_healthy_ns - e.started_ns) / 1e6 if e.first_healthy_ns else float("nan")
            n = len(durs)
            cpu_ms = (e.cpu1 - e.cpu0) * 1000 / n if n else float("nan")
            med, mean, p90 = summary(durs) if durs else (float("nan"),) * 3
            rows[e.name] = (med, first, n / ns.seconds, cpu_ms)
            print(f"  {e.name:9s} probes {n:4d} ({n / ns.seconds:.1f}/s)  duration median {med:6.1f} ms  mean {mean:6.1f}"
                  f"  p90 {p90:6.1f}  first healthy after {first:6.0f} ms  daemon CPU {cpu_ms:5.1f} ms/probe")
        a, b = rows["dockyard"], rows["docker"]
        print(f"  ratio dockyard/docker: duration {a[0] / b[0]:.2f}x, first healthy {a[1] / b[1]:.2f}x, "
              f"daemon CPU per probe {a[3] / b[3]:.2f}x")
    finally:
        ref.stop()
        d.cleanup()
        import shutil

        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
