"""Pure pieces of the daemon: validation, image-config merge, mount parsing, user lookup, time
formats, filters, events, detach keys, names, runtime messages."""

from __future__ import annotations

import pytest

from dockyard.daemon import (
    attach,
    events,
    filters,
    hostconfig,
    mounts,
    names,
    runtime,
    signals,
    timeutil,
    userdb,
)
from dockyard.daemon.config import load, parse_size
from dockyard.daemon.container import State
from dockyard.errors import InvalidParameter


def bad(fn, *a, match: str) -> None:  # noqa: ANN001
    with pytest.raises(InvalidParameter) as e:
        fn(*a)
    assert e.value.message == match, e.value.message


def test_resource_validation_messages() -> None:
    v = hostconfig.validate_resources
    bad(v, {"Memory": 1024}, 2, match="Minimum memory limit allowed is 6MB")
    bad(v, {"MemorySwap": 100 << 20}, 2, match="You should always set the Memory limit when using Memoryswap limit, see usage")
    bad(v, {"Memory": 64 << 20, "MemorySwap": 32 << 20}, 2,
        match="Minimum memoryswap limit should be larger than memory limit, see usage")
    bad(v, {"NanoCpus": 10**9, "CpuPeriod": 1000}, 2, match="Conflicting options: Nano CPUs and CPU Period cannot both be set")
    bad(v, {"NanoCpus": 3 * 10**9}, 2, match="Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available")
    bad(v, {"CpuPeriod": 10}, 2, match="CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)")
    bad(v, {"CpuQuota": 10}, 2, match="CPU cfs quota can not be less than 1ms (i.e. 1000)")
    bad(v, {"BlkioWeight": 5}, 2, match="Range of blkio weight is from 10 to 1000")
    bad(v, {"CpusetCpus": "x"}, 2, match="Invalid value x for cpuset cpus")
    with pytest.raises(InvalidParameter, match="Requested CPUs are not available - requested 0-5, available: 0-1"):
        hostconfig.validate_resources({"CpusetCpus": "0-5"}, 2, {0, 1})
    bad(v, {"OomScoreAdj": 5000}, 2, match="Invalid value 5000, range for oom score adj is [-1000, 1000]")
    hostconfig.validate_resources({"Memory": 64 << 20, "MemorySwap": -1, "NanoCpus": 10**9}, 2)


def test_restart_log_sysctl_validation() -> None:
    bad(hostconfig.validate_restart_policy, {"Name": "x"}, False,
        match="invalid restart policy: unknown policy 'x'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'")
    bad(hostconfig.validate_restart_policy, {"Name": "always", "MaximumRetryCount": 3}, False,
        match="invalid restart policy: maximum retry count can only be used with 'on-failure'")
    bad(hostconfig.validate_restart_policy, {"Name": "always"}, True, match="can't create 'AutoRemove' container with restart policy")
    hostconfig.validate_restart_policy({"Name": "on-failure", "MaximumRetryCount": 3}, False)
    bad(hostconfig.validate_log_config, {"Type": "syslogx"}, match="logger: no log driver named 'syslogx' is registered")
    bad(hostconfig.validate_log_config, {"Type": "json-file", "Config": {"bogus": "1"}},
        match="unknown log opt 'bogus' for json-file log driver")
    bad(hostconfig.validate_log_config, {"Type": "json-file", "Config": {"max-size": "abc"}}, match="invalid size: 'abc'")
    bad(hostconfig.validate_log_config, {"Type": "json-file", "Config": {"max-file": "3"}},
        match="max-file can only be set if max-size is set")
    hostconfig.validate_sysctls({"Sysctls": {"net.ipv4.ip_forward": "1", "kernel.shmmax": "1"}})
    with pytest.raises(InvalidParameter):
        hostconfig.validate_sysctls({"Sysctls": {"vm.swappiness": "1"}})
    with pytest.raises(InvalidParameter):
        hostconfig.validate_sysctls({"Sysctls": {"net.ipv4.ip_forward": "1"}, "NetworkMode": "host"})


def test_normalize_host_config() -> None:
    hc = hostconfig.normalize_host_config({"Memory": 64 << 20, "RestartPolicy": {"Name": ""}, "LogConfig": None})
    assert hc["MemorySwap"] == 128 << 20  # Docker doubles memory for swap when unset
    assert hc["RestartPolicy"] == {"Name": "no", "MaximumRetryCount": 0}
    assert hc["LogConfig"] == {"Type": "json-file", "Config": {}}
    assert hc["ShmSize"] == 64 << 20 and hc["NetworkMode"] == "default" and hc["IpcMode"] == "private"


def test_merge_image_config() -> None:
    img = {"Cmd": ["sh"], "Entrypoint": None, "Env": ["PATH=/bin", "A=img"], "WorkingDir": "/w", "User": "nobody",
           "Labels": {"x": "1", "y": "img"}, "ExposedPorts": {"80/tcp": {}}, "Volumes": {"/data": {}},
           "StopSignal": "SIGQUIT"}
    out = hostconfig.merge_image_config({"Env": ["A=user", "B=2"], "Labels": {"y": "user"}}, img)
    assert out["Cmd"] == ["sh"] and out["Env"] == ["A=user", "B=2", "PATH=/bin"]
    assert out["Labels"] == {"x": "1", "y": "user"} and out["User"] == "nobody" and out["WorkingDir"] == "/w"
    assert out["Volumes"] == {"/data": {}} and out["StopSignal"] == "SIGQUIT" and "80/tcp" in out["ExposedPorts"]
    # an explicit command replaces the image's; an entrypoint given drops the image's cmd
    out = hostconfig.merge_image_config({"Cmd": ["echo"]}, img)
    assert out["Cmd"] == ["echo"]
    out = hostconfig.merge_image_config({"Entrypoint": ["top"]}, {"Cmd": ["-b"], "Entrypoint": ["ps"]})
    assert out["Entrypoint"] == ["top"] and not out.get("Cmd")
    out = hostconfig.merge_image_config({"Entrypoint": [""]}, {"Cmd": ["-b"], "Entrypoint": ["ps"]})
    assert out["Entrypoint"] is None and not out.get("Cmd")
    assert hostconfig.command_of({"Entrypoint": ["ps"], "Cmd": ["-b"]}) == ("ps", ["-b"])
    bad(hostconfig.command_of, {"Entrypoint": None, "Cmd": None}, match="No command specified")


def test_parse_binds() -> None:
    b = mounts.parse_bind("/host:/ctr:ro,rshared")
    assert b["Type"] == "bind" and b["Source"] == "/host" and b["Destination"] == "/ctr"
    assert b["RW"] is False and b["Propagation"] == "rshared"
    v = mounts.parse_bind("data:/var/lib/x")
    assert v["Type"] == "volume" and v["Name"] == "data" and v["RW"] is True and v["Mode"] == "z"
    a = mounts.parse_bind("/anon")
    assert a["Type"] == "volume" and a["Name"] == "" and a["Anonymous"] is True
    bad(mounts.parse_bind, "/h:rel", match="invalid mode: rel")  # as Docker parses it: dest /h, mode rel
    bad(mounts.parse_bind, "/h:/c:bogus", match="invalid mode: bogus")
    with pytest.raises(InvalidParameter, match="destination can't be '/'"):
        mounts.parse_bind("/h:/")
    with pytest.raises(InvalidParameter, match="includes invalid characters for a local volume name"):
        mounts.parse_bind("a$b:/c")
    with pytest.raises(InvalidParameter, match="Duplicate mount point: /c"):
        mounts.collect({"Binds": ["/a:/c", "/b:/c"]}, {})
    m = mounts.parse_mount({"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1 << 20, "Mode": 0o700}})
    assert m["TmpfsOptions"] == ["size=1048576", "mode=700"]
    m = mounts.parse_mount({"Type": "bind", "Source": "/s", "Target": "/t", "ReadOnly": True,
                            "BindOptions": {"Propagation": "rslave"}})
    assert m["MustExist"] and m["RW"] is False and m["Propagation"] == "rslave"
    with pytest.raises(InvalidParameter, match="field Target must not be empty"):
        mounts.parse_mount({"Type": "volume"})
    oci = mounts.oci_mounts([b, m])
    assert oci[0] == {"destination": "/ctr", "type": "bind", "source": "/host", "options": ["rbind", "rshared", "ro"]}


def test_user_lookup() -> None:
    passwd = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"
    group = "root:x:0:\nwheel:x:10:app,root\napp:x:1000:\nstaff:x:50:\n"
    assert userdb.resolve_user("", passwd, group) == (0, 0, (0, 10))
    assert userdb.resolve_user("app", passwd, group) == (1000, 1000, (1000, 10))
    assert userdb.resolve_user("app:staff", passwd, group) == (1000, 50, (50,))
    assert userdb.resolve_user("4242", passwd, group) == (4242, 0, (0,))
    assert userdb.resolve_user("1000:7", passwd, group, ["staff", "99"]) == (1000, 7, (7, 50, 99))
    bad(userdb.resolve_user, "ghost", passwd, group, match="unable to find user ghost: no matching entries in passwd file")
    bad(userdb.resolve_user, "app:nogroup", passwd, group, match="unable to find group nogroup: no matching entries in group file")


def test_time_formats() -> None:
    assert timeutil.format_ns(1_700_000_000_120_000_000) == "2023-11-14T22:13:20.12Z"
    assert timeutil.format_ns(1_700_000_000_000_000_000) == "2023-11-14T22:13:20Z"
    assert timeutil.parse_ns("2023-11-14T22:13:20.12Z") == 1_700_000_000_120_000_000
    assert timeutil.parse_ns("2023-11-14T23:13:20.5+01:00") == 1_700_000_000_500_000_000
    assert timeutil.parse_ns(timeutil.ZERO_TIME) == 0
    assert timeutil.parse_api_time("1700000000.25") == 1_700_000_000_250_000_000
    assert timeutil.parse_api_time("10m", now_ns=10**12) == 10**12 - 600 * 10**9
    assert timeutil.parse_go_duration("1h30m") == 5400 * 10**9
    assert [timeutil.human_duration(s) for s in (0.5, 1, 59, 61, 3000, 3700, 7200 * 20, 86400 * 3, 86400 * 20,
                                                 86400 * 100, 86400 * 800)] == [
        "Less than a second", "1 second", "59 seconds", "About a minute", "50 minutes", "About an hour", "40 hours",
        "3 days", "2 weeks", "3 months", "2 years"]


def test_state_strings() -> None:
    s = State()
    assert s.status == "created" and s.human() == "Created"
    s.running, s.started_at = True, timeutil.format_ns(10**18)
    assert s.human(now=10**9 + 5) == "Up 5 seconds" and s.status == "running"
    s.paused = True
    assert s.status == "paused" and s.human(now=10**9 + 5) == "Up 5 seconds (Paused)"
    s = State(started_at=timeutil.format_ns(10**18), finished_at=timeutil.format_ns(10**18 + 10**9), exit_code=3)
    assert s.status == "exited" and s.human(now=10**9 + 121) == "Exited (3) 2 minutes ago"


def test_filters_and_events() -> None:
    assert filters.parse('{"status":{"running":true}}') == {"status": ["running"]}
    assert filters.parse('{"label":["a=b","c"]}') == {"label": ["a=b", "c"]}
    with pytest.raises(InvalidParameter):
        filters.parse("{bad")
    bad(filters.check_container_filters, {"status": ["sleeping"]}, match="invalid filter 'status=sleeping'")
    ev = events.make_event("container", "start", "abc", {"name": "web", "image": "busybox", "team": "x"})
    assert ev["status"] == "start" and ev["id"] == "abc" and ev["from"] == "busybox"
    assert events.matches(ev, {"event": ["start"], "container": ["web"], "label": ["team=x"], "type": ["container"]})
    assert not events.matches(ev, {"event": ["die"]})
    assert not events.matches(ev, {"image": ["alpine"]})
    ex = events.make_event("container", "exec_start: sh -c ls", "abc", {})
    assert events.matches(ex, {"event": ["exec_start"]})
    bad(events.validate_filters, {"nope": ["1"]}, match="invalid filter 'nope'")


def test_detach_keys() -> None:
    assert attach.parse_detach_keys(None) == b"\x10\x11"
    assert attach.parse_detach_keys("ctrl-a,x") == b"\x01x"
    bad(attach.parse_detach_keys, "ctrl-aa", match="Invalid detach keys (ctrl-aa) provided")
    sc = attach.DetachScanner(b"\x10\x11")
    assert sc.feed(b"ab\x10") == (b"ab", False)
    assert sc.feed(b"c") == (b"\x10c", False)
    assert sc.feed(b"\x10\x11rest") == (b"", True)


def test_misc() -> None:
    assert names.validate("/web-1") == "web-1"
    assert names.VALID_NAME.match(names.generate())
    assert signals.parse("SIGTERM") == 15 and signals.parse("kill") == 9 and signals.parse("10") == 10
    assert signals.parse("SIGRTMIN+1") > 32
    bad(signals.parse, "NOPE", match="Invalid signal: NOPE")
    assert parse_size("64m") == 64 << 20 and parse_size("1g") == 1 << 30 and parse_size("10k") == 10240
    assert runtime.runtime_message('time="x" level=error msg="exec: \\"foo\\": not found"\n') == 'exec: "foo": not found'
    assert runtime.runtime_message("plain failure\n") == "plain failure"


def test_daemon_config(tmp_path) -> None:  # noqa: ANN001
    cfg = tmp_path / "daemon.json"
    cfg.write_text('{"log-opts": {"max-size": "1m"}, "default-runtime": "runc", "live-restore": true,'
                   ' "runtimes": {"custom": {"path": "/bin/true", "runtimeArgs": ["--x"]}}}')
    c = load(["--config-file", str(cfg), "--data-root", str(tmp_path / "d"), "-H", "unix:///tmp/a.sock",
              "-H", "tcp://127.0.0.1:2375", "--nft-table", "t1"])
    assert c.hosts == ("unix:///tmp/a.sock", "tcp://127.0.0.1:2375")
    assert c.log_opts["max-size"] == "1m" and c.log_opts["max-file"] == "5"
    assert c.default_runtime == "runc" and c.live_restore is True
    assert c.runtime("custom").args == ("--x",)
    assert c.network["nft-table"] == "t1"
    cfg.write_text('{"no-such-key": 1}')
    with pytest.raises(SystemExit, match="don't match any configuration option: no-such-key"):
        load(["--config-file", str(cfg)])
