"""`docker build` (classic builder) against Dockyard and against dockerd 20.10, same client.

Starts, on private roots, a Dockyard daemon (tests/support/daemon.py) and Debian's dockerd with
its own containerd (bench/cli_ps.py's RefDocker), imports the same busybox image into both, and
times with the Docker CLI (`DOCKER_BUILDKIT=0`), in paired rounds whose order alternates:

  1. a fresh build (`--no-cache`) of a 6-step Dockerfile: ENV, WORKDIR, COPY, RUN, CMD
  2. the same build again, every step from the cache

then prints median, mean and p90 wall time and the ratio Dockyard / dockerd. Everything it
started is stopped by PID and removed.

    .venv/bin/python bench/build.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import tempfile
import time

from cli_ps import DOCKER, RefDocker, TestDaemon, busybox_tar, report

DOCKERFILE = """FROM busybox
ENV APP=/app MODE=bench
WORKDIR $APP
COPY src/ ./src/
RUN find src -type f | wc -l > count && cat count
CMD ["cat", "/app/count"]
"""


def build(host: str, ctx: str, *extra: str) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    env["DOCKER_BUILDKIT"] = "0"
    t0 = time.perf_counter()
    cp = subprocess.run([DOCKER, "-H", host, "build", "-q", *extra, ctx], capture_output=True, env=env)
    dt = time.perf_counter() - t0
    if cp.returncode != 0:
        raise SystemExit(f"build on {host} failed: {cp.stderr.decode()}")
    return dt


def paired(ctx: str, a: str, b: str, rounds: int, *extra: str) -> tuple[list[float], list[float]]:
    ta, tb = [], []
    build(a, ctx, *extra)
    build(b, ctx, *extra)
    for i in range(rounds):
        if i % 2:
            tb.append(build(b, ctx, *extra))
            ta.append(build(a, ctx, *extra))
        else:
            ta.append(build(a, ctx, *extra))
            tb.append(build(b, ctx, *extra))
    return ta, tb


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    ns = ap.parse_args()
    base = tempfile.mkdtemp(prefix="dybench-build-", dir="/tmp")
    dy = TestDaemon(os.path.join(base, "dockyard"))
    ref = RefDocker(os.path.join(base, "docker"))
    os.makedirs(ref.base)
    ctx = os.path.join(base, "ctx")
    os.makedirs(os.path.join(ctx, "src", "pkg"))
    with open(os.path.join(ctx, "Dockerfile"), "w") as f:
        f.write(DOCKERFILE)
    for i in range(50):
        with open(os.path.join(ctx, "src", "pkg", f"f{i}.txt"), "w") as f:
            f.write(f"file {i}\n" * 100)
    try:
        dy.import_image(busybox_tar(), "busybox:latest", changes=['CMD ["sh"]'])
        dy.start()
        ref.start()
        ref.docker("import", "-c", 'CMD ["sh"]', "-", "busybox:latest", input=busybox_tar())
        print(f"docker CLI {ref.docker('version', '--format', '{{.Client.Version}}').strip()}, dockerd "
              f"{ref.docker('version', '--format', '{{.Server.Version}}').strip()}; {ns.rounds} paired rounds")
        ta, tb = paired(ctx, dy.host, ref.host, ns.rounds, "--no-cache")
        report("1. docker build --no-cache (6 steps, 50 files)", "Dockyard", ta, "dockerd", tb)
        ta, tb = paired(ctx, dy.host, ref.host, ns.rounds)
        report("2. docker build, all steps cached", "Dockyard", ta, "dockerd", tb)
    finally:
        dy.cleanup()
        with contextlib.suppress(Exception):
            ref.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
