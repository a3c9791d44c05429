"""The `dockyard` command against a real daemon: each command's output and exit status.

One daemon for the module (tests/support/daemon.py); every test runs the real launcher in a
subprocess with `-H` pointing at it, and names its containers uniquely.
"""

from __future__ import annotations

import io
import json
import os
import sys
import tarfile
import time

import pytest
from cliutil import CLI, REPO


def test_version_and_info(dy: CLI) -> None:
    out = dy.ok("version")
    assert out.startswith("Client:\n Version:") and "\nServer:" in out and "API version:" in out
    info = dy.ok("info")
    assert " Storage Driver: overlay2" in info and " Containers: " in info
    assert dy.ok("info", "--format", "{{.Driver}}").strip() == "overlay2"


def test_run_output_exit_codes_and_streams(dy: CLI) -> None:
    cp = dy("run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (cp.returncode, cp.stdout, cp.stderr) == (3, "out\n", "err\n")
    cp = dy("run", "--rm", "-i", "busybox", "cat", input="piped through\n")
    assert cp.returncode == 0 and cp.stdout == "piped through\n"
    cp = dy("run", "--rm", "-e", "A=1", "-w", "/tmp", "-u", "nobody", "busybox", "sh", "-c", "echo $A $(pwd) $(id -u)")
    assert cp.stdout == "1 /tmp 65534\n", cp.stderr


def test_run_errors(dy: CLI) -> None:
    cp = dy("run", "--nosuchflag", "busybox")
    assert cp.returncode == 125 and cp.stderr.startswith("unknown flag: --nosuchflag\n\nUsage:  dockyard run")
    cp = dy("run")
    assert cp.returncode == 1 and "'dockyard run' requires at least 1 argument" in cp.stderr
    cp = dy("run", "--rm", "busybox", "/no/such/binary")
    assert cp.returncode == 127, cp.stderr
    assert cp.stderr.startswith("dockyard: Error response from daemon: ")
    cp = dy("run", "--rm", "no-such-image-here:1")
    assert cp.returncode == 125
    assert "Unable to find image 'no-such-image-here:1' locally" in cp.stderr


def test_detached_lifecycle(dy: CLI) -> None:
    cid = dy.ok("run", "-d", "--name", "life", "-l", "app=test", "busybox", "sh", "-c",
                "echo started; trap 'exit 0' TERM; while true; do sleep 0.1; done").strip()
    assert len(cid) == 64
    try:
        ps = dy.ok("ps")
        header, *rows = ps.splitlines()
        assert header.split() == ["CONTAINER", "ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]
        row = next(r for r in rows if r.endswith(" life"))
        assert row.startswith(cid[:12]) and " Up " in row
        assert cid[:12] in dy.ok("ps", "-q").split()
        assert dy.ok("ps", "-q", "--no-trunc", "--filter", "label=app=test").split() == [cid]
        doc = json.loads(dy.ok("ps", "--filter", "name=life", "--format", "json"))
        assert doc["Names"] == "life" and doc["State"] == "running" and doc["Labels"] == "app=test"
        assert dy.ok("inspect", "-f", "{{.State.Running}} {{.Name}} {{json .Config.Labels}}", "life") == \
            'true /life {"app":"test"}\n'
        full = json.loads(dy.ok("inspect", "life"))
        assert full[0]["Id"] == cid
        assert dy.ok("container", "inspect", "--format", "{{.Id}}", cid[:12]).strip() == cid
        for _ in range(50):
            if "started" in dy.ok("logs", "life"):
                break
            time.sleep(0.1)
        assert dy.ok("logs", "life") == "started\n"
        assert dy.ok("logs", "-t", "life").split(" ", 1)[1] == "started\n"
        cp = dy("exec", "life", "sh", "-c", "echo in-exec; exit 5")
        assert (cp.returncode, cp.stdout) == (5, "in-exec\n")
        top = dy.ok("top", "life")
        assert top.splitlines()[0].split()[:3] == ["UID", "PID", "PPID"]
        assert dy.ok("pause", "life") == "life\n"
        assert "Paused" in dy.ok("ps", "--filter", "name=life", "--format", "{{.Status}}")
        assert dy.ok("unpause", "life") == "life\n"
        assert dy.ok("stop", "-t", "5", "life") == "life\n"
        assert dy.ok("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "life") == "exited 0\n"
        assert dy.ok("ps", "-a", "--filter", "name=life", "--format", "{{.Status}}").startswith("Exited (0) ")
        assert dy.ok("start", "life") == "life\n"
        assert dy.ok("restart", "-t", "1", "life") == "life\n"
        assert dy.ok("kill", "-s", "KILL", "life") == "life\n"
        assert dy.ok("wait", "life") == "137\n"
        assert dy.ok("rename", "life", "life2") == ""
        assert dy.ok("ps", "-a", "--filter", "name=life2", "--format", "{{.Names}}") == "life2\n"
    finally:
        dy("rm", "-f", "life", "life2")
    cp = dy("rm", "life2")
    assert cp.returncode == 1 and cp.stderr == "Error response from daemon: No such container: life2\n"


def test_create_start_attach_and_multi_target_errors(dy: CLI) -> None:
    cid = dy.ok("create", "--name", "made", "busybox", "sh", "-c", "echo from-start; exit 4").strip()
    assert len(cid) == 64
    cp = dy("start", "-a", "made")
    assert (cp.returncode, cp.stdout) == (4, "from-start\n")
    cp = dy("rm", "made", "nonexistent-x")
    assert cp.returncode == 1 and cp.stdout == "made\n"
    assert "No such container: nonexistent-x" in cp.stderr


def test_cp_both_ways_and_diff_export_commit(dy: CLI, tmp_path) -> None:  # noqa: ANN001
    dy.ok("run", "-d", "--name", "files", "busybox", "sleep", "300")
    try:
        src = tmp_path / "src"
        (src / "sub").mkdir(parents=True)
        (src / "f1").write_text("hello\n")
        (src / "sub" / "f2").write_text("nested\n")
        dy.ok("cp", str(src / "f1"), "files:/tmp/")
        dy.ok("cp", str(src), "files:/tmp/tree")
        assert dy.ok("exec", "files", "cat", "/tmp/f1", "/tmp/tree/sub/f2") == "hello\nnested\n"
        out = tmp_path / "out"
        out.mkdir()
        dy.ok("cp", "files:/etc/passwd", str(out))
        assert (out / "passwd").read_text().startswith("root:x:0:0")
        dy.ok("cp", "files:/tmp/tree", str(out / "tree2"))
        assert (out / "tree2" / "sub" / "f2").read_text() == "nested\n"
        cp = dy("cp", "files:/no/such", str(out))
        assert cp.returncode == 1 and "Error response from daemon:" in cp.stderr
        raw = dy("cp", "files:/tmp/f1", "-", input=b"")
        assert raw.returncode == 0
        with tarfile.open(fileobj=io.BytesIO(raw.stdout)) as tf:
            assert tf.extractfile("f1").read() == b"hello\n"  # type: ignore[union-attr]
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tf:
            ti = tarfile.TarInfo("from-stdin.txt")
            ti.size = 3
            tf.addfile(ti, io.BytesIO(b"in\n"))
        assert dy("cp", "-", "files:/tmp", input=buf.getvalue()).returncode == 0
        assert dy.ok("exec", "files", "cat", "/tmp/from-stdin.txt") == "in\n"
        cp = dy("cp", "-", "files:/tmp/f1", input=buf.getvalue())
        assert cp.returncode == 1 and 'must be a directory' in cp.stderr.decode()
        diff = dy.ok("diff", "files").splitlines()
        assert "A /tmp/f1" in diff and "C /tmp" in diff
        exported = tmp_path / "fs.tar"
        dy.ok("export", "-o", str(exported), "files")
        with tarfile.open(exported) as tf:
            names = tf.getnames()
        assert any(n.lstrip("./") == "bin/busybox" for n in names)
        image_id = dy.ok("commit", "-c", "CMD [\"cat\", \"/tmp/f1\"]", "files", "committed:v1").strip()
        assert image_id.startswith("sha256:")
        assert dy.ok("run", "--rm", "committed:v1") == "hello\n"
        hist = dy.ok("history", "committed:v1").splitlines()
        assert hist[0].split() == ["IMAGE", "CREATED", "CREATED", "BY", "SIZE", "COMMENT"]
    finally:
        dy("rm", "-f", "files")
        dy("rmi", "committed:v1")


def test_images_tag_rmi_save_load_import(dy: CLI, tmp_path) -> None:  # noqa: ANN001
    lines = dy.ok("images").splitlines()
    assert lines[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert any(r.split()[:2] == ["busybox", "latest"] for r in lines[1:])
    assert dy.ok("tag", "busybox", "retagged:one") == ""
    assert dy.ok("images", "retagged", "--format", "{{.Repository}}:{{.Tag}}") == "retagged:one\n"
    archive = tmp_path / "img.tar"
    dy.ok("save", "-o", str(archive), "retagged:one")
    with tarfile.open(archive) as tf:
        assert "manifest.json" in tf.getnames()
    out = dy.ok("rmi", "retagged:one")
    assert out.startswith("Untagged: retagged:one")
    loaded = dy.ok("load", "-i", str(archive))
    assert "retagged:one" in loaded
    dy.ok("rmi", "retagged:one")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        data = b"imported\n"
        ti = tarfile.TarInfo("hello.txt")
        ti.size = len(data)
        tf.addfile(ti, io.BytesIO(data))
    rootfs = tmp_path / "rootfs.tar"
    rootfs.write_bytes(buf.getvalue())
    image_id = dy.ok("import", str(rootfs), "imported:v1").strip()
    assert image_id.startswith("sha256:")
    assert dy.ok("image", "inspect", "-f", "{{.Id}}", "imported:v1").strip() == image_id
    dy.ok("rmi", "imported:v1")
    cp = dy("image", "inspect", "imported:v1")
    assert cp.returncode == 1 and "No such image" in cp.stderr


def test_volumes(dy: CLI) -> None:
    assert dy.ok("volume", "create", "--label", "k=v", "vol1") == "vol1\n"
    try:
        ls = dy.ok("volume", "ls").splitlines()
        assert ls[0].split() == ["DRIVER", "VOLUME", "NAME"]
        assert any(r.split() == ["local", "vol1"] for r in ls[1:])
        assert dy.ok("volume", "inspect", "-f", "{{.Name}} {{.Driver}} {{.Labels.k}}", "vol1") == "vol1 local v\n"
        dy.ok("run", "--rm", "-v", "vol1:/data", "busybox", "sh", "-c", "echo kept > /data/f")
        assert dy.ok("run", "--rm", "-v", "vol1:/data", "busybox", "cat", "/data/f") == "kept\n"
    finally:
        assert dy.ok("volume", "rm", "vol1") == "vol1\n"
    cp = dy("volume", "rm", "vol1")
    assert cp.returncode == 1 and cp.stderr.startswith("Error response from daemon:")
    dy.ok("volume", "create", "vol2")
    out = dy.ok("volume", "prune", "-a", "-f")
    assert "vol2" in out and out.rstrip().splitlines()[-1].startswith("Total reclaimed space:")


def test_bind_mount_and_read_only(dy: CLI, tmp_path) -> None:  # noqa: ANN001
    (tmp_path / "in.txt").write_text("from host\n")
    out = dy.ok("run", "--rm", "-v", f"{tmp_path}:/h", "--read-only", "busybox", "sh", "-c",
                "cat /h/in.txt; touch /x 2>/dev/null || echo ro")
    assert out == "from host\nro\n"


def test_stats_events_df_prune(dy: CLI) -> None:
    since = str(int(time.time()) - 1)
    dy.ok("run", "-d", "--name", "stat1", "busybox", "sleep", "300")
    try:
        stats = dy.ok("stats", "--no-stream", "stat1").splitlines()
        assert stats[0].split()[:4] == ["CONTAINER", "ID", "NAME", "CPU"]
        assert stats[1].split()[1] == "stat1"
        until = str(int(time.time()) + 1)
        events = dy.ok("events", "--since", since, "--until", until, "--filter", "container=stat1")
        assert " container start " in events and "name=stat1" in events
        fmt = dy.ok("events", "--since", since, "--until", until, "--filter", "event=create",
                    "--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}")
        assert "container create stat1" in fmt
        df = dy.ok("system", "df").splitlines()
        assert df[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
        assert [line.split()[0] for line in df[1:]] == ["Images", "Containers", "Local", "Build"]
    finally:
        dy("rm", "-f", "stat1")
    dy.ok("create", "--name", "stopped1", "busybox")
    out = dy.ok("container", "prune", "-f")
    assert out.startswith("Deleted Containers:\n") and "Total reclaimed space:" in out
    dy.ok("create", "--name", "stopped2", "busybox")
    out = dy.ok("system", "prune", "-f")
    assert "Deleted Containers:\n" in out and out.rstrip().splitlines()[-1].startswith("Total reclaimed space:")
    assert dy("inspect", "stopped2").returncode == 1
    assert dy.ok("image", "prune", "-f").rstrip().splitlines()[-1].startswith("Total reclaimed space:")
    assert dy.ok("images", "-q", "busybox")  # tagged images survive the prunes


def _need_networking(dy: CLI) -> None:
    cp = dy("network", "ls")
    if "networking is not available" in cp.stderr:
        pytest.skip("this daemon runs without its network service")


def test_networks(dy: CLI) -> None:
    _need_networking(dy)
    ls = dy.ok("network", "ls").splitlines()
    assert ls[0].split() == ["NETWORK", "ID", "NAME", "DRIVER", "SCOPE"]
    names = [r.split()[1] for r in ls[1:]]
    assert {"bridge", "host", "none"} <= set(names)
    net_id = dy.ok("network", "create", "--subnet", "10.251.7.0/24", "dytclinet").strip()
    try:
        assert dy.ok("network", "inspect", "-f", "{{.Name}} {{.Driver}}", "dytclinet") == "dytclinet bridge\n"
        out = dy.ok("run", "--rm", "--network", "dytclinet", "--ip", "10.251.7.9", "busybox", "ip", "-4", "-o", "addr")
        assert "10.251.7.9/24" in out
        dy.ok("run", "-d", "--name", "netc", "busybox", "sleep", "300")
        try:
            assert dy.ok("network", "connect", "--ip", "10.251.7.20", "dytclinet", "netc") == ""
            assert "10.251.7.20/24" in dy.ok("exec", "netc", "ip", "-4", "-o", "addr")
            nets = dy.ok("inspect", "-f", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}", "netc").split()
            assert "dytclinet" in nets
            assert dy.ok("network", "disconnect", "dytclinet", "netc") == ""
            assert "10.251.7.20" not in dy.ok("exec", "netc", "ip", "-4", "-o", "addr")
        finally:
            dy("rm", "-f", "netc")
    finally:
        assert dy.ok("network", "rm", net_id[:12]) == net_id[:12] + "\n"
    cp = dy("network", "rm", "dytclinet")
    assert cp.returncode == 1 and cp.stderr == "Error response from daemon: network dytclinet not found\nexit status 1\n"
    assert dy("network", "rm", "-f", "dytclinet").returncode == 0
    dy.ok("network", "create", "dytclinet2")
    assert "dytclinet2" in dy.ok("network", "prune", "-f")


def test_usage_errors(dy: CLI) -> None:
    cp = dy("ps", "--bogus")
    assert (cp.returncode, cp.stderr) == (125, "unknown flag: --bogus\n\nUsage:  dockyard ps [OPTIONS]\n\n"
                                                "Run 'dockyard ps --help' for more information\n")
    cp = dy("rename", "only-one")
    assert cp.returncode == 1 and cp.stderr.startswith("dockyard: 'dockyard rename' requires 2 arguments\n")
    cp = dy("nosuchcommand")
    assert cp.returncode == 1 and "unknown command" in cp.stderr
    dy.ok("create", "--name", "fmt-err", "busybox")
    try:
        cp = dy("ps", "-a", "--format", "{{.Nope}}")
        assert cp.returncode == 1 and cp.stderr.startswith("template parsing error:")
    finally:
        dy("rm", "fmt-err")
    help_text = dy.ok("run", "--help")
    assert help_text.startswith("Usage:  dockyard run [OPTIONS] IMAGE [COMMAND] [ARG...]\n")
    assert "  -i, --interactive" in help_text


def test_login_logout_config_format(dy: CLI) -> None:
    config_dir = dy.env["DOCKYARD_CONFIG"]
    from dockyard.cli.registry_auth import store_credentials

    store_credentials(config_dir, "localhost:5999", "user", "pw")
    with open(os.path.join(config_dir, "config.json")) as f:
        doc = json.load(f)
    assert doc == {"auths": {"localhost:5999": {"auth": "dXNlcjpwdw=="}}}
    assert dy.ok("logout", "localhost:5999") == "Removing login credentials for localhost:5999\n"
    assert dy.ok("logout", "localhost:5999") == "Not logged in to localhost:5999\n"


def test_mkimage_busybox_imports_through_the_api(dy: CLI) -> None:
    out = dy.ok("mkimage", "busybox", "mkbb:test")
    assert out.strip().splitlines()[-1].startswith("sha256:")
    try:
        assert dy.ok("run", "--rm", "mkbb:test", "echo", "made offline") == "made offline\n"
        assert dy.ok("image", "inspect", "-f", "{{json .Config.Cmd}}", "mkbb:test") == '["sh"]\n'
    finally:
        dy("rmi", "mkbb:test")


@pytest.mark.parametrize("args", [["ps", "-a"], ["images"], ["volume", "ls"], ["network", "ls"]])
def test_quiet_lists_match_tables(dy: CLI, args: list[str]) -> None:
    if args[0] == "network":
        _need_networking(dy)
    table_ids = [line.split()[0] for line in dy.ok(*args).splitlines()[1:]]
    quiet = dy.ok(*args, "-q").split()
    if args[0] == "images":
        assert quiet == [line.split()[2] for line in dy.ok(*args).splitlines()[1:]]
    elif args[0] == "volume":
        assert quiet == [line.split()[1] for line in dy.ok(*args).splitlines()[1:]]
    else:
        assert quiet == table_ids


def test_login_push_pull_with_basic_auth(dy: CLI, tmp_path) -> None:  # noqa: ANN001
    sys.path.insert(0, os.path.join(REPO, "tests"))
    from image.registry_server import RegistryServer

    with RegistryServer(str(tmp_path / "reg"), auth="basic", users={"dyt": "s3cret"}) as reg:
        ref = f"{reg.addr}/cli/auth:v1"
        dy.ok("tag", "busybox", ref)
        try:
            cp = dy("push", ref)
            assert cp.returncode == 1 and "no basic auth credentials" in (cp.stdout + cp.stderr).lower() or \
                "unauthorized" in (cp.stdout + cp.stderr).lower()
            cp = dy("login", "-u", "dyt", "--password-stdin", reg.addr, input="s3cret\n")
            assert cp.returncode == 0 and cp.stdout == "Login Succeeded\n", cp.stderr
            with open(os.path.join(dy.env["DOCKYARD_CONFIG"], "config.json")) as f:
                assert json.load(f)["auths"][reg.addr] == {"auth": "ZHl0OnMzY3JldA=="}  # base64("dyt:s3cret")
            out = dy.ok("push", ref)
            assert "v1: digest: sha256:" in out
            dy.ok("rmi", ref)
            assert dy.ok("pull", "-q", ref) == ref + "\n"
            cp = dy("login", "-u", "dyt", "-p", "wrong", reg.addr)
            assert cp.returncode == 1 and cp.stderr.startswith("WARNING! Using --password via the CLI is insecure.")
            assert "Error response from daemon:" in cp.stderr
            assert dy.ok("logout", reg.addr) == f"Removing login credentials for {reg.addr}\n"
        finally:
            dy("rmi", ref)


def test_exec_detached_update_and_log_options(dy: CLI) -> None:
    dy.ok("run", "-d", "--name", "misc1", "busybox", "sh", "-c", "for i in 1 2 3; do echo l$i; done; sleep 300")
    try:
        assert dy.ok("exec", "-d", "misc1", "sh", "-c", "echo marker > /tmp/m") == ""
        for _ in range(50):
            if dy("exec", "misc1", "cat", "/tmp/m").stdout == "marker\n":
                break
            time.sleep(0.1)
        assert dy.ok("exec", "-e", "V=x", "-w", "/tmp", "misc1", "sh", "-c", "echo $V $(pwd)") == "x /tmp\n"
        assert dy.ok("logs", "--tail", "1", "misc1") == "l3\n"
        assert dy.ok("exec", "-i", "misc1", "sh", "-c", "cat; echo done", input="fed\n") == "fed\ndone\n"
        assert dy.ok("logs", "--until", "1s", "misc1") in ("", "l1\nl2\nl3\n")
        assert dy.ok("update", "--memory", "64m", "--memory-swap", "128m", "--pids-limit", "50", "misc1") == "misc1\n"
        assert dy.ok("inspect", "-f", "{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}}", "misc1") == f"{64 * 1024 * 1024} 50\n"
        cp = dy("update", "misc1")
        assert cp.returncode == 1 and "you must provide one or more flags" in cp.stderr
    finally:
        dy("rm", "-f", "misc1")


def test_published_ports(dy: CLI) -> None:
    _need_networking(dy)
    dy.ok("run", "-d", "--name", "pub1", "-p", "127.0.0.1::80", "-p", "9000/udp", "busybox", "sleep", "300")
    try:
        lines = dy.ok("port", "pub1").splitlines()
        assert any(line.startswith("80/tcp -> 127.0.0.1:") for line in lines), lines
        host_port = dy.ok("port", "pub1", "80").strip()
        assert host_port.startswith("127.0.0.1:") and int(host_port.split(":")[1]) > 0
        ports = dy.ok("ps", "--filter", "name=pub1", "--format", "{{.Ports}}").strip()
        assert f"{host_port}->80/tcp" in ports
        cp = dy("port", "pub1", "81")
        assert cp.returncode == 1 and cp.stderr == "Error: No public port '81' published for pub1\n"
    finally:
        dy("rm", "-f", "pub1")


@pytest.mark.slow
def test_mkimage_debian(dy: CLI) -> None:
    """debootstrap minbase (cached per suite and mirror after the first time), imported through the API."""
    out = dy("mkimage", "debian", "--suite", "bookworm", "dytdebian:bookworm", timeout=1200)
    assert out.returncode == 0, out.stderr
    try:
        assert dy.ok("run", "--rm", "dytdebian:bookworm", "cat", "/etc/debian_version").startswith("12.")
        assert dy.ok("image", "inspect", "-f", "{{json .Config.Cmd}}", "dytdebian:bookworm") == '["bash"]\n'
    finally:
        dy("rmi", "dytdebian:bookworm")


def test_logs_follow_until_exit_and_rm_volumes(dy: CLI) -> None:
    dy.ok("run", "-d", "--name", "follow1", "-v", "/anon", "busybox", "sh", "-c",
          "for i in 1 2 3; do echo f$i; sleep 0.3; done; echo err >&2")
    try:
        cp = dy("logs", "-f", "follow1", timeout=30)
        assert (cp.returncode, cp.stdout, cp.stderr) == (0, "f1\nf2\nf3\n", "err\n")
        vol = dy.ok("inspect", "-f", "{{range .Mounts}}{{.Name}}{{end}}", "follow1").strip()
        assert vol and vol in dy.ok("volume", "ls", "-q").split()
        assert dy.ok("rm", "-v", "follow1") == "follow1\n"
        assert vol not in dy.ok("volume", "ls", "-q").split()
    finally:
        dy("rm", "-f", "-v", "follow1")
