"""Health checks (daemon/health.py): probes run as execs inside the container, State.Health, the
health_status events, `(healthy)` in the list's Status, `health=` filters, timeouts, the start
period, pause/stop, the image's HEALTHCHECK merged with the user's, and a daemon restart.
Short intervals; every wait polls inspect."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from dockyard.daemon import health
from dockyard.errors import InvalidParameter
from support.daemon import TestDaemon, busybox_daemon
from support.poll import wait_for

MS = 1_000_000


# --- pure parts ----------------------------------------------------------------------------------
def test_go_durations() -> None:
    cases = {0: "0s", 1: "1ns", 1500: "1.5µs", MS: "1ms", 300 * MS: "300ms", 1500 * MS: "1.5s", 30_000 * MS: "30s",
             120_000 * MS: "2m0s", 3_661_500 * MS: "1h1m1.5s"}  # fmt: skip
    for ns, text in cases.items():
        assert health.go_duration(ns) == text


def test_validation_in_dockers_words() -> None:
    def bad(hc: dict[str, Any], msg: str) -> None:
        with pytest.raises(InvalidParameter) as e:
            health.validate({"Healthcheck": hc})
        assert e.value.message == msg

    bad({"Interval": -10 * MS}, "Interval in Healthcheck cannot be less than 1ms")
    bad({"Interval": 500_000}, "Interval in Healthcheck cannot be less than 1ms")
    bad({"Timeout": 1}, "Timeout in Healthcheck cannot be less than 1ms")
    bad({"Retries": -1}, "Retries in Healthcheck cannot be negative")
    bad({"StartPeriod": 10}, "StartPeriod in Healthcheck cannot be less than 1ms")
    bad({"StartInterval": 10}, "StartInterval in Healthcheck cannot be less than 1ms")
    health.validate({"Healthcheck": {"Test": ["NONE"]}})
    health.validate({"Healthcheck": {"Interval": MS, "Timeout": 0, "Retries": 0}})
    health.validate({})


def test_probe_command_forms() -> None:
    assert health.probe_command({"Healthcheck": {"Test": ["CMD", "true", "x"]}}) == ["true", "x"]
    assert health.probe_command({"Healthcheck": {"Test": ["CMD-SHELL", "exit 0"]}}) == ["/bin/sh", "-c", "exit 0"]
    assert health.probe_command({"Healthcheck": {"Test": ["CMD-SHELL", "x"]}, "Shell": ["/bin/ash", "-e", "-c"]}) == \
        ["/bin/ash", "-e", "-c", "x"]  # fmt: skip
    for test in (["NONE"], [], None, ["WHAT", "x"], ["CMD"]):
        assert health.probe_command({"Healthcheck": {"Test": test}}) is None
    assert health.probe_command({}) is None


def test_state_machine_and_log() -> None:
    started = 1_000 * 1_000_000_000
    cfg = {"Healthcheck": {"Retries": 2, "StartPeriod": 5_000 * MS}}

    def res(at_s: float, code: int) -> dict[str, Any]:
        from dockyard.daemon import timeutil

        return {"Start": timeutil.format_ns(started + int(at_s * 1e9)), "End": "", "ExitCode": code, "Output": ""}

    h = health.new_state()
    assert health.apply_result(h, res(1, 1), cfg, started) is None  # inside the start period: not counted
    assert h["FailingStreak"] == 0 and h["Status"] == "starting"
    assert health.apply_result(h, res(6, 1), cfg, started) is None
    assert h["FailingStreak"] == 1
    assert health.apply_result(h, res(7, 1), cfg, started) == "unhealthy"
    assert health.apply_result(h, res(8, 0), cfg, started) == "healthy" and h["FailingStreak"] == 0
    assert health.apply_result(h, res(9, 1), cfg, started) is None and h["Status"] == "healthy"
    assert health.apply_result(h, res(10, 2), cfg, started) == "unhealthy"
    assert len(h["Log"]) == 5 and h["Log"][-1]["ExitCode"] == 2 and h["Log"][0]["ExitCode"] == 1
    # once healthy, failures inside the start period count (the period only protects "starting")
    h = health.new_state()
    health.apply_result(h, res(1, 0), cfg, started)
    health.apply_result(h, res(2, 1), cfg, started)
    assert h["FailingStreak"] == 1
    # defaults: 3 retries
    h = health.new_state()
    for i in range(2):
        assert health.apply_result(h, res(i, 1), {}, started) is None
    assert health.apply_result(h, res(3, 1), {}, started) == "unhealthy"


def test_intervals() -> None:
    started = 0
    cfg = {"Healthcheck": {"Interval": 2_000 * MS, "StartPeriod": 10_000 * MS, "StartInterval": 500 * MS}}
    assert health.next_interval(cfg, started, "starting", 1_000 * MS) == 0.5
    assert health.next_interval(cfg, started, "healthy", 1_000 * MS) == 2.0
    assert health.next_interval(cfg, started, "starting", 11_000 * MS) == 2.0
    assert health.next_interval({"Healthcheck": {}}, started, "starting", 0) == 30.0
    assert health.next_interval({"Healthcheck": {"StartPeriod": 10_000 * MS}}, started, "starting", 0) == 5.0


def test_output_is_cut_as_docker_cuts_it() -> None:
    b = health.LimitedBuffer()
    b.write(b"x" * 4000)
    b.write(b"y" * 200)
    assert b.text() == "x" * 4000 + "y" * 96 + "..."
    b = health.LimitedBuffer()
    b.write(b"ok\n\xff")
    assert b.text() == "ok\n\ufffd"


def test_cli_sends_healthcheck_as_dockers_cli() -> None:
    from dockyard.cli.command import CLIError
    from dockyard.cli.flags import Flag, FlagSet
    from dockyard.cli.runopts import CONTAINER_FLAGS, RUN_ONLY_FLAGS, build_create

    def config(*argv: str) -> dict[str, Any]:
        fs = FlagSet([*CONTAINER_FLAGS, *RUN_ONLY_FLAGS, Flag("help", kind="bool")], interspersed=False)
        opts, args = fs.parse([*argv, "busybox"])
        return build_create(opts, args, True)[0]

    c = config("--health-cmd", "curl -f x", "--health-interval", "100ms", "--health-retries", "2")
    assert c["Healthcheck"] == {"Test": ["CMD-SHELL", "curl -f x"], "Interval": 100 * MS, "Retries": 2}
    c = config("--health-timeout", "1m30s", "--health-start-period", "2s", "--health-start-interval", "500ms")
    assert c["Healthcheck"] == {"Timeout": 90_000 * MS, "StartPeriod": 2000 * MS, "StartInterval": 500 * MS}
    assert "Healthcheck" not in config("--health-interval", "0s", "--health-retries", "0")  # zero is "not given"
    assert config("--no-healthcheck")["Healthcheck"] == {"Test": ["NONE"]}
    assert config("--no-healthcheck", "--health-retries", "0")["Healthcheck"] == {"Test": ["NONE"]}
    for argv, msg in ((("--no-healthcheck", "--health-cmd", "x"), "--no-healthcheck conflicts with --health-* options"),
                      (("--health-interval", "-1s"), "--health-interval cannot be negative"),
                      (("--health-retries", "-1", "--health-timeout", "-1s"), "--health-timeout cannot be negative")):
        with pytest.raises(CLIError) as e:
            config(*argv)
        assert str(e.value.args[0]) == msg


# --- through a real daemon -------------------------------------------------------------------------
def create(d: TestDaemon, cmd: list[str] | None = None, image: str = "busybox", **body: Any) -> str:
    st, r = d.api("POST", "/containers/create", {"Image": image, "Cmd": cmd or ["sleep", "600"], **body})
    assert st == 201, r
    return r["Id"]


def start(d: TestDaemon, cid: str) -> None:
    st, r = d.api("POST", f"/containers/{cid}/start")
    assert st == 204, r


def inspect(d: TestDaemon, cid: str) -> dict[str, Any]:
    st, r = d.api("GET", f"/containers/{cid}/json")
    assert st == 200, r
    return r


def status(d: TestDaemon, cid: str) -> str | None:
    h = inspect(d, cid)["State"].get("Health")
    return h["Status"] if h else None


def listed(d: TestDaemon, **filters: str) -> dict[str, str]:
    q = "?all=1"
    if filters:
        from urllib.parse import quote

        q += "&filters=" + quote(json.dumps({k.replace("_", "-"): [v] for k, v in filters.items()}))
    st, r = d.api("GET", "/containers/json" + q)
    assert st == 200, r
    return {c["Id"]: c["Status"] for c in r}


def events(d: TestDaemon, since: float, cid: str) -> list[dict[str, Any]]:
    from urllib.parse import quote

    filt = quote(json.dumps({"container": [cid]}))
    st, r = d.api("GET", f"/events?since={since:.9f}&until={time.time() + 0.01:.9f}&filters={filt}")
    assert st == 200
    return [r] if isinstance(r, dict) else list(r or [])


def remove(d: TestDaemon, *cids: str) -> None:
    for cid in cids:
        d.api("DELETE", f"/containers/{cid}?force=1")


def test_healthy_probe_log_list_and_events(daemon: TestDaemon) -> None:
    t0 = time.time()
    hc = {"Test": ["CMD-SHELL", "echo out; echo err >&2; pwd"], "Interval": 1000 * MS}
    cid = create(daemon, Healthcheck=hc, WorkingDir="/tmp")
    plain = create(daemon)
    try:
        start(daemon, cid)
        start(daemon, plain)
        # the first probe waits one interval: until then the container is "starting"
        assert status(daemon, cid) == "starting"
        assert listed(daemon)[cid].endswith("(health: starting)")
        assert cid in listed(daemon, health="starting") and plain not in listed(daemon, health="starting")
        assert wait_for(lambda: status(daemon, cid) == "healthy")
        c = inspect(daemon, cid)
        h = c["State"]["Health"]
        assert h["FailingStreak"] == 0 and 1 <= len(h["Log"]) <= 5
        entry = h["Log"][-1]
        assert set(entry) == {"Start", "End", "ExitCode", "Output"} and entry["ExitCode"] == 0
        assert sorted(entry["Output"].splitlines()) == sorted(["out", "err", "/tmp"])
        assert entry["Start"] <= entry["End"] and entry["Start"] >= c["State"]["StartedAt"]
        # the list: Status column, health filters (none = no health check)
        assert listed(daemon)[cid].startswith("Up ") and listed(daemon)[cid].endswith(" (healthy)")
        assert cid in listed(daemon, health="healthy") and cid not in listed(daemon, health="unhealthy")
        assert plain in listed(daemon, health="none") and cid not in listed(daemon, health="none")
        st, r = daemon.api("GET", '/containers/json?filters={"health":["bogus"]}')
        assert st == 400 and r["message"] == "Unrecognised filter value for health: bogus"
        # probes are execs: Docker's events for them, and they do not pile up in ExecIDs
        evs = events(daemon, t0, cid)
        actions = [e["Action"] for e in evs]
        cmd = "/bin/sh -c echo out; echo err >&2; pwd"
        assert f"exec_create: {cmd}" in actions and f"exec_start: {cmd}" in actions and "exec_die" in actions
        assert actions.count("health_status: healthy") == 1
        ev = next(e for e in evs if e["Action"] == "health_status: healthy")
        assert ev["Type"] == "container" and ev["Actor"]["Attributes"]["name"] == c["Name"][1:]
        assert not inspect(daemon, cid)["ExecIDs"]
    finally:
        remove(daemon, cid, plain)


def test_unhealthy_after_retries_and_start_period(daemon: TestDaemon) -> None:
    t0 = time.time()
    slow = create(daemon, Healthcheck={"Test": ["CMD", "false"], "Interval": 100 * MS, "Retries": 2,
                                       "StartPeriod": 1500 * MS, "StartInterval": 100 * MS})  # fmt: skip
    fast = create(daemon, Healthcheck={"Test": ["CMD-SHELL", "echo bad >&2; exit 3"], "Interval": 100 * MS,
                                       "Retries": 1})  # fmt: skip
    try:
        start(daemon, slow)
        start(daemon, fast)
        assert wait_for(lambda: status(daemon, fast) == "unhealthy")
        h = inspect(daemon, fast)["State"]["Health"]
        assert h["FailingStreak"] >= 1 and h["Log"][-1]["ExitCode"] == 3 and h["Log"][-1]["Output"] == "bad\n"
        assert listed(daemon)[fast].endswith(" (unhealthy)") and fast in listed(daemon, health="unhealthy")
        assert wait_for(lambda: status(daemon, slow) == "unhealthy")
        c = inspect(daemon, slow)
        h = c["State"]["Health"]
        assert h["FailingStreak"] >= 2 and all(e["ExitCode"] == 1 for e in h["Log"]) and len(h["Log"]) == 5
        # failures inside the start period did not count: unhealthy only after it
        ev = next(e for e in events(daemon, t0, slow) if e["Action"] == "health_status: unhealthy")
        from dockyard.daemon import timeutil

        assert ev["timeNano"] - timeutil.parse_ns(c["State"]["StartedAt"]) >= 1500 * MS
    finally:
        remove(daemon, slow, fast)


def test_timeout_kills_the_probe_and_output_is_cut(daemon: TestDaemon) -> None:
    hung = create(daemon, Healthcheck={"Test": ["CMD-SHELL", "echo partial; exec sleep 30"], "Interval": 100 * MS,
                                       "Timeout": 300 * MS, "Retries": 1})  # fmt: skip
    chatty = create(daemon, Healthcheck={"Test": ["CMD-SHELL", "head -c 5000 /dev/zero | tr '\\0' x"],
                                         "Interval": 100 * MS})  # fmt: skip
    missing = create(daemon, Healthcheck={"Test": ["CMD", "/nonexistent", "a"], "Interval": 100 * MS, "Retries": 1})
    try:
        for cid in (hung, chatty, missing):
            start(daemon, cid)
        assert wait_for(lambda: status(daemon, chatty) == "healthy")
        out = inspect(daemon, chatty)["State"]["Health"]["Log"][-1]["Output"]
        assert out == "x" * 4096 + "..."
        assert wait_for(lambda: status(daemon, missing) == "unhealthy")
        last = inspect(daemon, missing)["State"]["Health"]["Log"][-1]
        assert last["ExitCode"] == -1 and "OCI runtime exec failed" in last["Output"] and "/nonexistent" in last["Output"]
        assert wait_for(lambda: status(daemon, hung) == "unhealthy")
        assert wait_for(lambda: inspect(daemon, hung)["State"]["Health"]["FailingStreak"] >= 3)
        last = inspect(daemon, hung)["State"]["Health"]["Log"][-1]
        assert last["ExitCode"] == -1 and last["Output"] == "Health check exceeded timeout (300ms): partial\n"
        # each timed-out probe was killed: at most the one in flight is left
        st, r = daemon.api("POST", f"/containers/{hung}/exec", {"Cmd": ["sh", "-c", "ps -o args | grep -c '^sleep 30'"],
                                                               "AttachStdout": True})  # fmt: skip
        assert st == 201
        st, hdrs, s, rest = daemon.hijack(f"/exec/{r['Id']}/start", {})
        data = rest
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.close()
        from support.daemon import demux

        assert int(demux(data)[1].strip() or 0) <= 1
    finally:
        remove(daemon, hung, chatty, missing)


def test_pause_and_stop_end_probing(daemon: TestDaemon) -> None:
    cid = create(daemon, Healthcheck={"Test": ["CMD", "true"], "Interval": 100 * MS})
    try:
        start(daemon, cid)
        assert wait_for(lambda: status(daemon, cid) == "healthy")
        assert daemon.api("POST", f"/containers/{cid}/pause")[0] == 204
        time.sleep(0.3)  # a probe in flight at the pause may still end
        t = time.time()
        time.sleep(0.5)
        assert not [e for e in events(daemon, t, cid) if e["Action"].startswith("exec_create")]
        assert daemon.api("POST", f"/containers/{cid}/unpause")[0] == 204
        t = time.time()
        assert wait_for(lambda: any(e["Action"].startswith("exec_create") for e in events(daemon, t, cid)))
        assert daemon.api("POST", f"/containers/{cid}/stop?t=1")[0] == 204
        t = time.time()
        time.sleep(0.5)
        # no new probe once stopped (the exec_die of one in flight at the stop may still come)
        assert not [e for e in events(daemon, t, cid) if e["Action"].startswith("exec_create")]
        c = inspect(daemon, cid)
        assert c["State"]["Status"] == "exited" and c["State"]["Health"]["Status"] == "healthy"  # kept, as Docker does
        assert listed(daemon)[cid].startswith("Exited (")
        # a new start begins again at "starting"
        start(daemon, cid)
        assert status(daemon, cid) in ("starting", "healthy")
        assert wait_for(lambda: status(daemon, cid) == "healthy")
    finally:
        remove(daemon, cid)


def test_image_healthcheck_merge_and_none(daemon: TestDaemon) -> None:
    src = create(daemon)
    img_hc = {"Test": ["CMD-SHELL", "echo from-image"], "Interval": 100 * MS, "Retries": 4}
    st, r = daemon.api("POST", f"/commit?container={src}&repo=hcimage&tag=t1", {"Healthcheck": img_hc})
    assert st == 201, r
    ids = []
    try:
        inherit = create(daemon, image="hcimage:t1")
        merged = create(daemon, image="hcimage:t1", Healthcheck={"Timeout": 5000 * MS})
        none = create(daemon, image="hcimage:t1", Healthcheck={"Test": ["NONE"]})
        ids = [inherit, merged, none]
        assert inspect(daemon, inherit)["Config"]["Healthcheck"] == img_hc
        assert inspect(daemon, merged)["Config"]["Healthcheck"] == {**img_hc, "Timeout": 5000 * MS}
        for cid in ids:
            start(daemon, cid)
        assert wait_for(lambda: status(daemon, inherit) == "healthy" and status(daemon, merged) == "healthy")
        assert inspect(daemon, inherit)["State"]["Health"]["Log"][-1]["Output"] == "from-image\n"
        assert "Health" not in inspect(daemon, none)["State"]  # NONE: no health state at all
        assert none in listed(daemon, health="none") and not listed(daemon)[none].endswith(")")
        # bad values are refused at create, in Docker's words
        st, r = daemon.api("POST", "/containers/create", {"Image": "busybox", "Healthcheck": {"Interval": 1000}})
        assert st == 400 and r["message"] == "Interval in Healthcheck cannot be less than 1ms"
        st, r = daemon.api("POST", "/containers/create", {"Image": "busybox", "Healthcheck": {"Retries": -2}})
        assert st == 400 and r["message"] == "Retries in Healthcheck cannot be negative"
    finally:
        remove(daemon, src, *ids)
        daemon.api("DELETE", "/images/hcimage:t1")


def test_probing_resumes_after_a_daemon_restart(tmp_path) -> None:  # noqa: ANN001
    d = busybox_daemon(str(tmp_path / "d"))
    try:
        cid = create(d, Healthcheck={"Test": ["CMD-SHELL", "test -e /ok"], "Interval": 100 * MS, "Retries": 1})
        start(d, cid)
        assert wait_for(lambda: status(d, cid) == "unhealthy")

        def on_disk() -> dict[str, Any]:
            try:
                with open(f"{d.data_root}/containers/{cid}/config.v2.json") as f:
                    return json.load(f)["State"].get("Health") or {}
            except (OSError, ValueError):
                return {}

        assert wait_for(lambda: on_disk().get("Status") == "unhealthy")  # a change of status is saved
        d.kill()  # SIGKILL: the container lives on under its shim
        d.start()
        c = inspect(d, cid)
        assert c["State"]["Running"] and c["State"]["Health"]["Status"] in ("starting", "unhealthy")
        assert c["State"]["Health"]["Log"]  # the log was kept on disk
        t = time.time()
        st, r = d.api("POST", f"/containers/{cid}/exec", {"Cmd": ["touch", "/ok"]})
        assert st == 201
        assert d.api("POST", f"/exec/{r['Id']}/start", {"Detach": True})[0] == 200
        assert wait_for(lambda: status(d, cid) == "healthy")
        assert any(e["Action"] == "health_status: healthy" for e in events(d, t, cid))
        assert d.api("DELETE", f"/containers/{cid}?force=1")[0] == 204
        assert not d.loop_violations(), d.loop_violations()
    finally:
        d.cleanup()


def test_cli_run_health_flags_and_ps(daemon: TestDaemon, tmp_path) -> None:  # noqa: ANN001
    from cli.cliutil import CLI

    dy = CLI(daemon.host, str(tmp_path / "dyconfig"))
    cid = dy.ok("run", "-d", "--health-cmd", "echo ok", "--health-interval", "100ms", "--health-retries", "2",
                "busybox", "sleep", "600").strip()  # fmt: skip
    try:
        assert inspect(daemon, cid)["Config"]["Healthcheck"] == {"Test": ["CMD-SHELL", "echo ok"], "Interval": 100 * MS,
                                                                 "Retries": 2}  # fmt: skip
        assert wait_for(lambda: dy.ok("ps", "--filter", "health=healthy", "-q", "--no-trunc").split() == [cid])
        out = dy.ok("ps", "--filter", f"id={cid}", "--format", "{{.Status}}")
        assert out.startswith("Up ") and out.strip().endswith("(healthy)")
        assert dy.ok("inspect", "-f", "{{.State.Health.Status}} {{.State.Health.FailingStreak}}", cid).split() == ["healthy", "0"]
    finally:
        remove(daemon, cid)
