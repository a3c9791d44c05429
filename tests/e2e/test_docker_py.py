"""docker-py (the `docker` package from PyPI), a client we did not write, against our daemon."""

from __future__ import annotations

import io
import tarfile
import time

import pytest

from support.daemon import TestDaemon, busybox_daemon

docker = pytest.importorskip("docker")
pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    d = busybox_daemon(str(tmp_path_factory.mktemp("e2e-py")))
    yield d
    d.cleanup()


@pytest.fixture(scope="module")
def client(daemon: TestDaemon):  # noqa: ANN201
    c = daemon.docker_client()
    yield c
    c.close()


def test_version_and_ping(client) -> None:  # noqa: ANN001
    assert client.ping() is True
    v = client.version()
    assert v["ApiVersion"] == "1.43" and v["Os"] == "linux"
    assert client.info()["Driver"] == "overlay2"


def test_run_logs_wait(client) -> None:  # noqa: ANN001
    out = client.containers.run("busybox", ["sh", "-c", "echo hi; echo err >&2"], remove=True, stderr=True)
    assert out == b"hi\nerr\n"
    c = client.containers.run("busybox", ["sh", "-c", "echo a; sleep 0.3; echo b; exit 3"], detach=True, name="pyd")
    assert c.wait()["StatusCode"] == 3
    assert c.logs() == b"a\nb\n"
    assert c.logs(tail=1) == b"b\n"
    c.reload()
    assert c.status == "exited" and c.name == "pyd" and c.attrs["State"]["ExitCode"] == 3
    assert [x.name for x in client.containers.list(all=True, filters={"name": "pyd"})] == ["pyd"]
    c.remove()
    with pytest.raises(docker.errors.ContainerError) as e:
        client.containers.run("busybox", ["sh", "-c", "echo boom >&2; exit 2"], remove=True)
    assert e.value.exit_status == 2 and b"boom" in e.value.stderr
    with pytest.raises(docker.errors.NotFound):
        client.containers.get("no-such-container")
    with pytest.raises(docker.errors.APIError) as e2:
        client.containers.run("busybox", ["nonexistent-binary"], remove=True)
    assert "executable file not found" in str(e2.value)


def test_create_start_exec_stream(client) -> None:  # noqa: ANN001
    c = client.containers.create("busybox", ["sh", "-c", "while true; do echo tick; sleep 0.2; done"], name="pyexec")
    c.start()
    try:
        r = c.exec_run(["sh", "-c", "echo $X; exit 5"], environment={"X": "from-exec"})
        assert r.exit_code == 5 and r.output == b"from-exec\n"
        r = c.exec_run("id -u", user="nobody")
        assert r.output.strip() == b"65534"
        r = c.exec_run(["sh", "-c", "echo o; echo e >&2"], demux=True)
        assert r.output == (b"o\n", b"e\n")
        r = c.exec_run("tty", tty=True)
        assert r.output.startswith(b"/dev/pts/")
        stream = c.logs(stream=True, follow=True)
        first = next(stream)
        assert first == b"tick\n"
        top = c.top()
        assert "PID" in top["Titles"]
        stats = c.stats(stream=False)
        assert stats["memory_stats"]["usage"] > 0
        c.pause()
        c.reload()
        assert c.status == "paused"
        c.unpause()
        c.rename("pyexec2")
        c.reload()
        assert c.name == "pyexec2"
        c.update(mem_limit="64m", memswap_limit="128m")
        c.reload()
        assert c.attrs["HostConfig"]["Memory"] == 64 << 20
    finally:
        c.stop(timeout=1)
        c.remove()


def test_put_and_get_archive(client) -> None:  # noqa: ANN001
    c = client.containers.create("busybox", ["sleep", "30"])
    try:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tf:
            data = b"payload"
            ti = tarfile.TarInfo("file.txt")
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
        assert c.put_archive("/tmp", buf.getvalue()) is True
        c.start()
        assert c.exec_run("cat /tmp/file.txt").output == b"payload"
        stream, stat = c.get_archive("/tmp/file.txt")
        assert stat["name"] == "file.txt" and stat["size"] == 7
        raw = b"".join(stream)
        with tarfile.open(fileobj=io.BytesIO(raw)) as tf:
            f = tf.extractfile("file.txt")
            assert f is not None and f.read() == b"payload"
        assert c.diff() and any(ch["Path"] == "/tmp/file.txt" for ch in c.diff())
        exported = b"".join(c.export())
        with tarfile.open(fileobj=io.BytesIO(exported)) as tf:
            assert "tmp/file.txt" in tf.getnames()
    finally:
        c.remove(force=True)


def test_images_and_volumes(client) -> None:  # noqa: ANN001
    tags = [t for img in client.images.list() for t in img.tags]
    assert "busybox:latest" in tags
    v = client.volumes.create("pyvol", labels={"k": "v"})
    assert v.name == "pyvol" and v.attrs["Driver"] == "local"
    out = client.containers.run("busybox", ["sh", "-c", "echo kept > /data/f; cat /data/f"], remove=True,
                                volumes={"pyvol": {"bind": "/data", "mode": "rw"}})
    assert out == b"kept\n"
    out = client.containers.run("busybox", ["cat", "/data/f"], remove=True, volumes=["pyvol:/data:ro"])
    assert out == b"kept\n"
    assert "pyvol" in [x.name for x in client.volumes.list(filters={"label": "k=v"})]
    client.volumes.get("pyvol").remove()
    with pytest.raises(docker.errors.NotFound):
        client.volumes.get("pyvol")
    pruned = client.containers.prune()
    assert "SpaceReclaimed" in pruned


def test_events(client) -> None:  # noqa: ANN001
    since = time.time()
    c = client.containers.run("busybox", "true", detach=True)
    c.wait()
    c.remove()
    evs = list(client.events(since=since, until=time.time() + 1, decode=True, filters={"container": c.id}))
    assert [e["Action"] for e in evs] == ["create", "start", "die", "destroy"]
