"""Carry out a rootfs plan (dockyard.runtime.plan) inside the container's mount namespace.

Every path inside the rootfs is resolved with openat2(RESOLVE_IN_ROOT) and mounted through
/proc/self/fd/N, so a symlink planted in an image (say /etc -> /) cannot redirect a mount, a
device node or a symlink onto the host. Missing mount points are created the same way, one
component at a time. Runs in the container's init before pivot_root, then again after it for
the operations that address paths inside the container (sysctl, read-only and masked paths).
"""

from __future__ import annotations

import errno
import os
import stat

from dockyard.runtime.plan import Device, Mount
from dockyard.sys import linux as L

TYPE_CHECKING = False
if TYPE_CHECKING:  # collections.abc costs import time on the hot path
    from collections.abc import Callable

_ST_TO_MS = ((1, L.MS_RDONLY), (2, L.MS_NOSUID), (4, L.MS_NODEV), (8, L.MS_NOEXEC),
             (1024, L.MS_NOATIME), (2048, L.MS_NODIRATIME), (4096, L.MS_RELATIME))


class RootfsError(Exception):
    pass


class Context:
    """What the executor needs besides the plan."""

    def __init__(self, rootfs: str, userns: bool = False) -> None:
        self.rootfs = rootfs
        self.userns = userns
        # for "cgroup" mounts: (directory name, host path of the container's cgroup, mount options)
        self.cgroup_dirs: list[tuple[str, str, str]] = []
        self.cgroup_v2 = False
        self.cgroupns = False
        self.links: list[tuple[str, str]] = []  # comounted hierarchy symlinks, e.g. cpu -> cpu,cpuacct
        self.before_pivot: Callable[[], None] | None = None
        self.console: Callable[[], None] | None = None
        self.rootfd = -1


# --- secure paths inside the rootfs ---------------------------------------------------------------
def _rel(path: str) -> str:
    return path.lstrip("/") or "."


def open_in_root(rootfd: int, path: str, flags: int = os.O_PATH) -> int:
    return L.openat2(rootfd, _rel(path), flags, 0, L.RESOLVE_IN_ROOT)


def ensure_path(rootfd: int, path: str, kind: str = "dir") -> int:
    """Resolve `path` inside the root, creating missing directories (and the final file when
    kind == "file"); returns an O_PATH fd on the result. A symlink on the way that points at
    nothing yet is followed inside the root and its target created, as runc's SecureJoin +
    MkdirAll do (an image's /etc/x -> /../../host/dir gets <root>/host/dir, never the host's)."""
    rel = _rel(path)
    try:
        return L.openat2(rootfd, rel, os.O_PATH, 0, L.RESOLVE_IN_ROOT)
    except FileNotFoundError:
        pass
    todo = [p for p in rel.split("/") if p and p != "."]
    done: list[str] = []  # components resolved so far: real directories, no symlinks
    links = 0
    while todo:
        name = todo.pop(0)
        if name == "..":
            if done:
                done.pop()
            continue
        parent = L.openat2(rootfd, "/".join(done) or ".", os.O_PATH | os.O_DIRECTORY, 0,
                           L.RESOLVE_IN_ROOT | L.RESOLVE_NO_SYMLINKS)  # fmt: skip
        try:
            try:
                st = os.stat(name, dir_fd=parent, follow_symlinks=False)
            except FileNotFoundError:
                st = None
            if st is not None and stat.S_ISLNK(st.st_mode):
                links += 1
                if links > 40:
                    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
                target = os.readlink(name, dir_fd=parent)
                if target.startswith("/"):
                    done = []
                todo[:0] = [p for p in target.split("/") if p and p != "."]
                continue
            if st is None:
                try:
                    if not todo and kind == "file":
                        os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW,
                                         0o755, dir_fd=parent))  # fmt: skip
                    else:
                        os.mkdir(name, 0o755, dir_fd=parent)
                except FileExistsError:
                    todo.insert(0, name)  # made meanwhile (a symlink?): look again
                    continue
            elif todo and not stat.S_ISDIR(st.st_mode):
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
            done.append(name)
        finally:
            os.close(parent)
    return L.openat2(rootfd, "/".join(done) or ".", os.O_PATH, 0, L.RESOLVE_IN_ROOT)


def _fdpath(fd: int) -> str:
    return f"/proc/self/fd/{fd}"


def _split(path: str) -> tuple[str, str]:
    d, name = os.path.split(path.rstrip("/"))
    return d or "/", name


def _locked_flags(target: str) -> int:
    st = os.statvfs(target)
    out = 0
    for bit, ms in _ST_TO_MS:
        if st.f_flag & bit:
            out |= ms
    return out


def remount(target: str, flags: int, data: str | None = None, fstype: str | None = None) -> None:
    """A bind remount with `flags`, retrying with the mount's locked flags (user namespaces)."""
    try:
        L.mount(None, target, fstype, flags, data)
    except PermissionError:
        L.mount(None, target, fstype, flags | _locked_flags(target), data)


# --- checks on mount destinations (runc's) --------------------------------------------------------
# the /proc files lxcfs-style setups may cover
_PROC_ALLOWED = ("/proc/cpuinfo", "/proc/diskstats", "/proc/meminfo", "/proc/stat", "/proc/swaps", "/proc/uptime",
                 "/proc/loadavg", "/proc/slabinfo", "/proc/net/dev", "/proc/sys/kernel/ns_last_pid")  # fmt: skip


def _check_proc_sys_target(ctx: Context, m: Mount) -> None:
    """procfs and sysfs go on a real directory: a symlink there (an image's /proc -> elsewhere)
    could move them, and the masked and read-only paths with them, under the container's control."""
    try:
        fd = L.openat2(ctx.rootfd, _rel(m.dest), os.O_PATH | os.O_NOFOLLOW, 0, L.RESOLVE_IN_ROOT | L.RESOLVE_NO_SYMLINKS)
    except FileNotFoundError:
        return
    except OSError as e:
        if e.errno != errno.ELOOP:
            raise
        fd = -1
    try:
        if fd < 0 or not stat.S_ISDIR(os.fstat(fd).st_mode):
            raise RootfsError(f'error mounting "{m.source}" to rootfs at "{m.dest}": filesystem "{m.fstype}" '
                              "must be mounted on ordinary directory")  # fmt: skip
    finally:
        if fd >= 0:
            os.close(fd)


def _check_destination(ctx: Context, m: Mount, fd: int) -> None:
    """Where a mount really lands (symlinks resolved inside the root): not over the root itself,
    and, but for procfs on /proc and a few lxcfs files, not on or under /proc."""
    st = os.fstat(fd)
    root = os.fstat(ctx.rootfd)
    if (st.st_dev, st.st_ino) == (root.st_dev, root.st_ino):
        raise RootfsError(f'error mounting "{m.source}" to rootfs at "{m.dest}": the destination resolves to the '
                          "container's root directory")  # fmt: skip
    where = os.readlink(_fdpath(fd))
    base = os.readlink(_fdpath(ctx.rootfd)).rstrip("/")
    if not where.startswith(base + "/"):
        return
    inside = where[len(base):]
    if inside == "/proc":
        if (m.fstype == "proc" and not m.bind) or (m.bind and os.path.realpath(m.source) == "/proc"):
            return  # procfs, or a bind of the host's
    elif not inside.startswith("/proc/") or inside in _PROC_ALLOWED:
        return
    raise RootfsError(f'error mounting "{m.source}" to rootfs at "{m.dest}": "{inside}" cannot be mounted because '
                      "it is inside /proc")  # fmt: skip


# --- operations -----------------------------------------------------------------------------------
def _mount_one(ctx: Context, m: Mount) -> None:
    kind = "dir"
    if m.bind:
        try:
            if not stat.S_ISDIR(os.stat(m.source).st_mode):
                kind = "file"
        except FileNotFoundError:
            raise RootfsError(f"mount {m.source} to {m.dest}: bind source does not exist") from None
    if m.fstype in ("proc", "sysfs") and not m.bind:
        _check_proc_sys_target(ctx, m)
    fd = ensure_path(ctx.rootfd, m.dest, kind)
    try:
        _check_destination(ctx, m, fd)
        target = _fdpath(fd)
        if m.bind:
            L.mount(m.source, target, None, m.flags & (L.MS_BIND | L.MS_REC))
        elif m.tmpcopyup:
            _tmpcopyup(ctx, m, fd)
        else:
            try:
                L.mount(m.source, target, m.fstype or None, m.flags, m.data or None)
            except PermissionError:
                if m.fstype != "sysfs":
                    raise
                # a user namespace without its own network namespace cannot mount sysfs: bind it
                L.mount("/sys", target, None, L.MS_BIND | L.MS_REC)
                m = Mount("/sys", m.dest, "bind", m.flags | L.MS_BIND | L.MS_REC, "", m.propagation)
        os.close(fd)
        # the fd names the covered directory: resolve again to reach the new mount on top of it
        fd = open_in_root(ctx.rootfd, m.dest)
        target = _fdpath(fd)
        if m.bind:
            extra = m.flags & ~(L.MS_BIND | L.MS_REC | L.MS_REMOUNT)
            if extra:
                remount(target, L.MS_BIND | L.MS_REMOUNT | extra)
        if m.attr_set or m.attr_clr:
            L.mount_setattr(target, m.attr_set, m.attr_clr, recursive=True)
        for p in m.propagation:
            L.mount(None, target, None, p)
    except OSError as e:
        raise RootfsError(f"mount {m.source}:{m.dest} (type {m.fstype or 'bind'}): {e.strerror}") from None
    finally:
        os.close(fd)


def _copy_tree(src_fd: int, dst_fd: int) -> None:
    for entry in os.scandir(src_fd):
        st = entry.stat(follow_symlinks=False)
        name = entry.name
        if stat.S_ISDIR(st.st_mode):
            os.mkdir(name, stat.S_IMODE(st.st_mode), dir_fd=dst_fd)
            s = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=src_fd)
            d = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dst_fd)
            try:
                _copy_tree(s, d)
            finally:
                os.close(s)
                os.close(d)
        elif stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(name, dir_fd=src_fd), name, dir_fd=dst_fd)
        elif stat.S_ISREG(st.st_mode):
            s = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=src_fd)
            d = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IMODE(st.st_mode), dir_fd=dst_fd)
            try:
                while True:
                    n = os.sendfile(d, s, None, 1 << 20)
                    if not n:
                        break
            finally:
                os.close(s)
                os.close(d)
        else:
            continue
        os.chown(name, st.st_uid, st.st_gid, dir_fd=dst_fd, follow_symlinks=False)


def _tmpcopyup(ctx: Context, m: Mount, fd: int) -> None:
    """tmpfs over a directory, seeded with what the directory held (runc's "tmpcopyup")."""
    target = _fdpath(fd)
    old = os.open(target, os.O_RDONLY | os.O_DIRECTORY)
    try:
        L.mount(m.source, target, "tmpfs", m.flags & ~L.MS_RDONLY, m.data or None)
        new = open_in_root(ctx.rootfd, m.dest, os.O_RDONLY | os.O_DIRECTORY)
        try:
            _copy_tree(old, new)
        finally:
            os.close(new)
        if m.flags & L.MS_RDONLY:
            top = open_in_root(ctx.rootfd, m.dest)
            try:
                L.mount(m.source, _fdpath(top), "tmpfs", m.flags | L.MS_REMOUNT, m.data or None)
            finally:
                os.close(top)
    finally:
        os.close(old)


def _mount_cgroup(ctx: Context, m: Mount) -> None:
    flags = m.flags & ~(L.MS_BIND | L.MS_REC)
    fd = ensure_path(ctx.rootfd, m.dest, "dir")
    try:
        if ctx.cgroup_v2:
            if ctx.cgroupns:
                L.mount("cgroup2", _fdpath(fd), "cgroup2", flags, None)
            else:
                path = ctx.cgroup_dirs[0][1] if ctx.cgroup_dirs else "/sys/fs/cgroup"
                L.mount(path, _fdpath(fd), None, L.MS_BIND | L.MS_REC)
                os.close(fd)
                fd = open_in_root(ctx.rootfd, m.dest)
                remount(_fdpath(fd), L.MS_BIND | L.MS_REMOUNT | flags)
        else:
            L.mount("tmpfs", _fdpath(fd), "tmpfs", flags & ~L.MS_RDONLY, "mode=755")
            os.close(fd)
            fd = open_in_root(ctx.rootfd, m.dest)  # the tmpfs just mounted
            for name, host_path, opts in ctx.cgroup_dirs:
                os.mkdir(name, 0o755, dir_fd=fd)
                sub = open_in_root(ctx.rootfd, f"{m.dest}/{name}")
                try:
                    if ctx.cgroupns:
                        L.mount("cgroup", _fdpath(sub), "cgroup", flags, opts)
                    else:
                        L.mount(host_path, _fdpath(sub), None, L.MS_BIND | L.MS_REC)
                finally:
                    os.close(sub)
            for link, to in ctx.links:
                try:
                    os.symlink(to, link, dir_fd=fd)
                except FileExistsError:
                    pass
            if not ctx.cgroupns and flags:
                _restrict_tree(ctx, m.dest, fd, [n for n, _, _ in ctx.cgroup_dirs], flags)
            elif flags & L.MS_RDONLY:
                L.mount("tmpfs", _fdpath(fd), "tmpfs", flags | L.MS_REMOUNT, "mode=755")
        for p in m.propagation:
            L.mount(None, _fdpath(fd), None, p)
    except OSError as e:
        raise RootfsError(f"mount cgroup:{m.dest}: {e.strerror}") from None
    finally:
        os.close(fd)


_MS_TO_ATTR = ((L.MS_RDONLY, L.MOUNT_ATTR_RDONLY), (L.MS_NOSUID, L.MOUNT_ATTR_NOSUID),
               (L.MS_NODEV, L.MOUNT_ATTR_NODEV), (L.MS_NOEXEC, L.MOUNT_ATTR_NOEXEC))


def _restrict_tree(ctx: Context, dest: str, fd: int, subdirs: list[str], flags: int) -> None:
    """Apply ro/nosuid/nodev/noexec to the cgroup tmpfs and every bind below it: one recursive
    mount_setattr(2), or (older kernels) a remount per mount."""
    attrs = 0
    for ms, attr in _MS_TO_ATTR:
        if flags & ms:
            attrs |= attr
    try:
        L.mount_setattr(_fdpath(fd), attrs, 0, recursive=True)
        return
    except OSError as e:
        if e.errno not in (errno.ENOSYS, errno.EINVAL, errno.EPERM):
            raise
    for name in subdirs:
        sub = open_in_root(ctx.rootfd, f"{dest}/{name}")
        try:
            remount(_fdpath(sub), L.MS_BIND | L.MS_REMOUNT | flags)
        finally:
            os.close(sub)
    if flags & L.MS_RDONLY:
        L.mount("tmpfs", _fdpath(fd), "tmpfs", flags | L.MS_REMOUNT, "mode=755")


_DEV_KIND = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}


def _device(ctx: Context, d: Device) -> None:
    parent_path, name = _split(d.path)
    pfd = ensure_path(ctx.rootfd, parent_path, "dir")
    try:
        if ctx.userns:
            _bind_device(ctx, d)
            return
        mode = _DEV_KIND.get(d.kind)
        if mode is None:
            raise RootfsError(f"device {d.path}: unknown type {d.kind!r}")
        dev = os.makedev(d.major, d.minor)
        try:
            os.mknod(name, mode | d.mode, dev, dir_fd=pfd)
        except FileExistsError:
            os.unlink(name, dir_fd=pfd)
            os.mknod(name, mode | d.mode, dev, dir_fd=pfd)
        except PermissionError:
            _bind_device(ctx, d)
            return
        os.chown(name, d.uid, d.gid, dir_fd=pfd, follow_symlinks=False)
        os.chmod(name, d.mode, dir_fd=pfd)  # mknod honours the umask; the spec's mode wins
    except OSError as e:
        raise RootfsError(f"device {d.path}: {e.strerror}") from None
    finally:
        os.close(pfd)


def _bind_device(ctx: Context, d: Device) -> None:
    fd = ensure_path(ctx.rootfd, d.path, "file")
    try:
        L.mount(d.path, _fdpath(fd), None, L.MS_BIND)
    finally:
        os.close(fd)


def _symlink(ctx: Context, target: str, path: str) -> None:
    parent_path, name = _split(path)
    pfd = ensure_path(ctx.rootfd, parent_path, "dir")
    try:
        os.symlink(target, name, dir_fd=pfd)
    except FileExistsError:
        pass
    finally:
        os.close(pfd)


def _ptmx(ctx: Context) -> None:
    pfd = ensure_path(ctx.rootfd, "/dev", "dir")
    try:
        try:
            os.unlink("ptmx", dir_fd=pfd)
        except FileNotFoundError:
            pass
        os.symlink("pts/ptmx", "ptmx", dir_fd=pfd)
    finally:
        os.close(pfd)


def _pivot(ctx: Context, no_pivot: bool) -> None:
    if no_pivot:
        os.chdir(ctx.rootfs)
        L.mount(ctx.rootfs, "/", None, L.MS_MOVE)
        os.chroot(".")
        os.chdir("/")
        return
    old = os.open("/", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    new = os.open(ctx.rootfs, os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fchdir(new)
        L.pivot_root(".", ".")
        os.fchdir(old)
        # the old root is stacked under "."; cut its propagation, then detach it
        L.mount(None, ".", None, L.MS_SLAVE | L.MS_REC)
        L.umount(".", L.MNT_DETACH)
        os.chdir("/")
    finally:
        os.close(old)
        os.close(new)


def _rootfs_parent_private(path: str) -> None:
    """Make the mount `path` lives on private (walking up to the nearest mount point, as runc):
    pivot_root refuses a shared parent, and a bind under a shared one would reach the host."""
    import errno

    while True:
        try:
            L.mount(None, path, None, L.MS_PRIVATE)
            return
        except OSError as e:
            if e.errno != errno.EINVAL or path == "/":
                raise RootfsError(f"remount-private {path}: {e.strerror}") from None
        path = os.path.dirname(path) or "/"


def _readonly(path: str) -> None:
    """A read-only bind of `path` onto itself that keeps the nosuid/nodev/noexec of the mount it
    is on (as runc: /proc/sys stays noexec,nosuid,nodev)."""
    try:
        L.mount(path, path, None, L.MS_BIND | L.MS_REC)
    except FileNotFoundError:
        return
    kept = os.statvfs(path).f_flag & (L.MS_NOSUID | L.MS_NODEV | L.MS_NOEXEC)  # ST_* == MS_* for these
    remount(path, L.MS_BIND | L.MS_REMOUNT | L.MS_RDONLY | L.MS_REC | kept)


def _masked(path: str) -> None:
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return
    if stat.S_ISDIR(st.st_mode):
        L.mount("tmpfs", path, "tmpfs", L.MS_RDONLY)
    else:
        L.mount("/dev/null", path, None, L.MS_BIND)


def _sysctl(key: str, value: str) -> None:
    path = "/proc/sys/" + key.replace(".", "/")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
    except OSError as e:
        raise RootfsError(f"sysctl {key}: {e.strerror}") from None
    try:
        os.write(fd, value.encode())
    except OSError as e:
        raise RootfsError(f"sysctl {key}={value}: {e.strerror}") from None
    finally:
        os.close(fd)


def execute(ops: list[tuple], ctx: Context) -> None:
    """Run the plan. Raises RootfsError (or OSError) with the operation named."""
    try:
        for op in ops:
            tag = op[0]
            if tag == "mount":
                _mount_one(ctx, op[1])
            elif tag == "device":
                _device(ctx, op[1])
            elif tag == "symlink":
                _symlink(ctx, op[1], op[2])
            elif tag == "cgroup":
                _mount_cgroup(ctx, op[1])
            elif tag == "propagation":
                L.mount(None, "/", None, op[1])
            elif tag == "rootfs_parent_private":
                _rootfs_parent_private(op[1])
            elif tag == "bind_rootfs":
                L.mount(op[1], op[1], None, L.MS_BIND | L.MS_REC)
                ctx.rootfd = os.open(op[1], os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            elif tag == "ptmx":
                _ptmx(ctx)
            elif tag == "pivot":
                if ctx.before_pivot is not None:
                    ctx.before_pivot()
                os.close(ctx.rootfd)
                ctx.rootfd = -1
                _pivot(ctx, op[1])
            elif tag == "console":
                if ctx.console is not None:
                    ctx.console()
            elif tag == "sysctl":
                _sysctl(op[1], op[2])
            elif tag == "readonly":
                _readonly(op[1])
            elif tag == "masked":
                _masked(op[1])
            elif tag == "root_readonly":
                remount("/", L.MS_BIND | L.MS_REMOUNT | L.MS_RDONLY)
            elif tag == "root_propagation":
                L.mount(None, "/", None, op[1])
            else:  # pragma: no cover - the plan and this table are written together
                raise RootfsError(f"unknown rootfs operation {tag}")
    except RootfsError:
        raise
    except OSError as e:
        where = f" {e.filename}" if e.filename else ""
        raise RootfsError(f"rootfs setup ({op[0]}){where}: {e.strerror or errno.errorcode.get(e.errno, e)}") from None
