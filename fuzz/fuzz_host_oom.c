/* fuzz_host_conn with a failing heap: the first two input bytes choose an
 * allocation of the host and the simulator to fail (bit 15: and every one
 * after it), so the fuzzer explores allocation failures together with
 * hostile traffic. The rest is a fuzz_host_conn input (fuzz/host_harness.h).
 * A failure must never crash or leak (LeakSanitizer checks each input). */
#include "host_harness.h"

typedef struct oom {
    long count, fail_at;
    int from;
} oom;

static int oom_fail(oom *o)
{
    long i = o->count++;
    return i == o->fail_at || (o->from && i > o->fail_at);
}

static void *oom_malloc(size_t n, void *u)
{
    return oom_fail(u) ? NULL : malloc(n);
}

static void oom_free(void *p, void *u)
{
    (void)u;
    free(p);
}

static void *oom_calloc(size_t k, size_t n, void *u)
{
    return oom_fail(u) ? NULL : calloc(k, n);
}

static void *oom_realloc(void *p, size_t n, void *u)
{
    return oom_fail(u) ? NULL : realloc(p, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    oom o = {0, (long)((data[0] & 0x7f) << 8 | data[1]), data[0] >> 7};
    flare_mem mem = {&o, oom_malloc, oom_free, oom_calloc, oom_realloc};
    (void)fz_input_mem(data + 2, size - 2, 1, &mem);
    return 0;
}
