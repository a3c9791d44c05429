"""`dockyard build`, the Docker CLI's classic `docker build` and docker-py's images.build against
our daemon."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from support.daemon import TestDaemon

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "cli"))
from cliutil import CLI  # noqa: E402

DOCKER = shutil.which("docker") or "/usr/local/bin/docker"


def _write(root: str, files: dict[str, str]) -> None:
    for name, data in files.items():
        path = os.path.join(root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(data)


def _docker(d: TestDaemon, *args: str, cwd: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    env["DOCKER_CONFIG"] = os.path.join(d.root, "docker-config")
    return subprocess.run([DOCKER, "-H", d.host, *args], capture_output=True, text=True, timeout=120, env=env,
                          cwd=cwd)  # fmt: skip


def test_dockyard_build(daemon: TestDaemon, tmp_path: pytest.TempPathFactory) -> None:
    cli = CLI(daemon.host, str(tmp_path / "cfg"))
    ctx = str(tmp_path / "ctx")
    _write(ctx, {
        "Dockerfile": "FROM busybox\nARG V=1\nCOPY app/ /app/\nRUN cat /app/msg; echo v=$V\nCMD [\"cat\", \"/app/msg\"]\n",
        "app/msg": "from the context\n", "app/skip.tmp": "no", ".dockerignore": "**/*.tmp\n",
    })  # fmt: skip
    r = cli("build", "-t", "cb/one", "-t", "cb/two:x", "--build-arg", "V=7", "--label", "k=v", ctx)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("Sending build context to Docker daemon  ")
    assert "from the context\nv=7\n" in r.stdout
    assert "Successfully tagged cb/one:latest\nSuccessfully tagged cb/two:x\n" in r.stdout
    assert cli.ok("run", "--rm", "cb/two:x") == "from the context\n"
    assert cli.ok("run", "--rm", "cb/one", "ls", "/app") == "msg\n"
    assert cli.ok("image", "inspect", "-f", "{{.Config.Labels.k}}", "cb/one") == "v\n"
    # -q prints only the id; a cached rebuild gives the same one
    q1 = cli.ok("build", "-q", "--build-arg", "V=7", "--label", "k=v", ctx).strip()
    assert q1.startswith("sha256:") and q1 == cli.ok("image", "inspect", "-f", "{{.Id}}", "cb/one").strip()
    # -f outside the context, and a failing build's exit status
    other = str(tmp_path / "Dockerfile.fail")
    _write(str(tmp_path), {"Dockerfile.fail": "FROM busybox\nRUN exit 3\n"})
    r = cli("build", "-f", other, ctx)
    assert r.returncode == 3
    assert r.stderr.strip() == "The command '/bin/sh -c exit 3' returned a non-zero code: 3"
    assert "cb/" not in cli.ok("ps", "-a", "--format", "{{.Image}}")
    iid = str(tmp_path / "iid")
    cli.ok("build", "-q", "--iidfile", iid, "--build-arg", "V=7", "--label", "k=v", ctx)
    with open(iid) as f:
        assert f.read() == q1
    r = cli("build", "-f", "nosuch.df", ctx)
    assert r.returncode == 1 and r.stderr.startswith("unable to prepare context: unable to evaluate symlinks")
    r = cli("build", str(tmp_path / "nosuch"))
    assert r.returncode == 1 and 'unable to prepare context: path "' in r.stderr
    # a Dockerfile on stdin, an empty context
    r = cli("build", "-t", "cb/stdin", "-", input="FROM busybox\nLABEL from=stdin\n")
    assert r.returncode == 0, r.stderr
    # intermediate images are hidden from `images` (they are parents), shown with -a
    listed = cli.ok("images", "--format", "{{.Repository}}").split()
    assert "<none>" not in listed and "cb/one" in listed
    assert "<none>" in cli.ok("images", "-a", "--format", "{{.Repository}}").split()
    cli.ok("build", "-q", "-", input="FROM busybox\nLABEL a=1\nLABEL b=2\n")  # untagged: only cache
    out = cli.ok("builder", "prune", "-f")
    assert out.startswith("Deleted build cache objects:\n") and len(out.splitlines()) == 4 and out.splitlines()[-1].startswith("Total reclaimed space: ")


@pytest.mark.skipif(not os.path.exists(DOCKER), reason="no Docker CLI")
def test_docker_cli_classic_build(daemon: TestDaemon, tmp_path: pytest.TempPathFactory) -> None:
    ctx = str(tmp_path / "dctx")
    _write(ctx, {"Dockerfile": "FROM busybox\nWORKDIR /w\nCOPY f.txt .\nRUN cat f.txt\nCMD [\"cat\", \"/w/f.txt\"]\n",
                 "f.txt": "docker cli\n"})  # fmt: skip
    r = _docker(daemon, "build", "-t", "dk/built", ctx)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Step 4/5 : RUN cat f.txt" in r.stdout and "docker cli\n" in r.stdout
    assert "Successfully tagged dk/built:latest" in r.stdout
    r = _docker(daemon, "run", "--rm", "dk/built")
    assert r.stdout == "docker cli\n"
    r = _docker(daemon, "build", ctx)
    assert r.stdout.count("Using cache") == 4
    _write(ctx, {"Dockerfile": "FROM busybox\nRUN exit 5\n"})
    r = _docker(daemon, "build", ctx)
    assert r.returncode == 5 and "The command '/bin/sh -c exit 5' returned a non-zero code: 5" in r.stderr


def test_docker_py_build(daemon: TestDaemon, tmp_path: pytest.TempPathFactory) -> None:
    ctx = str(tmp_path / "pyctx")
    _write(ctx, {"Dockerfile": "FROM busybox\nENV X=1\nRUN echo py > /py\n"})
    client = daemon.docker_client()
    try:
        image, logs = client.images.build(path=ctx, tag="py/built", rm=True)
        assert "py/built:latest" in image.tags
        assert any("Successfully built" in (x.get("stream") or "") for x in logs)
        assert client.containers.run("py/built", ["cat", "/py"], remove=True) == b"py\n"
    finally:
        client.close()


def test_dockyard_build_run_options(daemon: TestDaemon, tmp_path: pytest.TempPathFactory) -> None:
    cli = CLI(daemon.host, str(tmp_path / "cfg"))
    ctx = str(tmp_path / "optctx")
    _write(ctx, {"Dockerfile": "FROM busybox\nRUN grep dyt-extra /etc/hosts; ulimit -n; cat /proc/self/cgroup >/dev/null\n"})
    r = cli("build", "--no-cache", "--add-host", "dyt-extra:10.9.8.7", "--ulimit", "nofile=1234:1234",
            "--memory", "64m", "--network", "none", ctx)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "10.9.8.7\tdyt-extra\n1234\n" in r.stdout
