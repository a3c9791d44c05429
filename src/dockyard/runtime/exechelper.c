/* dockyard exec helper (x86_64 Linux, no libc): the last step of every process dockyard-runc
 * starts in a container (see exechelper.py for why).
 *
 * The runtime execs this from a sealed, read-only memfd after it has set everything up
 * (namespaces, cgroups, credentials, capabilities, seccomp, rlimits, cwd, stdio), so that
 * /proc/self/exe is that private copy, never a host binary, when the container can see us.
 *
 *   dockyard-exec x PATH ARGV0 ARGV1...          execve PATH (a container's init)
 *   dockyard-exec f FD TTY PATH ARGV0 ARGV1...   fork: the child (the first process of ours in
 *       the container's PID namespace) calls setsid, takes fd 0 as its controlling terminal when
 *       TTY is "1", and execs PATH; we write "pid <child>\n" to FD and exit 0 (`exec`)
 *
 * envp is the program's environment. If execve fails: "exec PATH: REASON\n" on fd 2 and exit 1,
 * as runc's init does. Anything else: a message and exit 126.
 *
 * Build: gcc -Os -static -nostdlib -ffreestanding -fno-stack-protector -fno-pie -no-pie
 *        -fno-asynchronous-unwind-tables -Wl,--build-id=none -Wl,-n -s -o exechelper exechelper.c
 */

#define SYS_write 1
#define SYS_ioctl 16
#define SYS_fork 57
#define SYS_execve 59
#define SYS_fcntl 72
#define SYS_setsid 112
#define SYS_exit_group 231
#define F_SETFD 2
#define FD_CLOEXEC 1
#define TIOCSCTTY 0x540E

static long sys3(long n, long a, long b, long c) {
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return r;
}

static __attribute__((noreturn)) void die(int code) {
    for (;;)
        sys3(SYS_exit_group, code, 0, 0);
}

static const char *reason(long e) {
    switch (e) {
    case 1: return "operation not permitted";
    case 2: return "no such file or directory";
    case 7: return "argument list too long";
    case 8: return "exec format error";
    case 11: return "resource temporarily unavailable";
    case 12: return "cannot allocate memory";
    case 13: return "permission denied";
    case 20: return "not a directory";
    case 21: return "is a directory";
    case 22: return "invalid argument";
    case 26: return "text file busy";
    case 36: return "file name too long";
    case 40: return "too many levels of symbolic links";
    case 80: return "accessing a corrupted shared library";
    default: return 0;
    }
}

static char *add(char *p, char *end, const char *s) {
    while (*s && p < end)
        *p++ = *s++;
    return p;
}

static char *num(char *p, char *end, long v) {
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = '0' + v % 10;
        v /= 10;
    } while (v && n < 20);
    while (n && p < end)
        *p++ = tmp[--n];
    return p;
}

static char *why(char *p, char *end, long e) {
    const char *r = reason(e);
    if (r)
        return add(p, end, r);
    return num(add(p, end, "errno "), end, e);
}

static __attribute__((noreturn)) void fail(const char *what, const char *path, long e, int code) {
    char buf[600], *p = buf, *end = buf + sizeof buf - 1;
    p = add(p, end, what);
    p = add(p, end, path);
    p = add(p, end, ": ");
    p = why(p, end, e);
    *p++ = '\n';
    sys3(SYS_write, 2, (long)buf, p - buf);
    die(code);
}

static int eq(const char *a, const char *b) {
    while (*a && *a == *b)
        a++, b++;
    return *a == *b;
}

static long parse(const char *s) {
    long v = 0;
    if (!*s)
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > 100000000)
            return -1;
        v = v * 10 + (*s - '0');
    }
    return v;
}

void cmain(long *sp) {
    long argc = sp[0];
    char **argv = (char **)(sp + 1);
    char **envp = argv + argc + 1;
    if (argc >= 4 && eq(argv[0], "dockyard-exec") && eq(argv[1], "x")) {
        long e = -sys3(SYS_execve, (long)argv[2], (long)(argv + 3), (long)envp);
        fail("exec ", argv[2], e, 1);
    }
    if (argc >= 6 && eq(argv[0], "dockyard-exec") && eq(argv[1], "f")) {
        long fd = parse(argv[2]);
        int tty = eq(argv[3], "1");
        if (fd < 0)
            goto bad;
        sys3(SYS_fcntl, fd, F_SETFD, FD_CLOEXEC);
        long pid = sys3(SYS_fork, 0, 0, 0);
        if (pid < 0)
            fail("fork for ", argv[4], -pid, 126);
        if (pid == 0) {
            sys3(SYS_setsid, 0, 0, 0);
            if (tty)
                sys3(SYS_ioctl, 0, TIOCSCTTY, 0);
            long e = -sys3(SYS_execve, (long)argv[4], (long)(argv + 5), (long)envp);
            fail("exec ", argv[4], e, 1);
        }
        char buf[32], *p = buf, *end = buf + sizeof buf - 1;
        p = num(add(p, end, "pid "), end, pid);
        *p++ = '\n';
        sys3(SYS_write, fd, (long)buf, p - buf);
        die(0);
    }
bad:
    sys3(SYS_write, 2, (long)"dockyard-runc: the exec helper is not a program to run\n", 55);
    die(126);
}

__asm__(".text\n.globl _start\n_start:\n\tmov %rsp, %rdi\n\tand $-16, %rsp\n\tcall cmain\n\thlt\n");
