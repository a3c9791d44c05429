/* exewatch DEV INO SECONDS: for SECONDS, scan /proc/<pid>/exe of every other process and report
 * whether any of them could be opened (O_PATH) and is the file (DEV, INO): the host binary a
 * container process must never reach (the CVE-2019-5736 class). Prints "GOT <pid>" or "NONE". */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 4)
        return 2;
    unsigned long long dev = strtoull(argv[1], 0, 0), ino = strtoull(argv[2], 0, 0);
    double secs = atof(argv[3]);
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t self = getpid();
    long scans = 0;
    for (;;) {
        DIR *d = opendir("/proc");
        struct dirent *e;
        while (d && (e = readdir(d))) {
            int pid = atoi(e->d_name);
            if (pid <= 0 || pid == self)
                continue;
            char path[64];
            snprintf(path, sizeof path, "/proc/%d/exe", pid);
            int fd = open(path, O_PATH | O_CLOEXEC);
            if (fd < 0)
                continue;
            struct stat st;
            if (fstat(fd, &st) == 0 && (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino) {
                printf("GOT %d\n", pid);
                return 0;
            }
            close(fd);
        }
        if (d)
            closedir(d);
        scans++;
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((t.tv_sec - t0.tv_sec) + (t.tv_nsec - t0.tv_nsec) / 1e9 > secs)
            break;
    }
    printf("NONE %ld\n", scans);
    return 0;
}
