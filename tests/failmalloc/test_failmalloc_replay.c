/* Allocation-failure sweeps of a host fed real traffic: the fuzz seeds of
 * fuzz_host_conn (a flare peer's and a js-libp2p peer's session, recorded)
 * are replayed against a simulated host while its allocations (and the
 * simulator's) fail in turn; see failmalloc.h and fuzz/host_harness.h. */
#include <stdlib.h>

#include "failmalloc/failmalloc.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include "../../fuzz/host_harness.h"
#pragma GCC diagnostic pop

typedef struct seed {
    uint8_t *data;
    size_t len;
} seed;

static int sc_replay(fm *m, void *ctx)
{
    seed *s = ctx;
    int opened = fz_input_mem(s->data, s->len, 1, &m->mem);
    if (opened < 0)
        return opened;
    return opened > 0 ? 0 : FLARE_ERR_CLOSED;
}

static void replay(const char *name)
{
    char rel[128];
    snprintf(rel, sizeof(rel), "fuzz/corpus/fuzz_host_conn/%s", name);
    seed s;
    s.data = (uint8_t *)flare_test_read_source_file(rel, &s.len);
    assert_non_null(s.data);
    char label[64];
    snprintf(label, sizeof(label), "replay %s", name);
    fm_result r = fm_sweep(label, sc_replay, &s);
    assert_true(r.allocs > 100);
    free(s.data);
}

/* Every seed recorded from flare and from js-libp2p (fuzz/corpus/fuzz_host_conn). */
static void test_flare_sessions(void **state)
{
    (void)state;
    replay("recorded-0"); /* a long talk ending in a goaway */
    replay("recorded-1"); /* streams reset, the connection dropped */
    replay("recorded-2"); /* H with a relay server and tight limits */
}

static void test_js_sessions(void **state)
{
    (void)state;
    replay("js-1");
    replay("js-2");
    replay("js-3");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flare_sessions),
        cmocka_unit_test(test_js_sessions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
