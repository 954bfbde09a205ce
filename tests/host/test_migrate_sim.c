/* Stream migration on the simulator: an echo session started over the relay
 * moves onto the direct connection after the hole punch (every byte back
 * once, in order), a stream in the middle of a burst, the graceful drain
 * with peers that do not migrate, and hostile migrate messages. */
#include "support/test.h"

#include "flare/sim_world.h"
#include "host/host_int.h"
#include "protocols/migrate/migrate.h"
#include "services/services.h"

#define MS    FLARE_NS_PER_MS
#define S     FLARE_NS_PER_S
#define ECHO  "/test/echo/1.0.0"
#define CHUNK 2048

static uint8_t pat(uint64_t i)
{
    return (uint8_t)(i * 131 + (i >> 9));
}

typedef struct session {
    flare_stream *s;
    uint64_t total, sent, recvd;
    int opened, closed, close_err, eof, bad, blocked;
    int was_relayed, moved; /* on a limited connection at first; on a direct one later */
} session;

static void ses_data(flare_stream *s, const uint8_t *d, size_t len, void *user)
{
    session *x = user;
    (void)s;
    for (size_t i = 0; i < len; i++)
        if (d[i] != pat(x->recvd + i))
            x->bad++;
    x->recvd += len;
    if (x->recvd > x->total)
        x->bad++;
}

static void ses_open(flare_stream *s, int err, void *user)
{
    session *x = user;
    (void)s;
    x->opened = err ? -1 : 1;
}

static void ses_eof(flare_stream *s, void *user)
{
    session *x = user;
    (void)s;
    x->eof = 1;
}

static void ses_close(flare_stream *s, int err, void *user)
{
    session *x = user;
    (void)s;
    x->closed = 1;
    x->close_err = err;
    x->s = NULL;
}

static void ses_writable(flare_stream *s, void *user)
{
    session *x = user;
    (void)s;
    x->blocked = 0;
}

static const flare_stream_cbs ses_cbs = {.on_open = ses_open,
                                         .on_data = ses_data,
                                         .on_eof = ses_eof,
                                         .on_close = ses_close,
                                         .on_writable = ses_writable};

/* Writes up to n more bytes of the pattern; FIN after the last one. */
static void pump(session *x, size_t n)
{
    uint8_t buf[65536];
    while (x->s && n && !x->blocked && x->sent < x->total) {
        size_t k = n < sizeof(buf) ? n : sizeof(buf);
        if (k > x->total - x->sent)
            k = (size_t)(x->total - x->sent);
        for (size_t i = 0; i < k; i++)
            buf[i] = pat(x->sent + i);
        int rv = flare_stream_write(x->s, buf, k);
        if (rv < 0) {
            x->bad++;
            return;
        }
        x->sent += k;
        n -= k;
        if (rv == 1)
            x->blocked = 1;
        if (x->sent == x->total)
            flare_stream_close_write(x->s);
    }
}

/* Wire bytes A sends to B, over relayed and over direct connections. */
typedef struct tapc {
    flare_peerid b;
    uint64_t relayed, direct;
} tapc;

static void tap(flare_conn *c, int what, const uint8_t *d, size_t len, void *user)
{
    tapc *t = user;
    (void)d;
    if (what != FLARE__TAP_SENT_WIRE || !flare_peerid_equal(&c->peer, &t->b))
        return;
    if (c->limited)
        t->relayed += len;
    else
        t->direct += len;
}

static size_t migrate_buffer; /* 0: the default */

static void world(flare_sim_world *w, int migration)
{
    flare_sim_world_settings p;
    flare_sim_world_settings_default(&p);
    flare_host_settings hs;
    flare_host_settings_default(&hs);
    hs.doc_addrs_public = 1;
    hs.enable_migration = migration;
    if (migrate_buffer)
        hs.migrate_buffer = migrate_buffer;
    p.host = &hs;
    assert_int_equal(flare_sim_world_setup(w, &p), 0);
}

static void open_session(flare_sim_world *w, session *x, uint64_t total)
{
    memset(x, 0, sizeof(*x));
    x->total = total;
    assert_int_equal(flare_host_set_handler(w->b.h, ECHO, &flare_test_echo_cbs, NULL,
                                            FLARE_HANDLER_ALLOW_LIMITED),
                     0);
    flare_conn *c = flare_host_conn_to(w->a.h, flare_host_peerid(w->b.h));
    assert_non_null(c);
    assert_true(flare_conn_is_limited(c));
    assert_int_equal(flare_conn_new_stream(c, ECHO, &ses_cbs, x, FLARE_STREAM_ALLOW_LIMITED, &x->s),
                     0);
    x->was_relayed = 1;
}

/* Paced writes (per every 20 ms) until everything came back or limit. */
static void run_session(flare_sim_world *w, session *x, size_t per_tick, flare_tstamp limit)
{
    flare_tstamp end = flare_sim_now(w->sim) + limit;
    while (!x->closed && flare_sim_now(w->sim) < end) {
        pump(x, per_tick);
        flare_sim_run_for(w->sim, 20 * MS);
        if (x->s && !flare_conn_is_limited(flare_stream_conn(x->s)))
            x->moved = 1;
    }
}

static void stats(flare_host *h, unsigned long *moved, unsigned long *refused,
                  unsigned long *failed, uint64_t *resent)
{
    flare__migrate_stats(h, moved, refused, failed, resent);
}

/* 1 MiB echoed in 2 KiB writes (about 100 KiB/s): the session starts on
 * the relay and goes on over the direct connection. The relay cuts a
 * circuit after 128 KiB each way, so the bytes after the punch cannot be
 * on the relay. */
static void test_long_echo_moves(void **state)
{
    flare_sim_world w;
    world(&w, 1);
    tapc t = {.b = *flare_host_peerid(w.b.h)};
    w.a.h->tap = tap;
    w.a.h->tap_user = &t;
    session x;
    open_session(&w, &x, 1 << 20);
    run_session(&w, &x, CHUNK, 60 * S);
    assert_int_equal(w.b.punch_err, 0);
    assert_int_equal(x.bad, 0);
    assert_int_equal(x.opened, 1);
    assert_true(x.eof);
    assert_true(x.closed);
    assert_int_equal(x.close_err, 0);
    assert_int_equal(x.recvd, x.total);
    assert_true(x.moved);
    unsigned long ma, ra, fa, mb, rb, fb;
    uint64_t resa, resb;
    stats(w.a.h, &ma, &ra, &fa, &resa);
    stats(w.b.h, &mb, &rb, &fb, &resb);
    assert_int_equal(ma, 1);
    assert_int_equal(mb, 1);
    assert_int_equal(ra + fa + rb + fb, 0);
    /* Most of the bytes went direct; the relay carried the start only. */
    printf("relayed %llu B, direct %llu B, resent A %llu B / B %llu B\n",
           (unsigned long long)t.relayed, (unsigned long long)t.direct, (unsigned long long)resa,
           (unsigned long long)resb);
    assert_true(t.relayed < 128 * 1024);
    assert_true(t.direct > (1 << 20) - t.relayed);
    /* The relayed connection went once the stream had left it. */
    flare_conn *c = flare_host_conn_to(w.a.h, flare_host_peerid(w.b.h));
    assert_false(flare_conn_is_limited(c));
    for (flare_conn *o = w.a.h->conns; o; o = o->next)
        assert_false(o->limited && flare_peerid_equal(&o->peer, flare_host_peerid(w.b.h)));
    /* The memory moved with the stream was charged where it was freed:
     * no connection's count went below zero (it would wrap). */
    for (flare_conn *o = w.a.h->conns; o; o = o->next)
        assert_true(o->rc.used < (4u << 20));
    for (flare_conn *o = w.b.h->conns; o; o = o->next)
        assert_true(o->rc.used < (4u << 20));
    flare_sim_world_free(&w);
}

/* A burst is in flight on the relay and queued when the direct connection
 * comes up: what B had not received is sent again on the direct one. */
static session *burst_x;

static void burst_on_event(flare_host *h, const flare_host_event *ev, void *node)
{
    flare_sim_world_on_event(h, ev, node);
    if (ev->type == FLARE_HOST_EV_CONN_OPENED && !flare_conn_is_limited(ev->u.conn.conn) &&
        burst_x && burst_x->s && burst_x->sent < 8192) {
        burst_x->blocked = 0;
        pump(burst_x, 96 * 1024); /* most of it still on its way when the move starts */
    }
}

static void test_mid_write_moves(void **state)
{
    flare_sim_world w;
    world(&w, 1);
    session x;
    open_session(&w, &x, 512 * 1024);
    pump(&x, 4096);
    burst_x = &x;
    flare_host_set_event_cb(w.a.h, burst_on_event, &w.a);
    flare_sim_run_for(w.sim, 5 * S); /* the punch, the burst and the move */
    assert_true(x.sent >= 96 * 1024);
    assert_true(x.s && !flare_conn_is_limited(flare_stream_conn(x.s)));
    run_session(&w, &x, 16 * CHUNK, 60 * S);
    burst_x = NULL;
    assert_int_equal(x.bad, 0);
    assert_int_equal(x.recvd, x.total);
    assert_true(x.eof);
    assert_int_equal(x.close_err, 0);
    unsigned long ma, ra, fa;
    uint64_t resa;
    stats(w.a.h, &ma, &ra, &fa, &resa);
    assert_int_equal(ma, 1);
    assert_true(resa > 0); /* the burst's tail went again, on the direct connection */
    printf("resent by A: %llu B\n", (unsigned long long)resa);
    flare_sim_world_free(&w);
}

/* A resend buffer smaller than what is in flight at the move: B refuses
 * (A could not send again what B missed) and the stream goes on over the
 * relay, intact; the next chance (the direct connection identified) moves
 * it once B has caught up. */
static void test_over_bound_stays(void **state)
{
    flare_sim_world w;
    migrate_buffer = 1024;
    world(&w, 1);
    migrate_buffer = 0;
    session x;
    open_session(&w, &x, 110 * 1024); /* under the relay's 128 KiB */
    pump(&x, 4096);
    burst_x = &x;
    flare_host_set_event_cb(w.a.h, burst_on_event, &w.a);
    flare_sim_run_for(w.sim, 3 * S);
    run_session(&w, &x, 4 * CHUNK, 60 * S);
    burst_x = NULL;
    assert_int_equal(x.bad, 0);
    assert_int_equal(x.recvd, x.total);
    assert_int_equal(x.close_err, 0);
    unsigned long ma, ra, fa, mb, rb, fb;
    uint64_t resa, resb;
    stats(w.a.h, &ma, &ra, &fa, &resa);
    stats(w.b.h, &mb, &rb, &fb, &resb);
    printf("moved %lu/%lu refused %lu/%lu failed %lu/%lu\n", ma, mb, ra, rb, fa, fb);
    assert_int_equal(ra, 1); /* A heard the refusal */
    assert_int_equal(rb, 1); /* B gave it */
    assert_int_equal(fa + fb, 0);
    assert_int_equal(ma, (unsigned long)x.moved);
    flare_sim_world_free(&w);
}

/* Without migration (a peer that does not announce it) the session stays
 * on the relayed connection and ends there; the relayed connection stays
 * until it does, and new streams go direct. */
static void test_drain_without_migration(void **state)
{
    flare_sim_world w;
    world(&w, 0);
    session x;
    open_session(&w, &x, 80 * 1024); /* under the relay's 128 KiB, for 6 s */
    run_session(&w, &x, 256, 60 * S);
    assert_int_equal(w.b.punch_err, 0);
    assert_int_equal(x.bad, 0);
    assert_int_equal(x.recvd, x.total);
    assert_true(x.eof);
    assert_int_equal(x.close_err, 0);
    assert_false(x.moved);
    /* It lasted well past the punch and its 2 s grace. */
    assert_true(flare_sim_now(w.sim) > w.b.done_at + 3 * S);
    /* New streams go direct. */
    flare_conn *c = flare_host_conn_to(w.a.h, flare_host_peerid(w.b.h));
    assert_false(flare_conn_is_limited(c));
    /* Once the stream is done, the relayed connection goes. */
    flare_sim_run_for(w.sim, 5 * S);
    for (flare_conn *o = w.a.h->conns; o; o = o->next)
        assert_false(o->limited && flare_peerid_equal(&o->peer, flare_host_peerid(w.b.h)));
    flare_sim_world_free(&w);
}

/* B announced the protocol but dropped it since: the move fails to
 * negotiate and the stream goes on over the relay. */
static void test_refused_negotiation_stays(void **state)
{
    flare_sim_world w;
    world(&w, 1);
    assert_int_equal(flare_host_remove_handler(w.b.h, FLARE__MIGRATE_PROTOCOL), 0);
    session x;
    open_session(&w, &x, 80 * 1024);
    run_session(&w, &x, 512, 60 * S);
    assert_int_equal(x.bad, 0);
    assert_int_equal(x.recvd, x.total);
    assert_int_equal(x.close_err, 0);
    assert_false(x.moved);
    unsigned long ma, ra, fa;
    uint64_t resa;
    stats(w.a.h, &ma, &ra, &fa, &resa);
    assert_int_equal(ma, 0);
    flare_sim_world_free(&w);
}

/* ---- hostile migrate messages ------------------------------------------------------------ */

typedef struct probe {
    uint8_t got[64];
    size_t len;
    int closed;
} probe;

static void probe_data(flare_stream *s, const uint8_t *d, size_t len, void *user)
{
    probe *p = user;
    (void)s;
    size_t k = len < sizeof(p->got) - p->len ? len : sizeof(p->got) - p->len;
    memcpy(p->got + p->len, d, k);
    p->len += k;
}

static void probe_close(flare_stream *s, int err, void *user)
{
    probe *p = user;
    (void)s;
    (void)err;
    p->closed = 1;
}

static const flare_stream_cbs probe_cbs = {.on_data = probe_data, .on_close = probe_close};

/* Sends raw bytes (one write each of the pieces) on a migrate stream of
 * the direct connection and returns B's answer. */
static void send_probe(flare_sim_world *w, probe *p, const uint8_t *msg, size_t len, size_t piece)
{
    memset(p, 0, sizeof(*p));
    flare_conn *d = flare_host_conn_to(w->a.h, flare_host_peerid(w->b.h));
    assert_false(flare_conn_is_limited(d));
    flare_stream *s;
    assert_int_equal(flare_conn_new_stream(d, FLARE__MIGRATE_PROTOCOL, &probe_cbs, p, 0, &s), 0);
    for (size_t off = 0; off < len; off += piece) {
        size_t k = len - off < piece ? len - off : piece;
        assert_true(flare_stream_write(s, msg + off, k) >= 0);
        flare_sim_run_for(w->sim, 30 * MS);
    }
    flare_sim_run_for(w->sim, 500 * MS);
    if (!p->closed)
        flare_stream_reset(s);
    flare_sim_run_for(w->sim, 10 * MS);
}

static void expect_refuse(const probe *p, int reason)
{
    assert_true(p->len >= 2);
    assert_int_equal(p->got[0], FLARE__MIG_REFUSE);
    assert_int_equal(p->got[1], reason);
}

static size_t migrate_msg(uint8_t *out, uint32_t id, uint8_t opener, uint64_t rx, uint64_t floor)
{
    flare__mig_msg m = {
        .type = FLARE__MIG_MIGRATE, .stream_id = id, .opener = opener, .rx = rx, .floor = floor};
    return flare__mig_encode(&m, out);
}

static void test_hostile_messages(void **state)
{
    flare_sim_world w;
    world(&w, 1);
    w.a.h->cfg.enable_migration = 0; /* A only probes by hand */
    session x;
    open_session(&w, &x, 16 * 1024);
    run_session(&w, &x, CHUNK, 3 * S); /* echoed and closed; keep one open: */
    session y;
    memset(&y, 0, sizeof(y));
    y.total = 1 << 20;
    flare_conn *rc = NULL;
    for (flare_conn *o = w.a.h->conns; o; o = o->next)
        if (o->limited && flare_peerid_equal(&o->peer, flare_host_peerid(w.b.h)))
            rc = o;
    assert_non_null(rc);
    assert_int_equal(
        flare_conn_new_stream(rc, ECHO, &ses_cbs, &y, FLARE_STREAM_ALLOW_LIMITED, &y.s), 0);
    pump(&y, 8192);
    flare_sim_run_for(w.sim, 2 * S);
    assert_int_equal(y.recvd, 8192);
    flare_stream *ys = y.s;
    uint8_t m[64];
    size_t n;
    probe p;

    /* An unknown stream, the other opener, stream id 0, an unknown type. */
    n = migrate_msg(m, 999, FLARE__MIG_OPENER_SENDER, 0, 0);
    send_probe(&w, &p, m, n, n);
    expect_refuse(&p, FLARE__MIG_R_UNKNOWN);
    n = migrate_msg(m, ys->id, FLARE__MIG_OPENER_RECEIVER, ys->rx_total, ys->tx_total);
    send_probe(&w, &p, m, n, n);
    expect_refuse(&p, FLARE__MIG_R_UNKNOWN);
    n = migrate_msg(m, 0, FLARE__MIG_OPENER_SENDER, 0, 0);
    send_probe(&w, &p, m, n, n);
    expect_refuse(&p, FLARE__MIG_R_MALFORMED);
    memset(m, 0xee, sizeof(m));
    send_probe(&w, &p, m, 30, 30);
    expect_refuse(&p, FLARE__MIG_R_MALFORMED);
    /* An ACCEPT where MIGRATE belongs. */
    flare__mig_msg acc = {.type = FLARE__MIG_ACCEPT, .rx = 5};
    n = flare__mig_encode(&acc, m);
    send_probe(&w, &p, m, n, n);
    expect_refuse(&p, FLARE__MIG_R_MALFORMED);
    /* Absurd offsets: more read than B ever sent; a floor beyond what B
     * read (we could not send it again). */
    n = migrate_msg(m, ys->id, FLARE__MIG_OPENER_SENDER, UINT64_MAX, 0);
    send_probe(&w, &p, m, n, n);
    expect_refuse(&p, FLARE__MIG_R_OFFSET);
    n = migrate_msg(m, ys->id, FLARE__MIG_OPENER_SENDER, ys->rx_total, UINT64_MAX);
    send_probe(&w, &p, m, n, n);
    expect_refuse(&p, FLARE__MIG_R_OFFSET);
    /* Everything so far left the session alone. */
    assert_true(flare_conn_is_limited(flare_stream_conn(ys)));
    pump(&y, 4096);
    flare_sim_run_for(w.sim, 2 * S);
    assert_int_equal(y.recvd, 12288);
    assert_int_equal(y.bad, 0);

    /* A correct MIGRATE sent one byte at a time is served (B's side moves);
     * the same message again finds nothing to move. */
    n = migrate_msg(m, ys->id, FLARE__MIG_OPENER_SENDER, ys->rx_total, ys->tx_total);
    send_probe(&w, &p, m, n, 1);
    assert_true(p.len >= 9);
    assert_int_equal(p.got[0], FLARE__MIG_ACCEPT);
    send_probe(&w, &p, m, n, n);
    expect_refuse(&p, FLARE__MIG_R_UNKNOWN);
    unsigned long mb, rb, fb;
    uint64_t resb;
    stats(w.b.h, &mb, &rb, &fb, &resb);
    assert_int_equal(mb, 1);
    assert_int_equal(rb, 8);
    /* B is alive and well: a new session over the direct connection. */
    session z;
    memset(&z, 0, sizeof(z));
    z.total = 64 * 1024;
    assert_int_equal(
        flare_host_new_stream(w.a.h, flare_host_peerid(w.b.h), ECHO, &ses_cbs, &z, 0, &z.s), 0);
    run_session(&w, &z, 8192, 10 * S);
    assert_int_equal(z.recvd, z.total);
    assert_int_equal(z.bad, 0);
    if (y.s)
        flare_stream_reset(y.s);
    flare_sim_run_for(w.sim, 100 * MS);
    flare_sim_world_free(&w);
}

/* ---- onto a QUIC direct connection ------------------------------------------------------- */

/* The world of test_quic_punch_sim.c: QUIC everywhere, cone NATs. */
static void quic_world(flare_sim_world *w)
{
    flare_test_world_spec spec = {.transport = "udp/4001/quic-v1"};
    assert_int_equal(flare_test_world_setup(w, &spec), 0);
}

/* The stream moves from yamux (over a circuit carried by QUIC) onto a
 * stream of the QUIC direct connection's own muxer. */
static void test_long_echo_moves_to_quic(void **state)
{
    flare_sim_world w;
    quic_world(&w);
    session x;
    open_session(&w, &x, 512 * 1024);
    run_session(&w, &x, CHUNK, 60 * S);
    assert_int_equal(w.b.punch_err, 0);
    assert_int_equal(x.bad, 0);
    assert_int_equal(x.recvd, x.total);
    assert_true(x.eof);
    assert_int_equal(x.close_err, 0);
    assert_true(x.moved);
    flare_conn *c = flare_host_conn_to(w.a.h, flare_host_peerid(w.b.h));
    assert_string_equal(flare_conn_transport(c), "quic-v1");
    unsigned long ma, ra, fa;
    uint64_t resa;
    stats(w.a.h, &ma, &ra, &fa, &resa);
    assert_int_equal(ma, 1);
    flare_sim_world_free(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_long_echo_moves),
        cmocka_unit_test(test_mid_write_moves),
        cmocka_unit_test(test_over_bound_stays),
        cmocka_unit_test(test_drain_without_migration),
        cmocka_unit_test(test_refused_negotiation_stays),
        cmocka_unit_test(test_hostile_messages),
        cmocka_unit_test(test_long_echo_moves_to_quic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
