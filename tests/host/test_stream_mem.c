/* Memory of idle streams and idle relay circuits (issue 5): negotiation
 * state and drained buffers are released, so an idle stream keeps only its
 * small control blocks. Counted with an allocator hook on the simulator. */
#include <stdlib.h>

#include "support/test.h"

#include "flare/host.h"
#include "flare/sim.h"
#include "host/host_int.h"
#include "muxer/yamux/yamux_int.h"

#define MS FLARE_NS_PER_MS

typedef struct node {
    flare_sim_host *sh;
    flare_host *h;
    flare_test_heap heap;
    flare_mem mem;
    int rsv_ok;
    flare_multiaddr relayed;
} node;

static void on_event(flare_host *h, const flare_host_event *ev, void *user)
{
    node *n = user;
    (void)h;
    if (ev->type == FLARE_HOST_EV_RESERVATION_OK) {
        n->rsv_ok++;
        if (ev->u.reservation.addr)
            n->relayed = *ev->u.reservation.addr;
    }
}

static void make_host(flare_sim *sim, node *n, const char *name, const char *ip, uint8_t seedb)
{
    flare_host_settings cfg;
    flare_test_settings_default(&cfg);
    cfg.enable_holepunch = 0;
    cfg.enable_autonat_client = 0;
    cfg.enable_autonat_server = 0;
    n->mem = flare_test_heap_mem(&n->heap);
    flare_test_host_spec sp = {.name = name,
                               .lan = flare_sim_internet(sim),
                               .ip = ip,
                               .link = {.delay = 5 * MS},
                               .seed = {seedb},
                               .cfg = &cfg,
                               .on_event = on_event,
                               .user = n,
                               .listen_port = 4001,
                               .mem = &n->mem};
    assert_int_equal(flare_test_host_make(sim, &sp, &n->sh, &n->h), 0);
}

static void addr_of(node *n, const char *ip, flare_multiaddr *ma)
{
    assert_int_equal(flare_test_tcp_addr(ma, ip, 4001, flare_host_peerid(n->h)), 0);
}

/* Echo, and a client that counts what comes back. */
static void echo_data(flare_stream *s, const uint8_t *d, size_t len, void *user)
{
    (void)user;
    assert_true(flare_stream_write(s, d, len) >= 0);
}

static const flare_stream_cbs echo_cbs = {.on_data = echo_data};

static size_t got;
static void c_data(flare_stream *s, const uint8_t *d, size_t len, void *user)
{
    (void)s;
    (void)d;
    (void)user;
    got += len;
}

static const flare_stream_cbs cli_cbs = {.on_data = c_data};

/* Every stream of every connection of h is idle: no negotiation state, no
 * write queue, no yamux receive buffer. Returns the number of streams. */
static size_t check_idle(flare_host *h)
{
    size_t n = 0;
    for (flare_conn *c = h->conns; c; c = c->next) {
        for (flare_stream *s = c->streams; s; s = s->next, n++) {
            assert_null(s->nego);
            assert_int_equal(s->outq.cap, 0);
            assert_non_null(s->protocol);
            const flare__ystream *st = flare__ystream_find(c->mux_st, s->id);
            assert_non_null(st);
            assert_null(st->buf);
        }
    }
    return n;
}

static flare_stream *stream_on(flare_conn *c, const char *proto)
{
    for (flare_stream *s = c->streams; s; s = s->next)
        if (strcmp(flare_stream_protocol(s), proto) == 0)
            return s;
    return NULL;
}

static void test_idle_stream(void **state)
{
    (void)state;
    flare_sim *sim = flare_sim_new(5, NULL);
    node a = {0}, b = {0};
    make_host(sim, &a, "a", "198.51.100.1", 1);
    make_host(sim, &b, "b", "198.51.100.2", 2);
    assert_int_equal(flare_host_set_handler(a.h, "/echo/1.0.0", &echo_cbs, NULL, 0), 0);
    flare_multiaddr ma;
    addr_of(&a, "198.51.100.1", &ma);
    flare_conn *c = flare_test_dial_ok(sim, b.h, &ma, 1000);
    flare_stream *s;
    assert_int_equal(flare_conn_new_stream(c, "/echo/1.0.0", &cli_cbs, NULL, 0, &s), 0);
    assert_non_null(s->nego); /* negotiating */
    got = 0;
    assert_int_equal(flare_stream_write(s, (const uint8_t *)"hello", 5), 0);
    flare_sim_run_for(sim, 500 * MS);
    assert_int_equal(got, 5);
    assert_string_equal(flare_stream_protocol(s), "/echo/1.0.0");
    assert_true(check_idle(a.h) >= 1);
    assert_true(check_idle(b.h) >= 1);
    /* A bulk transfer may keep a streaming buffer; a small exchange after it
     * releases everything again. */
    static uint8_t big[256 * 1024];
    memset(big, 7, sizeof(big));
    assert_true(flare_stream_write(s, big, sizeof(big)) >= 0);
    flare_sim_run_for(sim, 3000 * MS);
    assert_int_equal(got, 5 + sizeof(big));
    assert_int_equal(flare_stream_write(s, (const uint8_t *)"x", 1), 0);
    flare_sim_run_for(sim, 500 * MS);
    assert_int_equal(got, 6 + sizeof(big));
    check_idle(a.h);
    check_idle(b.h);
    flare_host_del(a.h);
    flare_host_del(b.h);
    flare_sim_del(sim);
    assert_int_equal(a.heap.bytes, 0);
    assert_int_equal(b.heap.bytes, 0);
}

/* An idle circuit costs the relay little more than its two stream control
 * blocks and the relay core's record (it was ~16 KB). */
static void test_idle_circuit(void **state)
{
    (void)state;
    flare_sim *sim = flare_sim_new(7, NULL);
    node r = {0}, a = {0}, b = {0};
    make_host(sim, &r, "relay", "198.51.100.10", 1);
    make_host(sim, &a, "a", "198.51.100.1", 2);
    make_host(sim, &b, "b", "198.51.100.2", 3);
    assert_int_equal(flare_host_enable_relay_server(r.h, NULL), 0);
    assert_int_equal(
        flare_host_set_handler(b.h, "/echo/1.0.0", &echo_cbs, NULL, FLARE_HANDLER_ALLOW_LIMITED),
        0);
    flare_multiaddr rma;
    addr_of(&r, "198.51.100.10", &rma);
    assert_int_equal(flare_host_relay_reserve(b.h, &rma), 0);
    flare_test_dial_ok(sim, a.h, &rma, 3000);
    assert_int_equal(b.rsv_ok, 1);
    long before = r.heap.bytes;
    /* A reaches B through the relay; the circuit carries a short exchange
     * and goes idle. */
    flare_conn *c = flare_test_dial_ok(sim, a.h, &b.relayed, 3000);
    flare_stream *s;
    got = 0;
    assert_int_equal(
        flare_conn_new_stream(c, "/echo/1.0.0", &cli_cbs, NULL, FLARE_STREAM_ALLOW_LIMITED, &s), 0);
    assert_int_equal(flare_stream_write(s, (const uint8_t *)"ping", 4), 0);
    flare_sim_run_for(sim, 2000 * MS);
    assert_int_equal(got, 4);
    assert_int_equal(flare_host_relay_num_circuits(r.h), 1);
    long per_circuit = r.heap.bytes - before;
    print_message("relay heap per idle circuit: %ld B\n", per_circuit);
    assert_true(per_circuit > 0);
    assert_true(per_circuit < 1536);
    /* The relay's hop and stop streams are idle. */
    assert_non_null(stream_on(flare_host_conn_to(r.h, flare_host_peerid(a.h)),
                              "/libp2p/circuit/relay/0.2.0/hop"));
    check_idle(r.h);
    flare_host_del(a.h);
    flare_host_del(b.h);
    flare_host_del(r.h);
    flare_sim_del(sim);
    assert_int_equal(r.heap.bytes, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idle_stream),
        cmocka_unit_test(test_idle_circuit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
