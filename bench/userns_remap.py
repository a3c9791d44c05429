"""What `--userns-remap=default` costs: Dockyard without and with remapping vs dockerd with it.

On this machine, in one call, paired rounds (engine order rotating every round):
  1. `import` of a fresh 4000-file layer tar (the CLI's wall time): the extraction that shifts
     every owner into the remapped range;
  2. `run --rm busybox true` (the CLI's wall time) on each engine's default bridge.

dockerd (Debian's docker.io, with its own containerd) runs in a network namespace the bench
makes, on private roots. Both remapping engines use the `dockremap` user: if the bench had to
create it, it is deleted afterwards and /etc/subuid and /etc/subgid get their old content back.

    .venv/bin/python bench/userns_remap.py [--rounds 9]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import pwd
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from run_latency import DOCKER, DOCKYARD, IMAGE, Docker, sh, timed  # noqa: E402

from support.daemon import TestDaemon, busybox_tar  # noqa: E402


def layer_tar(path: str, tag: str, files: int = 4000) -> None:
    """A layer of `files` small files in 40 directories, one of them unique to `tag`."""
    with tarfile.open(path, "w") as tf:
        for i in range(files):
            ti = tarfile.TarInfo(f"d{i % 40}/f{i}")
            data = f"{tag} {i}\n".encode()
            ti.size, ti.uid, ti.gid, ti.mode = len(data), i % 3 * 1000, 0, 0o644
            tf.addfile(ti, io.BytesIO(data))


class DockyardEngine:
    def __init__(self, name: str, root: str, remap: bool) -> None:
        self.name = name
        args = ["--log-level", "warn"] + (["--userns-remap=default"] if remap else [])
        self.d = TestDaemon(os.path.join(root, name), loop_guard=False, args=args)
        self.d.start()
        self.cli = [DOCKYARD, "-H", self.d.host]
        tar = os.path.join(root, f"{name}-busybox.tar")
        with open(tar, "wb") as f:
            f.write(busybox_tar())
        sh([*self.cli, "import", "--change", 'CMD ["sh"]', tar, IMAGE])

    def close(self) -> None:
        self.d.cleanup()


def start_docker_remap(root: str, tar_path: str) -> Docker:
    # run_latency.Docker writes "{}" as daemon.json before starting dockerd: give it the option
    # through the flag instead, by wrapping the dockerd command it runs
    real = shutil.which("dockerd") or "/usr/sbin/dockerd"
    shim_dir = os.path.join(root, "bin")
    os.makedirs(shim_dir)
    with open(os.path.join(shim_dir, "dockerd"), "w") as f:
        f.write(f"#!/bin/sh\nexec {real} --userns-remap=default \"$@\"\n")
    os.chmod(os.path.join(shim_dir, "dockerd"), 0o755)
    old = os.environ["PATH"]
    os.environ["PATH"] = shim_dir + os.pathsep + old
    try:
        return Docker(root, tar_path)
    finally:
        os.environ["PATH"] = old


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=9)
    a = ap.parse_args()
    import fcntl

    # the suite's tests/daemon/test_userns_remap.py takes the same lock around the same files
    os.makedirs("/run/lock", exist_ok=True)
    lock = open("/run/lock/dockyard-userns-remap.lock", "a")  # noqa: SIM115 - held until exit
    fcntl.flock(lock, fcntl.LOCK_EX)
    saved = {p: open(p, "rb").read() if os.path.exists(p) else None for p in ("/etc/subuid", "/etc/subgid")}  # noqa: SIM115
    try:
        pwd.getpwnam("dockremap")
        had_user = True
    except KeyError:
        had_user = False
    root = tempfile.mkdtemp(prefix="dyt-bench-uns-", dir="/tmp")
    os.chmod(root, 0o755)
    engines: list = []
    try:
        engines.append(DockyardEngine("dockyard", root, remap=False))
        engines.append(DockyardEngine("dockyard-remap", root, remap=True))
        bb = os.path.join(root, "busybox.tar")
        with open(bb, "wb") as f:
            f.write(busybox_tar())
        if shutil.which("dockerd") and shutil.which("containerd"):
            d = start_docker_remap(os.path.join(root, "dk"), bb)
            d.name = "docker-remap"
            engines.append(d)
            info = sh([DOCKER, "-H", f"unix://{d.sock}", "info", "--format", "{{.DockerRootDir}} {{.SecurityOptions}}"]).stdout
            print("dockerd:", info.strip())
        imports: dict[str, list[float]] = {e.name: [] for e in engines}
        runs: dict[str, list[float]] = {e.name: [] for e in engines}
        for r in range(a.rounds):
            order = engines[r % len(engines):] + engines[: r % len(engines)]
            for e in order:
                tar = os.path.join(root, f"layer-{e.name}-{r}.tar")
                layer_tar(tar, f"{e.name}-{r}")
                imports[e.name].append(timed([*e.cli, "import", tar, f"dytbench/layer:{r}"]))
                os.unlink(tar)
                runs[e.name].append(timed([*e.cli, "run", "--rm", IMAGE, "true"]))
        base_i = statistics.median(imports["dockyard"])
        base_r = statistics.median(runs["dockyard"])
        print(f"paired rounds: {a.rounds}")
        print(f"{'engine':16} {'import 4000 files':>20} {'ratio':>7} {'run --rm true':>16} {'ratio':>7}")
        for e in engines:
            mi, mr = statistics.median(imports[e.name]), statistics.median(runs[e.name])
            print(f"{e.name:16} {mi * 1000:17.0f} ms {mi / base_i:6.2f}x {mr * 1000:13.0f} ms {mr / base_r:6.2f}x")
    finally:
        for e in reversed(engines):
            with contextlib.suppress(Exception):
                e.close()
        time.sleep(0.5)
        if not had_user:
            subprocess.run(["userdel", "dockremap"], capture_output=True, check=False)
            subprocess.run(["groupdel", "dockremap"], capture_output=True, check=False)
        for p, data in saved.items():
            if data is not None:
                with open(p, "wb") as f:
                    f.write(data)
        shutil.rmtree(root, ignore_errors=True)
        lock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
