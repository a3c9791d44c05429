"""The syscall wrappers against the real kernel, in throwaway child processes."""

from __future__ import annotations

import os

from dockyard.sys import linux
from support.child import in_child


def test_unshare_uts_sets_hostname_without_touching_host():
    host = os.uname().nodename

    def child():
        linux.unshare(linux.CLONE_NEWUTS)
        linux.sethostname("dyt-child")
        return 0 if os.uname().nodename == "dyt-child" else 1

    assert in_child(child) == 0
    assert os.uname().nodename == host


def test_capget_reports_full_set_for_root():
    eff, perm, _ = linux.capget()
    assert eff & (1 << 21)  # CAP_SYS_ADMIN
    assert perm & (1 << 21)


def test_openat2_in_root_keeps_dotdot_inside(tmp_path):
    (tmp_path / "inside").write_text("in")
    dirfd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fd = linux.openat2(dirfd, "../../../inside", os.O_RDONLY)
        assert os.read(fd, 10) == b"in"
        os.close(fd)
    finally:
        os.close(dirfd)


def test_mount_error_names_target(tmp_path):
    try:
        linux.mount("none", str(tmp_path / "missing"), "tmpfs")
    except OSError as e:
        assert "missing" in str(e)
    else:
        raise AssertionError("mount on a missing target must fail")
