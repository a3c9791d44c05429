"""Manifests: Docker schema 2, Docker manifest lists, OCI manifests and indexes.

    parse(body, media_type) -> Manifest | Index         refuses unknown media types clearly
    select_platform(index, os_="linux", arch=None, variant=None) -> descriptor
    build_schema2(config_digest, config_size, layers) -> (body bytes, media type)
"""

from __future__ import annotations

import json
import platform as _platform
from dataclasses import dataclass

from dockyard.errors import InvalidParameter, NotFound

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_SCHEMA1 = ("application/vnd.docker.distribution.manifest.v1+json", "application/vnd.docker.distribution.manifest.v1+prettyjws")
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"

LAYER_MEDIA = {
    "application/vnd.docker.image.rootfs.diff.tar.gzip": "gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip": "gzip",
    "application/vnd.docker.image.rootfs.diff.tar": "none",
    "application/vnd.oci.image.layer.v1.tar": "none",
    "application/vnd.oci.image.layer.v1.tar+gzip": "gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd": "zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar": "none",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip": "gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd": "zstd",
}
CONFIG_MEDIA = (DOCKER_CONFIG, OCI_CONFIG)


@dataclass
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: dict | None = None
    urls: list[str] | None = None

    @classmethod
    def from_json(cls, d: dict) -> Descriptor:
        if not isinstance(d, dict) or not isinstance(d.get("digest"), str) or not isinstance(d.get("size"), int):
            raise InvalidParameter("invalid manifest: a descriptor lacks a digest or size")
        digest = d["digest"]
        algo, _, h = digest.partition(":")
        if algo != "sha256" or len(h) != 64 or any(c not in "0123456789abcdef" for c in h):
            raise InvalidParameter(f"invalid manifest: unsupported digest {digest}")
        if d["size"] < 0:
            raise InvalidParameter("invalid manifest: negative size")
        return cls(d.get("mediaType", ""), digest, d["size"], d.get("platform"), d.get("urls"))

    def to_json(self) -> dict:
        out: dict = {"mediaType": self.media_type, "size": self.size, "digest": self.digest}
        if self.platform:
            out["platform"] = self.platform
        return out


@dataclass
class Manifest:
    media_type: str
    config: Descriptor
    layers: list[Descriptor]


@dataclass
class Index:
    media_type: str
    manifests: list[Descriptor]


def parse(body: bytes, media_type: str) -> Manifest | Index:
    try:
        doc = json.loads(body)
    except ValueError:
        raise InvalidParameter("invalid manifest: not JSON") from None
    if not isinstance(doc, dict):
        raise InvalidParameter("invalid manifest: not a JSON object")
    mt = doc.get("mediaType") or media_type
    if media_type in ("", "application/json", "text/plain", "application/octet-stream") and not doc.get("mediaType"):
        # OCI documents may omit mediaType: tell them apart by shape
        mt = OCI_INDEX if "manifests" in doc else OCI_MANIFEST
    if mt in DOCKER_SCHEMA1 or doc.get("schemaVersion") == 1:
        raise InvalidParameter(
            "unsupported manifest format: Docker Image manifest version 2, schema 1 is no longer supported; the image must be rebuilt and pushed with schema 2"
        )
    if mt in (DOCKER_LIST, OCI_INDEX):
        return Index(mt, [Descriptor.from_json(m) for m in doc.get("manifests") or []])
    if mt in (DOCKER_MANIFEST, OCI_MANIFEST):
        if doc.get("schemaVersion") != 2:
            raise InvalidParameter(f"invalid manifest: schemaVersion {doc.get('schemaVersion')!r}")
        config = Descriptor.from_json(doc.get("config") or {})
        if config.media_type not in CONFIG_MEDIA:
            raise InvalidParameter(f"unsupported media type for the image config: {config.media_type!r}")
        layers = [Descriptor.from_json(x) for x in doc.get("layers") or []]
        for layer in layers:
            if layer.media_type not in LAYER_MEDIA:
                raise InvalidParameter(f"unsupported media type for a layer: {layer.media_type!r}")
        return Manifest(mt, config, layers)
    raise InvalidParameter(f"unsupported manifest media type: {mt!r}")


def host_platform() -> tuple[str, str, str]:
    m = _platform.machine()
    arch, variant = {
        "x86_64": ("amd64", ""),
        "aarch64": ("arm64", "v8"),
        "armv7l": ("arm", "v7"),
        "armv6l": ("arm", "v6"),
        "i686": ("386", ""),
    }.get(m, (m, ""))
    return "linux", arch, variant


def parse_platform(s: str | None) -> tuple[str, str, str]:
    """'linux/amd64', 'linux/arm64/v8', 'linux' (arch from the host) or None (the host's)."""
    h = host_platform()
    if not s:
        return h
    parts = s.lower().split("/")
    os_ = parts[0]
    arch = parts[1] if len(parts) > 1 else h[1]
    variant = parts[2] if len(parts) > 2 else (h[2] if arch == h[1] else "")
    arch = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64"}.get(arch, arch)
    return os_, arch, variant


def select_platform(index: Index, want: tuple[str, str, str] | None = None) -> Descriptor:
    """The manifest for the platform, preferring the exact variant, then none, then lower."""
    os_, arch, variant = want or host_platform()
    best: tuple[int, Descriptor] | None = None
    for d in index.manifests:
        p = d.platform or {}
        if p.get("os", "").lower() != os_ or p.get("architecture", "").lower() != arch:
            continue
        v = (p.get("variant") or "").lower()
        if arch == "arm64" and v in ("", "v8") or v == variant:
            score = 3
        elif not v:
            score = 2
        elif variant and v < variant:
            score = 1
        else:
            continue
        if best is None or score > best[0]:
            best = (score, d)
    if best is None:
        shown = f"{os_}/{arch}" + (f"/{variant}" if variant else "")
        raise NotFound(f"no matching manifest for {shown} in the manifest list entries")
    return best[1]


def build_schema2(config: Descriptor, layers: list[Descriptor]) -> tuple[bytes, str]:
    doc = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": DOCKER_CONFIG, "size": config.size, "digest": config.digest},
        "layers": [{"mediaType": x.media_type, "size": x.size, "digest": x.digest} for x in layers],
    }
    return json.dumps(doc, indent=3).encode(), DOCKER_MANIFEST
