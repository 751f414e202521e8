/* getrandom(2) answering the same bytes in every run, so that randomly seeded hash maps are
   seeded alike and instruction counts repeat. For the benchmarks of the gate only. */
#include <stddef.h>
#include <sys/types.h>

ssize_t getrandom(void *buf, size_t len, unsigned int flags) {
    (void)flags;
    unsigned char *out = buf;
    for (size_t i = 0; i < len; i++) out[i] = (unsigned char)(i * 131 + 7);
    return (ssize_t)len;
}
