"""Reference parsing and normalisation, with Docker's error texts (pure, no root needed)."""

from __future__ import annotations

import pytest

from dockyard.errors import InvalidParameter
from dockyard.image.reference import parse, parse_normalized

D = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    "s,full,familiar",
    [
        ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
        ("user/app", "docker.io/user/app:latest", "user/app:latest"),
        ("index.docker.io/library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("localhost/app", "localhost/app:latest", "localhost/app:latest"),
        ("127.0.0.1:5000/ns/repo:v1", "127.0.0.1:5000/ns/repo:v1", "127.0.0.1:5000/ns/repo:v1"),
        (f"busybox@{D}", f"docker.io/library/busybox@{D}", f"busybox@{D}"),
        (f"busybox:1@{D}", f"docker.io/library/busybox:1@{D}", f"busybox:1@{D}"),
        ("Registry.Example.com:443/a/b", "Registry.Example.com:443/a/b:latest", "Registry.Example.com:443/a/b:latest"),
    ],
)
def test_normalisation(s, full, familiar):
    ref = parse_normalized(s)
    assert str(ref) == full
    assert ref.familiar() == familiar


@pytest.mark.parametrize(
    "s,msg",
    [
        ("Busybox", "invalid reference format: repository name (library/Busybox) must be lowercase"),
        ("a" * 64, f"invalid repository name ({'a' * 64}), cannot specify 64-byte hexadecimal strings"),
        ("busybox:", "invalid reference format"),
        ("-bad", "invalid reference format"),
        ("busybox@sha256:abc", "invalid reference format"),
        ("a/" * 200 + "b", "repository name must not be more than 255 characters"),
    ],
)
def test_errors(s, msg):
    with pytest.raises(InvalidParameter) as e:
        parse(s)
    assert e.value.message == msg


def test_registry_host_for_docker_hub():
    assert parse("busybox").registry == "registry-1.docker.io"
    assert parse("localhost:5000/x").registry == "localhost:5000"
