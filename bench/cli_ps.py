"""`dockyard ps` against `docker ps`: what a user waits for when listing containers.

Starts, on private roots, a Dockyard daemon (tests/support/daemon.py) and Debian's dockerd with
its own containerd (`--bridge=none --iptables=false`), imports the same busybox image into both,
creates the same containers (one running, two stopped), then times in paired rounds (the order
alternates each round, so machine drift hits both alike):

  1. dockyard ps -> Dockyard daemon   vs   docker ps -> dockerd     (the user-visible goal)
  2. dockyard ps -> dockerd           vs   docker ps -> dockerd     (the clients alone)

and prints median, mean and p90 wall time and the ratio (goal: dockyard within 1.5x of docker).
If hyperfine is installed it also runs it on case 1 for a second opinion. Everything it started
is stopped by PID and removed.

    .venv/bin/python bench/cli_ps.py [--rounds 60]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "src"))
sys.path.insert(0, os.path.join(REPO, "tests"))

from benchutil import stop_all  # noqa: E402

from support.daemon import TestDaemon, busybox_tar  # noqa: E402

DOCKER = shutil.which("docker") or "/usr/local/bin/docker"
PY = os.path.join(REPO, ".venv", "bin", "python")
DOCKYARD = [shutil.which("dockyard") or "/usr/local/bin/dockyard"]


def timed(argv: list[str]) -> float:
    devnull = os.open(os.devnull, os.O_RDWR)
    try:
        t0 = time.perf_counter()
        pid = os.posix_spawn(argv[0], argv, os.environ,
                             file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 0), (os.POSIX_SPAWN_DUP2, devnull, 1)])
        _, status = os.waitpid(pid, 0)
        dt = time.perf_counter() - t0
    finally:
        os.close(devnull)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(argv)} failed")
    return dt


class RefDocker:
    """dockerd + containerd on private roots, stopped by PID."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.sock = os.path.join(base, "docker.sock")
        self.host = "unix://" + self.sock
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        ctrd_sock = os.path.join(self.base, "containerd.sock")
        log = open(os.path.join(self.base, "containerd.log"), "ab")  # noqa: SIM115
        self.procs.append(subprocess.Popen(
            ["containerd", "--root", os.path.join(self.base, "ctrd-root"), "--state", os.path.join(self.base, "ctrd-state"),
             "--address", ctrd_sock], stdout=log, stderr=log, start_new_session=True))
        for _ in range(100):
            if os.path.exists(ctrd_sock):
                break
            time.sleep(0.05)
        log = open(os.path.join(self.base, "dockerd.log"), "ab")  # noqa: SIM115
        self.procs.append(subprocess.Popen(
            ["dockerd", "--data-root", os.path.join(self.base, "data"), "--exec-root", os.path.join(self.base, "exec"),
             "-H", self.host, "--pidfile", os.path.join(self.base, "docker.pid"), "--containerd", ctrd_sock,
             "--bridge=none", "--iptables=false", "--ip-masq=false"], stdout=log, stderr=log, start_new_session=True))
        for _ in range(400):
            if subprocess.run([DOCKER, "-H", self.host, "version"], capture_output=True).returncode == 0:
                return
            time.sleep(0.1)
        raise SystemExit("dockerd did not start; see " + self.base)

    def docker(self, *args: str, input: bytes | None = None) -> str:
        cp = subprocess.run([DOCKER, "-H", self.host, *args], input=input, capture_output=True, check=True)
        return cp.stdout.decode()

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            ids = self.docker("ps", "-aq").split()
            if ids:
                self.docker("rm", "-f", *ids)
        stop_all(self.procs)
        with open("/proc/self/mountinfo") as f:
            lines = f.read().splitlines()
        for line in lines:
            mp = line.split()[4]
            if mp.startswith(self.base):
                subprocess.run(["umount", "-l", mp], capture_output=True)


def stats(xs: list[float]) -> tuple[float, float, float]:
    xs = sorted(xs)
    return statistics.median(xs), statistics.mean(xs), xs[int(len(xs) * 0.9) - 1]


def paired(a: list[str], b: list[str], rounds: int) -> tuple[list[float], list[float]]:
    ta, tb = [], []
    for _ in range(5):
        timed(a)
        timed(b)
    for i in range(rounds):
        if i % 2:
            tb.append(timed(b))
            ta.append(timed(a))
        else:
            ta.append(timed(a))
            tb.append(timed(b))
    return ta, tb


def report(title: str, na: str, ta: list[float], nb: str, tb: list[float]) -> None:
    ma, mb = stats(ta), stats(tb)
    print(f"\n{title}")
    print(f"  {'':28} {'median':>8} {'mean':>8} {'p90':>8}")
    print(f"  {na:28} {ma[0] * 1000:7.1f}ms {ma[1] * 1000:7.1f}ms {ma[2] * 1000:7.1f}ms")
    print(f"  {nb:28} {mb[0] * 1000:7.1f}ms {mb[1] * 1000:7.1f}ms {mb[2] * 1000:7.1f}ms")
    print(f"  ratio (median): {ma[0] / mb[0]:.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=60)
    ns = ap.parse_args()
    base = tempfile.mkdtemp(prefix="dybench-ps-", dir="/tmp")
    dy = TestDaemon(os.path.join(base, "dockyard"))
    ref = RefDocker(os.path.join(base, "docker"))
    os.makedirs(ref.base)
    try:
        dy.import_image(busybox_tar(), "busybox:latest", changes=['CMD ["sh"]'])
        dy.start()
        ref.start()
        ref.docker("import", "-c", 'CMD ["sh"]', "-", "busybox:latest", input=busybox_tar())
        for host in (dy.host, ref.host):
            run = [*DOCKYARD, "-H", host]
            subprocess.run([*run, "run", "-d", "--name", "up", "busybox", "sleep", "600"], check=True, capture_output=True)
            subprocess.run([*run, "create", "--name", "made", "busybox"], check=True, capture_output=True)
            subprocess.run([*run, "run", "--name", "done", "busybox", "true"], check=True, capture_output=True)
        print(f"dockyard ps on {DOCKYARD[0]}; docker CLI {ref.docker('version', '--format', '{{.Client.Version}}').strip()}, "
              f"dockerd {ref.docker('version', '--format', '{{.Server.Version}}').strip()}; {ns.rounds} paired rounds")
        a = [*DOCKYARD, "-H", dy.host, "ps", "-a"]
        b = [DOCKER, "-H", ref.host, "ps", "-a"]
        ta, tb = paired(a, b, ns.rounds)
        report("1. each CLI against its own daemon", "dockyard ps -a (dockyard)", ta, "docker ps -a (dockerd)", tb)
        a2 = [*DOCKYARD, "-H", ref.host, "ps", "-a"]
        ta2, tb2 = paired(a2, b, ns.rounds)
        report("2. both CLIs against dockerd", "dockyard ps -a (dockerd)", ta2, "docker ps -a (dockerd)", tb2)
        if shutil.which("hyperfine"):
            print("\nhyperfine (case 1):")
            subprocess.run(["hyperfine", "-N", "--warmup", "5", "-r", str(ns.rounds), " ".join(a), " ".join(b)])
    finally:
        with contextlib.suppress(Exception):
            ids = subprocess.run([*DOCKYARD, "-H", dy.host, "ps", "-aq"], capture_output=True, text=True).stdout.split()
            if ids:
                subprocess.run([*DOCKYARD, "-H", dy.host, "rm", "-f", *ids], capture_output=True)
        dy.cleanup()
        ref.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
