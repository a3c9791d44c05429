"""POST /build against a real daemon: RUN/COPY/ENV/WORKDIR/CMD, multi-stage, cache, .dockerignore,
ADD of a tar, a failing RUN, build args, history, --target, labels, /build/prune."""

from __future__ import annotations

import gzip
import io
import os
import tarfile

from buildutil import build, containers, context_tar, image_id, stream_text

from support.daemon import TestDaemon


def _inspect(d: TestDaemon, ref: str) -> dict:
    st, r = d.api("GET", f"/images/{ref}/json")
    assert st == 200, r
    return r


def test_build_run_copy_env_workdir_cmd(daemon: TestDaemon) -> None:
    df = (
        "FROM busybox\n"
        "ENV GREETING=hello DIR=/app\n"
        "WORKDIR $DIR\n"
        "COPY hello.txt ./\n"
        "COPY sub /app/sub/\n"
        "RUN echo \"$GREETING from run\" > run.txt && cat run.txt\n"
        "CMD [\"cat\", \"hello.txt\", \"run.txt\", \"sub/inner.txt\"]\n"
    )
    st, msgs = build(daemon, {"Dockerfile": df, "hello.txt": "hi there\n", "sub/inner.txt": "inner\n"}, t="bt/basic:1")
    assert st == 200, msgs
    text = stream_text(msgs)
    assert "Step 1/7 : FROM busybox\n" in text
    assert "Step 6/7 : RUN echo" in text and " ---> Running in " in text
    assert "hello from run\n" in text
    assert "Removing intermediate container " in text
    assert "Successfully tagged bt/basic:1\n" in text
    iid = image_id(msgs)
    assert f"Successfully built {iid[7:19]}\n" in text
    assert not [c for c in containers(daemon) if c["ImageID"] == iid or c["Image"].startswith("sha256:")]
    cfg = _inspect(daemon, "bt/basic:1")["Config"]
    assert cfg["WorkingDir"] == "/app" and cfg["Cmd"] == ["cat", "hello.txt", "run.txt", "sub/inner.txt"]
    assert "GREETING=hello" in cfg["Env"]
    _cid, code, out = daemon.run([], image="bt/basic:1")
    assert code == 0 and out == b"hi there\nhello from run\ninner\n"
    # history reads as the classic builder's
    st, hist = daemon.api("GET", "/images/bt/basic:1/history")
    by = [h["CreatedBy"] for h in hist]
    assert by[0] == '/bin/sh -c #(nop)  CMD ["cat" "hello.txt" "run.txt" "sub/inner.txt"]'
    assert by[1].startswith('/bin/sh -c echo "$GREETING from run"')
    assert by[3].startswith("/bin/sh -c #(nop) COPY file:") and by[3].endswith(" in ./ ")
    assert by[2].startswith("/bin/sh -c #(nop) COPY dir:") and by[2].endswith(" in /app/sub/ ")
    assert by[4] == "/bin/sh -c #(nop) WORKDIR /app"
    assert by[5] == "/bin/sh -c #(nop)  ENV GREETING=hello DIR=/app"
    assert hist[0]["Size"] == 0


def test_cache_and_no_cache(daemon: TestDaemon) -> None:
    files = {"Dockerfile": "FROM busybox\nCOPY a.txt /a.txt\nRUN date +%s%N > /stamp\nLABEL x=y\n", "a.txt": "a\n"}
    st, m1 = build(daemon, files)
    assert st == 200, m1
    st, m2 = build(daemon, files)
    assert st == 200
    assert stream_text(m2).count(" ---> Using cache\n") == 3
    assert image_id(m1) == image_id(m2)
    st, m3 = build(daemon, files, nocache=1)
    assert "Using cache" not in stream_text(m3) and image_id(m3) != image_id(m1)
    # a changed source invalidates its step and the ones after it
    st, m4 = build(daemon, {**files, "a.txt": "changed\n"})
    assert stream_text(m4).count("Using cache") == 0 and image_id(m4) != image_id(m1)


def test_multistage_copy_from_and_target(daemon: TestDaemon) -> None:
    df = (
        "FROM busybox AS builder\n"
        "RUN mkdir /out && echo built > /out/artifact\n"
        "FROM builder AS unused\n"
        "RUN echo never > /out/never\n"
        "FROM scratch\n"
        "COPY --from=builder /out/artifact /artifact\n"
        "COPY --from=busybox /bin/busybox /bin/busybox\n"
        "COPY --from=1 /out/never /never\n"
        "CMD [\"/bin/busybox\", \"cat\", \"/artifact\"]\n"
    )
    st, msgs = build(daemon, {"Dockerfile": df}, t="bt/multi")
    assert st == 200, msgs
    _cid, code, out = daemon.run([], image="bt/multi")
    assert code == 0 and out == b"built\n"
    assert len(_inspect(daemon, "bt/multi")["RootFS"]["Layers"]) == 3
    _cid, code, out = daemon.run(["/bin/busybox", "cat", "/never"], image="bt/multi")
    assert out == b"never\n"
    st, msgs = build(daemon, {"Dockerfile": df}, target="builder", t="bt/stage1")
    assert st == 200, msgs
    assert "Step 2/2 : RUN" in stream_text(msgs) and "Step 3/" not in stream_text(msgs)
    st, r = build(daemon, {"Dockerfile": df}, target="nosuch")
    assert st == 400 and r["message"] == "failed to reach build target nosuch in Dockerfile"


def test_dockerignore_and_add_tar(daemon: TestDaemon) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        ti = tarfile.TarInfo("pkg/data.txt")
        ti.size = 5
        tf.addfile(ti, io.BytesIO(b"data\n"))
    files = {
        "Dockerfile": "FROM busybox\nCOPY . /ctx/\nADD arch.tar.gz /opt/\nRUN ls -A /ctx | sort | tr '\\n' ' '\n",
        ".dockerignore": "# comment\n*.log\nsecret/**\n!keep.log\n",
        "a.log": "x", "keep.log": "k", "secret/x/y": "s", "src/main.c": "int main;",
        "arch.tar.gz": gzip.compress(buf.getvalue()),
    }
    st, msgs = build(daemon, files, t="bt/ignore")
    assert st == 200, msgs
    text = stream_text(msgs)
    assert ".dockerignore Dockerfile arch.tar.gz keep.log secret src Removing" in text, text
    _cid, code, out = daemon.run(["cat", "/opt/pkg/data.txt"], image="bt/ignore")
    assert out == b"data\n"


def test_failing_run_leaves_nothing(daemon: TestDaemon) -> None:
    before = {c["Id"] for c in containers(daemon)}
    st, msgs = build(daemon, {"Dockerfile": "FROM busybox\nRUN echo out; exit 3\n"})
    assert st == 200
    err = msgs[-1]
    assert err["error"] == "The command '/bin/sh -c echo out; exit 3' returned a non-zero code: 3"
    assert err["errorDetail"]["code"] == 3
    assert {c["Id"] for c in containers(daemon)} == before
    with open("/proc/self/mountinfo") as f:
        assert not [ln for ln in f if " overlay " in ln and daemon.root in ln]
    st, r = build(daemon, {"Dockerfile": "FROM busybox\nFOO bar\n"})
    assert st == 400 and r["message"] == "dockerfile parse error line 2: unknown instruction: FOO"
    st, r = build(daemon, {"Dockerfile": "FROM busybox AS\n"})
    assert st == 400 and r["message"] == "Dockerfile parse error line 1: FROM requires either one or three arguments"
    st, r = build(daemon, {"Dockerfile": "# nothing\n"})
    assert st == 400 and r["message"] == "the Dockerfile (Dockerfile) cannot be empty"
    st, r = build(daemon, {"Dockerfile": "ENV a=b\n"})
    assert st == 400 and r["message"] == "no build stage in current context"
    st, r = build(daemon, {"Dockerfile.other": "FROM busybox\n"})
    assert st == 400 and r["message"] == "Cannot locate specified Dockerfile: Dockerfile"
    st, msgs = build(daemon, {"Dockerfile": "FROM busybox\nCOPY nosuch /x\n"})
    assert st == 200 and msgs[-1]["error"] == ("COPY failed: file not found in build context or excluded by "
                                               ".dockerignore: stat nosuch: file does not exist")


def test_build_args_and_metadata(daemon: TestDaemon) -> None:
    df = (
        "ARG BASE=busybox\n"
        "FROM $BASE\n"
        "ARG WHO=nobody\n"
        "ARG UNSET\n"
        "LABEL who=${WHO} other=\"${UNSET:-dflt}\"\n"
        "EXPOSE 80 53/udp\n"
        "VOLUME /data\n"
        "USER 65534\n"
        "STOPSIGNAL SIGINT\n"
        "HEALTHCHECK --interval=5s --retries=2 CMD true\n"
        "ENTRYPOINT [\"echo\"]\n"
        "RUN echo \"who=$WHO proxy=$HTTP_PROXY\"\n"
    )
    st, msgs = build(daemon, {"Dockerfile": df}, buildargs={"WHO": "me", "EXTRA": "x", "HTTP_PROXY": "http://127.0.0.1:9"},
                     labels={"built": "yes", "a": "b c"})  # fmt: skip
    assert st == 200, msgs
    text = stream_text(msgs)
    assert "Step 12/13 : LABEL a=b c\n" in text and "Step 13/13 : LABEL built=yes\n" in text
    assert "who=me proxy=http://127.0.0.1:9\n" in text
    assert "[Warning] One or more build-args [EXTRA] were not consumed\n" in text
    info = _inspect(daemon, image_id(msgs))
    cfg = info["Config"]
    assert cfg["Labels"] == {"who": "me", "other": "dflt", "built": "yes", "a": "b c"}
    assert cfg["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}}
    assert cfg["Volumes"] == {"/data": {}} and cfg["User"] == "65534" and cfg["StopSignal"] == "SIGINT"
    assert cfg["Healthcheck"] == {"Test": ["CMD-SHELL", "true"], "Interval": 5_000_000_000, "Retries": 2}
    assert cfg["Entrypoint"] == ["echo"] and cfg["Cmd"] is None
    st, hist = daemon.api("GET", f"/images/{image_id(msgs)}/history")
    run = next(h["CreatedBy"] for h in hist if "who=$WHO" in h["CreatedBy"])
    assert run == '|1 WHO=me /bin/sh -c echo "who=$WHO proxy=$HTTP_PROXY"'


def test_build_prune(daemon: TestDaemon) -> None:
    st, msgs = build(daemon, {"Dockerfile": "FROM busybox\nRUN echo prune-me > /p\n"})
    assert st == 200, msgs
    st, r = daemon.api("POST", "/build/prune")
    assert st == 200 and image_id(msgs) in (r["CachesDeleted"] or [])
    assert r["SpaceReclaimed"] >= 0
    st, msgs2 = build(daemon, {"Dockerfile": "FROM busybox\nRUN echo prune-me > /p\n"})
    assert "Using cache" not in stream_text(msgs2)


def test_copy_semantics_shell_and_onbuild(daemon: TestDaemon) -> None:
    df = (
        "FROM busybox\n"
        "SHELL [\"/bin/sh\", \"-ec\"]\n"
        "WORKDIR /made/here\n"
        "COPY --chown=nobody:nogroup *.txt dir/\n"
        "COPY --chown=7 one.txt /owned\n"
        "COPY tree /tree\n"
        "COPY tree/ /tree2/\n"
        "COPY one.txt /renamed.txt\n"
        "ONBUILD RUN echo triggered > /trigger\n"
        "RUN stat -c '%n %u:%g' dir/one.txt dir/two.txt /owned /tree/a/b /tree2/a/b /renamed.txt; pwd\n"
    )
    files = {"Dockerfile": df, "one.txt": "1", "two.txt": "2", "tree/a/b": "b"}
    st, msgs = build(daemon, files, t="bt/copy")
    assert st == 200, msgs
    text = stream_text(msgs)
    assert ("dir/one.txt 65534:65534\ndir/two.txt 65534:65534\n/owned 7:7\n/tree/a/b 0:0\n/tree2/a/b 0:0\n"
            "/renamed.txt 0:0\n/made/here\n") in text, text
    st, hist = daemon.api("GET", "/images/bt/copy/history")
    assert hist[0]["CreatedBy"].startswith("/bin/sh -ec ")
    assert hist[5]["CreatedBy"].startswith("/bin/sh -ec #(nop) COPY --chown=7file:") and hist[5]["CreatedBy"].endswith(" in /owned ")
    assert _inspect(daemon, "bt/copy")["Config"]["OnBuild"] == ["RUN echo triggered > /trigger"]
    st, msgs = build(daemon, {"Dockerfile": "FROM bt/copy\nRUN cat /trigger\n"})
    assert st == 200, msgs
    text = stream_text(msgs)
    assert "# Executing 1 build trigger\n" in text and "triggered\n" in text
    assert _inspect(daemon, image_id(msgs))["Config"]["OnBuild"] is None
    st, msgs = build(daemon, {"Dockerfile": "FROM busybox\nCOPY a b c\n", "a": "", "b": ""})
    assert st == 200 and msgs[-1]["error"] == ("When using COPY with more than one source file, the destination "
                                               "must be a directory and end with a /")
    st, msgs = build(daemon, {"Dockerfile": "FROM busybox\nCOPY --chmod=755 a /a\n", "a": ""})
    assert msgs[-1]["error"] == ("the --chmod option requires BuildKit. Refer to https://docs.docker.com/go/buildkit/ "
                                 "to learn how to build images with BuildKit enabled")
    st, msgs = build(daemon, {"Dockerfile": "FROM busybox\nCOPY ../a /x\n"})
    assert msgs[-1]["error"] == "COPY failed: forbidden path outside the build context: ../a ()"
    st, msgs = build(daemon, {"Dockerfile": "FROM busybox\nCOPY *.nomatch /x/\n"})
    assert msgs[-1]["error"] == "COPY failed: no source files were specified"


def test_from_pulls_missing_image(daemon: TestDaemon, tmp_path) -> None:  # noqa: ANN001
    import sys

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
    from image.registry_server import RegistryServer

    with RegistryServer(str(tmp_path / "reg")) as reg:
        ref = f"{reg.addr}/bt/base"
        st, r = daemon.api("POST", f"/images/busybox/tag?repo={ref}&tag=1")
        assert st == 201, r
        st, r = daemon.api("POST", f"/images/{ref}/push?tag=1", headers={"X-Registry-Auth": "e30="})
        assert st == 200 and "error" not in str(r), r
        st, r = daemon.api("DELETE", f"/images/{ref}:1")
        assert st == 200, r
        st, msgs = build(daemon, {"Dockerfile": f"FROM {ref}:1\nRUN echo pulled-base\n"})
        assert st == 200, msgs
        assert "pulled-base\n" in stream_text(msgs) and "error" not in msgs[-1]
        assert any("Pulling from bt/base" in (m.get("status") or "") for m in msgs), msgs


def test_hostile_and_compressed_contexts(daemon: TestDaemon, tmp_path) -> None:  # noqa: ANN001
    # an entry escaping the context is refused before anything is written
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name in ("Dockerfile", "../../../../../../tmp/dyt-build-escape"):
            data = b"FROM busybox\n"
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    st, r = daemon.api("POST", "/build", buf.getvalue())
    assert st == 400, r
    assert not os.path.exists("/tmp/dyt-build-escape")
    # a symlink in the context resolves inside the context, never to the host
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        df = b"FROM busybox\nCOPY hostetc/hostname /h\n"
        ti = tarfile.TarInfo("Dockerfile")
        ti.size = len(df)
        tf.addfile(ti, io.BytesIO(df))
        ti = tarfile.TarInfo("hostetc")
        ti.type, ti.linkname = tarfile.SYMTYPE, "/etc"
        tf.addfile(ti)
    st, msgs = daemon.api("POST", "/build", gzip.compress(buf.getvalue()))
    assert st == 200 and "file does not exist" in msgs[-1]["error"], msgs


def test_metadata_history_as_dockerd(daemon: TestDaemon) -> None:
    """The same Dockerfile built by dockerd 20.10 gave exactly these history lines and output."""
    df = (
        "FROM busybox\nMAINTAINER me <me@x>\nSHELL [\"/bin/sh\", \"-ec\"]\nUSER 65534:65534\nSTOPSIGNAL SIGINT\n"
        "HEALTHCHECK --interval=5s --retries=2 CMD true\nVOLUME /data /more\nVOLUME [\"/j\"]\nEXPOSE 80 53/udp\n"
        "ONBUILD RUN echo trig\nCMD echo hi\n"
    )
    st, msgs = build(daemon, {"Dockerfile": df}, t="bt/meta")
    assert st == 200, msgs
    st, hist = daemon.api("GET", "/images/bt/meta/history")
    assert [h["CreatedBy"] for h in hist[:10]] == [
        '/bin/sh -ec #(nop)  CMD ["/bin/sh" "-ec" "echo hi"]',
        "/bin/sh -ec #(nop)  ONBUILD RUN echo trig",
        "/bin/sh -ec #(nop)  EXPOSE 53/udp 80",
        "/bin/sh -ec #(nop)  VOLUME [/j]",
        "/bin/sh -ec #(nop)  VOLUME [/data /more]",
        "/bin/sh -ec #(nop)  HEALTHCHECK &{[\"CMD-SHELL\" \"true\"] \"5s\" \"0s\" \"0s\" '\\x02'}",
        "/bin/sh -ec #(nop)  STOPSIGNAL SIGINT",
        "/bin/sh -ec #(nop)  USER 65534:65534",
        "/bin/sh -ec #(nop)  SHELL [/bin/sh -ec]",
        "/bin/sh -c #(nop)  MAINTAINER me <me@x>",
    ]
    assert _inspect(daemon, "bt/meta")["Author"] == "me <me@x>"
    st, msgs = build(daemon, {"Dockerfile": "FROM bt/meta\nRUN true\n"})
    text = stream_text(msgs)
    lines = text.splitlines()
    i = lines.index("Step 1/2 : FROM bt/meta")
    assert lines[i + 1] == "# Executing 1 build trigger" and lines[i + 2].startswith(" ---> Running in ")
    assert lines[i + 3:i + 6] == ["trig", f"Removing intermediate container {lines[i + 2][-12:]}", lines[i + 5]]
    assert lines[i + 5].startswith(" ---> ") and lines[i + 6] == "Step 2/2 : RUN true"


def test_add_url(daemon: TestDaemon, tmp_path) -> None:  # noqa: ANN001
    import functools
    import http.server
    import threading

    (tmp_path / "pkg.tar.gz").write_bytes(gzip.compress(b"not extracted"))
    (tmp_path / "notes.txt").write_text("downloaded\n")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        base = f"http://127.0.0.1:{srv.server_address[1]}"
        df = (f"FROM busybox\nADD {base}/notes.txt /dl/\nADD {base}/pkg.tar.gz /pkg.tar.gz\n"
              "RUN cat /dl/notes.txt; stat -c '%a %u' /dl/notes.txt; ls /pkg.tar.gz\n")
        st, msgs = build(daemon, {"Dockerfile": df})
        assert st == 200, msgs
        assert "downloaded\n600 0\n/pkg.tar.gz\n" in stream_text(msgs), msgs
        st, msgs = build(daemon, {"Dockerfile": df})
        assert stream_text(msgs).count("Using cache") == 3  # same bytes downloaded: cached
        st, msgs = build(daemon, {"Dockerfile": f"FROM busybox\nADD {base}/nosuch /x\n"})
        assert msgs[-1]["error"].startswith(f"failed to GET {base}/nosuch with status 404 ")
    finally:
        srv.shutdown()
        srv.server_close()


def test_client_disconnect_cancels_the_build(daemon: TestDaemon) -> None:
    import socket
    import time

    before = {c["Id"] for c in containers(daemon)}
    body = context_tar({"Dockerfile": "FROM busybox\nRUN echo started-slow; sleep 30\n"})
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(30)
    s.connect(daemon.socket)
    s.sendall(f"POST /build HTTP/1.1\r\nHost: d\r\nContent-Type: application/x-tar\r\nContent-Length: {len(body)}\r\n\r\n"
              .encode() + body)  # fmt: skip
    buf = b""
    while b"started-slow" not in buf:
        chunk = s.recv(65536)
        assert chunk, buf
        buf += chunk
    s.close()
    deadline = time.monotonic() + 20
    while {c["Id"] for c in containers(daemon)} != before:
        assert time.monotonic() < deadline, "the build container outlived its client"
        time.sleep(0.1)
