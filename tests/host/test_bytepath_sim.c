/* The byte path keeps its hot buffers: a connection streaming one bulk
 * stream must not give its I/O buffers back and allocate them again for
 * every batch (each time a few page faults and, with glibc, a heap trim).
 * On the simulator, one stream moves 16 MiB; the sender's and receiver's
 * allocations of 16 KiB and more during the transfer are counted. */
#include <stdlib.h>

#include "support/test.h"

#include "flare/host.h"
#include "flare/sim.h"

#define MS    FLARE_NS_PER_MS
#define S     FLARE_NS_PER_S
#define TOTAL (16u << 20)
#define CHUNK (64u << 10)
#define BIG   (16u << 10)

typedef struct counter {
    size_t big; /* allocations (and reallocations) of BIG bytes or more */
} counter;

static void *c_malloc(size_t n, void *user)
{
    ((counter *)user)->big += n >= BIG;
    return malloc(n);
}

static void c_free(void *p, void *user)
{
    (void)user;
    free(p);
}

static void *c_calloc(size_t k, size_t n, void *user)
{
    ((counter *)user)->big += k * n >= BIG;
    return calloc(k, n);
}

static void *c_realloc(void *p, size_t n, void *user)
{
    ((counter *)user)->big += n >= BIG;
    return realloc(p, n);
}

typedef struct world {
    size_t sent, received;
    int err;
    flare_stream *s;
} world;

static uint8_t chunk[CHUNK];

static void sink_data(flare_stream *s, const uint8_t *d, size_t n, void *user)
{
    (void)s;
    (void)d;
    ((world *)user)->received += n;
}

static void pump(flare_stream *s, world *w)
{
    while (w->sent < TOTAL) {
        int rv = flare_stream_write(s, chunk, CHUNK);
        if (rv < 0) {
            w->err = rv;
            return;
        }
        w->sent += CHUNK;
        if (rv == 1)
            return;
    }
}

static void tx_open(flare_stream *s, int status, void *user)
{
    if (status == 0)
        pump(s, user);
    else
        ((world *)user)->err = status;
}

static void tx_writable(flare_stream *s, void *user)
{
    pump(s, user);
}

static flare_host *make_host(flare_sim *sim, const char *name, const char *ip, uint8_t seedb,
                             const flare_mem *mem)
{
    flare_sim_host *sh = flare_sim_host_new(sim, name);
    assert_int_equal(flare_sim_host_add_addr(sh, flare_sim_internet(sim), ip), 0);
    flare_sim_link l = {.delay = 1 * MS, .rate = 200u << 20};
    flare_sim_link_set(sh, &l);
    flare_host_settings cfg;
    flare_host_settings_default(&cfg);
    cfg.enable_autonat_client = cfg.enable_autonat_server = 0;
    uint8_t seed[32] = {seedb};
    flare_privkey k;
    assert_int_equal(flare_privkey_from_seed(&k, seed), 0);
    flare_host *h;
    assert_int_equal(flare_host_new(&h, flare_sim_host_io(sh), &k, &cfg, mem), 0);
    return h;
}

static void dial_cb(flare_host *h, flare_conn *c, int status, void *user)
{
    (void)h;
    assert_int_equal(status, 0);
    *(flare_conn **)user = c;
}

static void test_streaming_keeps_its_buffers(void **state)
{
    (void)state;
    world w = {0};
    counter ca = {0}, cb = {0};
    flare_mem ma_ = {&ca, c_malloc, c_free, c_calloc, c_realloc};
    flare_mem mb_ = {&cb, c_malloc, c_free, c_calloc, c_realloc};
    flare_sim *sim = flare_sim_new(7, NULL);
    flare_host *b = make_host(sim, "sink", "198.51.100.1", 1, &mb_);
    flare_host *a = make_host(sim, "sender", "198.51.100.2", 2, &ma_);
    flare_stream_cbs sink = {.on_data = sink_data};
    assert_int_equal(flare_host_set_handler(b, "/sink", &sink, &w, 0), 0);
    flare_multiaddr ma;
    assert_int_equal(flare_multiaddr_parse(&ma, "/ip4/198.51.100.1/tcp/4001"), 0);
    assert_int_equal(flare_host_listen(b, &ma), 0);
    flare_conn *c = NULL;
    assert_int_equal(flare_host_dial(a, &ma, NULL, dial_cb, &c), 0);
    flare_sim_run_for(sim, 2 * S);
    assert_non_null(c);
    size_t a0 = ca.big, b0 = cb.big;
    flare_stream_cbs tx = {.on_open = tx_open, .on_writable = tx_writable};
    assert_int_equal(flare_conn_new_stream(c, "/sink", &tx, &w, 0, &w.s), 0);
    for (int t = 0; t < 60 && w.received < TOTAL && !w.err; t++)
        flare_sim_run_for(sim, 1 * S);
    size_t da = ca.big - a0, db = cb.big - b0;
    print_message("received %zu of %u bytes; allocations >= 16 KiB: sender %zu, receiver %zu\n",
                  w.received, TOTAL, da, db);
    assert_int_equal(w.err, 0);
    assert_int_equal(w.received, TOTAL);
    /* Growing a few buffers to their working size takes a few dozen
     * allocations; one per batch would be hundreds (16 MiB in 64 KiB
     * writes is 256 of them). */
    assert_true(da < 64);
    assert_true(db < 64);
    flare_host_del(a);
    flare_host_del(b);
    flare_sim_del(sim);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_streaming_keeps_its_buffers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
