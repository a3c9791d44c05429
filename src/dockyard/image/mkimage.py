"""Root filesystem tars for base images made offline: `dockyard mkimage busybox|debian`.

The CLI calls these and POSTs the tar to `/images/create?fromSrc=-` (what `docker import` does).
Only the standard library is imported (the CLI must start fast).

    busybox_tar(out)                            write a busybox rootfs tar to a binary file
    debian_rootfs(suite="bookworm", mirror=None, cache_dir=None, deb_cache=None) -> rootfs path
        debootstrap --variant=minbase, cached per (suite, mirror): a second call is instant;
        the .debs debootstrap fetches are kept in `deb_cache` (default <cache_dir>/debs,
        debootstrap's --cache-dir) so a rebuild downloads nothing it has
    debian_tar_stream(suite, mirror, cache_dir) -> (Popen, stdout) a tar of that rootfs

The cache directory is DOCKYARD_MKIMAGE_CACHE when set, else /var/cache/dockyard/mkimage.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile

from dockyard.image.busybox_rootfs import build_busybox_rootfs

DEFAULT_CACHE = "/var/cache/dockyard/mkimage"


def _default_mirror() -> str:
    """The first Debian mirror in apt's sources, else deb.debian.org."""
    candidates = ["/etc/apt/sources.list"]
    d = "/etc/apt/sources.list.d"
    if os.path.isdir(d):
        candidates += [os.path.join(d, f) for f in sorted(os.listdir(d)) if f.endswith((".list", ".sources"))]
    for path in candidates:
        try:
            with open(path) as f:
                for line in f:
                    line = line.strip()
                    if line.startswith("URIs:"):
                        for uri in line.split()[1:]:
                            if not uri.endswith("-security"):
                                return uri
                    elif line.startswith("deb "):
                        for word in line.split()[1:]:
                            if "://" in word and not word.endswith("-security"):
                                return word
        except OSError:
            continue
    return "http://deb.debian.org/debian"


def busybox_tar(out, busybox: str | None = None) -> None:  # noqa: ANN001 - binary writer
    """Write the busybox rootfs (see busybox_rootfs.py) as an uncompressed tar to `out`."""
    with tempfile.TemporaryDirectory(prefix="dockyard-mkimage-") as tmp:
        root = build_busybox_rootfs(os.path.join(tmp, "rootfs"), busybox)
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf:
            for dirpath, dirnames, filenames in os.walk(root):
                dirnames.sort()
                rel = os.path.relpath(dirpath, root)
                for name in sorted(dirnames) + sorted(filenames):
                    full = os.path.join(dirpath, name)
                    arc = name if rel == "." else f"{rel}/{name}"
                    ti = tf.gettarinfo(full, arc)
                    ti.uid = ti.gid = 0
                    ti.uname = ti.gname = "root"
                    if ti.isreg():
                        with open(full, "rb") as f:
                            tf.addfile(ti, f)
                    else:
                        tf.addfile(ti)


def cache_root() -> str:
    return os.environ.get("DOCKYARD_MKIMAGE_CACHE") or DEFAULT_CACHE


def debian_rootfs(
    suite: str = "bookworm", mirror: str | None = None, cache_dir: str | None = None, deb_cache: str | None = None
) -> str:
    """A debootstrap --variant=minbase rootfs for `suite`, built once and cached."""
    mirror = mirror or _default_mirror()
    cache_dir = cache_dir or cache_root()
    deb_cache = os.path.realpath(deb_cache or os.path.join(cache_dir, "debs"))
    key = hashlib.sha256(f"{suite} {mirror}".encode()).hexdigest()[:12]
    dest = os.path.join(cache_dir, f"debian-{suite}-minbase-{key}")
    if os.path.exists(os.path.join(dest, ".complete")):
        return os.path.join(dest, "rootfs")
    if shutil.which("debootstrap") is None:
        raise FileNotFoundError("debootstrap is needed: apt-get install debootstrap")
    os.makedirs(cache_dir, exist_ok=True)
    os.makedirs(deb_cache, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".debian-{suite}-", dir=cache_dir)
    try:
        subprocess.run(
            ["debootstrap", "--variant=minbase", f"--cache-dir={deb_cache}", suite, os.path.join(tmp, "rootfs"), mirror],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        # apt caches and logs are not part of an image
        for sub in ("var/cache/apt/archives", "var/lib/apt/lists"):
            p = os.path.join(tmp, "rootfs", sub)
            for name in os.listdir(p) if os.path.isdir(p) else []:
                fp = os.path.join(p, name)
                if os.path.isfile(fp) and not os.path.islink(fp) and name != "lock":
                    os.unlink(fp)
        with open(os.path.join(tmp, ".complete"), "w") as f:
            f.write(f"{suite} {mirror}\n")
        if os.path.exists(dest):
            shutil.rmtree(dest)
        os.rename(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return os.path.join(dest, "rootfs")


def debian_tar_stream(suite: str = "bookworm", mirror: str | None = None, cache_dir: str | None = None):  # noqa: ANN201
    """(process, stdout): an uncompressed tar of the cached debian rootfs; wait() the process."""
    root = debian_rootfs(suite, mirror, cache_dir)
    proc = subprocess.Popen(
        ["tar", "--numeric-owner", "--xattrs", "--xattrs-include=security.capability", "--sort=name", "-C", root, "-cf", "-", "."],
        stdout=subprocess.PIPE,
    )
    return proc, proc.stdout
