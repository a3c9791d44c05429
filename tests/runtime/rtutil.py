"""Helpers for driving `dockyard-runc` in tests (see conftest.py)."""

from __future__ import annotations

import copy
import json
import os
import secrets
import shutil
import subprocess
import time

RUNC = shutil.which("dockyard-runc") or "/usr/local/bin/dockyard-runc"

DOCKER_CAPS = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
    "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",
    "CAP_AUDIT_WRITE",
]


def base_config(args: list[str]) -> dict:
    """runc's default spec, without a terminal, with Docker's 14 capabilities."""
    caps = list(DOCKER_CAPS)
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {k: list(caps) for k in ("bounding", "effective", "permitted")},
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": False},
        "hostname": "dyt-box",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
        ],
        "linux": {
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                            "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
        },
    }


def new_id() -> str:
    return "dyt-" + secrets.token_hex(5)


class RT:
    """A private runtime root plus bundles; `cleanup` force-deletes what is left."""

    def __init__(self, tmp: str, busybox_rootfs: str) -> None:
        self.tmp = tmp
        self.root = os.path.join(tmp, "runc-root")
        self.busybox = busybox_rootfs
        self.ids: list[str] = []
        self._n = 0

    # --- bundles ---------------------------------------------------------------------------------
    def bundle(self, args: list[str] | None = None, config: dict | None = None, mutate=None,
               copy_rootfs: bool = True, cid: str | None = None) -> tuple[str, str]:
        """Write a bundle; returns (bundle dir, container id). The cgroup is `dyt-<id>`."""
        self._n += 1
        cid = cid or new_id()
        b = os.path.join(self.tmp, f"bundle{self._n}")
        os.makedirs(b)
        cfg = copy.deepcopy(config) if config is not None else base_config(args or ["true"])
        if copy_rootfs:
            shutil.copytree(self.busybox, os.path.join(b, "rootfs"), symlinks=True)
        else:
            cfg["root"] = {"path": self.busybox, "readonly": True}
        cfg.setdefault("linux", {}).setdefault("cgroupsPath", cid)
        if mutate:
            mutate(cfg)
        with open(os.path.join(b, "config.json"), "w") as f:
            json.dump(cfg, f, indent=1)
        return b, cid

    # --- running the runtime ---------------------------------------------------------------------
    def cmd(self, *args: str, check: bool = True, timeout: float = 60, **kw) -> subprocess.CompletedProcess:
        kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        r = subprocess.run([RUNC, "--root", self.root, *args], timeout=timeout, **kw)
        if check and r.returncode != 0:
            raise AssertionError(f"dockyard-runc {' '.join(args)} failed ({r.returncode}): {r.stderr}{r.stdout}")
        return r

    def run(self, bundle: str, cid: str, *extra: str, check: bool = False, **kw) -> subprocess.CompletedProcess:
        self.ids.append(cid)
        return self.cmd("run", "--bundle", bundle, *extra, cid, check=check, **kw)

    def create(self, bundle: str, cid: str, *extra: str, check: bool = True, out: str | None = None,
               **kw) -> subprocess.CompletedProcess:
        """`create`; the container's stdout and stderr go to the file `out` (default: a file in
        the bundle, `container.out`): the init inherits create's stdio, so no pipe may be used."""
        self.ids.append(cid)
        out = out or os.path.join(bundle, "container.out")
        with open(out, "ab") as f:
            r = subprocess.run([RUNC, "--root", self.root, "create", "--bundle", bundle, *extra, cid],
                               stdin=kw.pop("stdin", subprocess.DEVNULL), stdout=f, stderr=f, timeout=60, **kw)
        with open(out) as f:
            text = f.read()
        r = subprocess.CompletedProcess(r.args, r.returncode, "", text)
        if check and r.returncode != 0:
            raise AssertionError(f"dockyard-runc create failed ({r.returncode}): {text}")
        return r

    def state(self, cid: str) -> dict:
        return json.loads(self.cmd("state", cid).stdout)

    def status(self, cid: str) -> str:
        """The container's status; "absent" when it does not exist (yet)."""
        r = self.cmd("state", cid, check=False)
        if r.returncode != 0:
            if "container does not exist" in r.stderr:
                return "absent"
            raise AssertionError(f"dockyard-runc state {cid} failed: {r.stderr}")
        return json.loads(r.stdout)["status"]

    def wait_status(self, cid: str, want: str, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.status(cid) == want:
                return
            time.sleep(0.02)
        raise AssertionError(f"{cid} did not become {want} (now {self.status(cid)})")

    def cleanup(self) -> None:
        for cid in self.ids:
            if os.path.exists(os.path.join(self.root, cid)):
                self.cmd("delete", "--force", cid, check=False)


def cgroup_dirs(name: str) -> list[str]:
    """Every directory called `name` in any cgroup hierarchy (depth-limited walk)."""
    out = []
    for dirpath, dirnames, _ in os.walk("/sys/fs/cgroup"):
        if dirpath.count("/") > 9:
            dirnames[:] = []
            continue
        if name in dirnames:
            out.append(os.path.join(dirpath, name))
    return out


def own_cgroup_dir(controller: str) -> str:
    """This process's cgroup directory for a v1 controller."""
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, ctrls, path = line.strip().split(":", 2)
            if controller in ctrls.split(","):
                return f"/sys/fs/cgroup/{controller}{path if path != '/' else ''}"
    raise LookupError(controller)


def errmsg(stderr: str) -> str:
    """The msg="..." of the runtime's last logfmt error line, unescaped."""
    for line in reversed(stderr.strip().splitlines()):
        i = line.find('msg="')
        if i < 0:
            continue
        out = []
        s = line[i + 5:]
        j = 0
        while j < len(s):
            c = s[j]
            if c == "\\" and j + 1 < len(s):
                out.append({"n": "\n"}.get(s[j + 1], s[j + 1]))
                j += 2
                continue
            if c == '"':
                break
            out.append(c)
            j += 1
        return "".join(out)
    return stderr


def read(path: str) -> str:
    with open(path) as f:
        return f.read()


def proc_state(pid: int) -> str:
    """The state letter of /proc/<pid>/stat, "gone" if there is no such process."""
    try:
        return read(f"/proc/{pid}/stat").rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return "gone"


def wait_for(pred, timeout: float = 10, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    return pred()


def chown_tree(path: str, uid: int) -> None:
    """Give a rootfs to a user namespace's root, as Docker's userns-remap does with layers."""
    for dirpath, dirnames, filenames in os.walk(path):
        for n in [*dirnames, *filenames]:
            os.lchown(os.path.join(dirpath, n), uid, uid)
    os.lchown(path, uid, uid)


def userns(c: dict, size: int = 65536) -> None:
    """Mutator: a new user namespace mapping 0..size-1 to 165536..."""
    c["linux"]["namespaces"].append({"type": "user"})
    c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 165536, "size": size}]
    c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 165536, "size": size}]
