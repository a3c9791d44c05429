"""`dockyard mkimage debian` against `debootstrap` + `docker import`, paired runs in one call.

A (Dockyard): `dockyard -H <test daemon> mkimage debian bench/debian:<n>` with a fresh
    DOCKYARD_MKIMAGE_CACHE (so the rootfs is really built by debootstrap, never reused), whose
    .deb cache is the shared warm one below.
B (Docker): `debootstrap --variant=minbase --cache-dir=<warm .debs> bookworm DIR MIRROR`, then
    `tar -C DIR --numeric-owner -c . | docker import --change 'CMD ["bash"]' - bench/debian:<n>`
    against dockerd 20.10 (docker.io) on its own data root, exec root, socket, pidfile and
    containerd, inside a network namespace of its own, started and stopped by this script.
Both sides use the same mirror (apt's first, as mkimage does) and the same warm .deb cache
(/var/cache/dockyard/bench/debs, filled by one unmeasured debootstrap when empty), so each
downloads only the Release and Packages files. Rounds alternate A B A B ...; the script prints
each time, the medians and the ratio A/B (goal: <= 1.0, "no slower"), plus the import step alone
(`tar | import` of the same rootfs, paired) and a cached `mkimage debian` (rootfs reused).

    .venv/bin/python bench/mkimage.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(REPO, "src"))
sys.path.insert(0, os.path.join(REPO, "tests"))

from benchutil import stop_all  # noqa: E402

from cli.cliutil import launcher  # noqa: E402
from dockyard.image import mkimage  # noqa: E402
from support.daemon import TestDaemon  # noqa: E402

DEBS = "/var/cache/dockyard/bench/debs"
SUITE = "bookworm"


def sh(argv: list[str] | str, check: bool = True, **kw: object) -> subprocess.CompletedProcess[str]:
    cp = subprocess.run(argv, capture_output=True, text=True, shell=isinstance(argv, str), **kw)  # noqa: S602
    if check and cp.returncode != 0:
        raise RuntimeError(f"{argv!r} -> {cp.returncode}\n{cp.stdout[-2000:]}\n{cp.stderr[-2000:]}")
    return cp


def timed(argv: list[str] | str, **kw: object) -> float:
    t = time.perf_counter()
    sh(argv, **kw)
    return time.perf_counter() - t


class Dockerd:
    """dockerd + containerd on private roots, in a netns, no bridge, no iptables."""

    def __init__(self, base: str) -> None:
        self.base = base
        os.makedirs(base)
        self.ns_name = "dyt-mkimg-" + secrets.token_hex(3)
        sh(["ip", "netns", "add", self.ns_name])
        self.procs: list[subprocess.Popen[bytes]] = []
        try:
            self._start(base)
        except BaseException:
            self.close()
            raise

    def _start(self, base: str) -> None:
        ctrd = os.path.join(base, "containerd.sock")
        log = open(os.path.join(base, "containerd.log"), "ab")  # noqa: SIM115
        self.procs.append(subprocess.Popen(
            ["containerd", "--root", os.path.join(base, "ctrd-root"), "--state", os.path.join(base, "ctrd-state"),
             "--address", ctrd], stdout=log, stderr=log, start_new_session=True))  # fmt: skip
        for _ in range(200):
            if os.path.exists(ctrd):
                break
            time.sleep(0.05)
        self.sock = os.path.join(base, "docker.sock")
        with open(os.path.join(base, "daemon.json"), "w") as f:
            f.write("{}")
        log = open(os.path.join(base, "dockerd.log"), "ab")  # noqa: SIM115
        self.procs.append(subprocess.Popen(
            ["nsenter", f"--net=/run/netns/{self.ns_name}", "dockerd", "--data-root", os.path.join(base, "data"),
             "--exec-root", os.path.join(base, "exec"), "-H", f"unix://{self.sock}",
             "--pidfile", os.path.join(base, "docker.pid"), "--containerd", ctrd,
             "--config-file", os.path.join(base, "daemon.json"), "--bridge", "none", "--iptables=false",
             "--ip6tables=false", "--log-level", "error"], stdout=log, stderr=log, start_new_session=True))  # fmt: skip
        self.cli = [shutil.which("docker") or "docker", "-H", f"unix://{self.sock}"]
        for _ in range(300):
            if sh([*self.cli, "version"], check=False).returncode == 0:
                return
            if self.procs[-1].poll() is not None:
                with open(os.path.join(base, "dockerd.log"), errors="replace") as f:
                    raise RuntimeError("dockerd exited:\n" + f.read()[-3000:])
            time.sleep(0.2)
        raise RuntimeError("dockerd did not start")

    def close(self) -> None:
        stop_all(self.procs)
        for line in open("/proc/self/mountinfo").read().splitlines():  # noqa: SIM115
            mp = line.split()[4]
            if mp.startswith(self.base):
                sh(["umount", "-l", mp], check=False)
        sh(["ip", "netns", "del", self.ns_name], check=False)


def warm_debs(work: str, mirror: str) -> None:
    os.makedirs(DEBS, exist_ok=True)
    if any(n.endswith(".deb") for n in os.listdir(DEBS)):
        return
    print(f"warming {DEBS} (one unmeasured debootstrap)...", flush=True)
    sh(["debootstrap", "--variant=minbase", f"--cache-dir={DEBS}", SUITE, os.path.join(work, "warm"), mirror])
    shutil.rmtree(os.path.join(work, "warm"), ignore_errors=True)


def stats(xs: list[float]) -> str:
    return f"median {statistics.median(xs):6.2f} s  (min {min(xs):.2f}, max {max(xs):.2f}, n={len(xs)})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if os.geteuid() != 0 or not shutil.which("debootstrap") or not shutil.which("dockerd"):
        print("needs root, debootstrap and dockerd (docker.io)", file=sys.stderr)
        return 2
    mirror = mkimage._default_mirror()  # noqa: SLF001 - what mkimage uses
    work = tempfile.mkdtemp(prefix="dyt-bench-mkimage-", dir="/var/tmp")
    dy: TestDaemon | None = None
    dk: Dockerd | None = None
    res: dict[str, list[float]] = {k: [] for k in ("dy", "dk", "dy_imp", "dk_imp", "dy_cached")}
    try:
        warm_debs(work, mirror)
        dy = TestDaemon(os.path.join(work, "dockyard"), loop_guard=False, args=["--log-level", "warn"])
        dy.start()
        dk = Dockerd(os.path.join(work, "docker"))
        dycli = [*launcher(), "-H", dy.host]
        print(f"mirror {mirror}, suite {SUITE}, warm .deb cache {DEBS}, {args.rounds} paired rounds", flush=True)
        for n in range(args.rounds):
            # A: dockyard mkimage debian, rootfs built from scratch (fresh mkimage cache, warm debs)
            mk = os.path.join(work, f"mk{n}")
            os.makedirs(mk)
            os.symlink(DEBS, os.path.join(mk, "debs"))
            env = dict(os.environ, DOCKYARD_MKIMAGE_CACHE=mk)
            a = timed([*dycli, "mkimage", "debian", f"bench/debian:{n}"], env=env)
            res["dy"].append(a)
            # B: debootstrap + docker import
            root = os.path.join(work, f"ds{n}", "rootfs")
            cmd = (f"debootstrap --variant=minbase --cache-dir={DEBS} {SUITE} {root} {mirror} >/dev/null && "
                   f"tar -C {root} --numeric-owner -cf - . | {shlex.join(dk.cli)} import --change 'CMD [\"bash\"]' - "
                   f"bench/debian:{n} >/dev/null")  # fmt: skip
            b = timed(["bash", "-o", "pipefail", "-c", cmd])
            res["dk"].append(b)
            print(f"round {n + 1}: mkimage debian {a:6.2f} s   debootstrap + docker import {b:6.2f} s   "
                  f"ratio {a / b:.2f}", flush=True)  # fmt: skip
            # the import step alone, same rootfs for both (paired), and mkimage with its cache warm
            imp = f"tar -C {root} --numeric-owner -cf - . | "
            for key, cli in (("dy_imp", dycli), ("dk_imp", dk.cli)):
                argv = [*cli, "import", "--change", 'CMD ["bash"]', "-", f"bench/imp:{n}"]
                res[key].append(timed(["bash", "-o", "pipefail", "-c", imp + shlex.join(argv) + " >/dev/null"]))
            res["dy_cached"].append(timed([*dycli, "mkimage", "debian", f"bench/cached:{n}"], env=env))
            shutil.rmtree(mk, ignore_errors=True)
            shutil.rmtree(os.path.dirname(root), ignore_errors=True)
            for cli in (dycli, dk.cli):
                sh([*cli, "rmi", f"bench/debian:{n}", f"bench/imp:{n}"], check=False)
            sh([*dycli, "rmi", f"bench/cached:{n}"], check=False)
        print()
        print(f"dockyard mkimage debian (rootfs built)  {stats(res['dy'])}")
        print(f"debootstrap + docker import             {stats(res['dk'])}")
        print(f"  ratio of medians: {statistics.median(res['dy']) / statistics.median(res['dk']):.2f} (goal <= 1.0)")
        print(f"import step only: dockyard import       {stats(res['dy_imp'])}")
        print(f"import step only: docker import         {stats(res['dk_imp'])}")
        print(f"  ratio of medians: {statistics.median(res['dy_imp']) / statistics.median(res['dk_imp']):.2f}")
        print(f"dockyard mkimage debian (rootfs cached) {stats(res['dy_cached'])}")
        return 0
    finally:
        if dk is not None:
            with contextlib.suppress(Exception):
                dk.close()
        if dy is not None:
            dy.cleanup()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
