"""Pure logic of the runtime, without root or containers: option parsing, JSON, config
validation, the rootfs plan, mount options, capabilities, signals, rlimits, seccomp translation,
cgroup layout detection and the v1/v2 drivers against a fake cgroupfs directory."""

from __future__ import annotations

import json
import os

import pytest

from dockyard.runtime import caps, jsonfast, signals
from dockyard.runtime import config as cfg
from dockyard.runtime import plan as P
from dockyard.runtime import rlimits as R
from dockyard.runtime import seccomp as SC
from dockyard.runtime.cgroups import cpu as cgcpu
from dockyard.runtime.cgroups import devices as cgdev
from dockyard.runtime.cgroups import layout, new_manager
from dockyard.runtime.cgroups.blkio import weight_to_v2
from dockyard.runtime.cgroups.fs import CgroupError
from dockyard.runtime.cgroups.v1 import V1Manager
from dockyard.runtime.cgroups.v2 import V2Manager
from dockyard.runtime.defaults import default_spec
from dockyard.runtime.exec_ import ExecOptions, build_process
from dockyard.runtime.options import BOOL, INT, LIST, STR, Flag, UsageError, parse, parse_size
from dockyard.runtime.queries import merge_resources
from dockyard.runtime.state import now_rfc3339, valid_id
from dockyard.sys import linux as L

# --- options ---------------------------------------------------------------------------------------
FLAGS = [Flag("bundle,b", STR, "."), Flag("detach,d", BOOL), Flag("env,e", LIST), Flag("preserve-fds", INT, 0)]


def test_options_forms():
    v, pos = parse(["--bundle", "/b", "-d", "-e", "A=1", "--env=B=2", "-preserve-fds=3", "id", "-x"], FLAGS)
    assert v == {"bundle": "/b", "detach": True, "env": ["A=1", "B=2"], "preserve_fds": 3}
    assert pos == ["id", "-x"]  # parsing stops at the first positional argument
    v, pos = parse(["-b=/c", "--detach=false", "--", "-notaflag"], FLAGS)
    assert v["bundle"] == "/c" and v["detach"] is False and pos == ["-notaflag"]
    v, pos = parse(["id", "--detach"], FLAGS, stop_at_positional=False)
    assert v["detach"] is True and pos == ["id"]


def test_options_errors():
    with pytest.raises(UsageError, match="flag provided but not defined: -nope"):
        parse(["--nope"], FLAGS)
    with pytest.raises(UsageError, match="flag needs an argument: -bundle"):
        parse(["--bundle"], FLAGS)
    with pytest.raises(UsageError, match="invalid value"):
        parse(["--preserve-fds", "x"], FLAGS)


def test_parse_size():
    assert parse_size("128m") == 128 << 20
    assert parse_size("1G") == 1 << 30
    assert parse_size("512k") == 512 << 10
    assert parse_size("100") == 100
    assert parse_size("2MiB") == 2 << 20
    assert parse_size("-1") == -1
    with pytest.raises(UsageError):
        parse_size("lots")


# --- json --------------------------------------------------------------------------------------------
def test_jsonfast_roundtrip_matches_json():
    obj = {"a": [1, 2.5, None, True, False, "é\u2603\n"], "b": {"c": {}}, "d": []}
    assert jsonfast.loads(json.dumps(obj)) == obj
    assert json.loads(jsonfast.dumps(obj)) == obj
    assert jsonfast.dumps_pretty(obj) == json.dumps(obj, indent=2)
    assert jsonfast.loads(b"\xef\xbb\xbf {\"x\": 1} \n") == {"x": 1}
    for bad in ("", "{", "[1,]", "{} {}", "nul"):
        with pytest.raises(ValueError):
            jsonfast.loads(bad)


# --- config validation -----------------------------------------------------------------------------
def base(**linux) -> dict:
    c = default_spec()
    c["linux"].update(linux)
    return c


def test_validate_accepts_the_default_spec(tmp_path):
    cfg.validate(default_spec(), str(tmp_path))


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda c: c.pop("ociVersion"), "ociVersion is required"),
    (lambda c: c["process"].update(args=[]), "args must not be empty"),
    (lambda c: c["linux"]["namespaces"].append({"type": "pid"}), "duplicated ns 'pid'"),
    (lambda c: c["linux"]["namespaces"].append({"type": "bogus"}), "namespace 'bogus' does not exist"),
    (lambda c: c["linux"]["namespaces"].append({"type": "user"}), "no uid mappings found"),
    (lambda c: c["linux"].update(uidMappings=[{"containerID": 0, "hostID": 1, "size": 1}]),
     "USER namespace isn't enabled"),
    (lambda c: c["linux"].update(namespaces=[{"type": "mount"}]), "without a private UTS namespace"),
    (lambda c: c["linux"].update(sysctl={"net.ipv4.ip_forward": "1"}, namespaces=[{"type": "mount"}, {"type": "uts"}]),
     "not allowed in the hosts network namespace"),
    (lambda c: c["linux"].update(sysctl={"kernel.shmmax": "1"}, namespaces=[{"type": "mount"}, {"type": "uts"}]),
     "not allowed in the hosts ipc namespace"),
    (lambda c: c["linux"].update(sysctl={"vm.swappiness": "1"}), "is not in a separate kernel namespace"),
])
def test_validate_rejects(tmp_path, mutate, message):
    c = default_spec()
    mutate(c)
    with pytest.raises(cfg.ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        cfg.validate(c, str(tmp_path))


def test_validate_missing_rootfs():
    with pytest.raises(cfg.ConfigError, match=r"rootfs \(/nope\) does not exist"):
        cfg.validate(default_spec(), "/nope")


def test_namespace_helpers():
    c = base(namespaces=[{"type": "pid"}, {"type": "network", "path": "/var/run/netns/x"}])
    assert cfg.new_namespaces(c) == ["pid"]
    assert cfg.joined_namespaces(c) == [("network", "/var/run/netns/x")]
    assert cfg.has_namespace(c, "network") and not cfg.has_new_namespace(c, "network")


# --- the rootfs plan -----------------------------------------------------------------------------
def test_plan_for_runc_default_spec():
    ops = P.rootfs_plan(default_spec(), "/b/rootfs", kcore_exists=True)
    tags = [o[0] for o in ops]
    assert ops[0] == ("propagation", L.MS_SLAVE | L.MS_REC)
    assert ops[1] == ("rootfs_parent_private", "/b/rootfs")
    assert ops[2] == ("bind_rootfs", "/b/rootfs")
    mounts = [o[1] for o in ops if o[0] in ("mount", "cgroup")]
    assert [m.dest for m in mounts] == ["/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup"]
    dev = mounts[1]
    assert dev.fstype == "tmpfs" and dev.flags == L.MS_NOSUID | L.MS_STRICTATIME and dev.data == "mode=755,size=65536k"
    pts = mounts[2]
    assert pts.data == "newinstance,ptmxmode=0666,mode=0620,gid=5" and pts.flags == L.MS_NOSUID | L.MS_NOEXEC
    assert ops[tags.index("cgroup")][1].flags & L.MS_RDONLY
    devices = [o[1].path for o in ops if o[0] == "device"]
    assert devices == ["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"]
    links = [(o[1], o[2]) for o in ops if o[0] == "symlink"]
    assert ("/proc/self/fd", "/dev/fd") in links and ("/proc/kcore", "/dev/core") in links
    assert "ptmx" in tags
    # after pivot: terminal console, sysctl before read-only paths, then masks, read-only root last
    i = tags.index("pivot")
    assert tags[i + 1] == "console"
    assert tags[i + 2:i + 7] == ["readonly"] * 5
    assert tags[-1] == "root_readonly"
    assert ("masked", "/proc/kcore") in ops
    assert tags.index("pivot") > tags.index("ptmx")


def test_plan_binds_propagation_devices_and_order():
    c = default_spec()
    c["process"]["terminal"] = False
    c["root"]["readonly"] = False
    c["mounts"] = [
        {"destination": "/dev", "type": "bind", "source": "/dev", "options": ["rbind", "ro", "rslave"]},
        {"destination": "data", "type": "bind", "source": "vol", "options": ["bind", "nosuid", "private"]},
        {"destination": "/run", "type": "tmpfs", "source": "tmpfs", "options": ["tmpcopyup", "rro", "mode=755"]},
    ]
    c["linux"]["devices"] = [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}]
    c["linux"]["sysctl"] = {"net.core.somaxconn": 1024}
    c["linux"]["rootfsPropagation"] = "shared"
    ops = P.rootfs_plan(c, "/r", bundle="/bundle")
    tags = [o[0] for o in ops]
    # as runc: rootfsPropagation first (host shared mounts stay peers), then the rootfs's mount private
    assert ops[:3] == [("propagation", L.MS_SHARED), ("rootfs_parent_private", "/r"), ("bind_rootfs", "/r")]
    assert ops[-1] == ("root_propagation", L.MS_SHARED)
    m_dev, m_data, m_run = (o[1] for o in ops if o[0] == "mount")
    assert m_dev.bind and m_dev.flags == L.MS_BIND | L.MS_REC | L.MS_RDONLY and m_dev.propagation == [L.MS_SLAVE | L.MS_REC]
    assert m_data.dest == "/data" and m_data.source == "/bundle/vol" and m_data.propagation == [L.MS_PRIVATE]
    assert m_run.tmpcopyup and m_run.attr_set == L.MOUNT_ATTR_RDONLY and m_run.data == "mode=755"
    # /dev is bound from the host: no default devices or symlinks, but the listed ones
    assert [o[1].path for o in ops if o[0] == "device"] == ["/dev/fuse"]
    assert "symlink" not in tags and "ptmx" not in tags and "console" not in tags
    assert ("sysctl", "net.core.somaxconn", "1024") in ops
    with pytest.raises(P.PlanError):
        c["linux"]["rootfsPropagation"] = "sideways"
        P.rootfs_plan(c, "/r")


def test_parse_mount_options():
    flags, cleared, prop, data, aset, aclr, tmp = P.parse_mount_options(
        ["ro", "rw", "nosuid", "dev", "nodev", "rshared", "size=1m", "mode=700", "rnoexec", "defaults"])
    assert flags == L.MS_NOSUID | L.MS_NODEV and not flags & L.MS_RDONLY
    assert cleared & L.MS_RDONLY
    assert prop == [L.MS_SHARED | L.MS_REC] and data == "size=1m,mode=700"
    assert aset == L.MOUNT_ATTR_NOEXEC and not tmp


# --- capabilities, signals, rlimits ----------------------------------------------------------------
def test_capability_masks():
    assert caps.mask(caps.DOCKER_DEFAULT) == 0xA80425FB
    assert caps.mask(["CAP_SYS_ADMIN", "NET_ADMIN", "cap_kill"]) == (1 << 21) | (1 << 12) | (1 << 5)
    assert caps.mask(["CAP_NOT_A_THING", "CAP_CHECKPOINT_RESTORE"], last=39) == 0  # skipped, as runc
    assert caps.names_of(0b1001) == ["CAP_CHOWN", "CAP_FOWNER"]


def test_signal_parsing():
    assert signals.parse("KILL") == 9 == signals.parse("SIGKILL") == signals.parse("9") == signals.parse("sigkill")
    assert signals.parse("TERM") == 15 and signals.parse("WINCH") == 28
    assert signals.parse("RTMIN+2") == 36 and signals.parse("RTMAX-1") == 63
    for bad in ("0", "65", "NOPE", ""):
        with pytest.raises(ValueError):
            signals.parse(bad)
    assert 17 not in signals.FORWARDED and 9 not in signals.FORWARDED


def test_rlimit_parsing():
    assert R.parse([{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 20}]) == [(7, "RLIMIT_NOFILE", 10, 20)]
    with pytest.raises(R.RlimitError, match="unknown rlimit type"):
        R.parse([{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}])
    with pytest.raises(R.RlimitError, match="greater than the hard limit"):
        R.parse([{"type": "RLIMIT_CORE", "soft": 2, "hard": 1}])


# --- seccomp ---------------------------------------------------------------------------------------
def test_seccomp_compile():
    from dockyard.sys import seccomp as S

    prof = {
        "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"],
        "flags": ["SECCOMP_FILTER_FLAG_LOG"],
        "syscalls": [
            {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["nope"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},  # same as default: dropped
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}, {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 0x7E020000, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
        ],
    }
    default, arches, flags, rules = SC.compile_profile(prof)
    assert default == S.ACT_ERRNO(38) and arches == ["x86_64", "aarch64"] and flags == [S.ATTR_CTL_LOG]
    assert (S.ACT_ALLOW, "read", []) in rules and (S.ACT_ERRNO(1), "kill", []) in rules
    assert not any(r[1] == "nope" for r in rules)
    assert [r for r in rules if r[1] == "personality"] == [(S.ACT_ALLOW, "personality", [(0, S.CMP_EQ, 0, 0)]),
                                                           (S.ACT_ALLOW, "personality", [(0, S.CMP_EQ, 8, 0)])]
    assert (S.ACT_ALLOW, "clone", [(0, S.CMP_MASKED_EQ, 0x7E020000, 0)]) in rules
    with pytest.raises(SC.SeccompError, match="SCMP_ACT_NOTIFY is not supported"):
        SC.compile_profile({"defaultAction": "SCMP_ACT_NOTIFY"})
    with pytest.raises(SC.SeccompError, match="invalid seccomp operator"):
        SC.compile_profile({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_SOMETIMES"}]}]})


def test_seccomp_filter_builds_with_libseccomp(tmp_path):
    prof = {"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [{"names": ["read", "write", "chown32", "not_a_syscall"], "action": "SCMP_ACT_ALLOW"},
                         {"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]}]}
    f = SC.build(prof)
    try:
        with open(tmp_path / "bpf", "wb") as out:
            f.export_bpf(out.fileno())
    finally:
        f.release()
    size = os.path.getsize(tmp_path / "bpf")
    assert size > 0 and size % 8 == 0


# --- cgroups ---------------------------------------------------------------------------------------
HYBRID_MOUNTINFO = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
HYBRID_CGROUP = "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/abc\n2:cpuacct:/\n1:cpu:/\n0::/\n"


def test_layout_hybrid_uses_v1():
    lay = layout.build_layout(HYBRID_MOUNTINFO, HYBRID_CGROUP)
    assert lay.version == 1
    by = {h.controllers[0]: h for h in lay.hierarchies}
    assert set(by) == {"cpu", "cpuacct", "memory", "pids", "name=systemd"}
    assert by["memory"].own_dir() == "/sys/fs/cgroup/memory/process_api/abc"
    assert by["cpu"].own_dir() == "/sys/fs/cgroup/cpu"
    assert by["name=systemd"].name == "systemd"


def test_layout_unified_and_nested_mount_roots():
    mi = "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n"
    lay = layout.build_layout(mi, "0::/user.slice/x.scope\n")
    assert lay.version == 2 and lay.hierarchies[0].own_dir() == "/sys/fs/cgroup/user.slice/x.scope"
    # inside a container: the mount's root is the container's cgroup
    mi = "40 30 0:33 /docker/abc /sys/fs/cgroup/cpu,cpuacct ro - cgroup cgroup rw,cpu,cpuacct\n"
    lay = layout.build_layout(mi, "3:cpu,cpuacct:/docker/abc\n")
    h = lay.hierarchies[0]
    assert h.controllers == ["cpu", "cpuacct"] and h.own_dir() == "/sys/fs/cgroup/cpu,cpuacct"
    with pytest.raises(OSError):
        layout.build_layout("", "0::/\n")


def test_manager_paths():
    lay = layout.build_layout(HYBRID_MOUNTINFO, HYBRID_CGROUP)
    m = new_manager("dockyard/abc", "abc", lay)
    assert m.paths["memory"] == "/sys/fs/cgroup/memory/process_api/abc/dockyard/abc"
    assert m.paths["cpu"] == "/sys/fs/cgroup/cpu/dockyard/abc"
    assert m.bases["memory"] == "/sys/fs/cgroup/memory/process_api/abc"
    assert m.mount_opts["name=systemd"] == "none,name=systemd" and m.mount_opts["cpu"] == "cpu"
    assert new_manager("", "ctr", lay).paths["pids"] == "/sys/fs/cgroup/pids/ctr"
    assert new_manager("/abs/x", "x", lay).paths["memory"] == "/sys/fs/cgroup/memory/process_api/abc/abs/x"
    assert new_manager("system.slice:docker:abc", "abc", lay).paths["cpu"] == "/sys/fs/cgroup/cpu/abc"
    with pytest.raises(CgroupError):
        new_manager("../escape", "x", lay)
    v2 = new_manager("dockyard/abc", "abc", layout.build_layout("1 2 0:1 / /sys/fs/cgroup rw - cgroup2 c rw\n", "0::/me\n"))
    assert isinstance(v2, V2Manager) and v2.path == "/sys/fs/cgroup/me/dockyard/abc" and v2.base == "/sys/fs/cgroup/me"


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def _touch(d, *names, content=""):
    for n in names:
        with open(os.path.join(d, n), "w") as f:
            f.write(content)


def test_v2_manager_on_a_fake_cgroupfs(tmp_path):
    base = str(tmp_path / "cg")
    os.makedirs(base)
    _touch(base, "cgroup.subtree_control")
    with open(os.path.join(base, "cgroup.controllers"), "w") as f:
        f.write("cpuset cpu io memory pids hugetlb rdma\n")
    m = V2Manager(f"{base}/dockyard/c1", base)
    os.makedirs(f"{base}/dockyard")
    _touch(f"{base}/dockyard", "cgroup.subtree_control")
    m.create()
    assert _read(os.path.join(base, "cgroup.subtree_control")) == "+cpuset +cpu +io +memory +pids +hugetlb"
    assert _read(f"{base}/dockyard/cgroup.subtree_control") == "+cpuset +cpu +io +memory +pids +hugetlb"
    files = ["memory.max", "memory.low", "memory.swap.max", "cpu.weight", "cpu.max", "cpuset.cpus", "cpuset.mems",
             "pids.max", "io.weight", "io.max", "cgroup.procs", "cgroup.freeze", "cgroup.events", "hugetlb.2MB.max",
             "memory.oom.group", "cpu.idle"]
    _touch(m.path, *files)
    m.set({"memory": {"limit": 64 << 20, "swap": 96 << 20, "reservation": 32 << 20},
           "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0-1", "mems": "0", "idle": 1},
           "pids": {"limit": 100}, "blockIO": {"weight": 500,
                                               "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}]},
           "hugepageLimits": [{"pageSize": "2MB", "limit": 4 << 20}], "unified": {"memory.oom.group": "1"}})

    def rd(n):
        return _read(os.path.join(m.path, n))

    assert rd("memory.max") == str(64 << 20) and rd("memory.low") == str(32 << 20)
    assert rd("memory.swap.max") == str(32 << 20)  # OCI swap is memory+swap
    assert rd("cpu.weight") == str(cgcpu.shares_to_weight(1024)) == "39"
    assert rd("cpu.max") == "50000 100000" and rd("cpuset.cpus") == "0-1" and rd("cpuset.mems") == "0"
    assert rd("pids.max") == "100" and rd("io.weight") == str(weight_to_v2(500))
    assert rd("io.max") == "8:0 rbps=1048576" and rd("hugetlb.2MB.max") == str(4 << 20)
    assert rd("memory.oom.group") == "1" and rd("cpu.idle") == "1"
    m.set({"pids": {"limit": 0}, "cpu": {"quota": -1, "period": 100000}})
    assert rd("pids.max") == "max" and rd("cpu.max") == "max 100000"
    with pytest.raises(CgroupError, match="realtime"):
        m.set({"cpu": {"realtimeRuntime": 5}})
    with pytest.raises(CgroupError):
        m.set({"unified": {"../x": "1"}})
    # freeze writes cgroup.freeze and waits for cgroup.events to say frozen
    _touch(m.path, "cgroup.events", content="populated 1\nfrozen 1\n")
    m.freeze()
    assert rd("cgroup.freeze") == "1" and m.frozen()
    _touch(m.path, "cgroup.events", content="populated 1\nfrozen 0\n")
    m.thaw()
    assert rd("cgroup.freeze") == "0" and not m.frozen()
    _touch(m.path, "cpu.stat", content="usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 4\nnr_throttled 1\nthrottled_usec 7\n")
    _touch(m.path, "memory.current", content="4096\n")
    _touch(m.path, "memory.stat", content="anon 1000\nfile 3000\n")
    _touch(m.path, "pids.current", content="3\n")
    _touch(m.path, "io.stat", content="8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n")
    s = m.stats()
    assert s["cpu"]["usage"] == {"total": 1500000, "kernel": 500000, "user": 1000000, "percpu": []}
    assert s["cpu"]["throttling"] == {"periods": 4, "throttledPeriods": 1, "throttledTime": 7000}
    assert s["memory"]["usage"]["usage"] == 4096 and s["memory"]["cache"] == 3000
    assert s["pids"] == {"current": 3, "limit": -1}  # "max"
    assert {"major": 8, "minor": 0, "op": "Write", "value": 20} in s["blkio"]["ioServiceBytesRecursive"]
    with open(os.path.join(m.path, "cgroup.procs"), "w") as f:
        f.write("12\n34\n")
    assert m.pids() == [12, 34]
    for n in os.listdir(m.path):
        os.unlink(os.path.join(m.path, n))
    for n in os.listdir(f"{base}/dockyard"):
        if os.path.isfile(os.path.join(f"{base}/dockyard", n)):
            os.unlink(os.path.join(f"{base}/dockyard", n))
    m.destroy()
    assert not os.path.exists(f"{base}/dockyard")  # the emptied parent went too
    assert os.path.isdir(base)


def test_v1_manager_writes_on_a_fake_cgroupfs(tmp_path, monkeypatch):
    root = tmp_path / "cg"
    paths, bases = {}, {}
    for c in ("cpu", "cpuacct", "cpuset", "memory", "pids", "devices", "blkio", "freezer"):
        paths[c] = str(root / c / "dyt" / "c1")
        bases[c] = str(root / c)
    m = V1Manager(paths, bases)
    os.makedirs(root / "cpuset")
    _touch(str(root / "cpuset"), "cpuset.cpus", content="0-1\n")
    _touch(str(root / "cpuset"), "cpuset.mems", content="0\n")
    os.makedirs(root / "cpuset" / "dyt")
    _touch(str(root / "cpuset" / "dyt"), "cpuset.cpus", "cpuset.mems")
    os.makedirs(paths["cpuset"])
    _touch(paths["cpuset"], "cpuset.cpus", "cpuset.mems")
    m.create()  # a new v1 cpuset inherits cpus and mems from the nearest ancestor that has them
    assert _read(os.path.join(paths["cpuset"], "cpuset.cpus")) == "0-1"
    assert _read(str(root / "cpuset" / "dyt" / "cpuset.mems")) == "0"
    _touch(paths["memory"], "memory.limit_in_bytes", content=str(16 << 20))
    _touch(paths["memory"], "memory.memsw.limit_in_bytes", "memory.soft_limit_in_bytes", "memory.swappiness")
    _touch(paths["cpu"], "cpu.shares", "cpu.cfs_period_us", "cpu.cfs_quota_us")
    _touch(paths["pids"], "pids.max")
    _touch(paths["devices"], "devices.allow", "devices.deny")

    import dockyard.runtime.cgroups.cpu as c_cpu
    import dockyard.runtime.cgroups.devices as c_dev
    import dockyard.runtime.cgroups.fs as cgfs
    import dockyard.runtime.cgroups.memory as c_mem
    import dockyard.runtime.cgroups.pids as c_pids

    log = []

    def spy(d, name, value):
        log.append((d.split("/")[-3], name, str(value)))
        cgfs.write(d, name, value)

    for mod in (c_cpu, c_dev, c_mem, c_pids):
        monkeypatch.setattr(mod, "write", spy)
    m.set({"memory": {"limit": 64 << 20, "swap": 128 << 20, "reservation": 1 << 20, "swappiness": 10},
           "cpu": {"shares": 512, "quota": 20000, "period": 100000}, "pids": {"limit": 42}},
          {"resources": {"devices": [{"allow": False, "access": "rwm"},
                                     {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"}]}})
    mem = [(n, v) for d, n, v in log if d == "memory"]
    # growing: memory+swap first, then memory
    assert mem[:2] == [("memory.memsw.limit_in_bytes", str(128 << 20)), ("memory.limit_in_bytes", str(64 << 20))]
    assert ("memory.soft_limit_in_bytes", str(1 << 20)) in mem and ("memory.swappiness", "10") in mem
    cpu = [(n, v) for d, n, v in log if d == "cpu"]
    assert cpu == [("cpu.shares", "512"), ("cpu.cfs_period_us", "100000"), ("cpu.cfs_quota_us", "20000")]
    assert ("pids", "pids.max", "42") in log
    dev = [(n, v) for d, n, v in log if d == "devices"]
    assert dev[0] == ("devices.deny", "a") and dev[1] == ("devices.allow", "c 1:3 rw")
    assert ("devices.allow", "c 136:* rwm") in dev and ("devices.allow", "b *:* m") in dev
    # shrinking below the current memory+swap limit: memory first
    log.clear()
    with open(os.path.join(paths["memory"], "memory.limit_in_bytes"), "w") as f:
        f.write(str(256 << 20))
    m.set({"memory": {"limit": 32 << 20, "swap": 64 << 20}})
    assert [n for d, n, v in log if d == "memory"] == ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"]


def test_device_rules_and_bpf_program():
    linux = {"resources": {"devices": [{"allow": False, "access": "rwm"},
                                       {"allow": True, "type": "b", "major": 8, "minor": 0, "access": "r"}]},
             "devices": [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}]}
    rules = cgdev.rules(linux)
    assert rules[0] == ("a", -1, -1, "rwm", False)
    assert rules[1] == ("b", 8, 0, "r", True)
    assert rules[2] == ("c", 10, 229, "rwm", True)
    assert rules[3:] == list(cgdev.DEFAULT_ALLOWED)
    assert cgdev.rules({}) == []
    prog = cgdev.compile_bpf(rules)
    assert len(prog) % 8 == 0
    insns = [prog[i:i + 8] for i in range(0, len(prog), 8)]
    assert insns[-1][0] == 0x95 and insns[-2][0] == 0xB4  # exit with the default verdict (deny: 0)
    assert int.from_bytes(insns[-2][4:], "little") == 0
    # every jump lands inside the program
    for i, ins in enumerate(insns):
        if ins[0] in (0x55, 0x5D):
            off = int.from_bytes(ins[2:4], "little", signed=True)
            assert 0 < i + 1 + off <= len(insns) - 2


# --- misc ------------------------------------------------------------------------------------------
def test_build_exec_process_from_container_process():
    container = {"args": ["sleep", "1"], "env": ["PATH=/bin", "A=1"], "cwd": "/", "terminal": False,
                 "user": {"uid": 0, "gid": 0, "umask": 18},
                 "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]},
                 "noNewPrivileges": False, "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 5, "hard": 5}]}
    o = ExecOptions()
    o.args = ["sh", "-c", "x"]
    o.env = ["B=2"]
    o.cwd = "/tmp"
    o.user = "1000:100"
    o.tty = True
    o.caps = ["SYS_ADMIN"]
    o.no_new_privs = True
    p = build_process(container, o)
    assert p["args"] == ["sh", "-c", "x"] and p["env"] == ["PATH=/bin", "A=1", "B=2"] and p["cwd"] == "/tmp"
    assert p["user"] == {"uid": 1000, "gid": 100, "umask": 18} and p["terminal"] is True
    assert p["capabilities"]["bounding"] == ["CAP_KILL", "CAP_SYS_ADMIN"] and p["noNewPrivileges"] is True
    assert p["rlimits"] == container["rlimits"]
    assert container["capabilities"]["bounding"] == ["CAP_KILL"]  # the container's spec is untouched
    o2 = ExecOptions()
    o2.process = "p.json"
    p2 = build_process(container, o2, read_file=lambda _p: b'{"args": ["ls"], "cwd": "/"}')
    assert p2["capabilities"] == container["capabilities"]  # defaults to the container's
    o3 = ExecOptions()
    o3.args = ["x"]
    o3.user = "bob"
    with pytest.raises(Exception, match="only numeric"):
        build_process(container, o3)


def test_merge_resources_and_ids():
    cur = {"memory": {"limit": 1, "swap": 2}, "pids": {"limit": 5}}
    assert merge_resources(cur, {"memory": {"limit": 3}, "cpu": {"shares": 2}}) == {
        "memory": {"limit": 3, "swap": 2}, "pids": {"limit": 5}, "cpu": {"shares": 2}}
    assert cur["memory"]["limit"] == 1
    assert valid_id("abc-DEF_1.2+x") and not valid_id("a/b") and not valid_id("..") and not valid_id("")
    t = now_rfc3339()
    assert len(t) == 30 and t[10] == "T" and t.endswith("Z")
