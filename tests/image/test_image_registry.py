"""Pull and push against a real registry (Debian's docker-registry on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import io
import json
import os
import stat

import pytest
import zstandard

from dockyard.errors import DockyardError, InvalidParameter, NotFound, Unauthorized
from dockyard.image import auth as authmod
from dockyard.image.registry import Registry, RegistryConfig
from image.conftest import build_image
from image.registry_server import RegistryServer
from storage.layertars import LayerTar, base_layer, second_layer


def _pull(svc, ref, **kw):
    msgs: list[dict] = []
    image_id = asyncio.run(svc.pull(ref, progress=msgs.append, **kw))
    return image_id, msgs


def _push(svc, ref, **kw):
    msgs: list[dict] = []
    asyncio.run(svc.push(ref, progress=msgs.append, **kw))
    return msgs


def test_mkimage_push_rmi_pull_round_trip(services, registry, busybox_tar_bytes):
    svc = services.new()
    ref = f"{registry.addr}/busybox:v1"
    image_id = svc.import_(io.BytesIO(busybox_tar_bytes), ref, changes=['CMD ["sh"]'])
    msgs = _push(svc, ref)
    assert msgs[0] == {"status": f"The push refers to repository [{registry.addr}/busybox]"}
    digest_line = [m["status"] for m in msgs if m.get("status", "").startswith("v1: digest: ")]
    assert digest_line and "size: " in digest_line[0]
    digest = digest_line[0].split()[2]
    svc.remove(ref)
    assert not svc.exists(ref) and svc.layers.layers() == []
    pulled, msgs = _pull(svc, ref)
    assert pulled == image_id
    statuses = [m.get("status") for m in msgs]
    assert statuses[0] == "Pulling from busybox" and "Pull complete" in statuses
    assert statuses[-2:] == [f"Digest: {digest}", f"Status: Downloaded newer image for {ref}"]
    info = svc.inspect(ref)
    assert info["RepoDigests"] == [f"{registry.addr}/busybox@{digest}"]
    assert info["Config"]["Cmd"] == ["sh"]
    # again: nothing to download
    _, msgs = _pull(svc, ref)
    assert {"status": "Already exists", "progressDetail": {}, "id": msgs[1]["id"]} in msgs
    assert msgs[-1] == {"status": f"Status: Image is up to date for {ref}"}
    # and by digest, into a fresh data root
    other = services.new("other")
    assert _pull(other, f"{registry.addr}/busybox@{digest}")[0] == image_id
    # a second push finds everything there
    msgs = _push(svc, ref)
    assert any(m.get("status") == "Layer already exists" for m in msgs)


def test_multi_layer_image_chunked_push_and_container_view(services, registry):
    src = services.new("src")
    layers = [base_layer().gz(), zstandard.ZstdCompressor().compress(second_layer().bytes()), LayerTar().file("top", b"t").bytes()]
    ref = f"{registry.addr}/multi:v1"
    image_id = build_image(src, layers, ref)
    msgs = _push(src, ref, chunk_size=1024)  # PATCH in 1 KiB chunks, then PUT
    assert sum(1 for m in msgs if m.get("status") == "Pushed") == 3
    dst = services.new("dst")
    pulled, msgs = _pull(dst, ref)
    assert pulled == image_id
    assert sum(1 for m in msgs if m.get("status") == "Pull complete") == 3
    img = dst.get(ref)
    dst.layers.create_rw("c1", img.top_layer)
    merged = dst.layers.mount("c1")
    try:
        assert not os.path.lexists(f"{merged}/etc/deleted.conf")
        assert sorted(os.listdir(f"{merged}/opq")) == ["new"]
        assert stat.S_IMODE(os.stat(f"{merged}/bin/suid").st_mode) == 0o4755
        assert os.stat(f"{merged}/bin/suid").st_ino == os.stat(f"{merged}/bin/suid-link").st_ino
        assert os.readlink(f"{merged}/bin/sh-link") == "/bin/tool"
        assert os.path.isfile(f"{merged}/top") and os.path.isfile(f"{merged}/etc/hosts")
        with open(f"{merged}/etc/passwd", "a") as f:
            f.write("x\n")
    finally:
        dst.layers.unmount("c1")
    base = dst.layers.chain(img.top_layer)[0]
    with open(os.path.join(base.path, "etc/passwd")) as f:
        assert "x\n" not in f.read()
    # a cross-repository push mounts the blobs instead of uploading them
    dst.tag(ref, f"{registry.addr}/copy", "v1")
    msgs = _push(dst, f"{registry.addr}/copy:v1")
    assert sum(1 for m in msgs if m.get("status") == "Mounted from multi") == 3


def test_basic_auth_and_config_json_credentials(services, tmp_path, busybox_tar_bytes, monkeypatch):
    with RegistryServer(str(tmp_path / "reg"), auth="basic") as reg:
        svc = services.new()
        ref = f"{reg.addr}/private/bb:1"
        svc.import_(io.BytesIO(busybox_tar_bytes), ref)
        monkeypatch.setenv("DOCKYARD_CONFIG", str(tmp_path / "cfg"))
        with pytest.raises(Unauthorized):
            _push(svc, ref)
        with pytest.raises(Unauthorized):
            Registry(reg.addr, {"username": "dyt", "password": "wrong"}).ping()
        Registry(reg.addr, {"username": "dyt", "password": "s3cret"}).ping()
        _push(svc, ref, auth={"username": "dyt", "password": "s3cret"})
        authmod.store(reg.addr, "dyt", "s3cret")
        with open(tmp_path / "cfg/config.json") as f:
            assert "auth" in json.load(f)["auths"][reg.addr]
        fresh = services.new("fresh")
        assert _pull(fresh, ref)[0] == svc.get(ref).id  # credentials read from config.json


def test_bearer_token_flow_with_cached_tokens(services, tmp_path, busybox_tar_bytes):
    with RegistryServer(str(tmp_path / "reg"), auth="token") as reg:
        svc = services.new()
        ref = f"{reg.addr}/team/bb:1"
        svc.import_(io.BytesIO(busybox_tar_bytes), ref)
        creds = {"username": "dyt", "password": "s3cret"}
        with pytest.raises(Unauthorized):
            _push(svc, ref)  # anonymous tokens are pull-only
        _push(svc, ref, auth=creds)
        pushes = len(reg.token.requests)
        assert pushes <= 3  # one token per scope, reused across blob and manifest requests
        fresh = services.new("fresh")
        assert _pull(fresh, ref, auth=creds)[0] == svc.get(ref).id
        assert any(r["user"] == "dyt" for r in reg.token.requests)
        anon = services.new("anon")
        assert _pull(anon, ref, auth={})[0] == svc.get(ref).id  # anonymous pull is allowed


def _upload_raw(reg_addr: str, repo: str, blobs: list[bytes], manifest: dict, media: str) -> None:
    r = Registry(reg_addr)
    for b in blobs:
        d = "sha256:" + hashlib.sha256(b).hexdigest()
        r.upload_blob(repo, d, len(b), io.BytesIO(b))
    r.put_manifest(repo, "v1", json.dumps(manifest).encode(), media)


def _hostile_image(registry, repo: str, kind: str) -> None:
    # content unique to the kind: the registry stores blobs by digest, and the bad-digest case
    # corrupts its stored copy, which must not be the blob another case pulls
    good_tar = LayerTar().file("hello", b"hello" * 1000).file(f"kind-{kind}", kind.encode()).bytes()
    blob = gzip.compress(good_tar)
    layer_media = "application/vnd.docker.image.rootfs.diff.tar.gzip"
    diff_id = "sha256:" + hashlib.sha256(good_tar).hexdigest()
    if kind == "non-gzip":
        blob = good_tar  # labelled gzip below
        diff_id = "sha256:" + hashlib.sha256(good_tar).hexdigest()
    if kind == "escape":
        bad = LayerTar().raw_name("../../../../tmp/dyt-escaped").bytes()
        blob = gzip.compress(bad)
        diff_id = "sha256:" + hashlib.sha256(bad).hexdigest()
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
    if kind == "bad-diffid":
        config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "0" * 64]}}).encode()
    blob_digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    size = len(blob)
    if kind == "bad-digest":
        # the manifest names another digest than the bytes: the registry serves our bytes under it
        pass
    if kind == "truncated":
        size = len(blob) + 100
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": len(config), "digest": "sha256:" + hashlib.sha256(config).hexdigest()},
        "layers": [{"mediaType": "application/x-evil" if kind == "bad-media" else layer_media, "size": size, "digest": blob_digest}],
    }
    _upload_raw(registry.addr, repo, [blob, config], manifest, "application/vnd.docker.distribution.manifest.v2+json")
    if kind == "bad-digest":
        # corrupt the stored blob in the registry's storage (a bit flip keeps the size)
        root = os.path.join(registry.workdir, "storage/docker/registry/v2/blobs/sha256", blob_digest[7:9], blob_digest[7:], "data")
        data = bytearray(open(root, "rb").read())  # noqa: SIM115
        data[len(data) // 2] ^= 0xFF
        with open(root, "wb") as f:
            f.write(bytes(data))


@pytest.mark.parametrize(
    "kind,msg",
    [
        ("bad-digest", "digest mismatch|invalid gzip|invalid layer tar"),
        ("bad-media", "unsupported media type"),
        ("truncated", "unexpected EOF|truncated"),
        ("non-gzip", "invalid gzip data"),
        ("bad-diffid", "does not match the image config"),
        ("escape", "outside of the layer"),
    ],
)
def test_hostile_registry_content_is_refused_cleanly(services, registry, kind, msg, busybox_tar_bytes):
    repo = f"hostile-{kind}"
    _hostile_image(registry, repo, kind)
    svc = services.new()
    with pytest.raises((DockyardError, InvalidParameter)) as e:
        _pull(svc, f"{registry.addr}/{repo}:v1")
    assert e.match(msg)
    assert svc.images() == [] and svc.layers.layers() == []
    assert os.listdir(svc.content.ingest) == []
    assert sorted(os.listdir(os.path.join(svc.data_root, "overlay2"))) == ["l"]
    assert not os.path.exists("/tmp/dyt-escaped")
    # the store is consistent: a good pull still completes
    good = f"{registry.addr}/good:v1"
    src = services.new("src")
    src.import_(io.BytesIO(busybox_tar_bytes), good)
    _push(src, good)
    assert _pull(svc, good)[0] == src.get(good).id


def test_missing_image_and_platform_errors(services, registry):
    svc = services.new()
    with pytest.raises(NotFound, match="manifest for .*nosuch:latest not found"):
        _pull(svc, f"{registry.addr}/nosuch")
    with pytest.raises(DockyardError, match="connection refused"):
        _pull(svc, "127.0.0.1:1/x:y")


def test_docker_hub_names_go_through_a_configured_mirror(services, registry, busybox_tar_bytes):
    # the mirror holds library/busybox as Docker Hub would; Hub itself is never contacted
    src = services.new("src")
    src.import_(io.BytesIO(busybox_tar_bytes), f"{registry.addr}/library/busybox:latest")
    _push(src, f"{registry.addr}/library/busybox:latest")
    svc = services.new("mirrored", {"registry-mirrors": [f"http://{registry.addr}"]})
    image_id, msgs = _pull(svc, "busybox")
    assert image_id == src.get(f"{registry.addr}/library/busybox").id
    assert msgs[0] == {"status": "Pulling from library/busybox", "id": "latest"}
    assert msgs[-1] == {"status": "Status: Downloaded newer image for busybox:latest"}
    assert svc.inspect("busybox")["RepoDigests"][0].startswith("busybox@sha256:")


def test_manifest_list_picks_the_host_platform(services, registry):
    # two single-layer images, one per architecture, behind a Docker manifest list and an OCI index
    r = Registry(registry.addr)
    descs = []
    for arch in ("arm64", "amd64"):
        tar = LayerTar().file("arch", arch.encode()).bytes()
        blob = gzip.compress(tar)
        config = json.dumps({"architecture": arch, "os": "linux", "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(tar).hexdigest()]}}).encode()
        for b in (blob, config):
            r.upload_blob("multiarch", "sha256:" + hashlib.sha256(b).hexdigest(), len(b), io.BytesIO(b))
        man = json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": len(config), "digest": "sha256:" + hashlib.sha256(config).hexdigest()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "size": len(blob), "digest": "sha256:" + hashlib.sha256(blob).hexdigest()}],
        }).encode()
        d = r.put_manifest("multiarch", f"only-{arch}", man, "application/vnd.oci.image.manifest.v1+json")
        descs.append({"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": len(man), "digest": d,
                      "platform": {"architecture": arch, "os": "linux", **({"variant": "v8"} if arch == "arm64" else {})}})
    index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": descs}).encode()
    index_digest = r.put_manifest("multiarch", "v1", index, "application/vnd.oci.image.index.v1+json")
    svc = services.new()
    from dockyard.image.manifest import host_platform

    arch = host_platform()[1]
    image_id, _ = _pull(svc, f"{registry.addr}/multiarch:v1")
    img = svc.get(image_id)
    assert img.config["architecture"] == arch
    assert svc.inspect(image_id)["RepoDigests"] == [f"{registry.addr}/multiarch@{index_digest}"]
    with pytest.raises(NotFound, match="no matching manifest for linux/s390x"):
        _pull(svc, f"{registry.addr}/multiarch:v1", platform="linux/s390x")
    other = "arm64" if arch == "amd64" else "amd64"
    assert svc.get(_pull(svc, f"{registry.addr}/multiarch:v1", platform=f"linux/{other}")[0]).config["architecture"] == other


def test_https_registry_trusted_through_certs_d(services, tmp_path, busybox_tar_bytes, registry):
    """A TLS registry reached as an https:// mirror of docker.io. On 127.0.0.1 it is insecure by
    default, as in Docker (any certificate is accepted); certs.d trust for a registry that is
    not loopback is tested in test_image_insecure.py."""
    with RegistryServer(str(tmp_path / "tlsreg"), tls=True) as tls:
        certs = tmp_path / "certs.d"
        (certs / tls.addr).mkdir(parents=True)
        cfg = {"mirrors": {"docker.io": [f"https://{tls.addr}"]}, "certs-dir": str(certs)}
        src = services.new("src")
        src.import_(io.BytesIO(busybox_tar_bytes), "library-copy:1")
        r = Registry("docker.io", None, RegistryConfig.from_options(cfg), mirror=f"https://{tls.addr}")
        r.ping()
        assert r.scheme == "https"
        img = src.get("library-copy:1")
        layer = src.layers.chain(img.top_layer)[0]
        from dockyard.image.push import layer_blob

        desc, _ = layer_blob(src, layer.diff_id, layer.chain_id)
        with src.content.open(desc.digest) as f:
            r.upload_blob("library/busybox", desc.digest, desc.size, f)
        r.upload_blob("library/busybox", img.id, len(img.raw), io.BytesIO(img.raw))
        from dockyard.image import manifest as mf

        body, media = mf.build_schema2(mf.Descriptor(mf.DOCKER_CONFIG, img.id, len(img.raw)), [desc])
        r.put_manifest("library/busybox", "latest", body, media)
        svc = services.new("pulled", cfg)
        assert _pull(svc, "busybox")[0] == img.id
