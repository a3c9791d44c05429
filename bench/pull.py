"""Cold pull from a local registry: Dockyard vs `podman pull` vs `skopeo copy` (to a dir, no unpack).

Images (built once, pushed once to a registry whose storage is cached under
/var/cache/dockyard/bench/registry):
  - debian: `debootstrap --variant=minbase bookworm` (~200 MB unpacked), one layer;
  - multi: 8 layers of mixed small and large files (~60 MB unpacked).
Each round runs the three tools back to back on fresh, empty stores (A B C, A B C, ...); the
script prints medians, the ratio Dockyard/podman, and Dockyard's extraction rate in MB/s of
uncompressed layer data. Dockyard pulls in-process through ImageService.pull (what the daemon
runs); podman and skopeo are separate processes (their start-up, ~50 ms, is included).

    .venv/bin/python bench/pull.py [--rounds 5] [--only debian|multi]
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import io
import os
import random
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "src"))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

from dockyard.image import mkimage  # noqa: E402
from dockyard.image.service import ImageService  # noqa: E402
from dockyard.storage.layers import LayerStore  # noqa: E402
from image.registry_server import RegistryServer  # noqa: E402

CACHE = "/var/cache/dockyard/bench"


def _multi_layers() -> list[bytes]:
    rnd = random.Random(42)
    layers = []
    for i in range(8):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tf:
            d = tarfile.TarInfo(f"layer{i}")
            d.type, d.mode = tarfile.DIRTYPE, 0o755
            tf.addfile(d)
            for j in range(300):  # many small text-like files
                data = (f"layer {i} file {j} " * rnd.randint(5, 200)).encode()
                ti = tarfile.TarInfo(f"layer{i}/small{j}.txt")
                ti.size, ti.mode = len(data), 0o644
                tf.addfile(ti, io.BytesIO(data))
            big = bytes(rnd.getrandbits(8) for _ in range(1 << 20)) * 3 + os.urandom(0)  # 3 MB, compresses ~3x
            big = big[: 1 << 20] + bytes(2 << 20)
            ti = tarfile.TarInfo(f"layer{i}/big.bin")
            ti.size, ti.mode = len(big), 0o644
            tf.addfile(ti, io.BytesIO(big))
        layers.append(gzip.compress(buf.getvalue(), 6, mtime=0))
    return layers


def seed(reg: RegistryServer, work: str) -> dict[str, str]:
    """Push the bench images unless the cached registry has them already."""
    from dockyard.image.registry import Registry

    refs = {"debian": f"{reg.addr}/bench/debian:bookworm", "multi": f"{reg.addr}/bench/multi:v1"}
    r = Registry(reg.addr)
    missing = []
    for name, ref in refs.items():
        try:
            r.get_manifest(ref.split("/", 1)[1].split(":")[0], ref.rsplit(":", 1)[1])
        except Exception:
            missing.append(name)
    if not missing:
        return refs
    root = os.path.join(work, "seed")
    svc = ImageService(root, LayerStore(root))
    if "debian" in missing:
        print("seeding debian (debootstrap is cached under /var/cache/dockyard/mkimage)...", flush=True)
        proc, stream = mkimage.debian_tar_stream()
        svc.import_(stream, refs["debian"], changes=['CMD ["bash"]'])
        proc.wait()
        asyncio.run(svc.push(refs["debian"]))
    if "multi" in missing:
        print("seeding multi...", flush=True)
        from dockyard.image.config import empty_container_config, now_rfc3339

        parent = None
        diff_ids = []
        for t in _multi_layers():
            layer = svc.register_layer(io.BytesIO(t), parent)
            if parent:
                svc.layers.release(parent)
            parent = layer.chain_id
            diff_ids.append(layer.diff_id)
        import json

        cfg = {"architecture": "amd64", "os": "linux", "created": now_rfc3339(), "config": empty_container_config(),
               "rootfs": {"type": "layers", "diff_ids": diff_ids}}
        svc.add_image(json.dumps(cfg).encode(), parent, refs["multi"])
        asyncio.run(svc.push(refs["multi"]))
    shutil.rmtree(root, ignore_errors=True)
    return refs


def run_dockyard(ref: str, work: str) -> tuple[float, int]:
    root = tempfile.mkdtemp(prefix="dy-", dir=work)
    svc = ImageService(root, LayerStore(root))
    t = time.perf_counter()
    asyncio.run(svc.pull(ref))
    elapsed = time.perf_counter() - t
    img = svc.get(ref)
    unpacked = svc.layers.image_size(img.top_layer)
    shutil.rmtree(root)
    return elapsed, unpacked


def run_podman(ref: str, work: str) -> float:
    d = tempfile.mkdtemp(prefix="p-", dir="/tmp")
    cmd = ["podman", "--root", f"{d}/r", "--runroot", f"{d}/rr", "--storage-driver", "overlay", "--events-backend", "none",
           "pull", "-q", "--tls-verify=false", ref]
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    elapsed = time.perf_counter() - t
    subprocess.run(["podman", "--root", f"{d}/r", "--runroot", f"{d}/rr", "--storage-driver", "overlay", "system", "reset", "-f"],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for sub in ("r/overlay", "r", "rr"):
        subprocess.run(["umount", "-R", f"{d}/{sub}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    shutil.rmtree(d, ignore_errors=True)
    return elapsed


def run_skopeo(ref: str, work: str) -> float:
    d = tempfile.mkdtemp(prefix="sk-", dir=work)
    t = time.perf_counter()
    subprocess.run(["skopeo", "copy", "-q", "--src-tls-verify=false", f"docker://{ref}", f"dir:{d}/img"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    elapsed = time.perf_counter() - t
    shutil.rmtree(d)
    return elapsed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--only", choices=["debian", "multi"])
    args = ap.parse_args()
    os.makedirs(CACHE, exist_ok=True)
    work = tempfile.mkdtemp(prefix="dockyard-bench-pull-")
    reg = RegistryServer(os.path.join(CACHE, "registry"))
    try:
        reg.start()
        refs = seed(reg, work)
        for name, ref in refs.items():
            if args.only and name != args.only:
                continue
            dy, pd, sk, sizes = [], [], [], []
            for _ in range(args.rounds):
                t, unpacked = run_dockyard(ref, work)
                dy.append(t)
                sizes.append(unpacked)
                pd.append(run_podman(ref, work))
                sk.append(run_skopeo(ref, work))
            md, mp, ms = statistics.median(dy), statistics.median(pd), statistics.median(sk)
            mb = sizes[0] / 1e6
            print(f"== {name}: {ref} ({mb:.0f} MB unpacked), {args.rounds} paired rounds")
            print(f"   dockyard pull   median {md:6.2f} s   runs {' '.join(f'{x:.2f}' for x in dy)}")
            print(f"   podman pull     median {mp:6.2f} s   runs {' '.join(f'{x:.2f}' for x in pd)}")
            print(f"   skopeo copy dir median {ms:6.2f} s   runs {' '.join(f'{x:.2f}' for x in sk)}")
            print(f"   ratio dockyard/podman {md / mp:.2f} (goal <= 0.50)   dockyard/skopeo {md / ms:.2f}")
            print(f"   dockyard pull+extract rate {mb / md:.0f} MB/s of unpacked layer data")
    finally:
        reg.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
