"""The exec helper: how the runtime's last execve avoids exposing a host binary to the container.

dockyard-runc is a Python program, so the process that enters a container (its init, or an exec)
runs the host's Python interpreter until its final execve. Exec'ing the program from there has
two dangers (the CVE-2019-5736 class): a container program that is a symlink to /proc/self/exe,
or a script whose interpreter is "#!/proc/self/exe", would run the host interpreter inside the
container; and any container process could then reach that host file through /proc/<pid>/exe and
reopen it for writing once it is idle, replacing the binary the next runtime call runs as root.

So the last step goes through a small static helper (exechelper.c, 2.5 KB, x86_64) that the
runtime execs from a sealed, read-only memfd (dockyard.sys.memfd) once everything is set up:
- a container's init (PID 1 of a new PID namespace, which nothing else is in yet) execs the
  helper, which execs the program (`exec_via`);
- `exec` never puts a Python process in the container's PID namespace at all: the runtime's
  process joins the namespaces (which only moves its children into the PID one), sets up
  credentials, seccomp and stdio, and execs the helper, which forks the process that enters the
  container, reports its pid over the runtime's channel and exits; the child execs the program
  (`fork_exec_via`).
While the helper runs, /proc/self/exe is that private memfd: exec'ing it from the container runs
the helper again (which refuses to do anything) and writing it is impossible. The runtime's own
processes are also non-dumpable before they join a container (create.py, exec_.py), so that
until they exec, container processes cannot open their /proc/<pid>/exe or fds.

On execve failure the helper writes "exec PATH: REASON" to stderr and exits 1, as runc's init
does. Elsewhere than x86_64 (or if the memfd cannot be made) the runtime does the same in Python:
`helper_fd()` returns -1.
"""

from __future__ import annotations

import os

MARK = "dockyard-exec"

# exechelper.c, built with the command in its header comment (gcc 12.2, Debian 12)
_X86_64 = (
    "f0VMRgIBAQAAAAAAAAAAAAIAPgABAAAAsABAAAAAAABAAAAAAAAAAJAIAAAAAAAAAAAAAEAAOAACAEAABQAEAAEAAAAFAAAA"
    "sAAAAAAAAACwAEAAAAAAALAAQAAAAAAAkAcAAAAAAACQBwAAAAAAACAAAAAAAAAAUeV0ZAYAAAAAAAAAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAEAAAAAAAAABIiedIg+Tw6EMBAAD0SIn4igpIOfBzD4TJdAtI/8BI/8KISP/r6sNI"
    "iflIidBIifdBuAoAAAC+AQAAAEiZSff4g8IwSIXAQQ+VwoP+E4hUNOdIifJBD57BSP/GRYTKddtIY9JIiciF0kAPlcZIOfgP"
    "ksFI/8pAhM50DIpMFOhI/8CISP/r4MNVSYnxSYnQSIn6U4nLSIHsYAIAAEiNbCQISI20JF8CAABIie/oXf///0yJykiJx+hS"
    "////ugAEQABIicfoRf///0iJx0mNQP9Ig/hPdxRIixTFwAVAAEiF0nQH6Cb////rHboDBEAASI20JF8CAADoEv///0yJwkiJ"
    "x+gh////SI1QAcYACr8CAAAASInuSCnquAEAAAAPBUG45wAAAEhj+zHSTInASInWDwXr9jHAihQHigwGhNJ0B0j/wDjKdO8x"
    "wDjKD5TAw0FUVVNIg+wgTIsPSYP5Aw+OqAEAAEmJ+EiLfwi+CgRAAOi/////hcAPhI8BAABJi3gQvhgEQABPjVTIEOik////"
    "hcB0IUmLeBhJjXAguDsAAABMidIPBUj32EmLcBhIicLpAQEAAEmD+QUPjk0BAAC+IARAAOhr////hcAPhDsBAABJi1AYMdtJ"
    "i3gggDoAdS2+IgRAAOhK////6R0BAACD6DA8CXcfSIH7AOH1BX8WSGvbCkgPvsBI/8JIAcOKAoTAddzrBEiDy/++IgRAAOgR"
    "////QYnESIP7/w+E3AAAAL0BAAAAuEgAAAC+AgAAAEiJ30iJ6g8FMdK4OQAAAEiJ10iJ1g8FSYnBSIXAeRlIicJJi3AouX4A"
    "AAC/JARAAEj32ugQ/v//dUm4cAAAAEyJz0yJzkyJyg8FRYXkdAy4EAAAAL4OVAAADwVJi3goSY1wMLg7AAAATInSDwVI99hJ"
    "i3AoSInCuQEAAAC/GgRAAOuwSYnkSI10JB+6LgRAAEyJ5+g2/f//TInKSInH6EX9//9Iid9MieZIjVABxgAKSInoTCniDwVB"
    "uOcAAAAx0kyJwEiJ10iJ1g8F6/O4AQAAAL8CAAAAvjMEQAC6NwAAAA8FQbjnAAAAv34AAAAx0kyJwEiJ1g8F6/YAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAADogAGVycm5vIABkb2NreWFyZC1leGVjAHgAZXhlYyAAZgAxAGZvcmsgZm9yIABwaWQgAGRvY2t5"
    "YXJkLXJ1bmM6IHRoZSBleGVjIGhlbHBlciBpcyBub3QgYSBwcm9ncmFtIHRvIHJ1bgoAb3BlcmF0aW9uIG5vdCBwZXJtaXR0"
    "ZWQAbm8gc3VjaCBmaWxlIG9yIGRpcmVjdG9yeQBhcmd1bWVudCBsaXN0IHRvbyBsb25nAGV4ZWMgZm9ybWF0IGVycm9yAHJl"
    "c291cmNlIHRlbXBvcmFyaWx5IHVuYXZhaWxhYmxlAGNhbm5vdCBhbGxvY2F0ZSBtZW1vcnkAcGVybWlzc2lvbiBkZW5pZWQA"
    "bm90IGEgZGlyZWN0b3J5AGlzIGEgZGlyZWN0b3J5AGludmFsaWQgYXJndW1lbnQAdGV4dCBmaWxlIGJ1c3kAZmlsZSBuYW1l"
    "IHRvbyBsb25nAHRvbyBtYW55IGxldmVscyBvZiBzeW1ib2xpYyBsaW5rcwBhY2Nlc3NpbmcgYSBjb3JydXB0ZWQgc2hhcmVk"
    "IGxpYnJhcnkAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAABrBEAAAAAAAIMEQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAACdBEAAAAAAALQEQAAAAAAAAAAAAAAAAAAAAAAAAAAAAMYEQAAAAAAA5wRAAAAAAAD+BEAAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAABAFQAAAAAAAIAVAAAAAAAAvBUAAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAEAFQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAATwVAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAABiBUAAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAIQFQAAAAAAAR0NDOiAoRGViaWFuIDEyLjIuMC0xNCtkZWIxMnUxKSAxMi4yLjAAAC5zaHN0cnRh"
    "YgAudGV4dAAucm9kYXRhAC5jb21tZW50AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAACwAAAAEAAAAGAAAAAAAAALAAQAAAAAAAsAAAAAAAAAA5AwAAAAAAAAAAAAAAAAAA"
    "AQAAAAAAAAAAAAAAAAAAABEAAAABAAAAAgAAAAAAAAAABEAAAAAAAAAEAAAAAAAAQAQAAAAAAAAAAAAAAAAAACAAAAAAAAAA"
    "AAAAAAAAAAAZAAAAAQAAADAAAAAAAAAAAAAAAAAAAABACAAAAAAAACcAAAAAAAAAAAAAAAAAAAABAAAAAAAAAAEAAAAAAAAA"
    "AQAAAAMAAAAAAAAAAAAAAAAAAAAAAAAAZwgAAAAAAAAiAAAAAAAAAAAAAAAAAAAAAQAAAAAAAAAAAAAAAAAAAA=="
)


def helper_fd(min_fd: int = 3) -> int:
    """A read-only, close-on-exec fd of a sealed memfd holding the helper, numbered >= min_fd;
    -1 where there is no helper for this architecture."""
    if os.uname().machine not in ("x86_64", "amd64"):
        return -1
    import binascii

    from dockyard.sys import memfd

    try:
        fd = memfd.sealed(MARK, binascii.a2b_base64(_X86_64))
    except OSError:
        return -1
    if fd < min_fd:
        import fcntl

        high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, min_fd)
        os.close(fd)
        fd = high
    return fd


def _exec_helper(fd: int, argv: list[str], env: dict[str, str]) -> None:
    """Exec the helper (returns only if that was refused, e.g. by a seccomp profile that denies
    execveat: then through /proc/self/fd, then not at all)."""
    if fd < 0:
        return
    for target in (fd, f"/proc/self/fd/{fd}"):
        try:
            os.execve(target, argv, env)
        except OSError:
            continue


def exec_via(fd: int, path: str, args: list[str], env: dict[str, str]) -> None:
    """execve `path` through the helper in `fd` (never returns; raises if the exec fails)."""
    _exec_helper(fd, [MARK, "x", path, *args], env)
    os.execve(path, args, env)


def fork_exec_via(fd: int, report_fd: int, tty: bool, path: str, args: list[str], env: dict[str, str]) -> None:
    """Fork the process that enters the container's PID namespace and exec `path` there; the
    child's pid goes to `report_fd` as "pid N\n" and we exit. Never returns."""
    os.set_inheritable(report_fd, True)
    _exec_helper(fd, [MARK, "f", str(report_fd), "1" if tty else "0", path, *args], env)
    os.set_inheritable(report_fd, False)
    pid = os.fork()
    if pid == 0:
        try:
            os.setsid()
            if tty:
                from dockyard.sys import linux

                linux.ioctl_int(0, linux.TIOCSCTTY, 0)
            os.execve(path, args, env)
        except OSError as e:
            reason = (e.strerror or str(e)).lower()
            os.write(2, f"exec {path}: {reason}\n".encode())
        os._exit(1)
    os.write(report_fd, f"pid {pid}\n".encode())
    os._exit(0)
