/*
 * dockyard-shim: the per-container (and per-exec) supervisor of Dockyard.
 *
 * One small process per container, like containerd's shim or podman's conmon. The daemon spawns
 * it; it detaches (double fork, setsid), becomes a child subreaper, runs
 *   <runtime> [--root R] create --bundle B --pid-file init.pid [--console-socket S] <id>
 * (or, in exec mode, `<runtime> exec --detach --process P ...` once a client asks it to start),
 * reports "ok <pid>" or "err <message>" on the sync fd, and then owns the container's output:
 * Docker's json-file log (rotation by size and count), fan-out to attached clients, their input
 * to the container's stdin, pty resizes, and the exit status (exit.json, written atomically).
 * It outlives the daemon, so a restarted daemon reconnects to shim.sock.
 *
 * Protocol on shim.sock (documented in docs/daemon.md): every message in both directions is an
 * 8-byte header [type, 0, 0, 0, length (u32 big endian)] and a payload.
 *   client -> shim: 0 stdin data, 1 subscribe (payload: 1 byte, bit0 stdout, bit1 stderr),
 *                   2 close stdin, 3 resize (u16 rows, u16 cols, big endian), 4 start (exec mode)
 *   shim -> client: 1 stdout, 2 stderr (Docker's stream framing), 3 exit (decimal code),
 *                   4 started (decimal pid, exec mode), 5 error (message, exec mode)
 * Only libc; built with gcc -O2 by shim/Makefile into build/dockyard-shim.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define MAX_CLIENTS 128
#define LINE_MAX_BYTES 16384        /* Docker's log copier buffer: longer lines become partials */
#define HIGH_WATER (1u << 20)       /* stop reading the container while a client lags this much */
#define CLIENT_HARD_CAP (16u << 20) /* drop a client that lags this much */
#define FRAME_MAX (1u << 20)        /* largest frame a client may send */
#define DRAIN_QUIET_MS 300          /* after exit: stop reading output after this much silence */
#define EXEC_START_MS 60000         /* exec mode: give up if nobody sends `start` within this */

enum { C_STDIN = 0, C_SUBSCRIBE = 1, C_CLOSE_STDIN = 2, C_RESIZE = 3, C_START = 4 };
enum { S_STDOUT = 1, S_STDERR = 2, S_EXIT = 3, S_STARTED = 4, S_ERROR = 5 };

struct buf {
    char *data;
    size_t len, cap;
};

struct client {
    int fd;
    int subs;
    struct buf in, out;
};

static struct {
    const char *id, *bundle, *runtime, *runtime_root, *state_dir, *log_path, *process;
    const char *runtime_args[16];
    int nruntime_args;
    int tty, stdin_open, sync_fd, exec_mode;
    long long log_max_size;
    int log_max_file;
} o = {.sync_fd = -1, .log_max_size = -1, .log_max_file = 1};

static struct client clients[MAX_CLIENTS];
static int nclients;
static int listen_fd = -1, sig_fd = -1, console_listen = -1;
static int out_fd[2] = {-1, -1}; /* stdout, stderr read ends (tty: [0] is the pty master) */
static int master_fd = -1;
static int peer_fd = -1; /* our own slave fd: the master never sees a hangup, so no output is lost */
static int stdin_fd = -1; /* write end of the container's stdin (or the master) */
static int stdin_close_pending;
static struct buf stdin_buf;
static struct buf line[2];
static int log_fd = -1;
static long long log_size;
static pid_t init_pid = -1, runtime_pid = -1;
static int runtime_status = -1, exited, exit_code, exit_signal;
static char finished_at[64];
static pid_t self_pid;
static int started; /* exec mode: runtime exec has been launched */

/* Zombies reaped before we knew their pid (exec'd process exiting before the pid file is read). */
static struct { pid_t pid; int status; } early[16];
static int nearly;

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void die(const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "dockyard-shim: %s\n", msg);
    if (o.sync_fd >= 0) {
        dprintf(o.sync_fd, "err %s\n", msg);
        close(o.sync_fd);
    }
    if (listen_fd >= 0) unlink("shim.sock");
    exit(1);
}

/* ---- buffers ------------------------------------------------------------------------------- */
static void buf_add(struct buf *b, const void *p, size_t n) {
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n) cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d) die("out of memory");
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void buf_drop(struct buf *b, size_t n) {
    if (n >= b->len) {
        b->len = 0;
        if (b->cap > (1u << 16)) { /* give memory back after a burst: RSS stays small */
            free(b->data);
            b->data = NULL;
            b->cap = 0;
        }
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

static int write_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void set_nonblock(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

/* ---- time and JSON ------------------------------------------------------------------------- */
/* RFC 3339 with nanoseconds, trailing zeros trimmed, as Go's time.RFC3339Nano prints it. */
static void rfc3339nano(char *out, size_t n) {
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t k = strftime(out, n, "%Y-%m-%dT%H:%M:%S", &tm);
    char frac[16];
    snprintf(frac, sizeof frac, ".%09ld", ts.tv_nsec);
    int end = 9;
    while (end > 0 && frac[end] == '0') end--;
    if (end > 0) {
        frac[end + 1] = 0;
        k += (size_t)snprintf(out + k, n - k, "%s", frac);
    }
    snprintf(out + k, n - k, "Z");
}

/* Length of a valid UTF-8 sequence at p (max n bytes), or 0 if invalid. */
static int utf8_len(const unsigned char *p, size_t n) {
    unsigned c = p[0];
    int len;
    unsigned cp;
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf) len = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef) len = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4) len = 4, cp = c & 0x07;
    else return 0;
    if ((size_t)len > n) return 0;
    for (int i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return len;
}

/* Append p as a JSON string body with Docker's (Go's HTML-safe) escaping. */
static void json_escape(struct buf *b, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        unsigned char c = p[i];
        if (c >= 0x80) {
            int l = utf8_len(p + i, n - i);
            if (l == 0) {
                buf_add(b, "\\ufffd", 6);
                i++;
            } else if (l == 3 && c == 0xe2 && p[i + 1] == 0x80 && (p[i + 2] == 0xa8 || p[i + 2] == 0xa9)) {
                buf_add(b, p[i + 2] == 0xa8 ? "\\u2028" : "\\u2029", 6);
                i += 3;
            } else {
                buf_add(b, p + i, (size_t)l);
                i += (size_t)l;
            }
            continue;
        }
        switch (c) {
        case '"': buf_add(b, "\\\"", 2); break;
        case '\\': buf_add(b, "\\\\", 2); break;
        case '\n': buf_add(b, "\\n", 2); break;
        case '\r': buf_add(b, "\\r", 2); break;
        case '\t': buf_add(b, "\\t", 2); break;
        default:
            if (c < 0x20 || c == '<' || c == '>' || c == '&') {
                char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
                buf_add(b, e, 6);
            } else {
                buf_add(b, &c, 1);
            }
        }
        i++;
    }
}

/* ---- json-file log ------------------------------------------------------------------------- */
static void log_open(void) {
    log_fd = open(o.log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (log_fd < 0) die("open log %s: %s", o.log_path, strerror(errno));
    struct stat st;
    log_size = fstat(log_fd, &st) == 0 ? st.st_size : 0;
}

static void log_rotate(void) {
    char from[4096], to[4096];
    close(log_fd);
    if (o.log_max_file > 1) {
        for (int i = o.log_max_file - 1; i > 1; i--) {
            snprintf(from, sizeof from, "%s.%d", o.log_path, i - 1);
            snprintf(to, sizeof to, "%s.%d", o.log_path, i);
            rename(from, to);
        }
        snprintf(to, sizeof to, "%s.1", o.log_path);
        rename(o.log_path, to);
    } else {
        if (truncate(o.log_path, 0) < 0) { /* nothing to keep anyway */ }
    }
    log_open();
}

static void log_entry(int stream, const char *p, size_t n) {
    static struct buf b;
    char ts[64];
    if (log_fd < 0) return;
    if (o.log_max_size > 0 && log_size >= o.log_max_size) log_rotate();
    b.len = 0;
    buf_add(&b, "{\"log\":\"", 8);
    json_escape(&b, p, n);
    const char *mid = stream == 2 ? "\",\"stream\":\"stderr\",\"time\":\"" : "\",\"stream\":\"stdout\",\"time\":\"";
    buf_add(&b, mid, strlen(mid));
    rfc3339nano(ts, sizeof ts);
    buf_add(&b, ts, strlen(ts));
    buf_add(&b, "\"}\n", 3);
    if (write_all(log_fd, b.data, b.len) == 0) log_size += (long long)b.len;
    if (b.cap > (1u << 16)) {
        free(b.data);
        b.data = NULL;
        b.cap = b.len = 0;
    }
}

/* Split a stream's bytes into log entries at newlines; a full buffer without one is a partial. */
static void log_feed(int stream, const char *p, size_t n) {
    struct buf *l = &line[stream - 1];
    if (log_fd < 0) return;
    buf_add(l, p, n);
    for (;;) {
        size_t scan = l->len < LINE_MAX_BYTES ? l->len : LINE_MAX_BYTES;
        char *nl = memchr(l->data, '\n', scan);
        if (nl) {
            size_t k = (size_t)(nl - l->data) + 1;
            log_entry(stream, l->data, k);
            buf_drop(l, k);
        } else if (l->len >= LINE_MAX_BYTES) {
            log_entry(stream, l->data, LINE_MAX_BYTES);
            buf_drop(l, LINE_MAX_BYTES);
        } else {
            break;
        }
    }
}

static void log_flush(int stream) {
    struct buf *l = &line[stream - 1];
    if (l->len) log_entry(stream, l->data, l->len);
    buf_drop(l, l->len);
}

/* ---- clients ------------------------------------------------------------------------------- */
static void client_close(int i) {
    close(clients[i].fd);
    free(clients[i].in.data);
    free(clients[i].out.data);
    clients[i] = clients[--nclients];
}

static void client_flush(struct client *c) {
    while (c->out.len) {
        ssize_t w = send(c->fd, c->out.data, c->out.len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN) c->out.len = 0, c->subs = -1; /* dead: dropped by the loop */
            return;
        }
        buf_drop(&c->out, (size_t)w);
    }
}

static void frame(struct client *c, int type, const void *p, size_t n) {
    unsigned char h[8] = {(unsigned char)type, 0, 0, 0, (unsigned char)(n >> 24), (unsigned char)(n >> 16),
                          (unsigned char)(n >> 8), (unsigned char)n};
    if (c->subs < 0) return;
    buf_add(&c->out, h, 8);
    buf_add(&c->out, p, n);
    client_flush(c);
    if (c->out.len > CLIENT_HARD_CAP) c->subs = -1;
}

static void broadcast(int type, const void *p, size_t n) {
    for (int i = 0; i < nclients; i++) {
        int bit = type == S_STDOUT ? 1 : type == S_STDERR ? 2 : 0;
        if (bit == 0 || (clients[i].subs > 0 && (clients[i].subs & bit))) frame(&clients[i], type, p, n);
    }
}

static void start_exec(void);

static void stdin_write(void) {
    while (stdin_fd >= 0 && stdin_buf.len) {
        ssize_t w = write(stdin_fd, stdin_buf.data, stdin_buf.len);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) return;
            stdin_buf.len = 0; /* reader gone: discard */
            break;
        }
        buf_drop(&stdin_buf, (size_t)w);
    }
    if (stdin_close_pending && stdin_buf.len == 0 && stdin_fd >= 0 && !o.tty) {
        close(stdin_fd);
        stdin_fd = -1;
    }
}

static void handle_frame(struct client *c, int type, const unsigned char *p, size_t n) {
    switch (type) {
    case C_STDIN:
        /* kept until the process exists (exec mode, or input sent before start) */
        if (o.stdin_open || o.tty) {
            buf_add(&stdin_buf, p, n);
            stdin_write();
        }
        break;
    case C_SUBSCRIBE:
        c->subs = n ? (p[0] & 3) : 3;
        break;
    case C_CLOSE_STDIN:
        stdin_close_pending = 1;
        stdin_write();
        break;
    case C_RESIZE:
        if (n >= 4 && master_fd >= 0) {
            struct winsize ws = {.ws_row = (unsigned short)(p[0] << 8 | p[1]), .ws_col = (unsigned short)(p[2] << 8 | p[3])};
            ioctl(master_fd, TIOCSWINSZ, &ws);
        }
        break;
    case C_START:
        if (o.exec_mode && !started) start_exec();
        break;
    }
}

/* Read from a client; returns -1 when the client is gone. */
static int client_read(struct client *c) {
    char tmp[65536];
    ssize_t r = recv(c->fd, tmp, sizeof tmp, MSG_DONTWAIT);
    if (r == 0) return -1;
    if (r < 0) return (errno == EAGAIN || errno == EINTR) ? 0 : -1;
    buf_add(&c->in, tmp, (size_t)r);
    while (c->in.len >= 8) {
        const unsigned char *h = (const unsigned char *)c->in.data;
        size_t n = (size_t)h[4] << 24 | (size_t)h[5] << 16 | (size_t)h[6] << 8 | h[7];
        if (n > FRAME_MAX) return -1;
        if (c->in.len < 8 + n) break;
        handle_frame(c, h[0], h + 8, n);
        buf_drop(&c->in, 8 + n);
    }
    return 0;
}

/* ---- processes ----------------------------------------------------------------------------- */
static int record_status(pid_t pid, int st) {
    if (pid != init_pid) return 0;
    exited = 1;
    if (WIFSIGNALED(st)) {
        exit_signal = WTERMSIG(st);
        exit_code = 128 + exit_signal;
    } else {
        exit_code = WEXITSTATUS(st);
    }
    rfc3339nano(finished_at, sizeof finished_at);
    return 1;
}

static void reap(void) {
    int st;
    pid_t pid;
    while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
        if (pid == runtime_pid) {
            runtime_status = st;
            runtime_pid = -1;
        } else if (!record_status(pid, st) && init_pid < 0 && nearly < 16) {
            early[nearly].pid = pid;
            early[nearly++].status = st;
        }
    }
}

static pid_t spawn(char *const argv[], int in, int out, int err) {
    pid_t pid = fork();
    if (pid < 0) die("fork: %s", strerror(errno));
    if (pid == 0) {
        sigset_t all;
        sigemptyset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);
        signal(SIGPIPE, SIG_DFL);
        if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0) _exit(127);
        syscall(SYS_close_range, 3U, ~0U, 0U);
        execvp(argv[0], argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    return pid;
}

static int make_unix_listener(const char *name) {
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) die("socket: %s", strerror(errno));
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", name);
    unlink(name);
    mode_t old = umask(077);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) die("bind %s: %s", name, strerror(errno));
    umask(old);
    if (listen(fd, 64) < 0) die("listen: %s", strerror(errno));
    return fd;
}

static int recv_fd(int sock) {
    char data[256];
    char ctl[CMSG_SPACE(sizeof(int))];
    struct iovec iov = {data, sizeof data};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl};
    if (recvmsg(sock, &m, MSG_CMSG_CLOEXEC) < 0) return -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            int fd;
            memcpy(&fd, CMSG_DATA(c), sizeof fd);
            return fd;
        }
    return -1;
}

static void accept_console(void) {
    int c = accept4(console_listen, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0) return;
    int fd = recv_fd(c);
    close(c);
    if (fd >= 0 && master_fd < 0) {
        master_fd = fd;
        set_nonblock(master_fd);
#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif
        peer_fd = ioctl(master_fd, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
    }
}

static void wait_signal_or_console(void) {
    struct pollfd p[2] = {{sig_fd, POLLIN, 0}, {console_listen, POLLIN, 0}};
    if (poll(p, console_listen >= 0 ? 2 : 1, -1) < 0 && errno != EINTR) die("poll: %s", strerror(errno));
    if (p[0].revents) {
        struct signalfd_siginfo si;
        while (read(sig_fd, &si, sizeof si) == sizeof si) {}
        reap();
    }
    if (console_listen >= 0 && p[1].revents) accept_console();
}

/* Collect what the runtime printed on failure; keep runc's msg="..." if it logged in logfmt. */
static void runtime_error(int fd, char *out, size_t n) {
    char raw[8192];
    ssize_t r, len = 0;
    set_nonblock(fd);
    while (len < (ssize_t)sizeof raw - 1 && (r = read(fd, raw + len, sizeof raw - 1 - (size_t)len)) > 0) len += r;
    raw[len] = 0;
    while (len > 0 && (raw[len - 1] == '\n' || raw[len - 1] == ' ')) raw[--len] = 0;
    char *last = strrchr(raw, '\n');
    last = last ? last + 1 : raw;
    char *msg = strstr(last, "msg=\"");
    if (msg) {
        msg += 5;
        char *w = out, *end = out + n - 1;
        for (char *q = msg; *q && w < end; q++) {
            if (*q == '\\' && q[1]) {
                *w++ = *++q;
                continue;
            }
            if (*q == '"') break;
            *w++ = *q;
        }
        *w = 0;
    } else {
        snprintf(out, n, "%s", last[0] ? last : "runtime failed without a message");
    }
}

static int read_pidfile(void) {
    char b[32] = {0};
    int fd = open("init.pid", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t r = read(fd, b, sizeof b - 1);
    close(fd);
    return r > 0 ? atoi(b) : -1;
}

/* Run the runtime (create, or exec --detach); returns 0 with init_pid set, or -1 with msg. */
static int run_runtime(char *msg, size_t msgn) {
    char *argv[48];
    int a = 0, err_pipe[2], in_pipe[2] = {-1, -1}, o_pipe[2], e_pipe[2];
    char console_path[64];
    argv[a++] = (char *)o.runtime;
    for (int i = 0; i < o.nruntime_args; i++) argv[a++] = (char *)o.runtime_args[i];
    if (o.runtime_root) argv[a++] = "--root", argv[a++] = (char *)o.runtime_root;
    if (o.exec_mode) {
        argv[a++] = "exec", argv[a++] = "--detach", argv[a++] = "--process", argv[a++] = (char *)o.process;
    } else {
        argv[a++] = "create", argv[a++] = "--bundle", argv[a++] = (char *)o.bundle;
    }
    char pidfile[4096];
    snprintf(pidfile, sizeof pidfile, "%s/init.pid", o.state_dir);
    argv[a++] = "--pid-file", argv[a++] = pidfile;
    unlink("init.pid");
    if (o.tty) {
        console_listen = make_unix_listener("console.sock");
        snprintf(console_path, sizeof console_path, "/proc/%d/cwd/console.sock", (int)self_pid);
        argv[a++] = "--console-socket", argv[a++] = console_path;
    }
    argv[a++] = (char *)o.id;
    argv[a] = NULL;

    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (o.tty) {
        if (pipe2(err_pipe, O_CLOEXEC) < 0) die("pipe: %s", strerror(errno));
        runtime_pid = spawn(argv, devnull, devnull, err_pipe[1]);
        close(err_pipe[1]);
    } else {
        if (pipe2(o_pipe, O_CLOEXEC) < 0 || pipe2(e_pipe, O_CLOEXEC) < 0) die("pipe: %s", strerror(errno));
        if (o.stdin_open && pipe2(in_pipe, O_CLOEXEC) < 0) die("pipe: %s", strerror(errno));
        runtime_pid = spawn(argv, o.stdin_open ? in_pipe[0] : devnull, o_pipe[1], e_pipe[1]);
        close(o_pipe[1]);
        close(e_pipe[1]);
        if (o.stdin_open) {
            close(in_pipe[0]);
            stdin_fd = in_pipe[1];
            set_nonblock(stdin_fd);
        }
        out_fd[0] = o_pipe[0];
        out_fd[1] = e_pipe[0];
        err_pipe[0] = e_pipe[0];
    }
    close(devnull);
    while (runtime_pid > 0) wait_signal_or_console();
    if (o.tty) {
        accept_console(); /* the runtime may have sent the master just before exiting */
        close(console_listen);
        console_listen = -1;
        unlink("console.sock");
    }
    int ok = WIFEXITED(runtime_status) && WEXITSTATUS(runtime_status) == 0;
    if (ok) {
        init_pid = read_pidfile();
        if (init_pid <= 0) {
            snprintf(msg, msgn, "runtime did not write its pid file");
            ok = 0;
        } else if (o.tty && master_fd < 0) {
            snprintf(msg, msgn, "runtime did not send the console");
            ok = 0;
        }
    } else {
        runtime_error(err_pipe[0], msg, msgn);
    }
    if (o.tty) close(err_pipe[0]);
    if (!ok) {
        if (!o.tty) {
            close(out_fd[0]), close(out_fd[1]);
            out_fd[0] = out_fd[1] = -1;
        }
        return -1;
    }
    if (o.tty) {
        out_fd[0] = master_fd;
        stdin_fd = dup(master_fd);
        set_nonblock(stdin_fd);
    } else {
        set_nonblock(out_fd[0]);
        set_nonblock(out_fd[1]);
    }
    for (int i = 0; i < nearly; i++) record_status(early[i].pid, early[i].status);
    stdin_write(); /* input (and a close) that arrived before the process existed */
    return 0;
}

static void start_exec(void) {
    char msg[2048], pid[32];
    started = 1;
    if (run_runtime(msg, sizeof msg) < 0) {
        broadcast(S_ERROR, msg, strlen(msg));
        exited = 1;
        exit_code = strstr(msg, "not found") || strstr(msg, "no such file") ? 127 : 126;
        rfc3339nano(finished_at, sizeof finished_at);
        return;
    }
    int n = snprintf(pid, sizeof pid, "%d", (int)init_pid);
    broadcast(S_STARTED, pid, (size_t)n);
}

/* ---- exit ---------------------------------------------------------------------------------- */
static void write_exit_file(void) {
    char body[256];
    int n = snprintf(body, sizeof body, "{\"exit_code\":%d,\"signal\":%d,\"pid\":%d,\"finished_at\":\"%s\"}\n",
                     exit_code, exit_signal, (int)init_pid, finished_at);
    int fd = open("exit.json.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return;
    write_all(fd, body, (size_t)n);
    fsync(fd);
    close(fd);
    rename("exit.json.tmp", "exit.json");
}

static void finish(void) {
    char code[16];
    log_flush(1);
    log_flush(2);
    if (log_fd >= 0) fsync(log_fd);
    write_exit_file();
    int n = snprintf(code, sizeof code, "%d", exit_code);
    broadcast(S_EXIT, code, (size_t)n);
    /* Give attached clients up to 2 s to take what is still queued for them. */
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        int pending = 0;
        for (int i = 0; i < nclients; i++)
            if (clients[i].subs >= 0 && clients[i].out.len) {
                client_flush(&clients[i]);
                pending |= clients[i].out.len > 0;
            }
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (!pending || (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 > 2000) break;
        poll(NULL, 0, 10);
    }
    while (nclients) client_close(0);
    unlink("shim.sock");
    exit(0);
}

/* ---- main loop ----------------------------------------------------------------------------- */
static long long now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void loop(void) {
    struct pollfd p[MAX_CLIENTS + 8];
    long long last_output = now_ms(), spawned_at = now_ms();
    for (;;) {
        int n = 0, lagging = 0;
        for (int i = 0; i < nclients; i++) lagging |= clients[i].out.len > HIGH_WATER;
        p[n++] = (struct pollfd){sig_fd, POLLIN, 0};
        p[n++] = (struct pollfd){listen_fd, POLLIN, 0};
        int out_base = n;
        for (int s = 0; s < 2; s++) p[n++] = (struct pollfd){lagging ? -1 : out_fd[s], POLLIN, 0};
        p[n++] = (struct pollfd){stdin_buf.len ? stdin_fd : -1, POLLOUT, 0};
        int cbase = n;
        for (int i = 0; i < nclients; i++)
            p[n++] = (struct pollfd){clients[i].fd, (short)((stdin_buf.len < HIGH_WATER ? POLLIN : 0) | (clients[i].out.len ? POLLOUT : 0)), 0};
        int timeout = -1;
        if (exited && peer_fd >= 0 && out_fd[0] >= 0) {
            /* the container is gone: whatever it wrote is in the buffer already */
            char tmp[32768];
            ssize_t got;
            while ((got = read(out_fd[0], tmp, sizeof tmp)) > 0) {
                log_feed(1, tmp, (size_t)got);
                broadcast(S_STDOUT, tmp, (size_t)got);
            }
            log_flush(1);
            close(out_fd[0]);
            out_fd[0] = master_fd = -1;
            close(peer_fd);
            peer_fd = -1;
        }
        if (o.exec_mode && !started) {
            /* the daemon went away between spawning us and starting the exec */
            long long left = EXEC_START_MS - (now_ms() - spawned_at);
            if (left <= 0) {
                exit_code = 126;
                exited = 1;
                rfc3339nano(finished_at, sizeof finished_at);
                finish();
            }
            timeout = (int)left;
        }
        if (exited) {
            long long left = DRAIN_QUIET_MS - (now_ms() - last_output);
            if ((out_fd[0] < 0 && out_fd[1] < 0) || left <= 0) finish();
            timeout = (int)left;
        }
        int r = poll(p, (nfds_t)n, timeout);
        if (r < 0) {
            if (errno == EINTR) continue;
            die("poll: %s", strerror(errno));
        }
        if (p[0].revents) {
            struct signalfd_siginfo si;
            while (read(sig_fd, &si, sizeof si) == sizeof si) {}
            reap();
        }
        if (p[1].revents & POLLIN) {
            int c;
            while ((c = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0) {
                if (nclients == MAX_CLIENTS) {
                    close(c);
                    continue;
                }
                clients[nclients++] = (struct client){.fd = c};
                /* read what it already sent (its subscribe) before any output is handed out */
                if (client_read(&clients[nclients - 1]) < 0) clients[nclients - 1].subs = -1;
            }
        }
        /* clients before output: a subscription sent before the output appeared always applies */
        int nc = cbase + nclients > n ? n - cbase : nclients;
        for (int i = nc - 1; i >= 0; i--) {
            short rev = p[cbase + i].revents;
            if (rev & POLLOUT) client_flush(&clients[i]);
            if ((rev & (POLLIN | POLLHUP | POLLERR)) && client_read(&clients[i]) < 0) clients[i].subs = -1;
        }
        for (int s = 0; s < 2; s++) {
            if (out_fd[s] < 0 || !(p[out_base + s].revents)) continue;
            char tmp[32768];
            ssize_t got = read(out_fd[s], tmp, sizeof tmp);
            if (got > 0) {
                last_output = now_ms();
                log_feed(s + 1, tmp, (size_t)got);
                broadcast(s + 1, tmp, (size_t)got);
            } else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
                /* EOF (or EIO on a pty whose slave side is gone) */
                log_flush(s + 1);
                if (out_fd[s] == master_fd) master_fd = -1;
                close(out_fd[s]);
                out_fd[s] = -1;
            }
        }
        if (p[out_base + 2].revents) stdin_write();
        for (int i = nclients - 1; i >= 0; i--)
            if (clients[i].subs < 0) client_close(i);
    }
}

static void usage(void) {
    fprintf(stderr,
            "usage: dockyard-shim --id ID --state-dir DIR --runtime PATH [--runtime-root DIR] [--runtime-arg ARG]...\n"
            "       (--bundle DIR | --exec --process FILE) [--tty] [--stdin] [--sync-fd N]\n"
            "       [--log-path FILE [--log-max-size BYTES] [--log-max-file N]]\n");
    exit(2);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(name) (strcmp(a, name) == 0 && v && (i++, 1))
        if (OPT("--id")) o.id = v;
        else if (OPT("--bundle")) o.bundle = v;
        else if (OPT("--runtime")) o.runtime = v;
        else if (OPT("--runtime-root")) o.runtime_root = v;
        else if (OPT("--runtime-arg")) {
            if (o.nruntime_args < 16) o.runtime_args[o.nruntime_args++] = v;
        } else if (OPT("--state-dir")) o.state_dir = v;
        else if (OPT("--log-path")) o.log_path = v;
        else if (OPT("--log-max-size")) o.log_max_size = atoll(v);
        else if (OPT("--log-max-file")) o.log_max_file = atoi(v);
        else if (OPT("--sync-fd")) o.sync_fd = atoi(v);
        else if (OPT("--process")) o.process = v;
        else if (strcmp(a, "--exec") == 0) o.exec_mode = 1;
        else if (strcmp(a, "--tty") == 0) o.tty = 1;
        else if (strcmp(a, "--stdin") == 0) o.stdin_open = 1;
        else usage();
#undef OPT
    }
    if (!o.id || !o.runtime || !o.state_dir || (o.exec_mode ? !o.process : !o.bundle)) usage();
    if (o.log_max_file < 1) o.log_max_file = 1;

    /* Detach: the first fork lets the daemon reap us at once; setsid and a second fork leave a
     * process that is no session leader and can never acquire a controlling terminal. */
    pid_t p = fork();
    if (p < 0) die("fork: %s", strerror(errno));
    if (p > 0) _exit(0);
    setsid();
    p = fork();
    if (p < 0) die("fork: %s", strerror(errno));
    if (p > 0) _exit(0);
    self_pid = getpid();

    if (chdir(o.state_dir) < 0) die("chdir %s: %s", o.state_dir, strerror(errno));
    int nul = open("/dev/null", O_RDWR);
    int err = open("shim.log", O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (nul >= 0) dup2(nul, 0);
    if (err >= 0) dup2(err, 1), dup2(err, 2);
    if (nul > 2) close(nul);
    if (err > 2) close(err);
    /* keep only stdio and the sync fd */
    if (o.sync_fd >= 0) {
        if (o.sync_fd != 3) {
            dup2(o.sync_fd, 3);
            o.sync_fd = 3;
        }
        fcntl(3, F_SETFD, FD_CLOEXEC);
        syscall(SYS_close_range, 4U, ~0U, 0U);
    } else {
        syscall(SYS_close_range, 3U, ~0U, 0U);
    }
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    signal(SIGPIPE, SIG_IGN);
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sig_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sig_fd < 0) die("signalfd: %s", strerror(errno));

    char pidbuf[32];
    int pn = snprintf(pidbuf, sizeof pidbuf, "%d\n", (int)self_pid);
    int pfd = open("shim.pid", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (pfd >= 0) write_all(pfd, pidbuf, (size_t)pn), close(pfd);
    unlink("exit.json");
    listen_fd = make_unix_listener("shim.sock");
    if (o.log_path) log_open();

    if (o.exec_mode) {
        if (o.sync_fd >= 0) dprintf(o.sync_fd, "ready %d\n", (int)self_pid), close(o.sync_fd), o.sync_fd = -1;
    } else {
        char msg[2048];
        if (run_runtime(msg, sizeof msg) < 0) die("%s", msg);
        if (o.sync_fd >= 0) dprintf(o.sync_fd, "ok %d\n", (int)init_pid), close(o.sync_fd), o.sync_fd = -1;
    }
    loop();
    return 0;
}
