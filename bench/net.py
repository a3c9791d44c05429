"""Published ports vs direct access, and network set-up cost: Dockyard vs podman vs docker.

Each engine runs inside its OWN fresh network namespace (the "engine host"), so its bridge,
veths and firewall rules live and die there and nothing touches the machine's own network. A
second namespace (the "client host", 198.18.N.2) is wired to it with a veth (198.18.N.1 on the
engine side) and plays another machine. In each engine one busybox container serves, from a
bind-mounted directory, an HTTP server on port 80 (busybox httpd; /www/big is a SPARSE file of
--mb megabytes, so transfers can be large without using disk) and a TCP sink on port 81 (a tiny
static C program that reads and discards); both ports are published. Dockyard is the real
daemon (tests/support/daemon.py's fixture, dockyard-runc) started inside its namespace.

Measured in --rounds rounds, engines interleaved (A B C A B C ...). In every round, for each
client place (the engine host's 127.0.0.1, and the client namespace through 198.18.N.1) and
each metric, the published and the direct sample are taken back to back as a PAIR, in an order
that alternates between rounds (published first in even rounds, direct first in odd ones), so
slow drifts of this shared machine hit both sides equally:
  - download: one `curl` of /www/big (MB/s);
  - upload: --mb MB sent with sendfile() to the sink (MB/s, until the sink has read it all);
  - connection rate: `ab -n N -c 4` without keep-alive (one TCP connection per request).
Reported per metric: the median of published and of direct with their interquartile range,
and the published/direct ratio as the MEDIAN OF THE PER-PAIR RATIOS with its IQR and min..max
(the spread shows how far a single run can be trusted on this machine). Nothing is pinned to a
CPU. Dockyard's published numbers are also compared with podman's and docker's. Set-up cost:
NetworkService.setup() + teardown() of a default-bridge container with one published port
(median of 30: what the daemon's prepare() and release() pay), and for every engine
`run --rm ... true` with --network none vs bridge (paired, the difference is what bridge
networking adds to `run`).

    .venv/bin/python bench/net.py [--rounds 12] [--mb 1024] [--requests 3000]
                                  [--engines dockyard,podman,docker] [--metrics down,up,conn]
                                  [--no-setup-compare]

Engine `dockyard-nat` is Dockyard with `port-redirect` off (127.0.0.1 through nftables DNAT
only), to measure what the connect-time redirect (network/redirect.py) changes in the same run.
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
from collections.abc import Callable

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "src"))

from dockyard.image.busybox_rootfs import build_busybox_rootfs  # noqa: E402
from dockyard.network import links, netns  # noqa: E402

PODMAN_ULIMITS = ["--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768"]
HTTP_PORT, SINK_PORT = 80, 81
# in the container: the sink in the background, httpd in the foreground (PID 1 is the shell)
SERVE = ["sh", "-c", f"/bench/sink {SINK_PORT} & exec httpd -f -p {HTTP_PORT} -h /bench/www"]

SINK_C = r"""
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
static char buf[1 << 20];
int main(int argc, char **argv) {
    int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons(atoi(argv[1]));
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(s, (struct sockaddr *)&a, sizeof a) || listen(s, 64)) return 1;
    signal(SIGPIPE, SIG_IGN);
    for (;;) {
        int c = accept(s, 0, 0);
        if (c < 0) continue;
        while (read(c, buf, sizeof buf) > 0) {}
        close(c);
    }
}
"""

# the upload client: sendfile() of the sparse file, timed until the sink closed (read it all)
UPLOAD_PY = (
    "import socket,sys,time\n"
    "host,port,path,size=sys.argv[1],int(sys.argv[2]),sys.argv[3],int(sys.argv[4])\n"
    "s=socket.create_connection((host,port))\n"
    "t=time.perf_counter()\n"
    "with open(path,'rb') as f: s.sendfile(f,0,size)\n"
    "s.shutdown(socket.SHUT_WR); s.recv(1)\n"
    "print(size/(time.perf_counter()-t)/1e6)\n"
)


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
    r = run(["curl", "-s", "--noproxy", "*", "-o", "/dev/null", "-w", "%{speed_download} %{size_download}", url], ns=ns, timeout=300)
    speed, size = (float(x) for x in r.stdout.split())
    if size <= 0:
        raise RuntimeError(f"curl {url}: nothing downloaded")
    return speed / 1e6


def upload_mbps(host: str, port: int, ns: str, path: str, size: int) -> float:
    r = run([sys.executable, "-c", UPLOAD_PY, host, str(port), path, str(size)], ns=ns, timeout=300)
    return float(r.stdout)


class Place:
    """Where the client sits, and the published and direct addresses it uses from there."""

    def __init__(self, name: str, ns: str, pub_host: str, http_port: int, sink_port: int, cip: str) -> None:
        self.name, self.ns, self.cip = name, ns, cip
        self.pub_host, self.http_port, self.sink_port = pub_host, http_port, sink_port

    def samplers(self, args: argparse.Namespace, big: str) -> dict[str, Callable[[bool], dict[str, float]]]:
        """metric -> f(published) returning {series: value}."""
        size = args.mb * 1_000_000

        def down(pub: bool) -> dict[str, float]:
            url = f"http://{self.pub_host}:{self.http_port}/big" if pub else f"http://{self.cip}:{HTTP_PORT}/big"
            return {"download MB/s": curl_mbps(url, self.ns)}

        def up(pub: bool) -> dict[str, float]:
            host, port = (self.pub_host, self.sink_port) if pub else (self.cip, SINK_PORT)
            return {"upload MB/s": upload_mbps(host, port, self.ns, big, size)}

        def conn(pub: bool) -> dict[str, float]:
            url = f"http://{self.pub_host}:{self.http_port}/" if pub else f"http://{self.cip}:{HTTP_PORT}/"
            return {"conn/s": ab_rate(url, self.ns, args.requests)}

        return {"down": down, "up": up, "conn": conn}


def places(hosts: Hosts, engine: object) -> list[Place]:
    e = engine
    return [
        Place("127.0.0.1", hosts.engine, "127.0.0.1", e.http_port, e.sink_port, e.ip),  # type: ignore[attr-defined]
        Place("other netns", hosts.client, hosts.engine_ip, e.http_port, e.sink_port, e.ip),  # type: ignore[attr-defined]
    ]


# samples[engine][(place, series)] = {"pub": [...], "direct": [...]}, index i = round i's pair
Samples = dict[str, dict[tuple[str, str], dict[str, list[float]]]]


def warm_up(hosts: Hosts, engine: object, args: argparse.Namespace, big: str) -> None:
    """ARP, conntrack, page cache, TCP metrics: one untimed sample of everything."""
    for place in places(hosts, engine):
        for metric, fn in place.samplers(args, big).items():
            if metric in args.metrics:
                fn(True)
                fn(False)


def one_round(i: int, hosts: Hosts, engine: object, args: argparse.Namespace, big: str, out: dict) -> None:
    """Published and direct back to back for each place and metric; order alternates by round."""
    order = (True, False) if i % 2 == 0 else (False, True)
    for place in places(hosts, engine):
        for metric, fn in place.samplers(args, big).items():
            if metric not in args.metrics:
                continue
            for pub in order:
                for series, value in fn(pub).items():
                    out.setdefault((place.name, series), {"pub": [], "direct": []})["pub" if pub else "direct"].append(value)


def median_ci(xs: list[float], n: int = 4000) -> tuple[float, float]:
    """A 95% bootstrap confidence interval of the median (fixed seed: the same data, the same CI)."""
    import random

    rng = random.Random(1)
    meds = sorted(statistics.median(rng.choices(xs, k=len(xs))) for _ in range(n))
    return meds[int(n * 0.025)], meds[int(n * 0.975)]


def quartiles(xs: list[float]) -> tuple[float, float, float]:
    if len(xs) < 2:
        return xs[0], xs[0], xs[0]
    q = statistics.quantiles(xs, n=4, method="inclusive")
    return q[0], statistics.median(xs), q[2]


def fmt(x: float) -> str:
    return f"{x:.0f}" if abs(x) >= 100 else f"{x:.2f}" if abs(x) < 10 else f"{x:.1f}"


def report(samples: Samples) -> None:
    def col(q: tuple[float, float, float]) -> str:
        return f"{fmt(q[1])} [{fmt(q[0])}-{fmt(q[2])}]"

    print()
    print("published vs direct: median [interquartile range]; pub/direct = median of the per-round pair ratios,")
    print("with its 95% bootstrap confidence interval, interquartile range and extremes")
    print(f"{'engine':12} {'from':12} {'metric':12} {'published':>20} {'direct':>20} {'pub/direct':>11} {'95% CI':>11} {'IQR':>10} {'min-max':>10}")
    for name, res in samples.items():
        for (place, series), v in res.items():
            ratios = [p / d for p, d in zip(v["pub"], v["direct"], strict=True)]
            rq = quartiles(ratios)
            ci = median_ci(ratios)
            print(
                f"{name:12} {place:12} {series:12} {col(quartiles(v['pub'])):>20} {col(quartiles(v['direct'])):>20}"
                f" {rq[1]:10.0%} {ci[0]:5.0%}-{ci[1]:<4.0%} {rq[0]:5.0%}-{rq[2]:<4.0%} {min(ratios):5.0%}-{max(ratios):<4.0%}"
            )
    if "dockyard" in samples:
        print()
        print("Dockyard's published median relative to the other engine's")
        for other in ("podman", "docker"):
            for key, v in samples["dockyard"].items():
                if other in samples and key in samples[other]:
                    ours, theirs = statistics.median(v["pub"]), statistics.median(samples[other][key]["pub"])
                    print(f"  dockyard/{other:7} {key[0]:12} {key[1]:12} {ours / theirs:6.0%}")


# --- engines ------------------------------------------------------------------------------------
class Dockyard:
    """The Dockyard daemon (tests/support/daemon.py's TestDaemon) started inside the engine
    namespace; a real busybox container (dockyard-runc) serves /bench."""

    name = "dockyard"

    def __init__(self, root: str, hosts: Hosts, tar: str, serve_dir: str, redirect: bool = True) -> None:
        sys.path.insert(0, os.path.join(HERE, "..", "tests"))
        from support.daemon import TestDaemon

        ns = hosts.engine

        class InNamespace(TestDaemon):
            def command(self) -> list[str]:
                return ["nsenter", f"--net={ns}", *super().command()]

        self.d = InNamespace(root, loop_guard=False, config={} if redirect else {"port-redirect": False})
        with open(tar, "rb") as f:
            self.d.import_image(f.read(), "dybench:latest")
        self.d.start()
        self.cli = ["dockyard", "-H", self.d.host]
        self.http_port, self.sink_port = 18082, 18092
        cid = run([*self.cli, "run", "-d", "-p", f"{self.http_port}:{HTTP_PORT}", "-p", f"{self.sink_port}:{SINK_PORT}",
                   "-v", f"{serve_dir}:/bench:ro", "dybench:latest", *SERVE]).stdout.strip()  # fmt: skip
        self.ip = run([*self.cli, "inspect", "-f", "{{.NetworkSettings.IPAddress}}", cid]).stdout.strip()

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

    def __init__(self, root: str, hosts: Hosts, tar: str, serve_dir: str) -> None:
        self.ns = hosts.engine
        self.base = [
            "podman", "--root", os.path.join(root, "root"), "--runroot", os.path.join(root, "run"),
            "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs", "--events-backend", "none",
            "--tmpdir", os.path.join(root, "tmp"), "--runtime", "runc",
            "--network-config-dir", os.path.join(root, "cni"),
        ]  # fmt: skip
        os.makedirs(os.path.join(root, "cni"), exist_ok=True)
        run([*self.base, "import", tar, "localhost/dybench:latest"], ns=self.ns)
        self.http_port, self.sink_port = 18080, 18090
        cid = run([*self.base, "run", "-d", *PODMAN_ULIMITS, "-p", f"{self.http_port}:{HTTP_PORT}", "-p", f"{self.sink_port}:{SINK_PORT}",
                   "-v", f"{serve_dir}:/bench:ro", "localhost/dybench:latest", *SERVE], ns=self.ns).stdout.strip()  # fmt: skip
        self.cid = cid
        self.ip = run([*self.base, "inspect", "-f", "{{.NetworkSettings.IPAddress}}", cid], ns=self.ns).stdout.strip()

    def run_cost(self, network: str) -> float:
        t = time.perf_counter()
        run([*self.base, "run", "--rm", *PODMAN_ULIMITS, "--network", network, "localhost/dybench:latest", "true"], ns=self.ns)
        return (time.perf_counter() - t) * 1000

    def close(self) -> None:
        run([*self.base, "rm", "-f", "-a"], ns=self.ns, check=False)
        run([*self.base, "rmi", "-a", "-f"], ns=self.ns, check=False)


class Docker:
    name = "docker"

    def __init__(self, root: str, hosts: Hosts, tar: str, serve_dir: str) -> None:
        self.ns = hosts.engine
        self.root = root
        self.sock = os.path.join(root, "docker.sock")
        self.pidfile = os.path.join(root, "docker.pid")
        with open(os.path.join(root, "daemon.json"), "w") as f:
            f.write("{}")
        self.log = open(os.path.join(root, "dockerd.log"), "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            ["nsenter", f"--net={self.ns}", "dockerd", "--data-root", os.path.join(root, "data"), "--exec-root", os.path.join(root, "exec"),
             "-H", f"unix://{self.sock}", "--pidfile", self.pidfile, "--storage-driver", "vfs", "--bip", "10.78.0.1/24",
             "--log-level", "error", "--cgroup-parent", "dybench-docker", "--config-file", os.path.join(root, "daemon.json")],
            stdout=self.log, stderr=self.log,
        )  # fmt: skip
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
        self.http_port, self.sink_port = 18081, 18091
        self.cid = run([*self.cli, "run", "-d", "-p", f"{self.http_port}:{HTTP_PORT}", "-p", f"{self.sink_port}:{SINK_PORT}",
                        "-v", f"{serve_dir}:/bench:ro", "dybench:latest", *SERVE]).stdout.strip()  # fmt: skip
        self.ip = run([*self.cli, "inspect", "-f", "{{.NetworkSettings.IPAddress}}", self.cid]).stdout.strip()

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
        remove_cgroups("dybench-docker")  # dockerd leaves its --cgroup-parent behind


def remove_cgroups(name: str) -> None:
    """rmdir every (empty) cgroup directory named `name` and its children, deepest first."""
    found = []
    for dirpath, dirnames, _ in os.walk("/sys/fs/cgroup"):
        if dirpath.count("/") > 9:
            dirnames[:] = []
        elif os.path.basename(dirpath) == name:
            found += [d for d, _, _ in os.walk(dirpath)]
            dirnames[:] = []
    for d in sorted(found, key=len, reverse=True):
        with contextlib.suppress(OSError):
            os.rmdir(d)


# --- main ---------------------------------------------------------------------------------------
def make_image(root: str, mb: int) -> tuple[str, str, str]:
    """(image tar, the directory to bind-mount at /bench, the sparse file's host path)."""
    rootfs = build_busybox_rootfs(os.path.join(root, "rootfs"))
    os.makedirs(os.path.join(rootfs, "bench"), exist_ok=True)
    tar = os.path.join(root, "rootfs.tar")
    with tarfile.open(tar, "w") as tf:
        for name in sorted(os.listdir(rootfs)):
            tf.add(os.path.join(rootfs, name), arcname=name)
    serve = os.path.join(root, "serve")
    www = os.path.join(serve, "www")
    os.makedirs(www)
    with open(os.path.join(www, "index.html"), "w") as f:
        f.write("hello from the benchmark\n")
    big = os.path.join(www, "big")
    with open(big, "wb") as f:
        f.truncate(mb * 1_000_000)  # sparse: read as zeros from the page cache, no disk used
    src = os.path.join(root, "sink.c")
    with open(src, "w") as f:
        f.write(SINK_C)
    subprocess.run(["gcc", "-O2", "-static", "-o", os.path.join(serve, "sink"), src], check=True, capture_output=True)
    os.chmod(serve, 0o755)
    return tar, serve, big


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
    ap.add_argument("--rounds", type=int, default=12)
    ap.add_argument("--mb", type=int, default=1024, help="size of one download/upload, MB")
    ap.add_argument("--requests", type=int, default=3000, help="requests per ab sample")
    ap.add_argument("--engines", default="dockyard,podman,docker")
    ap.add_argument("--metrics", default="down,up,conn")
    ap.add_argument("--setup-runs", type=int, default=15, help="paired run --rm samples per engine")
    ap.add_argument("--no-setup-compare", action="store_true")
    args = ap.parse_args()
    args.metrics = set(args.metrics.split(","))
    if os.geteuid() != 0:
        sys.exit("run as root")
    root = tempfile.mkdtemp(prefix="dybench-net-")
    os.chmod(root, 0o755)
    tar, serve, big = make_image(root, args.mb)
    samples: Samples = {}
    setup_cost: dict[str, tuple[float, float, float]] = {}
    extra: dict[str, str] = {}
    engines = args.engines.split(",")
    running: list[tuple[str, Hosts, object]] = []
    load0 = os.getloadavg()
    t0 = time.monotonic()
    try:
        for i, name in enumerate(engines):
            hosts = Hosts(root, 100 + i)
            eroot = os.path.join(root, name)
            os.makedirs(eroot, exist_ok=True)
            try:
                if name == "dockyard":
                    su, td = setup_cost_ms(os.path.join(eroot, "timing"), hosts)
                    extra["dockyard NetworkService setup() + teardown() ms (median of 30)"] = f"{su:.1f} + {td:.1f}"
                    engine: object = Dockyard(os.path.join(eroot, "daemon"), hosts, tar, serve)
                elif name == "dockyard-nat":  # the same daemon with the 127.0.0.1 redirect off
                    engine = Dockyard(os.path.join(eroot, "daemon"), hosts, tar, serve, redirect=False)
                elif name == "podman":
                    engine = Podman(eroot, hosts, tar, serve)
                elif name == "docker":
                    engine = Docker(eroot, hosts, tar, serve)
                else:
                    raise SystemExit(f"unknown engine {name}")
            except Exception as e:  # noqa: BLE001 - a reference engine may be unavailable
                print(f"== {name}: skipped ({e})", flush=True)
                hosts.close()
                continue
            running.append((name, hosts, engine))
            print(f"== {name}: container {engine.ip}, published on ports {engine.http_port}, {engine.sink_port}", flush=True)  # type: ignore[attr-defined]
            time.sleep(0.3)
            warm_up(hosts, engine, args, big)
        # engines interleaved round by round (A B C A B C ...); each round pairs published/direct
        for r in range(args.rounds):
            for name, hosts, engine in running:
                one_round(r, hosts, engine, args, big, samples.setdefault(name, {}))
            print(f"   round {r + 1}/{args.rounds} done, load {os.getloadavg()[0]:.2f}", flush=True)
        if not args.no_setup_compare:
            for name, _hosts, engine in running:
                none, bridge = [], []
                engine.run_cost("none"), engine.run_cost("bridge")  # type: ignore[attr-defined]  # warm
                for _ in range(args.setup_runs):
                    none.append(engine.run_cost("none"))  # type: ignore[attr-defined]
                    bridge.append(engine.run_cost("bridge"))  # type: ignore[attr-defined]
                deltas = [b - n for b, n in zip(bridge, none, strict=True)]
                setup_cost[name] = (statistics.median(none), statistics.median(bridge), statistics.median(deltas))
    finally:
        for name, hosts, engine in running:
            try:
                engine.close()  # type: ignore[attr-defined]
            except Exception as e:  # noqa: BLE001
                print(f"closing {name}: {e}")
            hosts.close()
        unmount_under(root)
        shutil.rmtree(root, ignore_errors=True)

    print(f"\n{os.cpu_count()} CPUs; load average {load0[0]:.2f} at start, {os.getloadavg()[0]:.2f} at the end; "
          f"{args.rounds} rounds, {args.mb} MB per transfer, {time.monotonic() - t0:.0f} s")  # fmt: skip
    report(samples)
    print()
    for k, v in extra.items():
        print(f"{k}: {v}")
    for name, (none, bridge, delta) in setup_cost.items():
        print(f"{name} run --rm: --network none {none:.0f} ms, bridge {bridge:.0f} ms (medians); "
              f"the bridge adds {delta:.0f} ms (median of {args.setup_runs} paired differences)")


if __name__ == "__main__":
    main()
