"""Load and concurrency: 50 parallel `run --rm` leave nothing behind; concurrent calls on one
container are serialised (no 500s, a consistent end state)."""

from __future__ import annotations

import os
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from support.daemon import TestDaemon


def run_rm(d: TestDaemon, i: int) -> tuple[int, bytes]:
    st, r = d.api("POST", "/containers/create", {"Image": "busybox", "Cmd": ["sh", "-c", f"echo run-{i}"],
                                                "HostConfig": {"AutoRemove": True}}, timeout=120)
    assert st == 201, r
    cid = r["Id"]
    st, hdrs, s, rest = d.hijack(f"/containers/{cid}/attach?stream=1&stdout=1&stderr=1", timeout=120)
    assert st == 101
    result: dict = {}

    def waiter() -> None:
        result["wait"] = d.api("POST", f"/containers/{cid}/wait?condition=removed", timeout=120)

    t = threading.Thread(target=waiter)
    t.start()
    st, r = d.api("POST", f"/containers/{cid}/start", timeout=120)
    assert st == 204, r
    data = rest
    while chunk := s.recv(65536):
        data += chunk
    s.close()
    t.join(120)
    st, body = result["wait"]
    return body["StatusCode"], data[8:]


@pytest.mark.slow
def test_fifty_parallel_run_rm(daemon: TestDaemon) -> None:
    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(lambda i: run_rm(daemon, i), range(50)))
    for i, (code, out) in enumerate(results):
        assert code == 0 and out == f"run-{i}\n".encode(), (i, code, out)
    st, lst = daemon.api("GET", "/containers/json?all=1")
    assert lst == []
    # nothing left: mounts, bundles, runtime states, rw layers, cgroups, volumes
    with open("/proc/self/mountinfo") as f:
        assert daemon.data_root not in f.read()
    assert os.listdir(os.path.join(daemon.exec_root, "containers")) == []
    assert os.listdir(os.path.join(daemon.exec_root, "runtime")) == []
    assert os.listdir(os.path.join(daemon.data_root, "containers")) == []
    assert os.listdir(os.path.join(daemon.data_root, "image", "overlay2", "layerdb", "mounts")) == []
    out = subprocess.run(["find", "/sys/fs/cgroup", "-maxdepth", "6", "-name", daemon.cgroup_parent],
                         capture_output=True, text=True).stdout.split()
    for cg in out:
        assert os.listdir(cg) == [] or all(not os.path.isdir(os.path.join(cg, x)) for x in os.listdir(cg)), cg


def test_concurrent_calls_on_one_container(daemon: TestDaemon) -> None:
    st, r = daemon.api("POST", "/containers/create", {"Image": "busybox",
                                                      "Cmd": ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"]})
    cid = r["Id"]
    ops = [("POST", f"/containers/{cid}/start"), ("POST", f"/containers/{cid}/stop?t=2"),
           ("POST", f"/containers/{cid}/restart?t=2"), ("POST", f"/containers/{cid}/pause"),
           ("POST", f"/containers/{cid}/unpause"), ("GET", f"/containers/{cid}/json")] * 4
    with ThreadPoolExecutor(max_workers=len(ops)) as pool:
        results = list(pool.map(lambda op: daemon.api(*op)[0], ops))
    assert all(st in (200, 204, 304, 409) for st in results), results
    st, c = daemon.api("GET", f"/containers/{cid}/json")
    state = c["State"]
    if state["Paused"]:
        daemon.api("POST", f"/containers/{cid}/unpause")
    assert daemon.api("DELETE", f"/containers/{cid}?force=1")[0] == 204
