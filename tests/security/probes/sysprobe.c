/* sysprobe NR [ARG...]: make one raw system call and print the errno it failed with (0 when it
 * succeeded). Arguments are integers (decimal, or hex with 0x). Used to observe seccomp and
 * capability checks from inside a container. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv) {
    long a[6] = {0};
    if (argc < 2)
        return 2;
    long nr = strtol(argv[1], 0, 0);
    for (int i = 2; i < argc && i < 8; i++)
        a[i - 2] = strtoul(argv[i], 0, 0);
    long r = syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
    printf("%d\n", r < 0 ? errno : 0);
    return 0;
}
