"""Numbers for `dockyard info` and `system df`: the storage driver, its backing filesystem, and
the data root, in the shapes of Docker's /info (Driver, DriverStatus, DockerRootDir).

    driver_info(data_root) -> {"Driver": "overlay2", "DriverStatus": [[k, v], ...], "DockerRootDir": ...}
    backing_filesystem(path) -> "extfs" | "xfs" | "btrfs" | "tmpfs" | ...
"""

from __future__ import annotations

import os

# Docker's names for filesystem types (graphdriver's FsNames), keyed by the kernel's names
_FS_NAMES = {
    "ext2": "extfs",
    "ext3": "extfs",
    "ext4": "extfs",
    "xfs": "xfs",
    "btrfs": "btrfs",
    "tmpfs": "tmpfs",
    "overlay": "overlayfs",
    "zfs": "zfs",
    "nfs": "nfs",
    "nfs4": "nfs",
    "f2fs": "f2fs",
    "squashfs": "squashfs",
    "fuse": "fuse",
}


def _unescape(s: str) -> str:
    return s.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def mount_fstype(path: str) -> str:
    """The kernel's filesystem type of the mount holding `path` (longest mountpoint prefix)."""
    path = os.path.realpath(path)
    best, fstype = "", "unknown"
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            mp = _unescape(fields[4])
            if (path == mp or path.startswith(mp.rstrip("/") + "/")) and len(mp) >= len(best):
                best, fstype = mp, fields[fields.index("-") + 1]
    return fstype


def backing_filesystem(path: str) -> str:
    t = mount_fstype(path)
    return _FS_NAMES.get(t, t)


def supports_d_type(path: str) -> bool:
    """Whether readdir reports file types (overlayfs needs it)."""
    try:
        with os.scandir(path) as it:
            for entry in it:
                entry.is_dir(follow_symlinks=False)
                return True
    except OSError:
        return False
    return True


def driver_info(data_root: str) -> dict:
    home = os.path.join(data_root, "overlay2")
    probe = home if os.path.isdir(home) else data_root
    return {
        "Driver": "overlay2",
        "DriverStatus": [
            ["Backing Filesystem", backing_filesystem(probe)],
            ["Supports d_type", "true" if supports_d_type(probe) else "false"],
            ["Using metacopy", "false"],
            ["Native Overlay Diff", "true"],
            ["userxattr", "false"],
        ],
        "DockerRootDir": data_root,
    }
