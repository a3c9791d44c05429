"""The whole path through the daemon and the CLI: mkimage → push → rmi → pull → run, and
save → load, with a real registry."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from support.daemon import TestDaemon

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def _cli() -> list[str]:
    exe = shutil.which("dockyard")
    if exe:
        return [exe]
    src = os.path.join(REPO, "src")
    return [sys.executable, "-c", f"import sys; sys.path.insert(0, {src!r}); from dockyard.cli.main import main; sys.exit(main())"]


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    d = TestDaemon(str(tmp_path_factory.mktemp("daemon")))
    try:
        d.start()
        yield d
    finally:
        d.cleanup()


def _dy(daemon, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run([*_cli(), "-H", f"unix://{daemon.socket}", *args], capture_output=True, text=True, timeout=180)
    if check:
        assert r.returncode == 0, f"dockyard {' '.join(args)}: {r.stdout}{r.stderr}"
    return r


def test_mkimage_push_rmi_pull_run(daemon, registry, tmp_path):
    ref = f"{registry.addr}/cli/busybox:v1"
    _dy(daemon, "mkimage", "busybox", ref)
    out = _dy(daemon, "push", ref).stdout
    assert f"The push refers to repository [{registry.addr}/cli/busybox]" in out
    assert "v1: digest: sha256:" in out
    digest = out.split("digest: ")[1].split()[0]
    assert f"Untagged: {ref}" in _dy(daemon, "rmi", ref).stdout
    assert ref not in _dy(daemon, "images").stdout
    out = _dy(daemon, "pull", ref).stdout
    assert f"Digest: {digest}" in out and f"Downloaded newer image for {ref}" in out
    assert digest in _dy(daemon, "images", "--digests").stdout
    assert _dy(daemon, "run", "--rm", ref, "echo", "round-trip").stdout.strip() == "round-trip"
    # save → rmi → load
    archive = tmp_path / "bb.tar"
    _dy(daemon, "save", "-o", str(archive), ref)
    _dy(daemon, "rmi", ref)
    assert f"Loaded image: {ref}" in _dy(daemon, "load", "-i", str(archive)).stdout
    r = _dy(daemon, "pull", f"{registry.addr}/cli/nosuch", check=False)
    assert r.returncode != 0 and "not found" in r.stderr
