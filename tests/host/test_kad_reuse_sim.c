/* Kademlia request streams on the simulator. A DHT client asks one fake
 * server (a plain host answering /ipfs/kad/1.0.0 with no closer peers,
 * counting its streams): several requests in a row share one stream, which
 * the client closes once it has been idle; requests at the same time get
 * a stream each and only one is kept; a server that resets streams after
 * their first answer makes the client send again on a fresh stream, and
 * the query still succeeds. And the server side resets a stream that
 * stays idle, so a peer cannot hold it. */
#include <stdlib.h>

#include "support/test.h"

#include "flare/host.h"
#include "flare/kad.h"
#include "flare/lpframe.h"
#include "flare/sim.h"
#include "protocols/kad/kad.h"
#include "support/helpers.h"
#include "support/kad_world.h"

#define MS FLARE_NS_PER_MS
#define S  FLARE_NS_PER_S

static flare_sim *g_sim; /* the test's, for the time in callbacks */

/* ---- the fake server ---- */

typedef struct fake fake;

typedef struct fstream {
    fake *f;
    flare_stream *s;
    uint8_t in[4096];
    size_t len;
    int requests, eof, closed, reset_by_us;
    flare_tstamp eof_at;
} fstream;

struct fake {
    flare_host *h;
    fstream st[32];
    int nst;
    int one_per_stream; /* reset a stream that brings a second request */
};

static void f_answer(fake *f, fstream *x)
{
    for (;;) {
        const uint8_t *msg;
        size_t mlen;
        int n = flare_lpframe_parse(x->in, x->len, sizeof(x->in), &msg, &mlen);
        if (n == FLARE_ERR_AGAIN)
            return;
        assert_true(n > 0);
        flare__kad_msg *m = calloc(1, sizeof(*m));
        assert_int_equal(flare__kad_msg_decode(m, msg, mlen), 0);
        if (f->one_per_stream && x->requests == 1) {
            x->reset_by_us = 1;
            flare_stream_reset(x->s);
            free(m);
            return;
        }
        x->requests++;
        flare__kad_msg *a = calloc(1, sizeof(*a));
        flare__kad_msg_init(a, (flare__kad_type)m->type);
        a->key = m->key; /* no closer peers: the lookup ends with us */
        flare_buf out;
        flare_buf_init(&out, NULL);
        assert_int_equal(flare__kad_msg_encode(&out, a), 0);
        assert_true(flare_stream_write(x->s, out.base, out.len) >= 0);
        flare_buf_free(&out);
        memmove(x->in, x->in + n, x->len - (size_t)n);
        x->len -= (size_t)n;
        free(m);
        free(a);
    }
}

static void f_data(flare_stream *s, const uint8_t *data, size_t len, void *user)
{
    fstream *x = user;
    (void)s;
    assert_true(x->len + len <= sizeof(x->in));
    memcpy(x->in + x->len, data, len);
    x->len += len;
    f_answer(x->f, x);
}

static void f_eof(flare_stream *s, void *user)
{
    fstream *x = user;
    x->eof = 1;
    x->eof_at = flare_sim_now(g_sim);
    flare_stream_close_write(s);
}

static void f_close(flare_stream *s, int err, void *user)
{
    fstream *x = user;
    (void)s, (void)err;
    x->closed = 1;
}

static const flare_stream_cbs f_cbs = {.on_data = f_data, .on_eof = f_eof, .on_close = f_close};

static void f_open(flare_stream *s, int status, void *user)
{
    fake *f = user;
    if (status)
        return;
    assert_true(f->nst < 32);
    fstream *x = &f->st[f->nst++];
    x->f = f;
    x->s = s;
    flare_stream_set_user(s, &f_cbs, x);
}

static const flare_stream_cbs f_open_cbs = {.on_open = f_open};

typedef struct world {
    flare_sim *sim;
    flare_test_kad_node srv, cli;
    fake f;
} world;

static void run_s(world *w, double s)
{
    flare_test_kad_run_s(w->sim, s);
}

static int requests(const fake *f)
{
    int n = 0;
    for (int i = 0; i < f->nst; i++)
        n += f->st[i].requests;
    return n;
}

/* The fake server at 11.9.1.1 and a DHT client at 11.9.2.1 bootstrapping
 * from it: its probe makes the fake server the one peer in its table. */
static world *world_new(int one_per_stream)
{
    world *w = calloc(1, sizeof(*w));
    w->sim = g_sim = flare_sim_new(5, NULL);
    flare_host_settings c;
    flare_test_kad_host_settings(&c);
    flare_test_host_spec sp = {.name = "srv",
                               .lan = flare_sim_internet(w->sim),
                               .ip = "11.9.1.1",
                               .seed = {0x51},
                               .cfg = &c};
    flare_test_kad_node_make(w->sim, &w->srv, &sp);
    w->f.h = w->srv.h;
    w->f.one_per_stream = one_per_stream;
    assert_int_equal(flare_host_set_handler(w->srv.h, FLARE__KAD_ID, &f_open_cbs, &w->f, 0), 0);
    flare_test_host_spec cp = {.name = "cli",
                               .lan = flare_sim_internet(w->sim),
                               .ip = "11.9.2.1",
                               .seed = {0x52},
                               .cfg = &c};
    flare_test_kad_node_make(w->sim, &w->cli, &cp);
    flare_kad_settings ks;
    flare_test_kad_settings(&ks, FLARE_KAD_MODE_CLIENT);
    const flare_test_kad_node *boot = &w->srv;
    flare_test_kad_enable(w->cli.h, &ks, &boot, 1);
    run_s(w, 1);
    assert_int_equal(flare_kad_routing_table_size(w->cli.h), 1);
    return w;
}

static void world_del(world *w)
{
    flare_host_del(w->cli.h);
    flare_host_del(w->srv.h);
    flare_sim_del(w->sim);
    free(w);
}

static void closest(world *w, const char *key, flare_test_kad_res *r)
{
    assert_int_equal(flare_kad_closest_peers(w->cli.h, (const uint8_t *)key, strlen(key),
                                             flare_test_kad_peers_cb, r),
                     0);
}

static void expect_found_server(world *w, const flare_test_kad_res *r)
{
    assert_int_equal(r->calls, 1);
    assert_int_equal(r->status, 0);
    assert_int_equal(r->n, 1);
    assert_true(flare_peerid_equal(&r->peers[0].id, flare_host_peerid(w->srv.h)));
}

/* Requests one after another share the probe's stream; it is closed once
 * idle for the client's limit, well before the server's. */
static void test_requests_share_a_stream(void **state)
{
    (void)state;
    world *w = world_new(0);
    for (int q = 0; q < 3; q++) {
        flare_test_kad_res r = {0};
        closest(w, q == 0 ? "a" : q == 1 ? "b" : "c", &r);
        flare_test_kad_wait(w->sim, &r);
        expect_found_server(w, &r);
        run_s(w, 1);
    }
    assert_int_equal(w->f.nst, 1);
    assert_true(requests(&w->f) >= 4); /* the probe, the self lookup, three queries */
    assert_int_equal(w->f.st[0].eof, 0);
    /* Idle: the client ends it (a reset, as go's), before 40 s. */
    run_s(w, 40);
    assert_int_equal(w->f.st[0].eof, 0);
    assert_int_equal(w->f.st[0].closed, 1);
    /* The next request opens a new stream. */
    flare_test_kad_res r = {0};
    closest(w, "d", &r);
    flare_test_kad_wait(w->sim, &r);
    expect_found_server(w, &r);
    assert_int_equal(w->f.nst, 2);
    world_del(w);
}

/* Requests at the same time each get a stream; one stream is kept for the
 * peer afterwards, the others are closed right away. */
static void test_one_kept_per_peer(void **state)
{
    (void)state;
    world *w = world_new(0);
    run_s(w, 2);
    int before = w->f.nst;
    flare_test_kad_res r[3] = {{0}};
    closest(w, "x", &r[0]);
    closest(w, "y", &r[1]);
    closest(w, "z", &r[2]);
    for (int i = 0; i < 3; i++) {
        flare_test_kad_wait(w->sim, &r[i]);
        expect_found_server(w, &r[i]);
    }
    run_s(w, 1);
    int open = 0;
    for (int i = 0; i < w->f.nst; i++)
        open += !w->f.st[i].closed;
    assert_int_equal(open, 1);
    assert_int_equal(w->f.nst - before, 2); /* the kept one and two fresh */
    world_del(w);
}

/* A server that resets a stream on its second request: each request on a
 * kept stream fails and goes out again on a fresh one; every query still
 * answers. */
static void test_reset_kept_stream_retries(void **state)
{
    (void)state;
    world *w = world_new(1);
    for (int q = 0; q < 3; q++) {
        flare_test_kad_res r = {0};
        closest(w, q == 0 ? "a" : q == 1 ? "b" : "c", &r);
        flare_test_kad_wait(w->sim, &r);
        expect_found_server(w, &r);
        run_s(w, 1);
    }
    int resets = 0;
    for (int i = 0; i < w->f.nst; i++)
        resets += w->f.st[i].reset_by_us;
    assert_true(resets >= 3);
    assert_true(w->f.nst >= 4);
    assert_int_equal(flare_kad_routing_table_size(w->cli.h), 1); /* never counted as failed */
    world_del(w);
}

/* ---- the server side ---- */

typedef struct raw {
    flare_host *h;
    int answered, closed, close_err;
    flare_tstamp closed_at;
} raw;

static void raw_data(flare_stream *s, const uint8_t *data, size_t len, void *user)
{
    raw *r = user;
    (void)s, (void)data, (void)len;
    r->answered = 1;
}

static void raw_close(flare_stream *s, int err, void *user)
{
    raw *r = user;
    r->closed = 1;
    r->close_err = err;
    (void)s;
    r->closed_at = flare_sim_now(g_sim);
}

static const flare_stream_cbs raw_cbs = {.on_data = raw_data, .on_close = raw_close};

/* A peer that opens a stream to a DHT server, asks once and then neither
 * asks again nor closes: the server resets the stream after its idle
 * limit (a minute), not later. */
static void test_server_resets_idle_stream(void **state)
{
    (void)state;
    flare_sim *sim = g_sim = flare_sim_new(6, NULL);
    flare_host_settings c;
    flare_test_kad_host_settings(&c);
    flare_test_kad_node srv, cli;
    flare_test_host_spec sp = {
        .name = "srv", .lan = flare_sim_internet(sim), .ip = "11.9.1.1", .seed = {0x61}, .cfg = &c};
    flare_test_kad_node_make(sim, &srv, &sp);
    flare_kad_settings ks;
    flare_test_kad_settings(&ks, FLARE_KAD_MODE_SERVER);
    flare_test_kad_enable(srv.h, &ks, NULL, 0);
    flare_test_host_spec cp = {
        .name = "cli", .lan = flare_sim_internet(sim), .ip = "11.9.2.1", .seed = {0x62}, .cfg = &c};
    flare_test_kad_node_make(sim, &cli, &cp);
    flare_test_kad_run_s(sim, 1);
    flare_multiaddr ma;
    flare_test_kad_addr(&ma, &srv);
    assert_int_equal(flare_host_add_addr(cli.h, flare_host_peerid(srv.h), &ma, FLARE_TSTAMP_NEVER),
                     0);
    flare_test_kad_connect_ok(sim, cli.h, flare_host_peerid(srv.h));

    raw r = {.h = cli.h};
    flare_stream *s;
    assert_int_equal(
        flare_host_new_stream(cli.h, flare_host_peerid(srv.h), FLARE__KAD_ID, &raw_cbs, &r, 0, &s),
        0);
    flare__kad_msg *m = calloc(1, sizeof(*m));
    flare__kad_msg_init(m, FLARE__KAD_FIND_NODE);
    m->key = (flare__kad_bytes){(const uint8_t *)"k", 1};
    flare_buf out;
    flare_buf_init(&out, NULL);
    assert_int_equal(flare__kad_msg_encode(&out, m), 0);
    assert_true(flare_stream_write(s, out.base, out.len) >= 0);
    flare_buf_free(&out);
    free(m);
    flare_tstamp asked = flare_sim_now(sim);
    flare_test_kad_run_s(sim, 5);
    assert_int_equal(r.answered, 1);
    assert_int_equal(r.closed, 0);
    flare_test_kad_run_s(sim, 70);
    assert_int_equal(r.closed, 1);
    assert_int_equal(r.close_err, FLARE_ERR_RESET);
    assert_true(r.closed_at - asked >= 59 * S && r.closed_at - asked <= 62 * S);
    flare_host_del(cli.h);
    flare_host_del(srv.h);
    flare_sim_del(sim);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_requests_share_a_stream),
        cmocka_unit_test(test_one_kept_per_peer),
        cmocka_unit_test(test_reset_kept_stream_retries),
        cmocka_unit_test(test_server_resets_idle_stream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
