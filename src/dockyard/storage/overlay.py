"""The overlay2 driver: layer directories under `<data-root>/overlay2` laid out as Docker's are.

Each layer `<id>` has `diff/` (its files), `link` (a 26-character short name), and, when it has
a parent, `lower` (colon-separated `l/<short>` names of every layer below it, top first) and
`work/`; a mounted layer also has `merged/`. `l/<short>` is a symlink to `../<id>/diff`, which
keeps mount options short.

Mounting builds `lowerdir=<l/...>:...,upperdir=<id>/diff,workdir=<id>/work` (plus `index=off`
when the kernel knows it); when the option string would not fit in a page, the new mount API
adds one `lowerdir+` at a time, so an image of 100+ layers mounts. Mounts are reference counted
in memory; a mount found at start-up (daemon restart) counts as one.

With `root_ids` (userns-remap: the host uid and gid of the containers' root), `diff/`, `work/`
and `merged/` belong to that user and each layer directory is group-searchable by its group, as
Docker's driver makes them, so a container's root can reach and write its root filesystem.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
import subprocess
import threading

from dockyard.sys import fsflags, linux

LINK_DIR = "l"
_ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _short_id() -> str:
    return "".join(secrets.choice(_ID_CHARS) for _ in range(26))


def mounted_paths() -> set[str]:
    out = set()
    with open("/proc/self/mountinfo") as f:
        for line in f:
            out.add(line.split()[4].encode().decode("unicode_escape"))
    return out


class Overlay2:
    """The directories and mounts of overlay2 layers under `home` (`<data-root>/overlay2`)."""

    name = "overlay2"

    def __init__(self, home: str, root_ids: tuple[int, int] | None = None) -> None:
        self.home = home
        self.root_ids = root_ids if root_ids and root_ids != (0, 0) else None
        os.makedirs(os.path.join(home, LINK_DIR), mode=0o700, exist_ok=True)
        # each new layer goes to a block group with free inodes (see sys/fsflags.py)
        fsflags.set_topdir(home)
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._extra_opts: list[str] | None = None
        mounted = mounted_paths()
        for name in os.listdir(home):
            if os.path.join(home, name, "merged") in mounted:
                self._counts[name] = 1

    # --- layout -----------------------------------------------------------------------------------
    def dir(self, layer_id: str) -> str:
        return os.path.join(self.home, layer_id)

    def diff_path(self, layer_id: str) -> str:
        return os.path.join(self.home, layer_id, "diff")

    def exists(self, layer_id: str) -> bool:
        return os.path.isdir(self.diff_path(layer_id))

    def create(self, layer_id: str) -> str:
        """Make `<id>/diff`, `<id>/link` and `l/<short>`; returns the diff path."""
        d = self.dir(layer_id)
        os.mkdir(d, 0o710)
        os.mkdir(os.path.join(d, "diff"), 0o755)
        if self.root_ids:
            os.chown(d, 0, self.root_ids[1])
            os.chown(os.path.join(d, "diff"), *self.root_ids)
        short = _short_id()
        os.symlink(f"../{layer_id}/diff", os.path.join(self.home, LINK_DIR, short))
        with open(os.path.join(d, "link"), "w") as f:
            f.write(short)
        return os.path.join(d, "diff")

    def set_parent(self, layer_id: str, parent_id: str | None) -> None:
        """Write `lower` (the parent's link, then the parent's own lowers) and make `work/`."""
        d = self.dir(layer_id)
        if parent_id is None:
            return
        lowers = [f"{LINK_DIR}/{self.link(parent_id)}"] + self.lower_links(parent_id)
        with open(os.path.join(d, "lower"), "w") as f:
            f.write(":".join(lowers))
        self._make_owned(os.path.join(d, "work"), 0o700)

    def _make_owned(self, path: str, mode: int) -> None:
        os.makedirs(path, mode, exist_ok=True)
        if self.root_ids:
            os.chown(path, *self.root_ids)

    def link(self, layer_id: str) -> str:
        with open(os.path.join(self.dir(layer_id), "link")) as f:
            return f.read().strip()

    def lower_links(self, layer_id: str) -> list[str]:
        try:
            with open(os.path.join(self.dir(layer_id), "lower")) as f:
                data = f.read().strip()
        except FileNotFoundError:
            return []
        return data.split(":") if data else []

    def lower_diff_paths(self, layer_id: str) -> list[str]:
        """Absolute diff directories of the layers below `layer_id`, top first."""
        return [os.path.realpath(os.path.join(self.home, x)) for x in self.lower_links(layer_id)]

    def remove(self, layer_id: str) -> None:
        d = self.dir(layer_id)
        try:
            short = self.link(layer_id)
            if short and "/" not in short:  # empty if a crash cut the write short
                os.unlink(os.path.join(self.home, LINK_DIR, short))
        except OSError:
            pass
        if os.path.ismount(os.path.join(d, "merged")):
            linux.umount(os.path.join(d, "merged"), linux.MNT_DETACH)
        shutil.rmtree(d, ignore_errors=True)
        if os.path.exists(d):  # e.g. a work dir with restrictive modes left by overlayfs
            subprocess.run(["rm", "-rf", "--one-file-system", d], check=False)

    # --- mounts -----------------------------------------------------------------------------------
    def _mount_extra(self) -> list[str]:
        if self._extra_opts is None:
            self._extra_opts = ["index=off"] if os.path.exists("/sys/module/overlay/parameters/index") else []
        return self._extra_opts

    def mount(self, layer_id: str) -> str:
        """Mount the layer (its diff as upper, its lowers below) at `<id>/merged`; refcounted."""
        with self._lock:
            merged = os.path.join(self.dir(layer_id), "merged")
            count = self._counts.get(layer_id, 0)
            if count:
                self._counts[layer_id] = count + 1
                return merged
            self._make_owned(merged, 0o755)
            self._do_mount(layer_id, merged)
            self._counts[layer_id] = 1
            return merged

    def _do_mount(self, layer_id: str, merged: str) -> None:
        d = self.dir(layer_id)
        lowers = self.lower_links(layer_id)
        if not lowers:
            raise ValueError(f"layer {layer_id} has no lower layers to mount over")
        self._make_owned(os.path.join(d, "work"), 0o700)
        upper, work = os.path.join(d, "diff"), os.path.join(d, "work")
        extra = self._mount_extra()
        abs_lowers = [os.path.join(self.home, x) for x in lowers]
        opts = ",".join([f"lowerdir={':'.join(abs_lowers)}", f"upperdir={upper}", f"workdir={work}", *extra])
        if len(opts) < _PAGE - 1:
            linux.mount("overlay", merged, "overlay", 0, opts)
            return
        try:
            from dockyard.sys import mountapi

            options: list[tuple[str, str | None]] = [("lowerdir+", p) for p in abs_lowers]
            options += [("upperdir", upper), ("workdir", work)]
            options += [tuple(o.split("=", 1)) for o in extra]  # type: ignore[misc]
            mountapi.mount_fs("overlay", merged, "overlay", options)
        except OSError as e:
            if e.errno not in (errno.ENOSYS, errno.EINVAL):
                raise
            # older kernels: relative l/ names from a helper whose working directory is home
            rel = ",".join([f"lowerdir={':'.join(lowers)}", f"upperdir={layer_id}/diff", f"workdir={layer_id}/work", *extra])
            subprocess.run(["mount", "-t", "overlay", "overlay", "-o", rel, merged], cwd=self.home, check=True)

    def unmount(self, layer_id: str) -> None:
        with self._lock:
            count = self._counts.get(layer_id, 0)
            if count > 1:
                self._counts[layer_id] = count - 1
                return
            self._counts.pop(layer_id, None)
            merged = os.path.join(self.dir(layer_id), "merged")
            try:
                linux.umount(merged, linux.MNT_DETACH)
            except OSError as e:
                if e.errno not in (errno.EINVAL, errno.ENOENT):
                    raise
            try:
                os.rmdir(merged)
            except OSError:
                pass

    def mount_count(self, layer_id: str) -> int:
        return self._counts.get(layer_id, 0)
