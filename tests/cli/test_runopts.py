"""`run`/`create` flags translated into the Engine API create body (pure)."""

from __future__ import annotations

import pytest

from dockyard.cli.command import CLIError
from dockyard.cli.flags import Flag, FlagError, FlagSet
from dockyard.cli.runopts import (
    CONTAINER_FLAGS,
    RUN_ONLY_FLAGS,
    build_create,
    parse_mount,
    parse_publish,
    parse_restart,
    parse_ulimit,
)


def create(argv: list[str], is_run: bool = True) -> tuple[dict, dict, dict]:
    fs = FlagSet([*CONTAINER_FLAGS, *RUN_ONLY_FLAGS, Flag("help", kind="bool")], interspersed=False)
    opts, args = fs.parse(argv)
    return build_create(opts, args, is_run)


def test_interactive_tty_and_command() -> None:
    config, host, _net = create(["-it", "--name", "demo", "busybox", "sh", "-c", "echo hi"])
    assert config["Image"] == "busybox"
    assert config["Cmd"] == ["sh", "-c", "echo hi"]
    assert config["Tty"] and config["OpenStdin"] and config["AttachStdin"] and config["StdinOnce"]
    assert config["AttachStdout"] and config["AttachStderr"]
    assert host["NetworkMode"] == "default" and host["RestartPolicy"] == {"Name": "no", "MaximumRetryCount": 0}


def test_detach_clears_attach() -> None:
    config, _h, _n = create(["-d", "busybox"])
    assert not (config["AttachStdin"] or config["AttachStdout"] or config["AttachStderr"] or config["StdinOnce"])
    config, _h, _n = create(["-i", "busybox"], is_run=False)
    assert config["OpenStdin"] and not config["StdinOnce"]


def test_env_labels_files(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    envfile = tmp_path / "env"
    envfile.write_text("# comment\nA=1\n\nFROMHOST\nMISSING\n")
    labels = tmp_path / "labels"
    labels.write_text("l1=x\nl2\n")
    monkeypatch.setenv("FROMHOST", "h")
    monkeypatch.setenv("PASS", "p")
    monkeypatch.delenv("MISSING", raising=False)
    config, _h, _n = create(["--env-file", str(envfile), "-e", "B=2", "-e", "PASS", "-e", "MISSING",
                             "--label-file", str(labels), "-l", "k=v", "busybox"])
    assert config["Env"] == ["A=1", "FROMHOST=h", "B=2", "PASS=p"]
    assert config["Labels"] == {"l1": "x", "l2": "", "k": "v"}


def test_ports() -> None:
    config, host, _n = create(["-p", "8080:80", "-p", "127.0.0.1:53:53/udp", "-p", "9000-9001:9000-9001",
                               "-p", "443", "--expose", "7000-7001", "-P", "busybox"])
    assert set(config["ExposedPorts"]) == {"80/tcp", "53/udp", "9000/tcp", "9001/tcp", "443/tcp", "7000/tcp", "7001/tcp"}
    assert host["PortBindings"]["80/tcp"] == [{"HostIp": "", "HostPort": "8080"}]
    assert host["PortBindings"]["53/udp"] == [{"HostIp": "127.0.0.1", "HostPort": "53"}]
    assert host["PortBindings"]["9001/tcp"] == [{"HostIp": "", "HostPort": "9001"}]
    assert host["PortBindings"]["443/tcp"] == [{"HostIp": "", "HostPort": ""}]
    assert host["PublishAllPorts"] is True
    _e, b = parse_publish(["[::1]:8080:80"])
    assert b["80/tcp"] == [{"HostIp": "::1", "HostPort": "8080"}]
    _e, b = parse_publish(["8000-8010:80"])
    assert b["80/tcp"] == [{"HostIp": "", "HostPort": "8000-8010"}]
    with pytest.raises(CLIError):
        parse_publish(["80/xyz"])


def test_volumes_mounts_tmpfs(tmp_path) -> None:  # noqa: ANN001
    config, host, _n = create(["-v", "/data", "-v", "/host:/ctr:ro", "-v", "named:/n",
                               "--mount", "type=bind,source=/a,target=/b,readonly,bind-propagation=rslave",
                               "--mount", "type=tmpfs,dst=/t,tmpfs-size=64m,tmpfs-mode=1777",
                               "--tmpfs", "/run:rw,size=1m", "--read-only", "busybox"])
    assert config["Volumes"] == {"/data": {}}
    assert host["Binds"] == ["/host:/ctr:ro", "named:/n"]
    assert host["Mounts"][0] == {"Type": "bind", "Source": "/a", "Target": "/b", "ReadOnly": True,
                                 "BindOptions": {"Propagation": "rslave"}}
    assert host["Mounts"][1]["TmpfsOptions"] == {"SizeBytes": 64 * 1024 * 1024, "Mode": 0o1777}
    assert host["Tmpfs"] == {"/run": "rw,size=1m"}
    assert host["ReadonlyRootfs"] is True
    with pytest.raises(CLIError, match="target is required"):
        parse_mount("type=bind,source=/a")
    with pytest.raises(CLIError, match="cannot mix"):
        parse_mount("type=volume,target=/a,bind-propagation=shared")


def test_resources_and_security(tmp_path) -> None:  # noqa: ANN001
    profile = tmp_path / "seccomp.json"
    profile.write_text('{ "defaultAction": "SCMP_ACT_ALLOW" }')
    _c, host, _n = create(["-m", "256m", "--memory-swap", "-1", "--cpus", "1.5", "--cpu-shares", "512",
                           "--cpuset-cpus", "0", "--pids-limit", "64", "--cap-add", "NET_ADMIN", "--cap-drop", "ALL",
                           "--privileged", "--ulimit", "nofile=1024:2048", "--security-opt", f"seccomp={profile}",
                           "--security-opt", "no-new-privileges", "--userns", "host", "--init",
                           "--restart", "on-failure:3", "--sysctl", "net.ipv4.ip_forward=1",
                           "--device", "/dev/null:/dev/xnull:r", "--group-add", "audio", "busybox"])
    assert host["Memory"] == 256 * 1024 * 1024 and host["MemorySwap"] == -1
    assert host["NanoCpus"] == 1_500_000_000 and host["CpuShares"] == 512 and host["CpusetCpus"] == "0"
    assert host["PidsLimit"] == 64
    assert host["CapAdd"] == ["NET_ADMIN"] and host["CapDrop"] == ["ALL"] and host["Privileged"]
    assert host["Ulimits"] == [{"Name": "nofile", "Soft": 1024, "Hard": 2048}]
    assert host["SecurityOpt"] == ['seccomp={"defaultAction":"SCMP_ACT_ALLOW"}', "no-new-privileges"]
    assert host["UsernsMode"] == "host" and host["Init"] is True
    assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert host["Sysctls"] == {"net.ipv4.ip_forward": "1"}
    assert host["Devices"] == [{"PathOnHost": "/dev/null", "PathInContainer": "/dev/xnull", "CgroupPermissions": "r"}]
    assert host["GroupAdd"] == ["audio"]
    assert "MemorySwappiness" not in host


def test_network_options() -> None:
    config, host, net = create(["--network", "mynet", "--ip", "10.0.0.5", "--network-alias", "web",
                                "--add-host", "db:10.0.0.9", "--add-host", "h2=1.2.3.4", "--dns", "1.1.1.1",
                                "--mac-address", "92:d0:c6:0a:29:33", "-h", "box", "busybox"])
    assert host["NetworkMode"] == "mynet"
    assert net["EndpointsConfig"]["mynet"] == {"IPAMConfig": {"IPv4Address": "10.0.0.5"}, "Aliases": ["web"]}
    assert host["ExtraHosts"] == ["db:10.0.0.9", "h2:1.2.3.4"]
    assert host["Dns"] == ["1.1.1.1"]
    assert config["MacAddress"] == "92:d0:c6:0a:29:33" and config["Hostname"] == "box"


def test_entrypoint_stop_and_logs() -> None:
    config, host, _n = create(["--entrypoint", "", "--stop-signal", "SIGINT", "--stop-timeout", "3",
                               "--log-opt", "max-size=1m", "-w", "/tmp", "-u", "nobody", "--rm", "busybox"])
    assert config["Entrypoint"] == [""]
    assert config["StopSignal"] == "SIGINT" and config["StopTimeout"] == 3
    assert host["LogConfig"] == {"Type": "", "Config": {"max-size": "1m"}}
    assert config["WorkingDir"] == "/tmp" and config["User"] == "nobody" and host["AutoRemove"]


@pytest.mark.parametrize("argv,msg", [
    (["--restart", "always", "--rm", "busybox"], "Conflicting options: --restart and --rm"),
    (["-a", "foo", "busybox"], "valid streams are STDIN, STDOUT and STDERR"),
    (["--ulimit", "nofile", "busybox"], "invalid ulimit argument"),
    (["--restart", "sometimes", "busybox"], "invalid restart policy"),
    (["-v", "relative", "busybox"], "invalid volume specification"),
])
def test_bad_input(argv: list[str], msg: str) -> None:
    # flag values Docker's pflag rejects come back as FlagError (printed with the usage, 125);
    # the rest as CLIError with status 125
    with pytest.raises((CLIError, FlagError), match=msg) as e:
        create(argv)
    assert isinstance(e.value, FlagError) or e.value.status == 125


def test_restart_and_ulimit_parsers() -> None:
    assert parse_restart("unless-stopped") == {"Name": "unless-stopped", "MaximumRetryCount": 0}
    assert parse_ulimit("nproc=10") == {"Name": "nproc", "Soft": 10, "Hard": 10}
    with pytest.raises(FlagError, match="soft limit must be less than or equal to hard limit"):
        parse_ulimit("nofile=10:5")
