"""Terminals: open a pty inside the container, pass its master over a unix socket with
SCM_RIGHTS (runc's --console-socket protocol), and relay a pty to our own stdio for `run`/`exec`
without a console socket.

Uses `_socket` and `select` directly: the `socket` module drags in `enum` and `selectors`.
"""

from __future__ import annotations

import os

from dockyard.sys import linux as L

SOL_SOCKET = 1
SCM_RIGHTS = 1


def connect(path: str) -> int:
    """Connect to a console socket; returns the fd (inherited by the container's init)."""
    import _socket

    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        s.connect(path)
    except OSError as e:
        s.close()
        raise OSError(e.errno, f"connect to console socket {path}: {e.strerror}") from None
    return s.detach()


def socketpair() -> tuple[int, int]:
    import _socket

    a, b = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM)
    return a.detach(), b.detach()


def send_fd(sock_fd: int, fd: int, name: str) -> None:
    import _socket

    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM, 0, sock_fd)
    try:
        s.sendmsg([name.encode()], [(SOL_SOCKET, SCM_RIGHTS, fd.to_bytes(4, "little"))])
    finally:
        s.detach()


def recv_fd(sock_fd: int) -> int:
    import _socket

    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM, 0, sock_fd)
    try:
        _msg, anc, _flags, _addr = s.recvmsg(4096, _socket.CMSG_SPACE(4))
    finally:
        s.detach()
    for level, kind, data in anc:
        if level == SOL_SOCKET and kind == SCM_RIGHTS and len(data) >= 4:
            return int.from_bytes(data[:4], "little")
    raise OSError("no file descriptor received on the console socket")


def open_pty() -> tuple[int, int, str]:
    """Open a new pty through /dev/ptmx of the current root; returns (master, slave, slave path)."""
    master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    L.ioctl_set_int(master, L.TIOCSPTLCK, 0)
    n = L.ioctl_get_int(master, L.TIOCGPTN)
    path = f"/dev/pts/{n}"
    slave = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    return master, slave, path


def setup_console(sock_fd: int, uid: int, gid: int, bind_console: bool,
                  size: tuple[int, int] | None = None, ctty: bool = True) -> None:
    """In the container: a pty becomes our controlling terminal (unless `ctty` is False: then a
    child that calls setsid takes it) and stdio; the master goes out. `size` (rows, columns) is
    process.consoleSize."""
    master, slave, path = open_pty()
    try:
        if size and size[0] and size[1]:
            L.set_winsize(master, size[0], size[1])
        try:
            os.fchown(slave, uid, gid)
        except OSError:
            pass
        if bind_console:
            try:
                fd = os.open("/dev/console", os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
                os.close(fd)
            except FileExistsError:
                pass
            L.mount(path, "/dev/console", None, L.MS_BIND)
        send_fd(sock_fd, master, path)
    finally:
        os.close(master)
    if ctty:
        L.ioctl_int(slave, L.TIOCSCTTY, 0)
    for i in range(3):
        os.dup2(slave, i)
    if slave > 2:
        os.close(slave)


def relay(master: int, child_exited) -> None:
    """Copy our stdin to the pty master and the master to our stdout until `child_exited()` says
    the container's process is gone and the master has drained. Our terminal (if stdin is one)
    is put in raw mode meanwhile and its size follows SIGWINCH."""
    import _signal
    import select

    stdin_tty = os.isatty(0)
    saved = None
    if stdin_tty:
        import termios

        saved = termios.tcgetattr(0)
        raw = termios.tcgetattr(0)
        raw[0] &= ~(termios.BRKINT | termios.ICRNL | termios.INPCK | termios.ISTRIP | termios.IXON)
        raw[1] &= ~termios.OPOST
        raw[2] = (raw[2] & ~(termios.CSIZE | termios.PARENB)) | termios.CS8
        raw[3] &= ~(termios.ECHO | termios.ICANON | termios.IEXTEN | termios.ISIG)
        raw[6][termios.VMIN] = 1
        raw[6][termios.VTIME] = 0
        termios.tcsetattr(0, termios.TCSAFLUSH, raw)

    def resize(*_a: object) -> None:
        try:
            rows, cols = L.get_winsize(0)
            L.set_winsize(master, rows, cols)
        except OSError:
            pass

    if stdin_tty:
        resize()
        _signal.signal(28, resize)  # SIGWINCH
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    old_wakeup = _signal.set_wakeup_fd(wake_w)
    old_chld = _signal.signal(17, lambda *_: None)  # SIGCHLD wakes poll through the wakeup fd
    os.set_blocking(master, False)
    p = select.poll()
    p.register(master, select.POLLIN)
    p.register(wake_r, select.POLLIN)
    stdin_open = True
    try:
        p.register(0, select.POLLIN)
    except (OSError, ValueError):
        stdin_open = False
    try:
        while True:
            if child_exited():
                _drain(master)
                return
            try:
                events = p.poll(1000)
            except InterruptedError:
                continue
            for fd, _ev in events:
                if fd == wake_r:
                    try:
                        os.read(wake_r, 512)
                    except BlockingIOError:
                        pass
                elif fd == master:
                    try:
                        data = os.read(master, 65536)
                    except BlockingIOError:
                        continue
                    except OSError:  # EIO: the last slave closed
                        data = b""
                    if not data:
                        p.unregister(master)
                        continue
                    _write_all(1, data)
                elif fd == 0 and stdin_open:
                    try:
                        data = os.read(0, 65536)
                    except OSError:
                        data = b""
                    if not data:
                        stdin_open = False
                        p.unregister(0)
                        continue
                    try:
                        _write_all(master, data)
                    except OSError:
                        pass
    finally:
        _signal.set_wakeup_fd(old_wakeup)
        _signal.signal(17, old_chld)
        os.close(wake_r)
        os.close(wake_w)
        if saved is not None:
            import termios

            termios.tcsetattr(0, termios.TCSAFLUSH, saved)


def _drain(master: int) -> None:
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            return
        if not data:
            return
        _write_all(1, data)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            import select

            select.select([], [fd], [])
            continue
        view = view[n:]
