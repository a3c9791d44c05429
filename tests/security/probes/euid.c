/* euid: print the effective uid (made setuid root to observe no-new-privileges). */
#include <stdio.h>
#include <unistd.h>

int main(void) {
    printf("euid=%d\n", (int)geteuid());
    return 0;
}
