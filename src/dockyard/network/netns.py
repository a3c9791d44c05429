"""Network namespaces as files: create one bind-mounted at a path, enter it from a thread, remove it.

A container's namespace lives at ``<exec_root>/netns/<container-id>``: an empty file with the
namespace bind-mounted on it, so it outlives any process and the runtime joins it by path (the OCI
spec's ``linux.namespaces[{type: network, path}]``). Creation never forks: the calling thread
unshares CLONE_NEWNET, bind-mounts ``/proc/thread-self/ns/net`` onto the file, and setns'es back
to the namespace it came from. ``entered(path)`` does the same round trip for work that must
happen inside (opening a netlink socket, binding the DNS socket at 127.0.0.11).

With userns-remap the daemon sets ``owner_userns`` (a pinned user namespace) around a
container's network setup: ``create`` then makes the namespace inside that user namespace, as runc
does for Docker, so the container's root holds its network capabilities there (raw sockets,
sysctls, sysfs). A thread of a threaded process cannot enter another user namespace, so a short
helper process (``nsenter --user ... unshare --net``) makes it and the namespace is pinned from
/proc/<helper>/ns/net.

All functions block (mount, setns): call them from a worker thread, never the event loop.
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import os
import subprocess
import time
from collections.abc import Callable, Iterator

from dockyard.sys import linux

# the user namespace (a path) new network namespaces belong to; None: the daemon's own
owner_userns: contextvars.ContextVar[str | None] = contextvars.ContextVar("dockyard_netns_owner_userns", default=None)


class NamespaceEscape(RuntimeError):
    """A thread could not return to its own namespace: it must not run anything else."""


@contextlib.contextmanager
def entered(path: str) -> Iterator[None]:
    """Run the body with the calling THREAD inside the network namespace at `path`."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        linux.setns_path(path, linux.CLONE_NEWNET)
        try:
            yield
        finally:
            _go_home(home)
    finally:
        os.close(home)


def _go_home(home_fd: int) -> None:
    try:
        linux.setns(home_fd, linux.CLONE_NEWNET)
    except OSError as e:  # pragma: no cover - would mean the kernel refused our own namespace
        raise NamespaceEscape(f"cannot return to the daemon's network namespace: {e}") from e


def create(path: str) -> None:
    """Create a new network namespace and pin it at `path` (its directory must exist)."""
    owner = owner_userns.get()
    if owner:
        _create_owned(path, owner)
        return
    fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
    os.close(fd)
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        try:
            linux.unshare(linux.CLONE_NEWNET)
        except OSError:
            os.unlink(path)
            raise
        try:
            linux.mount("/proc/thread-self/ns/net", path, None, linux.MS_BIND)
        except OSError:
            _go_home(home)
            os.unlink(path)
            raise
        _go_home(home)
    finally:
        os.close(home)


def _create_owned(path: str, userns: str) -> None:
    """A network namespace owned by the user namespace pinned at `userns`, pinned at `path`."""
    pin_via_helper(["nsenter", f"--user={userns}", "--", "unshare", "--net", "--", "sleep", "60"], "net", path,
                   f"creating a network namespace in {userns}")  # fmt: skip


def pin_via_helper(argv: list[str], kind: str, path: str, what: str,
                   before_pin: Callable[[int], None] | None = None) -> None:
    """Pin at `path` the new `kind` namespace ("net", "user") that the helper command `argv` (ending
    in a long sleep) runs in: start it, wait until /proc/<pid>/ns/<kind> differs from ours, call
    `before_pin(pid)` (e.g. to write a user namespace's maps), bind-mount the nsfs file, stop it.
    Used where a threaded process cannot unshare itself (user namespaces). `what` names the work in
    errors; on failure `path` is gone."""
    fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
    os.close(fd)
    ours = os.stat(f"/proc/thread-self/ns/{kind}").st_ino
    helper = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                if os.stat(f"/proc/{helper.pid}/ns/{kind}").st_ino != ours:
                    break
            except FileNotFoundError:
                pass
            if helper.poll() is not None or time.monotonic() > deadline:
                err = helper.stderr.read().decode(errors="replace").strip() if helper.stderr else ""
                raise OSError(errno.EPERM, f"{what}: {err or 'helper failed'}")
            time.sleep(0.001)
        if before_pin is not None:
            before_pin(helper.pid)
        linux.mount(f"/proc/{helper.pid}/ns/{kind}", path, None, linux.MS_BIND)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        raise
    finally:
        helper.kill()
        helper.wait()
        if helper.stderr:
            helper.stderr.close()


def remove(path: str) -> None:
    """Unmount and delete a namespace file; a missing or unmounted file is not an error."""
    try:
        linux.umount(path, linux.MNT_DETACH)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.ENOENT):
            raise
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def is_mounted(path: str) -> bool:
    """True if `path` is a live namespace mount (nsfs), not just the placeholder file."""
    try:
        return os.stat(path).st_dev != os.stat(os.path.dirname(path) or ".").st_dev
    except OSError:
        return False


def mounted_under(directory: str) -> list[str]:
    """Every nsfs mount point directly inside `directory` (for reconcile after a crash)."""
    directory = os.path.realpath(directory)
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if os.path.dirname(fields[4]) == directory and fields[fields.index("-") + 1] == "nsfs":
                out.append(fields[4])
    return out


def inode(path: str) -> int:
    """The namespace's inode number (equal to /proc/<pid>/ns/net's for processes inside it)."""
    return os.stat(path).st_ino
