"""Published ports vs direct access, and network set-up cost: Dockyard vs podman vs docker.

Each engine runs inside its OWN fresh network namespace (the "engine host"), so its bridge,
veths and firewall rules live and die there and nothing touches the machine's own network. A
second namespace (the "client host", 198.18.N.2) is wired to it with a veth (198.18.N.1 on the
engine side) and plays another machine. In each engine one busybox httpd container serves
/www (index.html and a 256 MB file) with port 80 published on a host port. Dockyard is the real
daemon (tests/support/daemon.py's fixture, dockyard-runc) started inside its namespace.

Measured in rounds, engines interleaved (A B C A B C ...), published and direct paired in each:
  - connection rate: `ab -n N -c 4` without keep-alive (one TCP connection per request), req/s;
  - throughput: one `curl` of the 256 MB file, MB/s;
from the engine host's 127.0.0.1 and from the client namespace (through 198.18.N.1), against
the same container's IP directly. Medians, the published/direct ratio and Dockyard's ratio to
podman and docker are printed. Set-up cost: NetworkService.setup() + teardown() of a
default-bridge container with one published port (median of 30: what the daemon's prepare() and
release() pay), and for every engine `run --rm ... true` with --network none vs bridge (paired,
the difference is what bridge networking adds to `run`).

    .venv/bin/python bench/net.py [--rounds 3] [--requests 3000] [--engines dockyard,podman,docker]
                                  [--no-setup-compare]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "src"))

from dockyard.image.busybox_rootfs import build_busybox_rootfs  # noqa: E402
from dockyard.network import links, netns  # noqa: E402

BIG_MB = 256
PODMAN_ULIMITS = ["--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768"]


def run(argv: list[str], ns: str | None = None, check: bool = True, timeout: float = 300, **kw) -> subprocess.CompletedProcess:
    if ns:
        argv = ["nsenter", f"--net={ns}", *argv]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {r.stderr.strip() or r.stdout.strip()}")
    return r


# --- topology ---------------------------------------------------------------------------------
class Hosts:
    """Engine namespace + client namespace joined by a veth (198.18.n.1 <-> 198.18.n.2)."""

    def __init__(self, root: str, n: int) -> None:
        self.engine = os.path.join(root, f"engine{n}.ns")
        self.client = os.path.join(root, f"client{n}.ns")
        self.engine_ip, self.client_ip = f"198.18.{n}.1", f"198.18.{n}.2"
        netns.create(self.engine)
        netns.create(self.client)
        fd = os.open(self.client, os.O_RDONLY)
        try:
            with links.in_netns(self.engine) as ipr:
                ipr.link("add", ifname="toclient", kind="veth", peer={"ifname": "eth0", "net_ns_fd": fd})
                i = links.index_of(ipr, "toclient")
                ipr.addr("add", index=i, address=self.engine_ip, prefixlen=24)
                ipr.link("set", index=i, state="up")
                ipr.link("set", index=links.index_of(ipr, "lo"), state="up")
        finally:
            os.close(fd)
        with links.in_netns(self.client) as ipr:
            i = links.index_of(ipr, "eth0")
            ipr.addr("add", index=i, address=self.client_ip, prefixlen=24)
            ipr.link("set", index=i, state="up")
            ipr.link("set", index=links.index_of(ipr, "lo"), state="up")
            ipr.route("add", dst="0.0.0.0/0", gateway=self.engine_ip)
        run(["sysctl", "-qw", "net.ipv4.ip_forward=1"], ns=self.engine)

    def close(self) -> None:
        netns.remove(self.engine)
        netns.remove(self.client)


# --- measurement ------------------------------------------------------------------------------
def ab_rate(url: str, ns: str, n: int) -> float:
    r = run(["ab", "-q", "-r", "-n", str(n), "-c", "4", url], ns=ns, check=False, timeout=120)
    for line in r.stdout.splitlines():
        if line.startswith("Requests per second:"):
            return float(line.split()[3])
    raise RuntimeError(f"ab {url} failed: {r.stderr.strip()[-300:]} {r.stdout[-300:]}")


def curl_mbps(url: str, ns: str) -> float:
    r = run(["curl", "-s", "--noproxy", "*", "-o", "/dev/null", "-w", "%{speed_download}", url], ns=ns, timeout=120)
    return float(r.stdout) / 1e6


def paths(hosts: Hosts, cip: str, port: int) -> dict[str, tuple[str, str, str]]:
    return {
        "localhost": (hosts.engine, f"http://127.0.0.1:{port}", f"http://{cip}:80"),
        "other netns": (hosts.client, f"http://{hosts.engine_ip}:{port}", f"http://{cip}:80"),
    }


def warm_up(hosts: Hosts, cip: str, port: int) -> None:
    """ARP, conntrack, the page cache of the big file."""
    for ns, pub, direct in paths(hosts, cip, port).values():
        curl_mbps(pub + "/big", ns)
        curl_mbps(direct + "/big", ns)


def one_round(hosts: Hosts, cip: str, port: int, n: int, out: dict[str, list[float]]) -> None:
    """Published then direct, for each client place and metric."""
    for where, (ns, pub, direct) in paths(hosts, cip, port).items():
        out.setdefault(f"{where} conn/s published", []).append(ab_rate(pub + "/", ns, n))
        out.setdefault(f"{where} conn/s direct", []).append(ab_rate(direct + "/", ns, n))
        out.setdefault(f"{where} MB/s published", []).append(curl_mbps(pub + "/big", ns))
        out.setdefault(f"{where} MB/s direct", []).append(curl_mbps(direct + "/big", ns))


# --- engines ------------------------------------------------------------------------------------
class Dockyard:
    """The Dockyard daemon (tests/support/daemon.py's TestDaemon) started inside the engine
    namespace; a real busybox container (dockyard-runc) serves /www."""

    name = "dockyard"

    def __init__(self, root: str, hosts: Hosts, tar: str) -> None:
        sys.path.insert(0, os.path.join(HERE, "..", "tests"))
        from support.daemon import TestDaemon

        ns = hosts.engine

        class InNamespace(TestDaemon):
            def command(self) -> list[str]:
                return ["nsenter", f"--net={ns}", *super().command()]

        self.d = InNamespace(root, loop_guard=False)
        with open(tar, "rb") as f:
            self.d.import_image(f.read(), "dybench:latest")
        self.d.start()
        self.cli = ["dockyard", "-H", self.d.host]
        cid = run([*self.cli, "run", "-d", "-p", "18082:80", "dybench:latest", "httpd", "-f", "-p", "80", "-h", "/www"]).stdout.strip()
        self.ip = run([*self.cli, "inspect", "-f", "{{.NetworkSettings.IPAddress}}", cid]).stdout.strip()
        self.port = 18082
        time.sleep(0.5)

    def run_cost(self, network: str) -> float:
        t = time.perf_counter()
        run([*self.cli, "run", "--rm", "--network", network, "dybench:latest", "true"])
        return (time.perf_counter() - t) * 1000

    def close(self) -> None:
        self.d.cleanup()


def setup_cost_ms(root: str, hosts: Hosts) -> tuple[float, float]:
    """NetworkService.setup()/teardown() of a default-bridge container with a published port
    (what the daemon's prepare()/release() pay), median of 30, inside the engine namespace."""
    out = run(["nsenter", f"--net={hosts.engine}", sys.executable, os.path.abspath(__file__), "--time-setup", root], timeout=300)
    setup, teardown = json.loads(out.stdout.splitlines()[-1])
    return setup, teardown


def time_setup(root: str) -> None:
    from dockyard.network.config import ContainerNetConfig
    from dockyard.network.service import NetworkService

    async def main() -> None:
        opts = {"bridge-name": "dybench0", "nft-table": "dockyard_bench", "default-address-pools": [{"base": "10.77.0.0/16", "size": 24}]}
        svc = NetworkService(os.path.join(root, "data"), os.path.join(root, "exec"), opts)
        await svc.start()
        try:
            setup, teardown = [], []
            for i in range(30):
                cfg = ContainerNetConfig(id=f"{i:064x}", name=f"t{i}", port_bindings={"80/tcp": [{"HostPort": ""}]}, exposed_ports={"80/tcp": {}})
                t = time.perf_counter()
                await svc.setup(cfg)
                setup.append((time.perf_counter() - t) * 1000)
                t = time.perf_counter()
                await svc.unregister(cfg.id)
                teardown.append((time.perf_counter() - t) * 1000)
            print(json.dumps([statistics.median(setup), statistics.median(teardown)]), flush=True)
        finally:
            await svc.destroy()

    asyncio.run(main())


class Podman:
    name = "podman"

    def __init__(self, root: str, hosts: Hosts, tar: str) -> None:
        self.ns = hosts.engine
        self.base = [
            "podman", "--root", os.path.join(root, "root"), "--runroot", os.path.join(root, "run"),
            "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs", "--events-backend", "none",
            "--tmpdir", os.path.join(root, "tmp"), "--runtime", "runc",
            "--network-config-dir", os.path.join(root, "cni"),
        ]  # fmt: skip
        os.makedirs(os.path.join(root, "cni"), exist_ok=True)
        run([*self.base, "import", tar, "localhost/dybench:latest"], ns=self.ns)
        cid = run([*self.base, "run", "-d", *PODMAN_ULIMITS, "-p", "18080:80", "localhost/dybench:latest",
                   "httpd", "-f", "-p", "80", "-h", "/www"], ns=self.ns).stdout.strip()  # fmt: skip
        self.cid = cid
        self.ip = run([*self.base, "inspect", "-f", "{{.NetworkSettings.IPAddress}}", cid], ns=self.ns).stdout.strip()
        self.port = 18080
        time.sleep(0.5)

    def run_cost(self, network: str) -> float:
        t = time.perf_counter()
        run([*self.base, "run", "--rm", *PODMAN_ULIMITS, "--network", network, "localhost/dybench:latest", "true"], ns=self.ns)
        return (time.perf_counter() - t) * 1000

    def close(self) -> None:
        run([*self.base, "rm", "-f", "-a"], ns=self.ns, check=False)
        run([*self.base, "rmi", "-a", "-f"], ns=self.ns, check=False)


class Docker:
    name = "docker"

    def __init__(self, root: str, hosts: Hosts, tar: str) -> None:
        self.ns = hosts.engine
        self.root = root
        self.sock = os.path.join(root, "docker.sock")
        self.pidfile = os.path.join(root, "docker.pid")
        self.log = open(os.path.join(root, "dockerd.log"), "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            ["nsenter", f"--net={self.ns}", "dockerd", "--data-root", os.path.join(root, "data"), "--exec-root", os.path.join(root, "exec"),
             "-H", f"unix://{self.sock}", "--pidfile", self.pidfile, "--storage-driver", "vfs", "--bip", "10.78.0.1/24",
             "--log-level", "error", "--cgroup-parent", "dybench-docker", "--config-file", os.path.join(root, "daemon.json")],
            stdout=self.log, stderr=self.log,
        )  # fmt: skip
        with open(os.path.join(root, "daemon.json"), "w") as f:
            f.write("{}")
        self.cli = ["docker", "-H", f"unix://{self.sock}"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if run([*self.cli, "version"], check=False).returncode == 0:
                break
            if self.proc.poll() is not None:
                raise RuntimeError("dockerd exited; see " + self.log.name)
            time.sleep(0.5)
        else:
            raise RuntimeError("dockerd did not answer")
        run([*self.cli, "import", tar, "dybench:latest"])
        self.cid = run([*self.cli, "run", "-d", "-p", "18081:80", "dybench:latest", "httpd", "-f", "-p", "80", "-h", "/www"]).stdout.strip()
        self.ip = run([*self.cli, "inspect", "-f", "{{.NetworkSettings.IPAddress}}", self.cid]).stdout.strip()
        self.port = 18081
        time.sleep(0.5)

    def run_cost(self, network: str) -> float:
        t = time.perf_counter()
        run([*self.cli, "run", "--rm", "--network", network, "dybench:latest", "true"])
        return (time.perf_counter() - t) * 1000

    def close(self) -> None:
        with contextlib.suppress(Exception):
            run([*self.cli, "rm", "-f", self.cid], check=False)
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


# --- main ---------------------------------------------------------------------------------------
def make_image(root: str) -> tuple[str, str]:
    rootfs = build_busybox_rootfs(os.path.join(root, "rootfs"))
    www = os.path.join(rootfs, "www")
    os.makedirs(www, exist_ok=True)
    with open(os.path.join(www, "index.html"), "w") as f:
        f.write("hello from the benchmark\n")
    with open(os.path.join(www, "big"), "wb") as f:
        chunk = os.urandom(1 << 20)
        for _ in range(BIG_MB):
            f.write(chunk)
    tar = os.path.join(root, "rootfs.tar")
    with tarfile.open(tar, "w") as tf:
        for name in sorted(os.listdir(rootfs)):
            tf.add(os.path.join(rootfs, name), arcname=name)
    return rootfs, tar


def unmount_under(root: str) -> None:
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f if line.split()[4].startswith(root)]
    for p in sorted(points, key=len, reverse=True):
        subprocess.run(["umount", "-l", p], capture_output=True)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--time-setup":
        time_setup(sys.argv[2])
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--engines", default="dockyard,podman,docker")
    ap.add_argument("--setup-runs", type=int, default=5, help="paired podman/docker run --rm samples")
    ap.add_argument("--no-setup-compare", action="store_true")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root")
    root = tempfile.mkdtemp(prefix="dybench-net-")
    rootfs, tar = make_image(root)
    results: dict[str, dict[str, list[float]]] = {}
    setup_cost: dict[str, tuple[float, float]] = {}
    extra: dict[str, str] = {}
    engines = args.engines.split(",")
    running: list[tuple[str, Hosts, object]] = []
    try:
        for i, name in enumerate(engines):
            hosts = Hosts(root, 100 + i)
            eroot = os.path.join(root, name)
            os.makedirs(eroot, exist_ok=True)
            try:
                if name == "dockyard":
                    su, td = setup_cost_ms(os.path.join(eroot, "timing"), hosts)
                    extra["dockyard NetworkService setup() + teardown() ms (median of 30)"] = f"{su:.1f} + {td:.1f}"
                    engine = Dockyard(os.path.join(eroot, "daemon"), hosts, tar)
                elif name == "podman":
                    engine = Podman(eroot, hosts, tar)
                elif name == "docker":
                    engine = Docker(eroot, hosts, tar)
                else:
                    raise SystemExit(f"unknown engine {name}")
            except Exception as e:  # noqa: BLE001 - a reference engine may be unavailable
                print(f"== {name}: skipped ({e})", flush=True)
                hosts.close()
                continue
            running.append((name, hosts, engine))
            print(f"== {name}: container {engine.ip}, published on port {engine.port}", flush=True)
            warm_up(hosts, engine.ip, engine.port)
        # engines interleaved round by round (A B C A B C ...), each round published/direct paired
        for _ in range(args.rounds):
            for name, hosts, engine in running:
                one_round(hosts, engine.ip, engine.port, args.requests, results.setdefault(name, {}))
        if not args.no_setup_compare:
            for name, _hosts, engine in running:
                none, bridge = [], []
                for _ in range(args.setup_runs):
                    none.append(engine.run_cost("none"))
                    bridge.append(engine.run_cost("bridge"))
                setup_cost[name] = (statistics.median(none), statistics.median(bridge))
    finally:
        for name, hosts, engine in running:
            try:
                engine.close()
            except Exception as e:  # noqa: BLE001
                print(f"closing {name}: {e}")
            hosts.close()
        unmount_under(root)
        shutil.rmtree(root, ignore_errors=True)

    print()
    print(f"{'engine':9} {'metric':32} {'median':>10} {'published/direct':>17}")
    for name, res in results.items():
        for key in res:
            if not key.endswith("published"):
                continue
            base = key[: -len("published")]
            pub, direct = statistics.median(res[key]), statistics.median(res[base + "direct"])
            print(f"{name:9} {base + 'published':32} {pub:10.1f} {pub / direct:16.0%}")
            print(f"{name:9} {base + 'direct':32} {direct:10.1f}")
    if "dockyard" in results:
        print()
        for other in ("podman", "docker"):
            if other not in results:
                continue
            for key in results["dockyard"]:
                if key.endswith("published"):
                    ours, theirs = statistics.median(results["dockyard"][key]), statistics.median(results[other][key])
                    print(f"dockyard/{other:7} {key:32} {ours / theirs:8.0%}")
    print()
    for k, v in extra.items():
        print(f"{k}: {v}")
    for name, (none, bridge) in setup_cost.items():
        print(f"{name} run --rm: --network none {none:.0f} ms, bridge {bridge:.0f} ms, network adds {bridge - none:.0f} ms")


if __name__ == "__main__":
    main()
