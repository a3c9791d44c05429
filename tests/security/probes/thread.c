/* thread: start a thread and join it. glibc's pthread_create tries clone3 first and falls back to
 * clone only when clone3 fails with ENOSYS: prints "thread-ok" when that works. */
#include <pthread.h>
#include <stdio.h>

static void *body(void *arg) { return arg; }

int main(void) {
    pthread_t t;
    void *ret = 0;
    int rc = pthread_create(&t, 0, body, (void *)42);
    if (rc != 0) {
        printf("pthread_create failed: %d\n", rc);
        return 1;
    }
    pthread_join(t, &ret);
    printf(ret == (void *)42 ? "thread-ok\n" : "thread-bad\n");
    return 0;
}
