"""save/load (docker-archive + OCI layout) and third-party clients reading what Dockyard writes."""

from __future__ import annotations

import asyncio
import io
import json
import os
import shutil
import subprocess
import tarfile

import pytest

from dockyard.errors import InvalidParameter
from image.conftest import build_image
from storage.layertars import LayerTar, base_layer, second_layer


def _save(svc, refs) -> bytes:
    buf = io.BytesIO()
    svc.save(refs, buf)
    return buf.getvalue()


def test_save_load_round_trip(services, busybox_tar_bytes):
    src = services.new("src")
    bb = src.import_(io.BytesIO(busybox_tar_bytes), "busybox:latest")
    multi = build_image(src, [base_layer().gz(), second_layer().bytes()], "multi:1")
    data = _save(src, ["busybox", "multi:1"])
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        names = set(tf.getnames())
        manifest = json.load(tf.extractfile("manifest.json"))
        index = json.load(tf.extractfile("index.json"))
    assert {"manifest.json", "index.json", "oci-layout", "repositories"} <= names
    assert sorted(m["RepoTags"][0] for m in manifest) == ["busybox:latest", "multi:1"]
    assert len(index["manifests"]) == 2
    dst = services.new("dst")
    lines = dst.load(io.BytesIO(data))
    assert sorted(lines) == ["Loaded image: busybox:latest", "Loaded image: multi:1"]
    assert dst.get("busybox").id == bb and dst.get("multi:1").id == multi
    # loading again is idempotent; an untagged save loads as an ID
    assert dst.load(io.BytesIO(data)) == lines
    third = services.new("third")
    assert third.load(io.BytesIO(_save(src, [bb]))) == [f"Loaded image ID: {bb}"]


def test_load_refuses_bad_archives(services):
    svc = services.new()
    with pytest.raises(InvalidParameter, match="neither manifest.json nor index.json"):
        svc.load(io.BytesIO(LayerTar().file("x", b"x").bytes()))
    bad = LayerTar().raw_name("../../escape", b"x").bytes()
    with pytest.raises(InvalidParameter, match="invalid archive"):
        svc.load(io.BytesIO(bad))
    assert svc.images() == [] and svc.layers.layers() == []
    assert os.listdir(svc.content.ingest) == []


PODMAN_LIMITS = ["--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768"]


@pytest.mark.e2e
@pytest.mark.skipif(shutil.which("podman") is None, reason="podman is not installed")
def test_podman_loads_and_runs_a_saved_archive(services, busybox_tar_bytes, tmp_path):
    svc = services.new()
    svc.import_(io.BytesIO(busybox_tar_bytes), "dyt-saved:1", changes=['CMD ["echo", "from-dockyard"]'])
    archive = tmp_path / "saved.tar"
    archive.write_bytes(_save(svc, ["dyt-saved:1"]))
    import tempfile

    short = tempfile.mkdtemp(prefix="dytp-", dir="/tmp")  # podman wants a runroot under 50 characters
    podman = ["podman", "--root", f"{short}/root", "--runroot", f"{short}/run", "--storage-driver", "overlay",
              "--cgroup-manager", "cgroupfs", "--events-backend", "none", "--runtime", "runc"]
    try:
        out = subprocess.run(podman + ["load", "-i", str(archive)], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert "dyt-saved:1" in out.stdout
        run = subprocess.run(podman + ["run", "--rm", "--network", "none", *PODMAN_LIMITS, "dyt-saved:1"],
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        assert run.stdout.strip() == "from-dockyard"
    finally:
        subprocess.run(podman + ["system", "reset", "-f"], capture_output=True, timeout=120)
        for sub in ("root/overlay", "root", "run"):
            subprocess.run(["umount", "-R", f"{short}/{sub}"], capture_output=True)
        shutil.rmtree(short, ignore_errors=True)


@pytest.mark.e2e
@pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo is not installed")
def test_skopeo_pulls_what_dockyard_pushed(services, registry, tmp_path):
    svc = services.new()
    ref = f"{registry.addr}/forskopeo:v1"
    build_image(svc, [base_layer().gz(), second_layer().bytes()], ref)
    asyncio.run(svc.push(ref))
    out = subprocess.run(["skopeo", "copy", "--src-tls-verify=false", f"docker://{ref}", f"oci:{tmp_path}/oci:v1"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    insp = subprocess.run(["skopeo", "inspect", "--tls-verify=false", f"docker://{ref}"], capture_output=True, text=True, timeout=60)
    assert insp.returncode == 0, insp.stderr
    assert len(json.loads(insp.stdout)["Layers"]) == 2
    # and we read skopeo's OCI layout back through load
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        tf.add(str(tmp_path / "oci"), arcname=".")
    other = services.new("other")
    lines = other.load(io.BytesIO(buf.getvalue()))
    assert len(lines) == 1 and other.get(lines[0].split()[-1] if "ID" in lines[0] else lines[0].split(": ")[1]).top_layer
