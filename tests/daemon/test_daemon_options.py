"""Daemon options: TCP with TLS (client certificates required), the pidfile, daemon.json,
--live-restore across a clean restart, the `none` log driver."""

from __future__ import annotations

import os
import socket
import ssl
import stat
import subprocess
import sys
import time

import pytest

from support.daemon import PYTHON, SRC, TestDaemon, busybox_daemon


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_certs(d: str) -> dict[str, str]:
    def run(*a: str) -> None:
        subprocess.run(a, check=True, capture_output=True, cwd=d)

    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=dyt-ca")
    for name, cn, ext in (("server", "127.0.0.1", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth"),
                          ("client", "client", "extendedKeyUsage=clientAuth")):
        with open(os.path.join(d, f"{name}.ext"), "w") as f:
            f.write(ext + "\n")
        run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}-key.pem", "-out", f"{name}.csr",
            "-subj", f"/CN={cn}")
        run("openssl", "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", f"{name}-cert.pem", "-days", "2", "-extfile", f"{name}.ext")
    return {k: os.path.join(d, v) for k, v in {"ca": "ca.pem", "cert": "server-cert.pem", "key": "server-key.pem",
                                               "ccert": "client-cert.pem", "ckey": "client-key.pem"}.items()}


def test_tcp_tls_verify(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    docker = pytest.importorskip("docker")
    for var in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):  # requests would prefer them to our CA
        monkeypatch.delenv(var, raising=False)
    certs = make_certs(str(tmp_path))
    port = free_port()
    d = TestDaemon(str(tmp_path / "d"), args=["-H", f"tcp://127.0.0.1:{port}", "--tlsverify", "--tlscacert", certs["ca"],
                                             "--tlscert", certs["cert"], "--tlskey", certs["key"]])
    try:
        d.start()  # the unix socket still answers
        tls = docker.tls.TLSConfig(client_cert=(certs["ccert"], certs["ckey"]), ca_cert=certs["ca"], verify=True)
        client = docker.DockerClient(base_url=f"https://127.0.0.1:{port}", tls=tls, version="1.43")
        assert client.ping() and client.version()["ApiVersion"] == "1.43"
        client.close()
        ctx = ssl.create_default_context(cafile=certs["ca"])
        with (socket.create_connection(("127.0.0.1", port)) as raw,
              pytest.raises((ssl.SSLError, ConnectionError, OSError)),
              ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s):  # no client certificate: refused
            s.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
            if not s.recv(100):
                raise ConnectionError("closed")
    finally:
        d.cleanup()


def test_pidfile_and_config_file(tmp_path) -> None:  # noqa: ANN001
    d = TestDaemon(str(tmp_path / "d"))
    try:
        d.start()
        with open(d.pidfile) as f:
            assert int(f.read()) == d.pid
        assert stat.S_IMODE(os.stat(d.socket).st_mode) == 0o660
        env = dict(os.environ, PYTHONPATH=SRC)
        other = subprocess.run([PYTHON, "-m", "dockyard.daemon", "--data-root", str(tmp_path / "o"), "--exec-root",
                                str(tmp_path / "oe"), "-H", f"unix://{d.sockdir}/o.sock", "--pidfile", d.pidfile],
                               capture_output=True, text=True, timeout=60, env=env)  # fmt: skip
        assert other.returncode != 0 and "pid file found" in other.stderr
    finally:
        d.cleanup()
    assert not os.path.exists(d.pidfile)
    bad = tmp_path / "bad.json"
    bad.write_text('{"not-an-option": true}')
    cp = subprocess.run([PYTHON, "-m", "dockyard.daemon", "--config-file", str(bad)], capture_output=True, text=True,
                        timeout=60, env=dict(os.environ, PYTHONPATH=SRC))  # fmt: skip
    assert cp.returncode != 0 and "not-an-option" in cp.stderr


def test_live_restore_clean_restart_and_log_none(tmp_path) -> None:  # noqa: ANN001
    d = busybox_daemon(str(tmp_path / "d"), args=["--live-restore"])
    try:
        st, r = d.api("POST", "/containers/create", {"Image": "busybox", "Cmd": ["sleep", "60"],
                                                    "HostConfig": {"LogConfig": {"Type": "none"}}})
        cid = r["Id"]
        d.api("POST", f"/containers/{cid}/start")
        st, r = d.api("GET", f"/containers/{cid}/logs?stdout=1")
        assert st == 501 and r["message"] == "configured logging driver does not support reading"
        pid = d.api("GET", f"/containers/{cid}/json")[1]["State"]["Pid"]
        d.stop()  # SIGTERM with live-restore: the container keeps running
        os.kill(pid, 0)
        time.sleep(0.2)
        d.start()
        st, c = d.api("GET", f"/containers/{cid}/json")
        assert c["State"]["Running"] and c["State"]["Pid"] == pid
        assert d.api("DELETE", f"/containers/{cid}?force=1")[0] == 204
    finally:
        d.cleanup()


def test_sigterm_stops_containers_quickly(tmp_path) -> None:  # noqa: ANN001
    d = busybox_daemon(str(tmp_path / "d"))
    try:
        st, r = d.api("POST", "/containers/create", {"Image": "busybox", "Cmd": ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"]})
        cid = r["Id"]
        d.api("POST", f"/containers/{cid}/start")
        t = time.time()
        assert d.stop() == 0 and time.time() - t < 10
        assert not os.path.exists(d.socket)
        d.start()
        assert d.api("GET", f"/containers/{cid}/json")[1]["State"]["ExitCode"] == 0
    finally:
        d.cleanup()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__]))
