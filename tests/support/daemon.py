"""A real Dockyard daemon for tests: `python -m dockyard.daemon` on a private data root, exec
root, socket, pidfile, cgroup parent, bridge name and nft table, stopped by PID and cleaned up.

    from support.daemon import TestDaemon, busybox_tar
    d = TestDaemon(tmp_root)            # paths under tmp_root; socket under a short /tmp dir
    d.import_image(busybox_tar(), "busybox:latest", changes=['CMD ["sh"]'])  # before start()
    d.start()                           # waits for /_ping
    status, body = d.api("GET", "/containers/json")
    d.docker_client()                   # docker-py client on the socket
    d.kill()                            # SIGKILL (live-restore tests), then d.start() again
    d.stop(); d.cleanup()               # SIGTERM, then kill leftovers, unmount, rmdir cgroups, rm -rf

The runtime is `dockyard-runc` unless DOCKYARD_TEST_RUNTIME names another (e.g. `runc`). Daemon
logs go to <root>/daemon.log (shown when start fails). With `loop_guard=True` (the default) the
daemon records blocking calls made on its event loop into <root>/loop-guard.log:
`d.loop_violations()` returns them.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SRC = os.path.join(REPO, "src")
PYTHON = os.path.join(REPO, ".venv", "bin", "python")
if not os.path.exists(PYTHON):
    PYTHON = sys.executable

_BUSYBOX_TAR: bytes | None = None


def busybox_tar() -> bytes:
    """A tar of the busybox rootfs (built once per process)."""
    global _BUSYBOX_TAR
    if _BUSYBOX_TAR is None:
        sys.path.insert(0, SRC)
        from dockyard.image import mkimage

        buf = io.BytesIO()
        mkimage.busybox_tar(buf)
        _BUSYBOX_TAR = buf.getvalue()
    return _BUSYBOX_TAR


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 60) -> None:
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.path)
        self.sock = s


def default_runtime() -> str:
    return os.environ.get("DOCKYARD_TEST_RUNTIME") or "dockyard-runc"


class TestDaemon:
    __test__ = False  # not a pytest class

    def __init__(self, root: str, runtime: str | None = None, args: list[str] | None = None,
                 config: dict[str, Any] | None = None, loop_guard: bool = True) -> None:  # fmt: skip
        self.root = root
        os.makedirs(root, exist_ok=True)
        self.prefix = "dyt" + secrets.token_hex(3)
        self.data_root = os.path.join(root, "data")
        self.exec_root = os.path.join(root, "exec")
        self.sockdir = tempfile.mkdtemp(prefix="dyt", dir="/tmp")  # unix socket paths must be short
        self.socket = os.path.join(self.sockdir, "d.sock")
        self.host = "unix://" + self.socket
        self.pidfile = os.path.join(root, "dockyard.pid")
        self.logfile = os.path.join(root, "daemon.log")
        self.guardfile = os.path.join(root, "loop-guard.log") if loop_guard else None
        self.config_file = os.path.join(root, "daemon.json")
        with open(self.config_file, "w") as f:
            json.dump(config or {}, f)
        self.runtime = runtime or default_runtime()
        self.cgroup_parent = self.prefix
        self.args = list(args or [])
        self.proc: subprocess.Popen[bytes] | None = None

    # --- images (offline, before the daemon starts) -----------------------------------------------
    def import_image(self, tar: bytes, repo_tag: str, changes: list[str] | None = None) -> str:
        assert self.proc is None or self.proc.poll() is not None, "import images before start()"
        code = (
            "import sys, io, json\n"
            f"sys.path.insert(0, {SRC!r})\n"
            "from dockyard.storage.layers import LayerStore\n"
            "from dockyard.image.service import ImageService\n"
            f"ls = LayerStore({self.data_root!r})\n"
            "svc = ImageService(ls.data_root, ls)\n"
            "data = sys.stdin.buffer.read()\n"
            f"print(svc.import_(io.BytesIO(data), {repo_tag!r}, changes={changes!r}))\n"
        )
        cp = subprocess.run([PYTHON, "-c", code], input=tar, capture_output=True, check=True)
        return cp.stdout.decode().strip()

    # --- process ----------------------------------------------------------------------------------
    def command(self) -> list[str]:
        return [
            PYTHON, "-m", "dockyard.daemon",
            "--data-root", self.data_root, "--exec-root", self.exec_root, "-H", self.host,
            "--pidfile", self.pidfile, "--config-file", self.config_file, "--runtime", self.runtime,
            "--cgroup-parent", self.cgroup_parent, "--bridge-name", self.prefix + "br0",
            "--nft-table", "dockyard_" + self.prefix, "--bridge-prefix", self.prefix + "-", "--log-level", "debug",
            *self.args,
        ]  # fmt: skip

    def start(self, timeout: float = 30) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
        if self.guardfile:
            env["DOCKYARD_LOOP_GUARD"] = self.guardfile
        log = open(self.logfile, "ab")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=log, env=env, start_new_session=True)
        log.close()
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                st, _ = self.api("GET", "/_ping", timeout=2)
                if st == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"daemon did not answer /_ping within {timeout}s:\n{self.log_tail()}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log_tail(self, n: int = 60) -> str:
        try:
            with open(self.logfile, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def stop(self, timeout: float = 60) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(10)

    def kill(self) -> None:
        """SIGKILL the daemon (its shims and containers live on)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def loop_violations(self) -> str:
        if not self.guardfile or not os.path.exists(self.guardfile):
            return ""
        with open(self.guardfile) as f:
            return f.read()

    # --- cleanup ----------------------------------------------------------------------------------
    def _our_pids(self) -> list[int]:
        pids = []
        for base in (os.path.join(self.exec_root, "containers"), os.path.join(self.exec_root, "exec")):
            for name in os.listdir(base) if os.path.isdir(base) else []:
                pf = os.path.join(base, name, "shim.pid")
                try:
                    with open(pf) as f:
                        pid = int(f.read().strip())
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        if self.exec_root.encode() in f.read():
                            pids.append(pid)
                except (OSError, ValueError):
                    continue
        return pids

    def cleanup(self) -> None:
        self.stop()
        # what a failed test may have left: runtime states, shims, mounts, cgroups, network bits
        rt_root = os.path.join(self.exec_root, "runtime")
        if os.path.isdir(rt_root):
            for cid in os.listdir(rt_root):
                subprocess.run([self.runtime, "--root", rt_root, "delete", "--force", cid], capture_output=True, timeout=30)
        for pid in self._our_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self._unmount_all()
        self._remove_cgroups()
        self._network_cleanup()
        shutil.rmtree(self.root, ignore_errors=True)
        shutil.rmtree(self.sockdir, ignore_errors=True)

    def _unmount_all(self) -> None:
        roots = (self.data_root, self.exec_root)
        for _ in range(3):
            targets = []
            with open("/proc/self/mountinfo") as f:
                for line in f:
                    mp = line.split()[4].encode().decode("unicode_escape")
                    if mp.startswith(roots):
                        targets.append(mp)
            if not targets:
                return
            for mp in sorted(targets, key=len, reverse=True):
                subprocess.run(["umount", "-l", mp], capture_output=True)

    def _remove_cgroups(self) -> None:
        for dirpath, dirnames, _ in os.walk("/sys/fs/cgroup"):
            depth = dirpath[len("/sys/fs/cgroup"):].count("/")
            if depth >= 6:
                dirnames[:] = []
                continue
            if self.prefix in dirnames:
                top = os.path.join(dirpath, self.prefix)
                for sub, _subdirs, _ in sorted(os.walk(top), key=lambda t: len(t[0]), reverse=True):
                    with contextlib.suppress(OSError):
                        os.rmdir(sub)
                dirnames.remove(self.prefix)

    def _network_cleanup(self) -> None:
        # the network layer's records know its veths, bridges and table (works after SIGKILL too)
        with contextlib.suppress(Exception):
            sys.path.insert(0, SRC)
            from dockyard.network import cleanup

            cleanup.purge(self.data_root, self.exec_root, {"nft-table": "dockyard_" + self.prefix})
        subprocess.run(["nft", "delete", "table", "inet", "dockyard_" + self.prefix], capture_output=True)
        subprocess.run(["nft", "delete", "table", "ip", "dockyard_" + self.prefix], capture_output=True)
        out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            name = line.split(":")[1].strip().split("@")[0]
            if name.startswith(self.prefix):
                subprocess.run(["ip", "link", "del", name], capture_output=True)

    # --- API --------------------------------------------------------------------------------------
    def api(self, method: str, path: str, body: Any = None, timeout: float = 60, headers: dict[str, str] | None = None,
            raw: bool = False) -> tuple[int, Any]:  # fmt: skip
        conn = UnixHTTPConnection(self.socket, timeout)
        try:
            hdrs = dict(headers or {})
            data = None
            if body is not None:
                if isinstance(body, bytes | bytearray):
                    data = bytes(body)
                    hdrs.setdefault("Content-Type", "application/x-tar")
                else:
                    data = json.dumps(body).encode()
                    hdrs.setdefault("Content-Type", "application/json")
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            payload = resp.read()
            if raw:
                return resp.status, (payload, dict(resp.getheaders()))
            if resp.getheader("Content-Type", "").startswith("application/json") and payload:
                try:
                    return resp.status, json.loads(payload)
                except ValueError:
                    lines = [json.loads(x) for x in payload.splitlines() if x.strip()]
                    return resp.status, lines
            return resp.status, payload
        finally:
            conn.close()

    def hijack(self, path: str, body: Any = None, upgrade: bool = True, timeout: float = 30) -> tuple[int, dict[str, str], socket.socket, bytes]:
        """POST `path` asking for a hijacked stream; returns (status, headers, socket, bytes already read)."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(self.socket)
        data = json.dumps(body).encode() if body is not None else b""
        req = f"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {len(data)}\r\n"
        if body is not None:
            req += "Content-Type: application/json\r\n"
        if upgrade:
            req += "Connection: Upgrade\r\nUpgrade: tcp\r\n"
        s.sendall(req.encode() + b"\r\n" + data)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        head, _, rest = buf.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        status = int(lines[0].split()[1])
        hdrs = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        return status, hdrs, s, rest

    def docker_client(self, version: str = "1.43") -> Any:
        import docker

        return docker.DockerClient(base_url=self.host, version=version, timeout=120)

    # --- convenience ------------------------------------------------------------------------------
    def run(self, cmd: list[str], image: str = "busybox", **config: Any) -> tuple[str, int, bytes]:
        """create + start + wait + logs; returns (id, exit code, combined output)."""
        body = {"Image": image, "Cmd": cmd, **config}
        st, r = self.api("POST", "/containers/create", body)
        assert st == 201, r
        cid = r["Id"]
        st, r = self.api("POST", f"/containers/{cid}/start")
        assert st == 204, r
        st, r = self.api("POST", f"/containers/{cid}/wait")
        assert st == 200, r
        code = r["StatusCode"]
        st, out = self.api("GET", f"/containers/{cid}/logs?stdout=1&stderr=1")
        return cid, code, demux(out)[0] if not config.get("Tty") else out


def demux(data: bytes) -> tuple[bytes, bytes, bytes]:
    """Docker's multiplexed stream -> (all, stdout, stderr)."""
    out, err, both = b"", b"", b""
    i = 0
    while i + 8 <= len(data):
        kind, n = data[i], int.from_bytes(data[i + 4 : i + 8], "big")
        chunk = data[i + 8 : i + 8 + n]
        both += chunk
        if kind == 1:
            out += chunk
        elif kind == 2:
            err += chunk
        i += 8 + n
    return both, out, err


def busybox_daemon(root: str, **kw: Any) -> TestDaemon:
    """A started daemon with `busybox:latest` (CMD ["sh"]) in its image store."""
    d = TestDaemon(root, **kw)
    try:
        d.import_image(busybox_tar(), "busybox:latest", changes=['CMD ["sh"]'])
        d.start()
    except BaseException:
        d.cleanup()
        raise
    return d
