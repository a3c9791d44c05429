"""sys/: the only package that calls the kernel through ctypes (syscalls, libseccomp, libnftables).

Modules: linux.py (mount, pivot_root, namespaces, prctl, capabilities, openat2, pidfd, prlimit,
terminal ioctls, personality), seccomp.py (libseccomp), bpf.py (cgroup device programs).
Other modules import these wrappers and never load libc themselves.
"""
