/* The host's handler lookup (what answers an inbound protocol proposal):
 * with enough handlers to grow its index, each is found by its exact name,
 * not by a prefix, an extension or another length; a replaced one keeps
 * one entry; removed ones are gone and the others still found; the
 * protocol list keeps registration order. */
#include "support/test.h"

#include "flare/host.h"
#include "flare/sim.h"
#include "host/host_int.h"

#define NH 40

static const flare__handler *find(flare_host *h, const char *p)
{
    return flare__host_find_handler(h, p, strlen(p));
}

static void test_handlers(void **state)
{
    (void)state;
    flare_sim *sim = flare_sim_new(3, NULL);
    assert_non_null(sim);
    flare_test_host_spec sp = {.name = "a",
                               .lan = flare_sim_internet(sim),
                               .ip = "198.51.100.1",
                               .link = {.delay = FLARE_NS_PER_MS},
                               .seed = {1}};
    flare_sim_host *sh;
    flare_host *h;
    assert_int_equal(flare_test_host_make(sim, &sp, &sh, &h), 0);
    const char *base[64];
    size_t nbase = flare_host_protocols(h, base, 64); /* the services' own */
    flare_stream_cbs cbs = {0};
    char name[NH][64];
    for (int i = 0; i < NH; i++) {
        snprintf(name[i], sizeof(name[i]), "/test/%d/1.0.0", i);
        assert_int_equal(flare_host_set_handler(h, name[i], &cbs, &name[i], 0), 0);
    }
    assert_int_equal(flare_host_set_handler(h, name[3], &cbs, NULL, 0), 0); /* replaced */
    for (int i = 0; i < NH; i++) {
        const flare__handler *x = find(h, name[i]);
        assert_non_null(x);
        assert_string_equal(x->protocol, name[i]);
        assert_ptr_equal(x->user, i == 3 ? NULL : (void *)&name[i]);
    }
    assert_null(find(h, "/test/4/1.0"));
    assert_null(find(h, "/test/4/1.0.00"));
    assert_null(find(h, "/test/4/1.0.1"));
    assert_null(flare__host_find_handler(h, name[4], strlen(name[4]) - 1));
    for (int i = 0; i < NH; i += 3)
        assert_int_equal(flare_host_remove_handler(h, name[i]), 0);
    assert_int_equal(flare_host_remove_handler(h, name[0]), FLARE_ERR_NOT_FOUND);
    for (int i = 0; i < NH; i++)
        assert_true((find(h, name[i]) == NULL) == (i % 3 == 0));
    const char *list[128];
    size_t n = flare_host_protocols(h, list, 128);
    assert_int_equal(n, nbase + NH - (NH + 2) / 3);
    /* Newest first, the services' after ours. */
    int prev = NH;
    for (size_t i = 0; i < n - nbase; i++) {
        int k = atoi(list[i] + strlen("/test/"));
        assert_true(k < prev && k % 3 != 0);
        prev = k;
    }
    for (size_t i = 0; i < nbase; i++)
        assert_string_equal(list[n - nbase + i], base[i]);
    /* A short list gets the newest ones. */
    const char *few[5];
    assert_int_equal(flare_host_protocols(h, few, 5), 5);
    for (size_t i = 0; i < 5; i++)
        assert_ptr_equal(few[i], list[i]);
    flare_host_del(h);
    flare_sim_del(sim);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_handlers)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
