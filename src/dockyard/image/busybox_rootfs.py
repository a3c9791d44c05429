"""Build a minimal root filesystem from the host's static busybox (Debian's busybox-static).

Used by `dockyard mkimage busybox` and by the tests: /bin/busybox, one symlink per applet,
/etc/passwd and /etc/group with root and nobody, and the usual empty top-level directories.
"""

from __future__ import annotations

import os
import shutil
import subprocess

BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")

PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
GROUP = "root:x:0:\nnogroup:x:65534:\n"
DIRS = ("bin", "dev", "etc", "home", "proc", "root", "sys", "tmp", "usr/bin", "usr/sbin", "var", "sbin")


def find_busybox() -> str:
    for path in BUSYBOX_CANDIDATES:
        if os.path.exists(path):
            out = subprocess.run(["file", "-b", path], capture_output=True, text=True).stdout if shutil.which("file") else ""
            if not out or "statically linked" in out or "static-pie" in out:
                return path
    raise FileNotFoundError("a static busybox is needed: apt-get install busybox-static")


def build_busybox_rootfs(dest: str, busybox: str | None = None) -> str:
    """Create the rootfs under `dest` (which must not exist or be empty). Returns `dest`."""
    busybox = busybox or find_busybox()
    os.makedirs(dest, exist_ok=True)
    for d in DIRS:
        os.makedirs(os.path.join(dest, d), exist_ok=True)
    os.chmod(os.path.join(dest, "tmp"), 0o1777)
    os.chmod(os.path.join(dest, "root"), 0o700)
    shutil.copy2(busybox, os.path.join(dest, "bin", "busybox"))
    os.chmod(os.path.join(dest, "bin", "busybox"), 0o755)
    applets = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for applet in applets:
        if applet == "busybox" or "/" in applet:
            continue
        link = os.path.join(dest, "bin", applet)
        if not os.path.lexists(link):
            os.symlink("busybox", link)
    with open(os.path.join(dest, "etc", "passwd"), "w") as f:
        f.write(PASSWD)
    with open(os.path.join(dest, "etc", "group"), "w") as f:
        f.write(GROUP)
    return dest
