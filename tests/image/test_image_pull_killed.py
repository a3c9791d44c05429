"""A pull killed with SIGKILL halfway, then repeated, completes and verifies."""

from __future__ import annotations

import asyncio
import gzip
import os
import signal
import subprocess
import sys
import textwrap
import time

from image.conftest import build_image
from storage.layertars import LayerTar

CHILD = textwrap.dedent(
    """
    import asyncio, os, sys, time
    sys.path.insert(0, {src!r})
    from dockyard.image.service import ImageService
    from dockyard.storage.layers import LayerStore
    root, ref, marker = sys.argv[1:4]
    svc = ImageService(root, LayerStore(root))
    def progress(msg):
        if msg.get("status") == "Downloading" and 0 < msg["progressDetail"]["current"] < msg["progressDetail"]["total"]:
            open(marker, "w").close()
            time.sleep(30)  # hold the download open until the test kills us
    asyncio.run(svc.pull(ref, progress=progress))
    """
)


def test_pull_killed_then_repeated_completes(services, registry, tmp_path):
    src = services.new("src")
    ref = f"{registry.addr}/killme:v1"
    layers = [gzip.compress(LayerTar().file(f"blob{i}", os.urandom(6 << 20)).bytes(), 1) for i in range(3)]
    image_id = build_image(src, layers, ref)
    asyncio.run(src.push(ref))
    root = str(tmp_path / "victim")
    marker = str(tmp_path / "downloading")
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(src=os.path.join(os.path.dirname(__file__), "../../src")))
    child = subprocess.Popen([sys.executable, str(script), root, ref, marker])
    try:
        deadline = time.time() + 60
        while not os.path.exists(marker) and time.time() < deadline and child.poll() is None:
            time.sleep(0.01)
        assert os.path.exists(marker), "the child never started downloading"
        assert os.listdir(os.path.join(root, "content/ingest")), "a blob should be in flight"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    victim = services.new("victim")  # same data root, reopened after the crash
    assert victim.images() == []
    assert os.listdir(victim.content.ingest) == []
    pulled = asyncio.run(victim.pull(ref))
    assert pulled == image_id
    img = victim.get(ref)
    assert [x.diff_id for x in victim.layers.chain(img.top_layer)] == img.diff_ids
    assert sorted(os.listdir(os.path.join(root, "overlay2"))) == sorted(["l"] + [x.cache_id for x in victim.layers.layers()])
    victim.layers.create_rw("c", img.top_layer)
    merged = victim.layers.mount("c")
    try:
        assert sorted(f for f in os.listdir(merged) if f.startswith("blob")) == ["blob0", "blob1", "blob2"]
    finally:
        victim.layers.unmount("c")
