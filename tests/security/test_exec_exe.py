"""The CVE-2019-5736 class: the runtime is a Python program, so the process that enters a
container runs the host's interpreter until its last execve. A container whose program is a
symlink to /proc/self/exe (or a "#!/proc/self/exe" script) must not get to run that host binary,
and no container process may open it through /proc/<pid>/exe (to rewrite it once idle: the next
`dockyard-runc` would run the attacker's code as root on the host). The probes only compare
inodes; nothing here ever opens a host binary for writing."""

from __future__ import annotations

import os
import sys
import tarfile

import pytest
from secutil import busybox_with, exec_, import_image, probe_mount, regular, run, start, symlink

HOST_PYTHON = os.path.realpath(sys.executable)
LIBS = ["/lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/libm.so.6", "/lib/x86_64-linux-gnu/libz.so.1",
        "/lib/x86_64-linux-gnu/libexpat.so.1", "/lib/x86_64-linux-gnu/libc.so.6"]  # fmt: skip
STDLIB = os.path.join(sys.base_prefix, "lib", f"python{sys.version_info[0]}.{sys.version_info[1]}")
PROBE = "import os; s = os.stat('/proc/self/exe'); print('DEVINO', s.st_dev, s.st_ino)"


def _file(path: str, arc: str) -> tuple[tarfile.TarInfo, bytes]:
    with open(os.path.realpath(path), "rb") as f:
        data = f.read()
    return regular(arc, data, mode=0o755)


@pytest.fixture(scope="module")
def pyimage(daemon) -> str:  # noqa: ANN001
    """busybox plus what the host's Python needs to start (its loader, libraries and the encodings
    package at the same paths), /evil -> /proc/self/exe and /evil2 = "#!/proc/self/exe"."""
    extra = _python_bits() + [symlink("evil", "/proc/self/exe"), regular("evil2", b"#!/proc/self/exe\n", mode=0o755)]
    return import_image(daemon, busybox_with(extra), "dyt-selfexe:latest")


def _python_bits() -> list:
    if os.uname().machine != "x86_64" or not all(os.path.exists(p) for p in LIBS):
        pytest.skip("needs the x86_64 Debian layout of the host's Python")
    rel = STDLIB.lstrip("/")
    extra = [_file(p, p.lstrip("/")) for p in LIBS]
    return extra + [_file(os.path.join(STDLIB, "encodings", n), f"{rel}/encodings/{n}")
                    for n in ("__init__.py", "aliases.py", "utf_8.py")]  # fmt: skip


def _host_devino() -> str:
    st = os.stat(HOST_PYTHON)
    return f"DEVINO {st.st_dev} {st.st_ino}"


def test_the_image_really_runs_the_host_python(pyimage: str) -> None:
    """The premise: outside a container, this rootfs runs the host's interpreter fine."""
    import subprocess

    # (sanity of the fixture: the loader and libraries the image carries are the host's own)
    cp = subprocess.run([HOST_PYTHON, "-S", "-I", "-c", PROBE], capture_output=True, text=True)
    assert cp.stdout.strip() == _host_devino()


@pytest.mark.parametrize("program", ["/evil", "/evil2"])
def test_exec_of_proc_self_exe_never_runs_the_host_interpreter(daemon, pyimage: str, program: str) -> None:  # noqa: ANN001
    cid = start(daemon, ["sleep", "60"], image=pyimage)
    try:
        code, out = exec_(daemon, cid, [program, "-S", "-I", "-c", PROBE])
        assert "DEVINO" not in out and "Python" not in out, out
        assert code != 0, out
        # refused: by the helper, or already by the lookup (from outside the container's PID
        # namespace /proc/self/exe leads nowhere)
        assert "not a program to run" in out or "no such file or directory" in out, out
        code, out = exec_(daemon, cid, ["sh", "-c", "readlink /proc/self/exe"])
        assert out.strip() == "/bin/busybox"
    finally:
        daemon.api("DELETE", f"/containers/{cid}?force=1")


@pytest.mark.parametrize("program", ["/evil", "/evil2"])
def test_container_init_of_proc_self_exe_never_runs_the_host_interpreter(daemon, pyimage: str, program: str) -> None:  # noqa: ANN001
    code, out = run(daemon, [program, "-S", "-I", "-c", PROBE], image=pyimage)
    assert "DEVINO" not in out and "Python" not in out, out
    assert code == 126 and "not a program to run" in out


@pytest.mark.parametrize("caps", [[], ["SYS_PTRACE"]])
def test_no_container_process_reaches_the_runtime_binary(daemon, probes: str, caps: list[str]) -> None:  # noqa: ANN001
    """While execs enter the container, a process inside scans every /proc/<pid>/exe it can open
    for the host interpreter's inode (the runtime's own exe until its last execve). With
    CAP_SYS_PTRACE, non-dumpable processes are no obstacle: no runtime process may be in the
    container's PID namespace at all."""
    st = os.stat(HOST_PYTHON)
    cid = start(daemon, ["sh", "-c", f"/p/exewatch {st.st_dev} {st.st_ino} 4 > /tmp/watch; sleep 60"],
                HostConfig={**probe_mount(probes), "CapAdd": caps})  # fmt: skip
    try:
        for _ in range(12):
            exec_(daemon, cid, ["true"])
            exec_(daemon, cid, ["sh", "-c", "exit 0"], User="nobody")
        code, out = exec_(daemon, cid, ["sh", "-c", "while ! [ -s /tmp/watch ]; do sleep 0.2; done; cat /tmp/watch"])
        assert out.startswith("NONE"), out
    finally:
        daemon.api("DELETE", f"/containers/{cid}?force=1")


def test_exec_format_errors_as_runc(daemon, pyimage: str) -> None:  # noqa: ANN001
    """A failed final execve is reported on the process's stderr with exit 1 (runc's init does the
    same): "exec PATH: REASON"."""
    cid = start(daemon, ["sleep", "60"])
    try:
        exec_(daemon, cid, ["sh", "-c", "printf '\\177ELFjunk' > /x; chmod +x /x"])
        code, out = exec_(daemon, cid, ["/x"])
        assert (code, out.strip()) == (1, "exec /x: exec format error")
    finally:
        daemon.api("DELETE", f"/containers/{cid}?force=1")


def test_exec_still_sets_up_the_process(daemon) -> None:  # noqa: ANN001
    """What `exec` now does outside the container's PID namespace still reaches the process."""
    cid = start(daemon, ["sleep", "60"], HostConfig={"OomScoreAdj": 321})
    try:
        code, out = exec_(daemon, cid, ["sh", "-c", "cat /proc/self/oom_score_adj; echo $HOME; id -u; "
                                        "cut -d' ' -f4-6 /proc/$$/stat"], User="nobody")
        lines = out.splitlines()
        assert code == 0 and lines[0] == "321" and lines[1] == "/nonexistent" and lines[2] == "65534", out
        ppid, pgrp, sid = lines[3].split()
        assert ppid == "0" and pgrp == sid  # its parent is outside the container; a session of its own
    finally:
        daemon.api("DELETE", f"/containers/{cid}?force=1")


@pytest.mark.parametrize("target", ["/proc/self/exe", "/../../../../.." + HOST_PYTHON])
def test_exec_of_a_malicious_bin_sh(daemon, target: str) -> None:  # noqa: ANN001
    """`docker exec c sh` where the image's /bin/sh is a symlink to the runtime's own binary or to a
    host path: never a host binary (the host path resolves inside the container, where it is not)."""
    img = import_image(daemon, busybox_with([*_python_bits(), symlink("bin/sh", target)], drop=("bin/sh",)),
                       "dyt-badsh:latest")  # fmt: skip
    cid = start(daemon, ["sleep", "60"], image=img)
    try:
        code, out = exec_(daemon, cid, ["sh", "-S", "-I", "-c", PROBE])
        assert "DEVINO" not in out and "Python" not in out and code != 0, out
    finally:
        daemon.api("DELETE", f"/containers/{cid}?force=1")
