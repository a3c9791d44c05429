"""Pure logic of image/: manifests and platforms, progress messages, auth formats, --change
parsing, time parsing (no root, no network)."""

from __future__ import annotations

import json

import pytest

from dockyard.errors import InvalidParameter, NotFound
from dockyard.image import auth, manifest
from dockyard.image.config import apply_changes, empty_container_config, parse_time
from dockyard.image.progress import bar, human_size
from dockyard.image.registry import RegistryConfig, _parse_challenge

D = "sha256:" + "b" * 64


def _index(*platforms):
    return manifest.Index(
        manifest.OCI_INDEX,
        [manifest.Descriptor(manifest.OCI_MANIFEST, "sha256:" + str(i) * 64, 10, p) for i, p in enumerate(platforms)],
    )


def test_platform_choice_prefers_exact_variant_then_none():
    idx = _index({"os": "linux", "architecture": "arm", "variant": "v6"}, {"os": "linux", "architecture": "arm", "variant": "v7"},
                 {"os": "linux", "architecture": "amd64"}, {"os": "windows", "architecture": "amd64"})
    assert manifest.select_platform(idx, ("linux", "arm", "v7")).platform["variant"] == "v7"
    assert manifest.select_platform(idx, ("linux", "amd64", "")).platform == {"os": "linux", "architecture": "amd64"}
    assert manifest.select_platform(_index(idx.manifests[0].platform), ("linux", "arm", "v7")).platform["variant"] == "v6"
    with pytest.raises(NotFound, match="no matching manifest for linux/s390x in the manifest list entries"):
        manifest.select_platform(idx, ("linux", "s390x", ""))
    assert manifest.parse_platform("linux/arm64/v8") == ("linux", "arm64", "v8")


def test_manifest_parsing_refuses_what_it_cannot_pull():
    good = {"schemaVersion": 2, "mediaType": manifest.DOCKER_MANIFEST,
            "config": {"mediaType": manifest.DOCKER_CONFIG, "size": 2, "digest": D},
            "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 3, "digest": D}]}
    m = manifest.parse(json.dumps(good).encode(), manifest.DOCKER_MANIFEST)
    assert isinstance(m, manifest.Manifest) and m.layers[0].size == 3
    bad_layer = dict(good, layers=[{"mediaType": "text/html", "size": 3, "digest": D}])
    with pytest.raises(InvalidParameter, match="unsupported media type for a layer"):
        manifest.parse(json.dumps(bad_layer).encode(), manifest.DOCKER_MANIFEST)
    with pytest.raises(InvalidParameter, match="schema 1 is no longer supported"):
        manifest.parse(json.dumps({"schemaVersion": 1}).encode(), "application/vnd.docker.distribution.manifest.v1+prettyjws")
    with pytest.raises(InvalidParameter, match="unsupported manifest media type"):
        manifest.parse(b"{}", "application/x-nope")
    with pytest.raises(InvalidParameter, match="unsupported digest"):
        manifest.parse(json.dumps(dict(good, config={"mediaType": manifest.DOCKER_CONFIG, "size": 2, "digest": "md5:00"})).encode(), "")


def test_progress_messages_look_like_dockers():
    assert human_size(3_320_000) == "3.32MB" and human_size(745_000) == "745kB" and human_size(12) == "12B"
    done = bar("Downloading", "abc", 100, 100)
    assert done["progress"].startswith("[" + "=" * 50 + ">]") and done["progressDetail"] == {"current": 100, "total": 100}
    assert bar("Downloading", "abc", 0, 100)["progress"].startswith("[>" + " " * 50 + "]")


def test_auth_header_and_config_file(tmp_path):
    hdr = auth.encode_header({"username": "u", "password": "p"})
    assert auth.decode_header(hdr) == {"username": "u", "password": "p"}
    assert auth.decode_header(hdr.rstrip("=")) == {"username": "u", "password": "p"}
    assert auth.decode_header("!!") is None and auth.decode_header(None) is None
    path = str(tmp_path / "config.json")
    auth.store("docker.io", "me", "pw", path)
    auth.store("127.0.0.1:5000", "you", "x:y", path)
    with open(path) as f:
        data = json.load(f)
    assert set(data["auths"]) == {"https://index.docker.io/v1/", "127.0.0.1:5000"}
    assert auth.lookup("docker.io", path)["username"] == "me"
    assert auth.lookup("127.0.0.1:5000", path)["password"] == "x:y"
    assert auth.erase("docker.io", path) and auth.lookup("docker.io", path) is None


def test_registry_transport_and_challenges():
    cfg = RegistryConfig.from_options({"insecure-registries": ["10.1.0.0/16", "reg.example:5000"]})
    assert cfg.is_insecure("127.0.0.1:5000") and cfg.is_insecure("localhost:5000") and cfg.is_insecure("[::1]:5000")
    assert cfg.is_insecure("10.1.2.3:443") and cfg.is_insecure("reg.example:5000")
    assert not cfg.is_insecure("registry-1.docker.io") and not cfg.is_insecure("10.2.0.1")
    scheme, params = _parse_challenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"')
    assert scheme == "bearer" and params["service"] == "registry.docker.io" and params["scope"] == "repository:library/busybox:pull"
    assert _parse_challenge('Basic realm="Registry Realm"') == ("basic", {"realm": "Registry Realm"})


def test_changes_and_times():
    cfg = apply_changes(empty_container_config(), ['CMD ["a", "b"]', "ENTRYPOINT /bin/x -y", "ENV A=1 B=two", "ENV A 3",
                                                   "EXPOSE 80 53/udp", "LABEL k=v", "USER nobody", "WORKDIR /w", "VOLUME /data"])
    assert cfg["Cmd"] == ["a", "b"] and cfg["Entrypoint"] == ["/bin/sh", "-c", "/bin/x -y"]
    assert cfg["Env"] == ["B=two", "A=3"] and cfg["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}}
    assert cfg["Labels"] == {"k": "v"} and cfg["User"] == "nobody" and cfg["WorkingDir"] == "/w" and cfg["Volumes"] == {"/data": {}}
    with pytest.raises(InvalidParameter, match="RUN is not a valid change command"):
        apply_changes({}, ["RUN echo"])
    assert parse_time("2024-01-02T03:04:05.123456789Z") == pytest.approx(1704164645.123456789)
    assert parse_time("2024-01-02T05:04:05+02:00") == 1704164645
