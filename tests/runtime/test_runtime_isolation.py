"""What the container sees: namespaces, hostname, network, IPC, user mapping, capabilities, mount
propagation, masked and read-only paths, sysctl, rlimits, the process's user/cwd/env/umask,
devices, and that mounts cannot be redirected onto the host by symlinks in the image."""

from __future__ import annotations

import os
import secrets
import subprocess
import time

import pytest
from rtutil import RUNC, chown_tree, errmsg, userns, wait_for


def out_of(rt, args, mutate=None, **kw):
    b, cid = rt.bundle(args, mutate=mutate, **kw)
    r = rt.run(b, cid)
    assert r.returncode == 0, (r.returncode, r.stderr, r.stdout)
    return r.stdout


def test_pid_namespace_shows_only_the_container(rt):
    out = out_of(rt, ["ps", "-ef"])
    lines = out.strip().splitlines()
    assert lines[0].split()[0] == "PID"
    pids = [line.split()[0] for line in lines[1:]]
    assert pids[0] == "1" and lines[1].split()[-2:] == ["ps", "-ef"]
    assert len(pids) == 1  # none of the host's processes


def test_hostname_is_private(rt):
    host = os.uname().nodename

    def admin(c):
        for k in ("bounding", "effective", "permitted"):
            c["process"]["capabilities"][k].append("CAP_SYS_ADMIN")

    out = out_of(rt, ["sh", "-c", "hostname; hostname dyt-changed; hostname"], mutate=admin)
    assert out.split() == ["dyt-box", "dyt-changed"]
    assert os.uname().nodename == host
    out = out_of(rt, ["sh", "-c", "cat /proc/sys/kernel/domainname"], mutate=lambda c: c.update(domainname="dyt.example"))
    assert out.strip() == "dyt.example"


def test_every_requested_namespace_differs_from_the_hosts(rt):
    kinds = ["pid", "net", "ipc", "uts", "mnt", "cgroup"]

    def mutate(c):
        c["linux"]["namespaces"].append({"type": "cgroup"})

    out = out_of(rt, ["sh", "-c", "for n in " + " ".join(kinds) + "; do readlink /proc/self/ns/$n; done"], mutate=mutate)
    inside = out.split()
    host = [os.readlink(f"/proc/self/ns/{k}") for k in kinds]
    assert len(inside) == len(kinds)
    for k, a, b in zip(kinds, inside, host, strict=True):
        assert a.startswith(k + ":[") and a != b, k
    # and a namespace that was not asked for is shared (no user namespace here)
    out = out_of(rt, ["readlink", "/proc/self/ns/user"])
    assert out.strip() == os.readlink("/proc/self/ns/user")


def test_new_network_namespace_has_only_lo(rt):
    out = out_of(rt, ["cat", "/proc/net/dev"])
    names = [line.split(":")[0].strip() for line in out.splitlines()[2:]]
    assert names == ["lo"]


def test_sysv_message_queue_on_host_is_invisible(rt):
    r = subprocess.run(["ipcmk", "-Q", "-p", "0600"], capture_output=True, text=True, check=True)
    qid = r.stdout.strip().split()[-1]
    try:
        host = subprocess.run(["ipcs", "-q"], capture_output=True, text=True).stdout
        assert qid in host.split()
        with open("/proc/sysvipc/msg") as f:
            assert len(f.read().splitlines()) >= 2
        out = out_of(rt, ["cat", "/proc/sysvipc/msg"])
        assert len(out.splitlines()) == 1  # the header only: no queue in the container's IPC namespace
    finally:
        subprocess.run(["ipcrm", "-q", qid], check=False)


def test_user_namespace_mapping_and_unprivileged_root(public_rt):
    rt = public_rt
    shared = os.path.join(rt.tmp, "shared")
    os.makedirs(shared)
    os.chmod(shared, 0o777)  # writable by anyone: only the sticky-less file's owner matters
    with open(os.path.join(shared, "rootfile"), "w") as f:
        f.write("x")
    os.chmod(os.path.join(shared, "rootfile"), 0o644)

    def mutate(c):
        userns(c)
        c["mounts"].append({"destination": "/host", "type": "bind", "source": shared, "options": ["rbind", "rw"]})

    b, cid = rt.bundle(["sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map; id -u; "
                                    "echo data > /host/rootfile; echo rc=$?; ls -ln /host/rootfile"], mutate=mutate)
    chown_tree(os.path.join(b, "rootfs"), 165536)  # as Docker's userns-remap does with image layers
    r = rt.run(b, cid)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["0", "165536", "65536"]
    assert lines[1].split() == ["0", "165536", "65536"]
    assert lines[2] == "0"
    assert "Permission denied" in r.stderr
    assert "rc=1" in r.stdout
    # the host's root owns the file: unmapped inside, so it shows as the overflow id
    assert lines[-1].split()[2] == "65534"
    with open(os.path.join(shared, "rootfile")) as f:
        assert f.read() == "x"
    # and root in the container cannot remove it either (the directory is the host root's, 0755)
    os.chmod(shared, 0o755)
    b, cid = rt.bundle(["rm", "-f", "/host/rootfile"], mutate=mutate)
    chown_tree(os.path.join(b, "rootfs"), 165536)
    r = rt.run(b, cid)
    assert r.returncode != 0 and "Permission denied" in r.stderr
    assert os.path.exists(os.path.join(shared, "rootfile"))


def test_docker_default_capabilities(rt):
    out = out_of(rt, ["grep", "Cap", "/proc/self/status"])
    caps = dict(line.split(":\t") for line in out.strip().splitlines())
    assert caps["CapEff"] == "00000000a80425fb"
    assert caps["CapPrm"] == "00000000a80425fb"
    assert caps["CapBnd"] == "00000000a80425fb"
    assert caps["CapInh"] == "0000000000000000"


def test_net_raw_decides_raw_sockets(rt):
    ping = ["ping", "-c", "1", "-W", "1", "127.0.0.1"]
    b, cid = rt.bundle(ping)
    r = rt.run(b, cid)
    assert "permission denied" not in r.stderr and "Network is unreachable" in r.stderr  # lo is down: socket made

    def drop(c):
        for k in ("bounding", "effective", "permitted"):
            c["process"]["capabilities"][k].remove("CAP_NET_RAW")

    b, cid = rt.bundle(ping, mutate=drop)
    r = rt.run(b, cid)
    assert r.returncode != 0 and "permission denied" in r.stderr


def test_no_new_privileges_and_oom_score_adj(rt):
    out = out_of(rt, ["sh", "-c", "grep NoNewPrivs /proc/self/status; cat /proc/self/oom_score_adj"],
                 mutate=lambda c: c["process"].update(oomScoreAdj=123))
    assert out.split() == ["NoNewPrivs:", "1", "123"]
    out = out_of(rt, ["grep", "NoNewPrivs", "/proc/self/status"], mutate=lambda c: c["process"].update(noNewPrivileges=False))
    assert out.split() == ["NoNewPrivs:", "0"]


def test_user_groups_cwd_env_umask(rt):
    def mutate(c):
        c["process"]["user"] = {"uid": 1000, "gid": 1001, "additionalGids": [10, 20], "umask": 0o077}
        c["process"]["cwd"] = "/tmp/work"
        c["process"]["env"].append("GREETING=hello world")

    out = out_of(rt, ["sh", "-c", "id -u; id -g; id -G; pwd; echo $GREETING; umask; grep -E 'CapEff|CapBnd' /proc/self/status"],
                 mutate=mutate)
    lines = out.splitlines()
    assert lines[0] == "1000" and lines[1] == "1001"
    assert sorted(lines[2].split()) == ["10", "1001", "20"]
    assert lines[3] == "/tmp/work"
    assert lines[4] == "hello world"
    assert lines[5] == "0077"
    # as with Docker: a non-root user keeps the bounding set, and execve clears its effective set
    assert lines[6].split() == ["CapEff:", "0000000000000000"]
    assert lines[7].split() == ["CapBnd:", "00000000a80425fb"]


def test_masked_and_readonly_paths(rt):
    script = ("cat /proc/timer_list | wc -c; ls /sys/firmware | wc -l; "
              "echo 1 > /proc/sys/kernel/printk 2>/dev/null && echo writable || echo readonly; "
              "touch /sys/fs/cgroup/x 2>/dev/null && echo cg-writable || echo cg-readonly")
    out = out_of(rt, ["sh", "-c", script])
    assert out.split() == ["0", "0", "readonly", "cg-readonly"]
    # the read-only binds keep the flags of the proc mount under them, as runc's do (Docker's
    # spec mounts /proc nosuid,noexec,nodev)
    def docker_proc(c):
        for m in c["mounts"]:
            if m["destination"] == "/proc":
                m["options"] = ["nosuid", "noexec", "nodev"]

    info = out_of(rt, ["cat", "/proc/self/mountinfo"], mutate=docker_proc)
    opts = {f[4]: set(f[5].split(",")) for f in (line.split() for line in info.splitlines())}
    for path in ("/proc/sys", "/proc/bus", "/proc/irq", "/proc/fs"):
        assert {"ro", "nosuid", "nodev", "noexec"} <= opts[path], (path, opts[path])


def test_readonly_root(rt):
    b, cid = rt.bundle(["sh", "-c", "touch /newfile"], mutate=lambda c: c["root"].update(readonly=True))
    r = rt.run(b, cid)
    assert r.returncode != 0 and "Read-only file system" in r.stderr


def test_sysctl_in_the_containers_namespaces(rt):
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        host = f.read()
    out = out_of(rt, ["cat", "/proc/sys/net/ipv4/ip_forward", "/proc/sys/kernel/msgmax"],
                 mutate=lambda c: c["linux"].update(sysctl={"net.ipv4.ip_forward": "1" if host.strip() == "0" else "0",
                                                            "kernel.msgmax": "4321"}))
    assert out.split() == ["1" if host.strip() == "0" else "0", "4321"]
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        assert f.read() == host
    b, cid = rt.bundle(["true"], mutate=lambda c: c["linux"].update(sysctl={"kernel.pid_max": "1000"}))
    r = rt.run(b, cid)
    assert r.returncode == 1 and errmsg(r.stderr) == "sysctl 'kernel.pid_max' is not in a separate kernel namespace"


def test_rlimits(rt):
    out = out_of(rt, ["sh", "-c", "ulimit -n; ulimit -Hn"],
                 mutate=lambda c: c["process"].update(rlimits=[{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 1024}]))
    assert out.split() == ["512", "1024"]
    hard = int(subprocess.run(["sh", "-c", "ulimit -Hn"], capture_output=True, text=True).stdout)
    b, cid = rt.bundle(["true"], mutate=lambda c: c["process"].update(
        rlimits=[{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": hard + 1000}]))
    r = rt.run(b, cid)
    assert r.returncode == 1
    assert "RLIMIT_NOFILE" in r.stderr and "CAP_SYS_RESOURCE" in r.stderr
    # limits not asked for are inherited unchanged, never raised
    out = out_of(rt, ["sh", "-c", "ulimit -Hn"])
    assert int(out) == hard


def test_mount_propagation_rslave_and_rprivate(rt, tmp_path):
    slave_src = tmp_path / "slave-src"
    private_src = tmp_path / "private-src"
    mounted: list[str] = []
    try:
        for d in (slave_src, private_src):
            d.mkdir()
            subprocess.run(["mount", "-t", "tmpfs", "dyt-prop", str(d)], check=True)
            mounted.append(str(d))
            subprocess.run(["mount", "--make-shared", str(d)], check=True)
            (d / "sub").mkdir()

        def mutate(c):
            c["mounts"].append({"destination": "/mnt/slave", "type": "bind", "source": str(slave_src), "options": ["rbind", "rslave"]})
            c["mounts"].append({"destination": "/mnt/private", "type": "bind", "source": str(private_src), "options": ["rbind", "rprivate"]})

        script = ("while [ ! -e /mnt/slave/sub/flag ]; do sleep 0.05; done; echo slave-sees-it; "
                  "ls /mnt/private/sub | wc -l")
        b, cid = rt.bundle(["sh", "-c", script], mutate=mutate)
        rt.ids.append(cid)
        p = subprocess.Popen([RUNC, "--root", rt.root, "run", "--bundle", b, cid], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        try:
            wait_for(lambda: os.path.exists(os.path.join(rt.root, cid)) and rt.status(cid) == "running")
            for d in (slave_src, private_src):
                subprocess.run(["mount", "-t", "tmpfs", "dyt-prop-sub", str(d / "sub")], check=True)
                mounted.append(str(d / "sub"))
                (d / "sub" / "flag").write_text("1")
            out, err = p.communicate(timeout=20)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        assert p.returncode == 0, err
        assert out.split() == ["slave-sees-it", "0"]
    finally:
        for m in reversed(mounted):
            subprocess.run(["umount", "-l", m], check=False)


def test_symlinks_in_the_image_cannot_redirect_mounts_to_the_host(rt, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "payload").write_text("p\n")
    marker = f"dyt-escape-{secrets.token_hex(4)}"

    def mutate(c):
        c["mounts"].append({"destination": f"/escape/{marker}", "type": "bind", "source": str(src), "options": ["rbind"]})
        c["mounts"].append({"destination": f"/up/../../../{marker}-2", "type": "tmpfs", "source": "tmpfs"})

    b, cid = rt.bundle(["sh", "-c", f"cat /{marker}/payload; ls -d /{marker}-2"], mutate=mutate)
    os.symlink("/", os.path.join(b, "rootfs", "escape"))  # absolute symlink to "/" in the image
    r = rt.run(b, cid)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["p", f"/{marker}-2"]
    assert not os.path.exists(f"/{marker}") and not os.path.exists(f"/{marker}-2")
    assert os.path.isdir(os.path.join(b, "rootfs", marker))  # the mount point was made inside the rootfs


def test_devices_cgroup_and_extra_devices(rt):
    def mutate(c):
        c["linux"]["devices"] = [{"path": "/dev/dyt-null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o666}]
        c["process"]["capabilities"]["bounding"].append("CAP_SYS_ADMIN")

    script = ("echo hi > /dev/dyt-null && echo extra-ok; "
              "mknod /tmp/mem c 1 1 && echo mknod-ok; "
              "head -c 1 /tmp/mem >/dev/null 2>&1 && echo mem-readable || echo mem-denied; "
              "echo x > /dev/null && echo null-ok")
    out = out_of(rt, ["sh", "-c", script], mutate=mutate)
    assert out.split() == ["extra-ok", "mknod-ok", "mem-denied", "null-ok"]


def test_cgroup_mount_shows_the_containers_own_cgroup(rt):
    def mutate(c):
        c["linux"]["resources"]["memory"] = {"limit": 64 << 20}

    out = out_of(rt, ["sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes; ls /sys/fs/cgroup"], mutate=mutate)
    lines = out.split()
    assert lines[0] == str(64 << 20)
    assert {"cpu", "cpuacct", "memory", "pids", "devices", "freezer"} <= set(lines[1:])


def test_time_namespace_offsets(rt):
    if not os.path.exists("/proc/self/ns/time"):
        pytest.skip("no time namespaces in this kernel")

    def mutate(c):
        c["linux"]["namespaces"].append({"type": "time"})
        c["linux"]["timeOffsets"] = {"boottime": {"secs": 86400 * 100, "nanosecs": 0}}

    out = out_of(rt, ["cat", "/proc/uptime"], mutate=mutate)
    with open("/proc/uptime") as f:
        host = float(f.read().split()[0])
    assert float(out.split()[0]) >= host + 86400 * 100 - 5


def test_joining_a_network_namespace_by_path(rt):
    name = "dyt-ns-" + secrets.token_hex(3)
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        path = f"/var/run/netns/{name}"

        def mutate(c):
            for ns in c["linux"]["namespaces"]:
                if ns["type"] == "network":
                    ns["path"] = path

        out = out_of(rt, ["sh", "-c", "readlink /proc/self/ns/net; cat /sys/class/net/lo/operstate"], mutate=mutate)
        want = subprocess.run(["ip", "netns", "exec", name, "readlink", "/proc/self/ns/net"], capture_output=True,
                              text=True, check=True).stdout.strip()
        assert out.split() == [want, "unknown"]  # lo is up there (operstate "unknown" for lo)
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def test_no_pivot_and_preserved_fds(rt, tmp_path):
    b, cid = rt.bundle(["sh", "-c", "echo through-fd3 >&3; ls /proc/self/fd"])
    out = tmp_path / "fd3"
    rt.ids.append(cid)
    r = subprocess.run(["sh", "-c", 'exec "$0" --root "$1" run --no-pivot --preserve-fds 1 --bundle "$2" "$3" 3>"$4" 4>/dev/null',
                        RUNC, rt.root, b, cid, str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert out.read_text() == "through-fd3\n"
    fds = r.stdout.split()
    assert "3" in fds and "4" in fds and "5" not in fds  # 4 is ls's own directory fd; the caller's fd 4 is not passed


def test_personality_lsm_labels_and_features(rt):
    out = out_of(rt, ["uname", "-m"], mutate=lambda c: c["linux"].update(personality={"domain": "LINUX32"}))
    assert out.strip() in ("i686", "i386", "armv8l", "armv7l")
    b, cid = rt.bundle(["true"], mutate=lambda c: c["process"].update(apparmorProfile="dyt-profile"))
    r = rt.run(b, cid)
    if not os.path.exists("/sys/module/apparmor/parameters/enabled"):
        assert r.returncode == 1 and "AppArmor is not enabled on this host" in errmsg(r.stderr)
    b, cid = rt.bundle(["true"], mutate=lambda c: c["process"].update(selinuxLabel="system_u:system_r:container_t:s0"))
    r = rt.run(b, cid)
    if not os.path.isdir("/sys/fs/selinux"):
        assert r.returncode == 1 and "selinux is disabled" in errmsg(r.stderr)
    import json

    f = json.loads(subprocess.run([RUNC, "features"], capture_output=True, text=True, check=True).stdout)
    assert f["ociVersionMax"] == "1.0.2" and "user" in f["linux"]["namespaces"]
    assert f["linux"]["cgroup"]["v1"] is True and "SCMP_ACT_ERRNO" in f["linux"]["seccomp"]["actions"]


def test_ambient_capabilities_for_a_non_root_user(rt):
    def mutate(c):
        c["process"]["user"] = {"uid": 1000, "gid": 1000}
        caps = c["process"]["capabilities"]
        caps["inheritable"] = ["CAP_NET_BIND_SERVICE"]
        caps["ambient"] = ["CAP_NET_BIND_SERVICE"]

    out = out_of(rt, ["grep", "-E", "CapEff|CapAmb", "/proc/self/status"], mutate=mutate)
    assert out.split() == ["CapEff:", f"{1 << 10:016x}", "CapAmb:", f"{1 << 10:016x}"]


def test_bind_mount_options_and_rootfs_propagation(rt, tmp_path):
    src = tmp_path / "ro-src"
    src.mkdir()
    (src / "f").write_text("data\n")
    (src / "tool").write_text("#!/bin/sh\necho ran\n")
    (src / "tool").chmod(0o755)

    def mutate(c):
        c["mounts"].append({"destination": "/ro", "type": "bind", "source": str(src),
                            "options": ["rbind", "ro", "nosuid", "nodev", "noexec"]})
        c["mounts"].append({"destination": "/rw", "type": "bind", "source": str(src), "options": ["bind"]})
        c["linux"]["rootfsPropagation"] = "rshared"

    script = ("cat /ro/f; echo x > /ro/g 2>/dev/null || echo ro-refused; /ro/tool 2>/dev/null || echo noexec-refused; "
              "/rw/tool; grep -E ' /ro | / ' /proc/self/mountinfo")
    out = out_of(rt, ["sh", "-c", script], mutate=mutate)
    lines = out.splitlines()
    assert lines[:4] == ["data", "ro-refused", "noexec-refused", "ran"]
    ro_line = next(line for line in lines[4:] if " /ro " in line)
    assert all(o in ro_line.split()[5].split(",") for o in ("ro", "nosuid", "nodev", "noexec"))
    root_line = next(line for line in lines[4:] if line.split()[4] == "/")
    assert "shared:" in root_line  # rootfsPropagation applied to the container's /
    assert not (src / "g").exists()


def test_orphans_are_reaped_by_run_in_a_shared_pid_namespace(rt):
    def mutate(c):
        c["linux"]["namespaces"] = [ns for ns in c["linux"]["namespaces"] if ns["type"] != "pid"]

    b, cid = rt.bundle(["sh", "-c", "(sleep 0.2 &); sleep 1; echo done"], mutate=mutate)
    rt.ids.append(cid)
    p = subprocess.Popen([RUNC, "--root", rt.root, "run", "--bundle", b, cid], stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(0.7)  # the orphaned `sleep 0.2` was adopted by `run` (a subreaper) and has exited
        children = subprocess.run(["ps", "-o", "pid=,stat=,args=", "--ppid", str(p.pid)], capture_output=True,
                                  text=True).stdout.splitlines()
        assert not [c for c in children if c.split()[1].startswith("Z")], children
        out, _ = p.communicate(timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0 and out == "done\n"
