/* The host on the simulated network: upgrade, identify, ping, streams,
 * limits and bad input, with deterministic time. */
#include <stdlib.h>

#include "support/test.h"

#include "flare/host.h"
#include "flare/identify.h"
#include "flare/ping.h"
#include "flare/sim.h"

#define MS   FLARE_NS_PER_MS
#define MAXH 24

typedef struct tnode {
    flare_sim_host *sh;
    flare_host *h;
    char ip[32];
    int opened, closed, identified, observed, incoming_failed, dial_failed, pings, addrs_changed;
    flare_multiaddr observed_addr;
    flare_tstamp last_rtt;
} tnode;

typedef struct world {
    flare_sim *sim;
    tnode n[MAXH];
    int count;
} world;

static void on_event(flare_host *h, const flare_host_event *ev, void *user)
{
    tnode *t = user;
    (void)h;
    switch (ev->type) {
    case FLARE_HOST_EV_CONN_OPENED:
        t->opened++;
        break;
    case FLARE_HOST_EV_CONN_CLOSED:
        t->closed++;
        break;
    case FLARE_HOST_EV_IDENTIFIED:
        t->identified++;
        break;
    case FLARE_HOST_EV_OBSERVED_ADDR:
        t->observed++;
        t->observed_addr = *ev->u.observed.addr;
        break;
    case FLARE_HOST_EV_INCOMING_FAILED:
        t->incoming_failed++;
        break;
    case FLARE_HOST_EV_ADDRS_CHANGED:
        t->addrs_changed++;
        break;
    case FLARE_HOST_EV_DIAL_FAILED:
        t->dial_failed++;
        break;
    case FLARE_HOST_EV_PING:
        t->pings++;
        t->last_rtt = ev->u.ping.rtt;
        break;
    default:
        break;
    }
}

static tnode *add_node_on(world *w, flare_sim_lan *lan, const char *name, const char *ip,
                          flare_tstamp delay, uint8_t seedb)
{
    tnode *t = &w->n[w->count];
    flare_test_host_spec sp = {.name = name,
                               .lan = lan,
                               .ip = ip,
                               .link = {.delay = delay},
                               .seed = {seedb},
                               .on_event = on_event,
                               .user = t};
    assert_int_equal(flare_test_host_make(w->sim, &sp, &t->sh, &t->h), 0);
    snprintf(t->ip, sizeof(t->ip), "%s", ip);
    w->count++;
    return t;
}

/* A public host (the simulator's internet is TEST-NET, counted public). */
static tnode *add_node(world *w, const char *ip, flare_tstamp delay)
{
    char name[16];
    snprintf(name, sizeof(name), "h%d", w->count);
    return add_node_on(w, flare_sim_internet(w->sim), name, ip, delay, (uint8_t)(w->count + 1));
}

static void world_init(world *w, uint64_t seed)
{
    memset(w, 0, sizeof(*w));
    w->sim = flare_sim_new(seed, NULL);
    assert_non_null(w->sim);
}

static void world_free(world *w)
{
    for (int i = 0; i < w->count; i++)
        flare_host_del(w->n[i].h);
    flare_sim_del(w->sim);
}

static void listen_on(tnode *t, int port)
{
    flare_multiaddr ma;
    assert_int_equal(flare_test_tcp_addr(&ma, t->ip, port, NULL), 0);
    assert_int_equal(flare_host_listen(t->h, &ma), 0);
}

static void addr_of(tnode *t, int port, flare_multiaddr *ma)
{
    assert_int_equal(flare_test_tcp_addr(ma, t->ip, port, flare_host_peerid(t->h)), 0);
}

static void run_ms(world *w, int ms)
{
    flare_test_run_ms(w->sim, ms);
}

/* Two public hosts: b dials a, which listens on port 4001. */
static void dial_pair(world *w, uint64_t seed, flare_tstamp delay, tnode **a, tnode **b,
                      flare_test_dial *r)
{
    world_init(w, seed);
    *a = add_node(w, "198.51.100.1", delay);
    *b = add_node(w, "198.51.100.2", delay);
    listen_on(*a, 4001);
    flare_multiaddr ma;
    addr_of(*a, 4001, &ma);
    assert_int_equal(flare_host_dial((*b)->h, &ma, NULL, flare_test_dial_cb, r), 0);
}

/* ---- connect, identify, ping ------------------------------------------------------ */

static void test_connect_identify(void **state)
{
    world w;
    tnode *a, *b;
    flare_test_dial r = {0};
    dial_pair(&w, 1, 10 * MS, &a, &b, &r);
    run_ms(&w, 2000);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.status, 0);
    assert_non_null(r.conn);
    assert_int_equal(a->opened, 1);
    assert_int_equal(b->opened, 1);
    assert_true(a->identified >= 1); /* pushes count too */
    assert_true(b->identified >= 1);
    assert_true(flare_conn_is_initiator(r.conn));
    assert_string_equal(flare_conn_muxer(r.conn), "/yamux/1.0.0");
    assert_string_equal(flare_conn_transport(r.conn), "tcp");
    assert_string_equal(flare_conn_security(r.conn), "/noise");
    /* A transport's address that no registered transport matches is
     * refused, not dialed as TCP. */
    flare_multiaddr ws;
    assert_int_equal(flare_multiaddr_parse(&ws, "/ip4/10.0.0.2/tcp/4001/http"), 0);
    assert_int_equal(flare_host_dial(a->h, &ws, NULL, NULL, NULL), FLARE_ERR_UNSUPPORTED);
    assert_int_equal(flare_host_listen(a->h, &ws), FLARE_ERR_UNSUPPORTED);
    /* B learnt A's protocols and listen address from identify. */
    assert_true(flare_host_peer_supports(b->h, flare_host_peerid(a->h), FLARE_PING_PROTOCOL_ID));
    assert_true(flare_host_peer_supports(b->h, flare_host_peerid(a->h), FLARE_IDENTIFY_ID));
    flare_peer_info *info = malloc(sizeof(*info));
    assert_int_equal(flare_host_peer_info(b->h, flare_host_peerid(a->h), info), 0);
    assert_true(info->naddrs >= 1);
    char s[256];
    flare_multiaddr_to_string(&info->addrs[0], s, sizeof(s));
    assert_string_equal(s, "/ip4/198.51.100.1/tcp/4001");
    assert_true(info->has_pubkey);
    free(info);
    /* A saw B at B's address; B sees A at 198.51.100.1:4001 (a push may
     * repeat it once A confirmed its own address). */
    assert_true(b->observed >= 1);
    flare_multiaddr_to_string(&b->observed_addr, s, sizeof(s));
    assert_true(strncmp(s, "/ip4/198.51.100.2/tcp/", 22) == 0);
    assert_true(a->observed >= 1);
    /* Ping: two 10 ms links each way, so an RTT of 40 ms. */
    assert_int_equal(flare_host_ping(b->h, flare_host_peerid(a->h), NULL, NULL), 0);
    run_ms(&w, 1000);
    assert_int_equal(b->pings, 1);
    assert_true(b->last_rtt >= 40 * MS && b->last_rtt < 45 * MS);
    world_free(&w);
}

static void test_dial_dedup_and_reuse(void **state)
{
    world w;
    world_init(&w, 2);
    tnode *a = add_node(&w, "198.51.100.1", 5 * MS);
    tnode *b = add_node(&w, "198.51.100.2", 5 * MS);
    listen_on(a, 4001);
    flare_multiaddr ma;
    addr_of(a, 4001, &ma);
    flare_test_dial r1 = {0}, r2 = {0}, r3 = {0};
    assert_int_equal(flare_host_dial(b->h, &ma, NULL, flare_test_dial_cb, &r1), 0);
    assert_int_equal(flare_host_dial(b->h, &ma, NULL, flare_test_dial_cb, &r2), 0);
    /* Callbacks never run inside the call. */
    assert_int_equal(r1.calls + r2.calls, 0);
    run_ms(&w, 1000);
    assert_int_equal(r1.calls, 1);
    assert_int_equal(r2.calls, 1);
    assert_ptr_equal(r1.conn, r2.conn);
    assert_int_equal(a->opened, 1);
    /* An existing connection is reused, from the loop. */
    assert_int_equal(flare_host_dial(b->h, &ma, NULL, flare_test_dial_cb, &r3), 0);
    assert_int_equal(r3.calls, 0);
    run_ms(&w, 10);
    assert_int_equal(r3.calls, 1);
    assert_ptr_equal(r3.conn, r1.conn);
    assert_int_equal(flare_host_num_conns(b->h), 1);
    world_free(&w);
}

/* ---- streams ------------------------------------------------------------------------ */

typedef struct xfer {
    uint8_t *sent;
    size_t len, off;
    size_t got;
    int match, eof, closed, opened, close_err, open_status;
    flare_stream *s;
} xfer;

static void x_push(xfer *x)
{
    while (x->off < x->len) {
        size_t n = x->len - x->off < 65536 ? x->len - x->off : 65536;
        int rv = flare_stream_write(x->s, x->sent + x->off, n);
        assert_true(rv == 0 || rv == 1);
        x->off += n;
        if (rv == 1)
            return; /* on_writable resumes */
    }
    flare_stream_close_write(x->s);
}

static void x_open(flare_stream *s, int status, void *user)
{
    xfer *x = user;
    (void)s;
    x->open_status = status;
    x->opened = status == 0;
}

static void x_data(flare_stream *s, const uint8_t *d, size_t len, void *user)
{
    xfer *x = user;
    (void)s;
    if (x->got + len > x->len || memcmp(d, x->sent + x->got, len) != 0)
        x->match = 0;
    x->got += len;
}

static void x_eof(flare_stream *s, void *user)
{
    xfer *x = user;
    (void)s;
    x->eof = 1;
}

static void x_writable(flare_stream *s, void *user)
{
    (void)s;
    x_push(user);
}

static void x_close(flare_stream *s, int err, void *user)
{
    xfer *x = user;
    (void)s;
    x->closed++; /* counted: on_close must come exactly once */
    x->close_err = err;
}

static const flare_stream_cbs x_cbs = {.on_open = x_open,
                                       .on_data = x_data,
                                       .on_eof = x_eof,
                                       .on_writable = x_writable,
                                       .on_close = x_close};

static void run_streams(int nstreams, size_t len, uint64_t seed)
{
    world w;
    tnode *a, *b;
    flare_test_dial r = {0};
    int echo_errors = 0;
    dial_pair(&w, seed, 2 * MS, &a, &b, &r);
    assert_int_equal(
        flare_host_set_handler(a->h, "/echo/1.0.0", &flare_test_echo_cbs, &echo_errors, 0), 0);
    run_ms(&w, 500);
    assert_int_equal(r.status, 0);
    xfer *x = calloc((size_t)nstreams, sizeof(*x));
    flare_prng p;
    flare_prng_seed(&p, seed);
    for (int i = 0; i < nstreams; i++) {
        x[i].len = len;
        x[i].sent = malloc(len);
        x[i].match = 1;
        for (size_t j = 0; j < len; j++)
            x[i].sent[j] = (uint8_t)flare_prng_next(&p);
        assert_int_equal(flare_conn_new_stream(r.conn, "/echo/1.0.0", &x_cbs, &x[i], 0, &x[i].s),
                         0);
        x_push(&x[i]);
    }
    run_ms(&w, 60000);
    for (int i = 0; i < nstreams; i++) {
        assert_true(x[i].opened);
        assert_int_equal(x[i].got, len);
        assert_true(x[i].match);
        assert_true(x[i].eof);
        assert_int_equal(x[i].closed, 1);
        assert_int_equal(x[i].close_err, 0);
        free(x[i].sent);
    }
    assert_int_equal(echo_errors, 0);
    free(x);
    world_free(&w);
}

static void test_echo_large(void **state)
{
    run_streams(1, 4 << 20, 3);
}

static void test_many_streams(void **state)
{
    run_streams(200, 20000, 4);
}

static void test_unknown_protocol(void **state)
{
    world w;
    tnode *a, *b;
    flare_test_dial r = {0};
    dial_pair(&w, 5, 2 * MS, &a, &b, &r);
    run_ms(&w, 500);
    xfer x = {0};
    assert_int_equal(flare_conn_new_stream(r.conn, "/nope/1.0.0", &x_cbs, &x, 0, &x.s), FLARE_OK);
    run_ms(&w, 500);
    assert_false(x.opened);
    assert_int_equal(x.open_status, FLARE_ERR_NEGOTIATION);
    assert_true(x.closed);
    assert_int_equal(x.close_err, FLARE_ERR_NEGOTIATION);
    /* The connection is unaffected. */
    assert_int_equal(flare_host_ping(b->h, flare_host_peerid(a->h), NULL, NULL), 0);
    run_ms(&w, 500);
    assert_int_equal(b->pings, 1);
    world_free(&w);
}

/* A reset by the application still ends in exactly one on_close, delivered
 * from the loop (never inside flare_stream_reset), for open and negotiating
 * streams, and also when the connection goes away before the next tick. */
static void test_reset_delivers_close(void **state)
{
    world w;
    tnode *a, *b;
    flare_test_dial r = {0};
    int echo_errors = 0;
    dial_pair(&w, 21, 2 * MS, &a, &b, &r);
    assert_int_equal(
        flare_host_set_handler(a->h, "/echo/1.0.0", &flare_test_echo_cbs, &echo_errors, 0), 0);
    run_ms(&w, 500);
    assert_int_equal(r.status, 0);
    xfer x = {.match = 1}, y = {.match = 1}, z = {.match = 1};
    assert_int_equal(flare_conn_new_stream(r.conn, "/echo/1.0.0", &x_cbs, &x, 0, &x.s), 0);
    assert_int_equal(flare_stream_write(x.s, (const uint8_t *)"hi", 2), 0);
    run_ms(&w, 100);
    assert_true(x.opened);
    flare_stream_reset(x.s);
    assert_int_equal(x.closed, 0); /* not inside the call */
    assert_int_equal(flare_stream_write(x.s, (const uint8_t *)"hi", 2), FLARE_ERR_CLOSED);
    flare_stream_reset(x.s); /* a second reset does nothing */
    /* Still negotiating: on_close only (no on_open for a stream we dropped). */
    assert_int_equal(flare_conn_new_stream(r.conn, "/echo/1.0.0", &x_cbs, &y, 0, &y.s), 0);
    flare_stream_reset(y.s);
    assert_int_equal(y.closed, 0);
    run_ms(&w, 100);
    assert_int_equal(x.closed, 1);
    assert_int_equal(x.close_err, FLARE_ERR_RESET);
    assert_int_equal(y.closed, 1);
    assert_int_equal(y.close_err, FLARE_ERR_RESET);
    assert_false(y.opened);
    assert_int_equal(y.open_status, 0);
    /* Reset, then the connection is closed before the loop runs again. */
    assert_int_equal(flare_conn_new_stream(r.conn, "/echo/1.0.0", &x_cbs, &z, 0, &z.s), 0);
    run_ms(&w, 100);
    flare_stream_reset(z.s);
    flare_conn_close(r.conn); /* tears down now, with the streams' on_close */
    run_ms(&w, 100);
    assert_int_equal(z.closed, 1);
    assert_int_equal(z.close_err, FLARE_ERR_RESET);
    assert_int_equal(x.closed, 1);
    assert_int_equal(echo_errors, 0);
    world_free(&w);
}

/* Settings are versioned and zero is never "the default": _default() fills
 * real values, and flare_host_new refuses a struct it did not fill. */
static void test_settings_versioned(void **state)
{
    (void)state;
    flare_sim *sim = flare_sim_new(1, NULL);
    flare_sim_host *sh = flare_sim_host_new(sim, "s");
    flare_privkey k;
    uint8_t seed[32] = {7};
    assert_int_equal(flare_privkey_from_seed(&k, seed), 0);
    flare_host_settings cfg;
    flare_host_settings_default(&cfg);
    assert_int_equal(cfg.struct_size, sizeof(cfg));
    assert_non_null(cfg.agent_version);
    assert_true(cfg.autonat_boot_delay == 15 * FLARE_NS_PER_S);
    assert_true(cfg.autonat_retry_interval == 90 * FLARE_NS_PER_S);
    assert_true(cfg.autonat_refresh_interval == 15 * 60 * FLARE_NS_PER_S);
    assert_true(cfg.conn_write_high > cfg.conn_write_low && cfg.conn_write_max > 0);
    flare_host *h = NULL;
    flare_host_settings bad = {0};
    assert_int_equal(flare_host_new(&h, flare_sim_host_io(sh), &k, &bad, NULL),
                     FLARE_ERR_INVALID_ARG);
    bad = cfg;
    bad.struct_size--; /* another build's headers */
    assert_int_equal(flare_host_new(&h, flare_sim_host_io(sh), &k, &bad, NULL),
                     FLARE_ERR_INVALID_ARG);
    bad = cfg;
    bad.conn_write_high = 0;
    assert_int_equal(flare_host_new(&h, flare_sim_host_io(sh), &k, &bad, NULL),
                     FLARE_ERR_INVALID_ARG);
    /* The security list: protocols flare implements, at least one. */
    assert_string_equal(cfg.security, "/noise");
    bad = cfg;
    bad.security = NULL;
    assert_int_equal(flare_host_new(&h, flare_sim_host_io(sh), &k, &bad, NULL),
                     FLARE_ERR_INVALID_ARG);
    bad.security = "";
    assert_int_equal(flare_host_new(&h, flare_sim_host_io(sh), &k, &bad, NULL),
                     FLARE_ERR_UNSUPPORTED);
    bad.security = "/noise,/secio/1.0.0";
    assert_int_equal(flare_host_new(&h, flare_sim_host_io(sh), &k, &bad, NULL),
                     FLARE_ERR_UNSUPPORTED);
    bad.security = "/noise,/noise";
    assert_int_equal(flare_host_new(&h, flare_sim_host_io(sh), &k, &bad, NULL),
                     FLARE_ERR_INVALID_ARG);
    assert_null(h);
    assert_int_equal(flare_host_new(&h, flare_sim_host_io(sh), &k, &cfg, NULL), 0);
    flare_host_del(h);
    flare_sim_del(sim);
}

/* ---- failures and bad input ------------------------------------------------------------ */

static void test_wrong_peer_id(void **state)
{
    world w;
    world_init(&w, 6);
    tnode *a = add_node(&w, "198.51.100.1", 2 * MS);
    tnode *b = add_node(&w, "198.51.100.2", 2 * MS);
    tnode *c = add_node(&w, "198.51.100.3", 2 * MS);
    listen_on(a, 4001);
    flare_multiaddr ma; /* A's address with C's peer ID */
    assert_int_equal(flare_test_tcp_addr(&ma, a->ip, 4001, flare_host_peerid(c->h)), 0);
    flare_test_dial r = {0};
    assert_int_equal(flare_host_dial(b->h, &ma, NULL, flare_test_dial_cb, &r), 0);
    run_ms(&w, 1000);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.status, FLARE_ERR_PEER_ID_MISMATCH);
    assert_int_equal(b->opened, 0);
    /* A keeps serving. */
    addr_of(a, 4001, &ma);
    flare_test_dial r2 = {0};
    assert_int_equal(flare_host_dial(b->h, &ma, NULL, flare_test_dial_cb, &r2), 0);
    run_ms(&w, 1000);
    assert_int_equal(r2.status, 0);
    world_free(&w);
}

static void test_refused_and_timeout(void **state)
{
    world w;
    world_init(&w, 7);
    tnode *a = add_node(&w, "198.51.100.1", 2 * MS);
    tnode *b = add_node(&w, "198.51.100.2", 2 * MS);
    flare_multiaddr ma;
    addr_of(a, 4001, &ma); /* nobody listens */
    flare_test_dial r = {0};
    assert_int_equal(flare_host_dial(b->h, &ma, NULL, flare_test_dial_cb, &r), 0);
    run_ms(&w, 1000);
    assert_int_equal(r.status, FLARE_ERR_REFUSED);
    assert_int_equal(b->dial_failed, 1);
    /* An address nobody has: the SYN times out. */
    assert_int_equal(flare_multiaddr_parse(&ma, "/ip4/198.51.100.99/tcp/1"), 0);
    flare_test_dial r2 = {0};
    assert_int_equal(flare_host_dial(b->h, &ma, NULL, flare_test_dial_cb, &r2), 0);
    run_ms(&w, 30000);
    assert_int_equal(r2.calls, 1);
    assert_true(r2.status == FLARE_ERR_TIMEOUT);
    world_free(&w);
}

/* Garbage at each stage of the upgrade: the listener drops that connection,
 * reports it, and keeps serving. */
static void test_garbage_inbound(void **state)
{
    static const struct {
        const char *data;
        size_t len;
    } bad[] = {
        {"\x05hello", 6},                                          /* not multistream */
        {"\x13/multistream/1.0.0\n\x07/noise\n\x00\x05xxxxx", 33}, /* bad Noise msg 1 */
        {"\x13/multistream/1.0.0\n\x07/tls/1\n", 28},              /* unsupported security */
        {"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 10},          /* bad varint */
    };
    world w;
    world_init(&w, 8);
    tnode *a = add_node(&w, "198.51.100.1", 2 * MS);
    tnode *b = add_node(&w, "198.51.100.2", 2 * MS);
    flare_sim_host *m = flare_sim_host_new(w.sim, "mallory");
    assert_int_equal(flare_sim_host_add_addr(m, flare_sim_internet(w.sim), "198.51.100.66"), 0);
    listen_on(a, 4001);
    flare_ipaddr target;
    flare_ipaddr_v4(&target, 198, 51, 100, 1, 4001);
    int expected_failures = 0;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        flare_test_raw r;
        assert_int_equal(
            flare_test_raw_dial(&r, flare_sim_host_io(m), &target, bad[i].data, bad[i].len), 0);
        run_ms(&w, 20000);
        assert_true(r.connected);
        flare_test_raw_close(&r);
        expected_failures++;
        assert_int_equal(a->incoming_failed, expected_failures);
        assert_int_equal(flare_host_num_conns(a->h), 0);
    }
    flare_multiaddr ma;
    addr_of(a, 4001, &ma);
    flare_test_dial ok = {0};
    assert_int_equal(flare_host_dial(b->h, &ma, NULL, flare_test_dial_cb, &ok), 0);
    run_ms(&w, 1000);
    assert_int_equal(ok.status, 0);
    world_free(&w);
}

static void test_many_connections(void **state)
{
    world w;
    world_init(&w, 9);
    tnode *a = add_node(&w, "198.51.100.1", 5 * MS);
    listen_on(a, 4001);
    flare_multiaddr ma;
    addr_of(a, 4001, &ma);
    flare_test_dial r[20] = {{0}};
    for (int i = 0; i < 20; i++) {
        char ip[32];
        snprintf(ip, sizeof(ip), "203.0.113.%d", i + 1);
        tnode *t = add_node(&w, ip, (flare_tstamp)(i + 1) * MS);
        listen_on(t, 4001);
        assert_int_equal(flare_host_dial(t->h, &ma, NULL, flare_test_dial_cb, &r[i]), 0);
    }
    run_ms(&w, 3000);
    for (int i = 0; i < 20; i++) {
        assert_int_equal(r[i].status, 0);
        assert_true(w.n[i + 1].identified >= 1);
    }
    assert_int_equal(a->opened, 20);
    assert_true(a->identified >= 20);
    assert_int_equal(flare_host_num_conns(a->h), 20);
    /* Dialers listen, so they dialed from their listen port (port reuse):
     * A observed them at port 4001. */
    assert_true(w.n[1].observed >= 1);
    char s[128];
    flare_multiaddr_to_string(&a->observed_addr, s, sizeof(s));
    assert_string_equal(s, "/ip4/198.51.100.1/tcp/4001");
    world_free(&w);
}

/* Roles fixed from outside: both sides dial each other from their listen
 * ports at once (a TCP simultaneous open); one is told it is the initiator,
 * the other the responder, and the upgrade works on the single connection. */
static void test_simultaneous_open_roles(void **state)
{
    world w;
    world_init(&w, 10);
    tnode *a = add_node(&w, "198.51.100.1", 20 * MS);
    tnode *b = add_node(&w, "198.51.100.2", 20 * MS);
    listen_on(a, 4001);
    listen_on(b, 4002);
    flare_multiaddr ma_a, ma_b;
    addr_of(a, 4001, &ma_a);
    addr_of(b, 4002, &ma_b);
    flare_dial_opts oa = {.role = FLARE_ROLE_INITIATOR, .force_new = 1};
    flare_dial_opts ob = {.role = FLARE_ROLE_RESPONDER, .force_new = 1};
    flare_test_dial ra = {0}, rb = {0};
    assert_int_equal(flare_host_dial(a->h, &ma_b, &oa, flare_test_dial_cb, &ra), 0);
    assert_int_equal(flare_host_dial(b->h, &ma_a, &ob, flare_test_dial_cb, &rb), 0);
    run_ms(&w, 3000);
    assert_int_equal(ra.status, 0);
    assert_int_equal(rb.status, 0);
    assert_true(flare_conn_is_initiator(ra.conn));
    assert_false(flare_conn_is_initiator(rb.conn));
    assert_int_equal(a->opened, 1);
    assert_int_equal(b->opened, 1);
    assert_int_equal(flare_host_ping(b->h, flare_host_peerid(a->h), NULL, NULL), 0);
    run_ms(&w, 1000);
    assert_int_equal(b->pings, 1);
    world_free(&w);
}

/* A private node behind a NAT learns its external address from identify:
 * with an endpoint-independent NAT (port preserved) two observers confirm
 * NAT_IP:4001 and the NAT type is endpoint-independent; behind a symmetric
 * NAT the observers disagree, nothing is confirmed, and the type is
 * endpoint-dependent. */
static void external_addr_case(int symmetric)
{
    world w;
    world_init(&w, symmetric ? 12 : 11);
    tnode *p1 = add_node(&w, "198.51.100.1", 5 * MS);
    tnode *p2 = add_node(&w, "198.51.100.2", 5 * MS);
    listen_on(p1, 4001);
    listen_on(p2, 4001);
    flare_sim_lan *lan = flare_sim_lan_new(w.sim, "lan");
    flare_sim_nat_config nc;
    flare_sim_nat_config_default(&nc);
    if (symmetric) {
        nc.mapping = FLARE_SIM_APD;
        nc.port_preservation = 0;
    }
    assert_non_null(flare_sim_nat_new(w.sim, "nat", flare_sim_internet(w.sim), "203.0.113.1", lan,
                                      "10.0.0.1", &nc));
    /* The private node: its own world entry, on the LAN. */
    tnode *b = add_node_on(&w, lan, "b", "10.0.0.2", 0, 99);
    listen_on(b, 4001);
    flare_multiaddr m1, m2;
    addr_of(p1, 4001, &m1);
    addr_of(p2, 4001, &m2);
    assert_int_equal(flare_host_dial(b->h, &m1, NULL, NULL, NULL), 0);
    assert_int_equal(flare_host_dial(b->h, &m2, NULL, NULL, NULL), 0);
    run_ms(&w, 2000);
    assert_true(b->identified >= 2);
    flare_multiaddr ext[4];
    size_t n = flare_host_external_addrs(b->h, ext, 4, 0);
    if (symmetric) {
        assert_int_equal(n, 0);
        assert_int_equal(flare_host_nat_type(b->h, 4), FLARE_NAT_ENDPOINT_DEPENDENT);
        /* Both are still candidates (DCUtR may try them). */
        assert_int_equal(flare_host_external_addrs(b->h, ext, 4, 1), 2);
    } else {
        assert_int_equal(n, 1);
        char s[128];
        flare_multiaddr_to_string(&ext[0], s, sizeof(s));
        assert_string_equal(s, "/ip4/203.0.113.1/tcp/4001");
        assert_int_equal(flare_host_nat_type(b->h, 4), FLARE_NAT_ENDPOINT_INDEPENDENT);
        assert_true(b->addrs_changed >= 1);
        /* The confirmed address was pushed: p1 now lists it for b. */
        run_ms(&w, 1000);
        flare_peer_info *info = malloc(sizeof(*info));
        assert_int_equal(flare_host_peer_info(p1->h, flare_host_peerid(b->h), info), 0);
        int found = 0;
        for (size_t i = 0; i < info->naddrs; i++)
            found |= flare_multiaddr_equal(&info->addrs[i], &ext[0]);
        assert_true(found);
        free(info);
    }
    world_free(&w);
}

static void test_external_addr_eim(void **state)
{
    external_addr_case(0);
}

static void test_external_addr_symmetric(void **state)
{
    external_addr_case(1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connect_identify),     cmocka_unit_test(test_dial_dedup_and_reuse),
        cmocka_unit_test(test_echo_large),           cmocka_unit_test(test_many_streams),
        cmocka_unit_test(test_unknown_protocol),     cmocka_unit_test(test_wrong_peer_id),
        cmocka_unit_test(test_refused_and_timeout),  cmocka_unit_test(test_garbage_inbound),
        cmocka_unit_test(test_many_connections),     cmocka_unit_test(test_simultaneous_open_roles),
        cmocka_unit_test(test_reset_delivers_close), cmocka_unit_test(test_settings_versioned),
        cmocka_unit_test(test_external_addr_eim),    cmocka_unit_test(test_external_addr_symmetric),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
