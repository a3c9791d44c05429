"""Start-up of an OCI runtime: `run` of /bin/true on one busybox bundle, dockyard-runc vs runc vs crun.

All engines get the same bundle (runc's default spec with a non-terminal `/bin/true`, a relative
cgroupsPath under the caller's cgroup) and are timed as a caller sees them: spawn, wait, exit.
Rounds are paired (dockyard, runc, crun, crun-sh; the order rotates each round) in one call, so
drift on a shared machine hits every engine alike; the script prints median, mean and p90 wall
time and dockyard-runc's ratio to each.

crun refuses this machine's hybrid cgroup layout unless the cgroup2 mount at
/sys/fs/cgroup/unified is gone, so it runs in a private mount namespace without it, two ways:
"crun" is spawned directly by a helper process that lives in such a namespace (crun's own cost),
"crun-sh" is the `unshare -m sh -c 'umount /sys/fs/cgroup/unified && exec crun ...'` form (with the
unshare and sh start-up included).

    .venv/bin/python bench/runtime_start.py [--rounds 40] [--engines dockyard,runc,crun,crun-sh]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "src"))

from dockyard.image.busybox_rootfs import build_busybox_rootfs  # noqa: E402

DOCKYARD = shutil.which("dockyard-runc") or "/usr/local/bin/dockyard-runc"


def make_bundle(base: str) -> str:
    bundle = os.path.join(base, "bundle")
    os.makedirs(bundle)
    build_busybox_rootfs(os.path.join(bundle, "rootfs"))
    subprocess.run([DOCKYARD, "spec", "--bundle", bundle], check=True)
    with open(os.path.join(bundle, "config.json")) as f:
        cfg = json.load(f)
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = ["/bin/true"]
    cfg["linux"]["cgroupsPath"] = "dyt-bench"  # replaced per run
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    return bundle


def timed(argv: list[str]) -> float:
    """Wall time of one run of `argv` (stdin and stdout on /dev/null), as a caller sees it."""
    devnull = os.open(os.devnull, os.O_RDWR)
    try:
        t0 = time.perf_counter()
        pid = os.posix_spawn(argv[0], argv, os.environ,
                             file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 0), (os.POSIX_SPAWN_DUP2, devnull, 1)])
        _, status = os.waitpid(pid, 0)
        dt = time.perf_counter() - t0
    finally:
        os.close(devnull)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"{argv[0]} failed with {code}")
    return dt


class CrunHelper:
    """A child in a private mount namespace without the cgroup2 mount, running crun on request."""

    def __init__(self) -> None:
        self.req_r, self.req_w = os.pipe()
        self.res_r, self.res_w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            self._serve()
        os.close(self.req_r)
        os.close(self.res_w)

    def _serve(self) -> None:
        from dockyard.sys import linux as L

        try:
            os.close(self.req_w)
            os.close(self.res_r)
            L.unshare(L.CLONE_NEWNS)
            L.mount(None, "/", None, L.MS_REC | L.MS_PRIVATE)
            L.umount("/sys/fs/cgroup/unified", L.MNT_DETACH)
            f = os.fdopen(self.req_r)
            for line in f:
                argv = json.loads(line)
                try:
                    dt = timed(argv)
                except SystemExit as e:
                    dt = -1.0
                    sys.stderr.write(f"{e}\n")
                os.write(self.res_w, f"{dt}\n".encode())
        finally:
            os._exit(0)

    def run(self, argv: list[str]) -> float:
        os.write(self.req_w, (json.dumps(argv) + "\n").encode())
        line = b""
        while not line.endswith(b"\n"):
            line += os.read(self.res_r, 64)
        dt = float(line)
        if dt < 0:
            raise SystemExit("crun failed")
        return dt

    def close(self) -> None:
        os.close(self.req_w)
        os.waitpid(self.pid, 0)
        os.close(self.res_r)


def set_cgroup(bundle: str, path: str) -> None:
    cfg_path = os.path.join(bundle, "config.json")
    with open(cfg_path) as f:
        cfg = json.load(f)
    cfg["linux"]["cgroupsPath"] = path
    with open(cfg_path, "w") as f:
        json.dump(cfg, f, indent=1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--engines", default="dockyard,runc,crun,crun-sh")
    a = ap.parse_args()
    engines = [e for e in a.engines.split(",") if e]
    for e, binary in (("runc", "runc"), ("crun", "crun"), ("crun-sh", "crun")):
        if e in engines and not shutil.which(binary):
            print(f"{binary} not installed: skipping {e}")
            engines.remove(e)
    base = tempfile.mkdtemp(prefix="dyt-bench-rt-")
    helper = CrunHelper() if "crun" in engines else None
    results: dict[str, list[float]] = {e: [] for e in engines}
    try:
        bundle = make_bundle(base)
        roots = {e: os.path.join(base, f"root-{e}") for e in engines}
        runc_bin = shutil.which("runc") or "runc"
        crun_bin = shutil.which("crun") or "crun"
        unshare = shutil.which("unshare") or "unshare"
        n = 0
        for rnd in range(a.warmup + a.rounds):
            order = engines[rnd % len(engines):] + engines[:rnd % len(engines)]
            for e in order:
                n += 1
                cid = f"dyt-bench-{e}-{n}"
                set_cgroup(bundle, cid)
                if e == "dockyard":
                    dt = timed([DOCKYARD, "--root", roots[e], "run", "--bundle", bundle, cid])
                elif e == "runc":
                    dt = timed([runc_bin, "--root", roots[e], "run", "--bundle", bundle, cid])
                elif e == "crun":
                    assert helper is not None
                    dt = helper.run([crun_bin, "--root", roots[e], "run", "--bundle", bundle, cid])
                else:  # crun-sh: the whole `unshare -m sh -c ...` command, as the issue measured it
                    script = f'umount /sys/fs/cgroup/unified && exec {crun_bin} --root "$0" run --bundle "$1" "$2"'
                    dt = timed([unshare, "-m", "sh", "-c", script, roots[e], bundle, cid])
                if rnd >= a.warmup:
                    results[e].append(dt)
    finally:
        if helper is not None:
            helper.close()
        shutil.rmtree(base, ignore_errors=True)

    def p90(xs: list[float]) -> float:
        return sorted(xs)[max(0, int(round(0.9 * len(xs))) - 1)]

    print(f"\n`run` of /bin/true on a busybox bundle, {a.rounds} paired rounds (ms)")
    print(f"{'engine':<10} {'median':>8} {'mean':>8} {'p90':>8} {'min':>8}")
    for e in engines:
        xs = results[e]
        print(f"{e:<10} {1e3 * statistics.median(xs):8.1f} {1e3 * statistics.mean(xs):8.1f} {1e3 * p90(xs):8.1f} "
              f"{1e3 * min(xs):8.1f}")
    if "dockyard" in engines:
        d = statistics.median(results["dockyard"])
        for e in engines:
            if e != "dockyard":
                print(f"dockyard-runc / {e}: {d / statistics.median(results[e]):.2f}x (median)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
