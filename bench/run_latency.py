"""`run --rm busybox true`: Dockyard vs podman (crun) vs docker (dockerd + its own containerd).

Everything runs on this machine in one call, on private roots, with the same busybox image
(built from the host's busybox-static and imported into each engine) and each engine's default
bridge network. Measured, in paired rounds (the engine order rotates every round so drift hits
all alike):

  1. one `run --rm busybox true` (CLI wall time): median, p90, ratio to docker (goal <= 0.5x)
     and the same with --network none
  2. 20 starts one after another, and 20 at once (wall time of the batch; goal <= 0.5x docker)
  3. daemon idle RSS: dockyard daemon vs dockerd + containerd (goal <= 0.5x)
  4. supervisor RSS per idle container: dockyard-shim vs containerd-shim-runc-v2 vs conmon
     (goal <= 3 MB)
  5. `dockyard ps` vs `docker ps`, each against its own daemon with the same containers
     (goal <= 1.5x)

dockerd and podman run inside network namespaces the bench creates (their bridges and iptables
rules stay there); crun runs inside `unshare -m` with /sys/fs/cgroup/unified unmounted (it
refuses this machine's hybrid cgroup layout otherwise); podman gets the ulimits this machine's
hard limits allow. Everything started is stopped by PID and removed.

    .venv/bin/python bench/run_latency.py [--rounds 15] [--batch 20] [--engines dockyard,podman,docker]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "src"))
sys.path.insert(0, os.path.join(REPO, "tests"))

from benchutil import stop_all  # noqa: E402

from support.daemon import TestDaemon  # noqa: E402

DOCKER = shutil.which("docker") or "/usr/local/bin/docker"
DOCKYARD = shutil.which("dockyard") or "/usr/local/bin/dockyard"
PODMAN_ULIMITS = ["--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768"]
IMAGE = "busybox:latest"


def sh(argv: list[str], check: bool = True, **kw: object) -> subprocess.CompletedProcess[str]:
    cp = subprocess.run(argv, capture_output=True, text=True, **kw)  # type: ignore[call-overload]
    if check and cp.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({cp.returncode}): {cp.stderr.strip()[-800:]}")
    return cp


def timed(argv: list[str]) -> float:
    t = time.perf_counter()
    cp = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    dt = time.perf_counter() - t
    if cp.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {cp.stderr.decode(errors='replace')[-600:]}")
    return dt


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def pids_named(name: str, must_contain: str = "") -> list[int]:
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                cmd = f.read().split(b"\0")
        except OSError:
            continue
        if cmd and os.path.basename(cmd[0].decode(errors="replace")) == name and must_contain.encode() in b" ".join(cmd):
            out.append(int(p))
    return out


def netns_add(name: str) -> str:
    sh(["ip", "netns", "add", name])
    sh(["ip", "-n", name, "link", "set", "lo", "up"])
    return f"/run/netns/{name}"


def netns_del(name: str) -> None:
    sh(["ip", "netns", "del", name], check=False)


class Dockyard:
    name = "dockyard"

    def __init__(self, root: str, tar: bytes) -> None:
        self.d = TestDaemon(os.path.join(root, "dockyard"), loop_guard=False, args=["--log-level", "warn"])
        self.d.import_image(tar, IMAGE, changes=['CMD ["sh"]'])
        self.d.start()
        self.cli = [DOCKYARD, "-H", self.d.host]

    def run_argv(self, network: str | None = None) -> list[str]:
        return [*self.cli, "run", "--rm", *(["--network", network] if network else []), IMAGE, "true"]

    def ps_argv(self) -> list[str]:
        return [*self.cli, "ps"]

    def start_idle(self, n: int) -> list[str]:
        return [sh([*self.cli, "run", "-d", IMAGE, "sleep", "600"]).stdout.strip() for _ in range(n)]

    def rm(self, ids: list[str]) -> None:
        if ids:
            sh([*self.cli, "rm", "-f", *ids], check=False)

    def daemon_rss(self) -> int:
        return rss_kb(self.d.pid)

    def supervisor_rss(self) -> list[int]:
        return [rss_kb(p) for p in pids_named("dockyard-shim", self.d.exec_root)]

    def close(self) -> None:
        self.d.cleanup()


class Docker:
    name = "docker"

    def __init__(self, root: str, tar_path: str) -> None:
        self.base = os.path.join(root, "docker")
        os.makedirs(self.base)
        self.ns_name = "dyrl-docker-" + os.path.basename(root)[-6:]
        self.ns = netns_add(self.ns_name)
        self.procs: list[subprocess.Popen[bytes]] = []
        ctrd = os.path.join(self.base, "containerd.sock")
        log = open(os.path.join(self.base, "containerd.log"), "ab")  # noqa: SIM115
        self.procs.append(subprocess.Popen(
            ["containerd", "--root", os.path.join(self.base, "ctrd-root"), "--state", os.path.join(self.base, "ctrd-state"),
             "--address", ctrd], stdout=log, stderr=log, start_new_session=True))  # fmt: skip
        for _ in range(200):
            if os.path.exists(ctrd):
                break
            time.sleep(0.05)
        self.sock = os.path.join(self.base, "docker.sock")
        with open(os.path.join(self.base, "daemon.json"), "w") as f:
            f.write("{}")
        log = open(os.path.join(self.base, "dockerd.log"), "ab")  # noqa: SIM115
        self.procs.append(subprocess.Popen(
            ["nsenter", f"--net={self.ns}", "dockerd", "--data-root", os.path.join(self.base, "data"),
             "--exec-root", os.path.join(self.base, "exec"), "-H", f"unix://{self.sock}",
             "--pidfile", os.path.join(self.base, "docker.pid"), "--containerd", ctrd,
             "--config-file", os.path.join(self.base, "daemon.json"), "--cgroup-parent", "dyrl-docker",
             "--log-level", "error"], stdout=log, stderr=log, start_new_session=True))  # fmt: skip
        self.cli = [DOCKER, "-H", f"unix://{self.sock}"]
        for _ in range(300):
            if sh([*self.cli, "version"], check=False).returncode == 0:
                break
            if self.procs[-1].poll() is not None:
                raise RuntimeError("dockerd exited: see " + os.path.join(self.base, "dockerd.log"))
            time.sleep(0.2)
        sh([*self.cli, "import", "--change", 'CMD ["sh"]', tar_path, IMAGE])

    def run_argv(self, network: str | None = None) -> list[str]:
        return [*self.cli, "run", "--rm", *(["--network", network] if network else []), IMAGE, "true"]

    def ps_argv(self) -> list[str]:
        return [*self.cli, "ps"]

    def start_idle(self, n: int) -> list[str]:
        return [sh([*self.cli, "run", "-d", IMAGE, "sleep", "600"]).stdout.strip() for _ in range(n)]

    def rm(self, ids: list[str]) -> None:
        if ids:
            sh([*self.cli, "rm", "-f", *ids], check=False)

    def daemon_rss(self) -> int:
        pid = int(open(os.path.join(self.base, "docker.pid")).read())  # noqa: SIM115
        return rss_kb(pid) + rss_kb(self.procs[0].pid)

    def supervisor_rss(self) -> list[int]:
        return [rss_kb(p) for p in pids_named("containerd-shim-runc-v2", self.base)]

    def close(self) -> None:
        with contextlib.suppress(Exception):
            ids = sh([*self.cli, "ps", "-aq"], check=False).stdout.split()
            self.rm(ids)
        stop_all(self.procs)
        netns_del(self.ns_name)


class Podman:
    name = "podman"

    def __init__(self, root: str, tar_path: str) -> None:
        self.base = os.path.join(root, "podman")
        os.makedirs(os.path.join(self.base, "tmp"))
        self.ns_name = "dyrl-podman-" + os.path.basename(root)[-6:]
        self.ns = netns_add(self.ns_name)
        wrapper = os.path.join(self.base, "crun-v1")
        with open(wrapper, "w") as f:
            # crun refuses the hybrid layout: hide the (near empty) cgroup2 mount in a private mount ns
            f.write("#!/bin/sh\nexec unshare -m sh -c 'umount /sys/fs/cgroup/unified 2>/dev/null; exec crun \"$@\"' crun \"$@\"\n")
        os.chmod(wrapper, 0o755)
        self.cli = ["nsenter", f"--net={self.ns}", "podman", "--root", os.path.join(self.base, "root"),
                    "--runroot", os.path.join(self.base, "run"), "--tmpdir", os.path.join(self.base, "tmp"),
                    "--cgroup-manager", "cgroupfs", "--events-backend", "none", "--runtime", wrapper]  # fmt: skip
        sh([*self.cli, "import", "--change", 'CMD ["sh"]', tar_path, "localhost/" + IMAGE])

    def run_argv(self, network: str | None = None) -> list[str]:
        return [*self.cli, "run", "--rm", *PODMAN_ULIMITS, *(["--network", network] if network else []),
                "localhost/" + IMAGE, "true"]  # fmt: skip

    def ps_argv(self) -> list[str]:
        return [*self.cli, "ps"]

    def start_idle(self, n: int) -> list[str]:
        return [sh([*self.cli, "run", "-d", *PODMAN_ULIMITS, "localhost/" + IMAGE, "sleep", "600"]).stdout.strip()
                for _ in range(n)]  # fmt: skip

    def rm(self, ids: list[str]) -> None:
        if ids:
            sh([*self.cli, "rm", "-f", "-t", "0", *ids], check=False)

    def daemon_rss(self) -> int:
        return 0  # daemonless

    def supervisor_rss(self) -> list[int]:
        return [rss_kb(p) for p in pids_named("conmon", self.base)]

    def close(self) -> None:
        with contextlib.suppress(Exception):
            sh([*self.cli, "rm", "-a", "-f", "-t", "0"], check=False)
        netns_del(self.ns_name)
        subprocess.run(["umount", "-R", "-l", os.path.join(self.base, "root")], capture_output=True)
        subprocess.run(["umount", "-R", "-l", os.path.join(self.base, "run")], capture_output=True)


def stats(xs: list[float]) -> str:
    xs = sorted(xs)
    p90 = xs[min(len(xs) - 1, int(len(xs) * 0.9))]
    return f"median {statistics.median(xs) * 1000:7.1f} ms  p90 {p90 * 1000:7.1f} ms  (n={len(xs)})"


def batch(argv: list[str], n: int, parallel: bool) -> float:
    t = time.perf_counter()
    if parallel:
        with ThreadPoolExecutor(max_workers=n) as pool:
            list(pool.map(lambda _: timed(argv), range(n)))
    else:
        for _ in range(n):
            timed(argv)
    return time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--batch", type=int, default=20)
    ap.add_argument("--batch-rounds", type=int, default=2)
    ap.add_argument("--idle", type=int, default=5, help="idle containers per engine for the supervisor RSS")
    ap.add_argument("--engines", default="dockyard,podman,docker")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("run as root", file=sys.stderr)
        return 2
    root = tempfile.mkdtemp(prefix="dyrl", dir="/tmp")
    from dockyard.image import mkimage

    buf = io.BytesIO()
    mkimage.busybox_tar(buf)
    tar = buf.getvalue()
    tar_path = os.path.join(root, "busybox.tar")
    with open(tar_path, "wb") as f:
        f.write(tar)
    engines: list = []
    try:
        wanted = args.engines.split(",")
        if "dockyard" in wanted:
            engines.append(Dockyard(root, tar))
        if "podman" in wanted:
            engines.append(Podman(root, tar_path))
        if "docker" in wanted:
            engines.append(Docker(root, tar_path))
        print(f"engines: {', '.join(e.name for e in engines)}; image {IMAGE} (busybox-static); {os.cpu_count()} CPUs")
        for e in engines:  # warm caches (first run pays page faults, image unpacking)
            timed(e.run_argv())
            timed(e.run_argv("none"))
        results: dict[str, dict[str, list[float]]] = {e.name: {"bridge": [], "none": []} for e in engines}
        for r in range(args.rounds):
            order = engines[r % len(engines):] + engines[: r % len(engines)]
            for e in order:
                results[e.name]["bridge"].append(timed(e.run_argv()))
            for e in order:
                results[e.name]["none"].append(timed(e.run_argv("none")))

        def ratio(name: str, key: str, fn=statistics.median) -> str:  # noqa: ANN001
            if "docker" not in results or name == "docker":
                return ""
            return f"  {fn(results[name][key]) / fn(results['docker'][key]):.2f}x docker"

        print("\n== run --rm busybox true (default bridge)")
        for e in engines:
            print(f"  {e.name:9s} {stats(results[e.name]['bridge'])}{ratio(e.name, 'bridge')}")
        print("== run --rm --network none busybox true")
        for e in engines:
            print(f"  {e.name:9s} {stats(results[e.name]['none'])}{ratio(e.name, 'none')}")

        seq: dict[str, list[float]] = {e.name: [] for e in engines}
        par: dict[str, list[float]] = {e.name: [] for e in engines}
        for r in range(args.batch_rounds):
            order = engines[r % len(engines):] + engines[: r % len(engines)]
            for e in order:
                seq[e.name].append(batch(e.run_argv(), args.batch, False))
            for e in order:
                par[e.name].append(batch(e.run_argv(), args.batch, True))
        for title, data in ((f"{args.batch} sequential run --rm (wall)", seq), (f"{args.batch} parallel run --rm (wall)", par)):
            print(f"== {title}")
            for e in engines:
                m = statistics.median(data[e.name])
                rr = f"  {m / statistics.median(data['docker']):.2f}x docker" if "docker" in data and e.name != "docker" else ""
                print(f"  {e.name:9s} {m:6.2f} s{rr}")

        print("== daemon idle RSS")
        time.sleep(2)
        for e in engines:
            kb = e.daemon_rss()
            print(f"  {e.name:9s} {kb / 1024:6.1f} MB" + ("  (dockerd + containerd)" if e.name == "docker" else "")
                  + ("  (no daemon)" if e.name == "podman" else ""))
        print(f"== supervisor RSS per idle container ({args.idle} containers each)")
        idle = {e.name: e.start_idle(args.idle) for e in engines}
        time.sleep(1)
        for e in engines:
            xs = e.supervisor_rss()
            label = {"dockyard": "dockyard-shim", "docker": "containerd-shim-runc-v2", "podman": "conmon"}[e.name]
            if xs:
                print(f"  {e.name:9s} {statistics.mean(xs) / 1024:5.2f} MB  ({label}, {len(xs)} processes)")
        print("== ps with the idle containers (each CLI against its own daemon)")
        ps: dict[str, list[float]] = {e.name: [] for e in engines if e.name in ("dockyard", "docker")}
        for r in range(20):
            for e in engines if r % 2 == 0 else list(reversed(engines)):
                if e.name in ps:
                    ps[e.name].append(timed(e.ps_argv()))
        for name, xs in ps.items():
            rr = f"  {statistics.median(xs) / statistics.median(ps['docker']):.2f}x docker" if "docker" in ps and name != "docker" else ""
            print(f"  {name:9s} {stats(xs)}{rr}")
        for e in engines:
            e.rm(idle[e.name])
    finally:
        for e in reversed(engines):
            with contextlib.suppress(Exception):
                e.close()
        with open("/proc/self/mountinfo") as f:
            left = [line.split()[4] for line in f if line.split()[4].startswith(root)]
        for p in sorted(left, key=len, reverse=True):
            subprocess.run(["umount", "-l", p], capture_output=True)
        for dirpath, dirnames, _ in os.walk("/sys/fs/cgroup"):
            if dirpath.count("/") > 7:
                dirnames[:] = []
                continue
            if "dyrl-docker" in dirnames:
                with contextlib.suppress(OSError):
                    os.rmdir(os.path.join(dirpath, "dyrl-docker"))
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
