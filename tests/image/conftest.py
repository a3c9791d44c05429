"""Fixtures for image tests: real registries (anonymous, basic auth, bearer token) and services."""

from __future__ import annotations

import io
import json

import pytest

from dockyard.image import mkimage
from dockyard.image.config import empty_container_config, now_rfc3339
from dockyard.image.service import ImageService
from dockyard.storage.layers import LayerStore
from image.registry_server import RegistryServer


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    with RegistryServer(str(tmp_path_factory.mktemp("registry"))) as reg:
        yield reg


@pytest.fixture(scope="session")
def busybox_tar_bytes() -> bytes:
    buf = io.BytesIO()
    mkimage.busybox_tar(buf)
    return buf.getvalue()


class Services:
    """Makes ImageServices on fresh data roots and tears their container layers down."""

    def __init__(self, base) -> None:  # noqa: ANN001
        self.base = base
        self.made: list[ImageService] = []

    def new(self, name: str = "root", registry_config: dict | None = None) -> ImageService:
        root = str(self.base / name)
        svc = ImageService(root, LayerStore(root), registry_config)
        self.made.append(svc)
        return svc

    def close(self) -> None:
        for svc in self.made:
            for rw in svc.layers.rw_layers():
                svc.layers.remove_rw(rw.container_id)


@pytest.fixture
def services(tmp_path):
    s = Services(tmp_path)
    yield s
    s.close()


def build_image(svc: ImageService, layer_tars: list[bytes], repo_tag: str, cmd: list[str] | None = None) -> str:
    """An image from hand-made layer tars (each may be compressed), tagged `repo_tag`."""
    parent = None
    diff_ids = []
    for t in layer_tars:
        layer = svc.register_layer(io.BytesIO(t), parent)
        if parent is not None:
            svc.layers.release(parent)
        parent = layer.chain_id
        diff_ids.append(layer.diff_id)
    cfg = empty_container_config()
    cfg["Cmd"] = cmd or ["sh"]
    created = now_rfc3339()
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": created,
        "config": cfg,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": created, "created_by": f"layer {i}"} for i in range(len(diff_ids))],
    }
    return svc.add_image(json.dumps(config).encode(), parent, repo_tag)
