/* A transport that brings its own security and streams (the kind QUIC and
 * WebRTC are), on the simulator: an in-memory "secure-muxed" transport that
 * carries per-stream frames between two hosts with the simulator's clock,
 * registered through the transport registry next to TCP. Over it the host
 * runs multistream per stream, identify, ping, echo, resets, the gater and
 * connection close, unchanged. */
#include <stdlib.h>

#include "support/test.h"

#include "core/mem.h"
#include "flare/host.h"
#include "flare/ping.h"
#include "flare/sim.h"
#include "services/services.h"
#include "transport/tcp.h"
#include "transport/transport.h"

#define MS         FLARE_NS_PER_MS
#define DELAY      (5 * MS) /* one way */
#define WINDOW     (64u << 10)
#define MAXSTREAMS 64
#define MAXEVENTS  1024

/* ---- the transport -------------------------------------------------------------------- */

typedef enum { F_HELLO, F_OPEN, F_DATA, F_FIN, F_RST, F_WINDOW, F_CLOSE } ftype;

typedef struct frame {
    struct frame *next;
    ftype type;
    uint32_t id;
    flare_tstamp due;
    size_t len; /* F_DATA: bytes; F_WINDOW: credit; F_CLOSE: 1 for an abort */
    uint8_t data[];
} frame;

typedef struct mstream {
    int used;
    uint32_t id;
    flare_buf rbuf;
    size_t credit;
    int blocked, local_fin, remote_fin;
} mstream;

typedef struct msess msess;

/* A dial on its way to the listener's host. */
typedef struct pending {
    msess *dialer; /* NULL: the dialing connection is gone */
    flare__listener *l;
    flare_io_timer *timer;
    flare_multiaddr from;
} pending;

struct msess {
    msess *peer; /* the other end; NULL once it is gone */
    flare_host *h;
    flare_conn *c;
    flare_io_timer *timer;
    frame *q, **qtail; /* frames arriving here (constant delay: FIFO) */
    pending *dial;
    mstream st[MAXSTREAMS];
    flare__mux_event ev[MAXEVENTS];
    size_t ev_head, ev_n;
    uint32_t next_id;
    int goaway, ready;
    flare_pubkey peer_key;
};

static const flare__transport mem_tr;
static const flare__muxer_ops mem_mux;

static flare__listener *listeners[8];

static flare_tstamp now_of(flare_host *h)
{
    return flare_io_now(h->io);
}

static void push_event(msess *s, flare__mux_event_type type, uint32_t id, int error)
{
    assert_true(s->ev_n < MAXEVENTS);
    flare__mux_event *e = &s->ev[(s->ev_head + s->ev_n++) % MAXEVENTS];
    e->type = type;
    e->stream_id = id;
    e->error = error;
}

static void send_frame(msess *s, ftype type, uint32_t id, const uint8_t *data, size_t len)
{
    msess *p = s->peer;
    if (!p)
        return;
    frame *f = calloc(1, sizeof(*f) + (type == F_DATA ? len : 0));
    assert_non_null(f);
    f->type = type;
    f->id = id;
    f->len = len;
    f->due = now_of(s->h) + DELAY;
    if (type == F_DATA)
        memcpy(f->data, data, len);
    *p->qtail = f;
    p->qtail = &f->next;
    if (p->q == f)
        p->h->io->ops->timer_start(p->timer, f->due);
}

static mstream *find(msess *s, uint32_t id)
{
    for (int i = 0; i < MAXSTREAMS; i++)
        if (s->st[i].used && s->st[i].id == id)
            return &s->st[i];
    return NULL;
}

static mstream *slot(msess *s, uint32_t id)
{
    for (int i = 0; i < MAXSTREAMS; i++)
        if (!s->st[i].used) {
            mstream *m = &s->st[i];
            memset(m, 0, sizeof(*m));
            m->used = 1;
            m->id = id;
            m->credit = WINDOW;
            flare_buf_init(&m->rbuf, NULL);
            return m;
        }
    return NULL;
}

static void drop(mstream *m)
{
    flare_buf_free(&m->rbuf);
    m->used = 0;
}

/* Both directions done and read: the stream is gone. */
static void maybe_closed(msess *s, mstream *m)
{
    if (m->local_fin && m->remote_fin && m->rbuf.len == 0) {
        push_event(s, FLARE__MUX_EV_STREAM_CLOSED, m->id, 0);
        drop(m);
    }
}

/* ---- its muxer operations ---- */

static int m_open(void *x, uint32_t *id, flare_buf *out)
{
    msess *s = x;
    (void)out;
    if (s->goaway || !s->peer)
        return FLARE_ERR_CLOSED;
    mstream *m = slot(s, s->next_id);
    if (!m)
        return FLARE_ERR_LIMIT;
    *id = s->next_id;
    s->next_id += 2;
    send_frame(s, F_OPEN, *id, NULL, 0);
    return 0;
}

static long m_write(void *x, uint32_t id, const uint8_t *data, size_t len, flare_buf *out)
{
    msess *s = x;
    mstream *m = find(s, id);
    (void)out;
    if (!m)
        return FLARE_ERR_NOT_FOUND;
    if (m->local_fin)
        return FLARE_ERR_CLOSED;
    size_t n = len < m->credit ? len : m->credit;
    if (n < len)
        m->blocked = 1;
    if (n) {
        m->credit -= n;
        send_frame(s, F_DATA, id, data, n);
    }
    return (long)n;
}

static long m_read(void *x, uint32_t id, uint8_t *dst, size_t cap, flare_buf *out)
{
    msess *s = x;
    mstream *m = find(s, id);
    (void)out;
    if (!m)
        return FLARE_ERR_NOT_FOUND;
    if (m->rbuf.len == 0)
        return m->remote_fin ? 0 : FLARE_ERR_AGAIN;
    size_t n = m->rbuf.len < cap ? m->rbuf.len : cap;
    memcpy(dst, m->rbuf.base, n);
    flare_buf_consume(&m->rbuf, n);
    send_frame(s, F_WINDOW, id, NULL, n);
    maybe_closed(s, m);
    return (long)n;
}

static size_t m_readable(const void *x, uint32_t id)
{
    mstream *m = find((msess *)x, id);
    return m ? m->rbuf.len : 0;
}

static int m_close(void *x, uint32_t id, flare_buf *out)
{
    msess *s = x;
    mstream *m = find(s, id);
    (void)out;
    if (!m)
        return FLARE_ERR_NOT_FOUND;
    if (!m->local_fin) {
        m->local_fin = 1;
        send_frame(s, F_FIN, id, NULL, 0);
        maybe_closed(s, m);
    }
    return 0;
}

static int m_reset(void *x, uint32_t id, flare_buf *out)
{
    msess *s = x;
    mstream *m = find(s, id);
    (void)out;
    if (!m)
        return FLARE_ERR_NOT_FOUND;
    send_frame(s, F_RST, id, NULL, 0);
    drop(m);
    return 0;
}

static int m_goaway(void *x, int error, flare_buf *out)
{
    (void)error;
    (void)out;
    ((msess *)x)->goaway = 1;
    return 0;
}

static int m_poll(void *x, flare__mux_event *ev)
{
    msess *s = x;
    if (!s->ev_n)
        return 0;
    *ev = s->ev[s->ev_head];
    s->ev_head = (s->ev_head + 1) % MAXEVENTS;
    s->ev_n--;
    return 1;
}

static flare_tstamp m_expiry(const void *x)
{
    (void)x;
    return FLARE_TSTAMP_NEVER;
}

static int m_handle_expiry(void *x, flare_tstamp now, flare_buf *out)
{
    (void)x;
    (void)now;
    (void)out;
    return 0;
}

static size_t m_num_streams(const void *x)
{
    size_t n = 0;
    for (int i = 0; i < MAXSTREAMS; i++)
        n += ((const msess *)x)->st[i].used;
    return n;
}

static const flare__muxer_ops mem_mux = {
    .open_stream = m_open,
    .write = m_write,
    .read = m_read,
    .readable = m_readable,
    .close_stream = m_close,
    .reset_stream = m_reset,
    .goaway = m_goaway,
    .poll_event = m_poll,
    .expiry = m_expiry,
    .handle_expiry = m_handle_expiry,
    .num_streams = m_num_streams,
};

/* ---- sessions ---- */

static void sess_free(msess *s)
{
    if (s->peer)
        s->peer->peer = NULL;
    if (s->dial)
        s->dial->dialer = NULL;
    while (s->q) {
        frame *f = s->q;
        s->q = f->next;
        free(f);
    }
    for (int i = 0; i < MAXSTREAMS; i++)
        if (s->st[i].used)
            drop(&s->st[i]);
    s->h->io->ops->timer_del(s->timer);
    free(s);
}

static int ready(msess *s)
{
    flare__session info = {.remote_key = &s->peer_key,
                           .security = "/memsec",
                           .muxer = "/memmux",
                           .mux = &mem_mux,
                           .mux_st = s};
    s->ready = 1;
    return flare__conn_session_ready(s->c, &info);
}

/* One frame arrived; returns 1 if the session ended (its connection is
 * told once the loop is done). */
static int deliver(msess *s, frame *f, int *lost)
{
    mstream *m = f->type == F_OPEN ? slot(s, f->id) : find(s, f->id);
    switch (f->type) {
    case F_HELLO:
        ready(s);
        return 0;
    case F_OPEN:
        if (m)
            push_event(s, FLARE__MUX_EV_STREAM_OPENED, f->id, 0);
        else
            send_frame(s, F_RST, f->id, NULL, 0);
        return 0;
    case F_DATA:
        if (m) {
            assert_int_equal(flare_buf_append(&m->rbuf, f->data, f->len), 0);
            push_event(s, FLARE__MUX_EV_STREAM_READABLE, f->id, 0);
        }
        return 0;
    case F_FIN:
        if (m) {
            m->remote_fin = 1;
            push_event(s, FLARE__MUX_EV_STREAM_REMOTE_CLOSED, f->id, 0);
            maybe_closed(s, m);
        }
        return 0;
    case F_RST:
        if (m) {
            push_event(s, FLARE__MUX_EV_STREAM_RESET, f->id, FLARE_ERR_RESET);
            drop(m);
        }
        return 0;
    case F_WINDOW:
        if (m) {
            m->credit += f->len;
            if (m->blocked) {
                m->blocked = 0;
                push_event(s, FLARE__MUX_EV_STREAM_WRITABLE, f->id, 0);
            }
        }
        return 0;
    case F_CLOSE:
        *lost = f->len ? FLARE_ERR_RESET : 0;
        return 1;
    }
    return 0;
}

static void sess_timer(flare_io_timer *t, void *user)
{
    msess *s = user;
    flare_conn *c = s->c;
    flare_tstamp now = now_of(s->h);
    int lost = 0, ended = 0;
    (void)t;
    c->busy++; /* s lives until the connection lets go of it (close op) */
    while (s->q && s->q->due <= now && !ended && !c->close_pending) {
        frame *f = s->q;
        s->q = f->next;
        if (!s->q)
            s->qtail = &s->q;
        ended = deliver(s, f, &lost);
        free(f);
    }
    if (ended) {
        sess_free(s); /* the transport ends by itself */
        flare__conn_transport_lost(
            c, lost ? lost : (c->state == FLARE__CONN_READY ? 0 : FLARE_ERR_CLOSED));
    } else {
        if (s->q)
            s->h->io->ops->timer_start(s->timer, s->q->due);
        flare__conn_session_input(c);
    }
    flare__conn_unbusy(c);
}

static msess *sess_new(flare_host *h, flare_conn *c, uint32_t first_id)
{
    msess *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    s->h = h;
    s->c = c;
    s->qtail = &s->q;
    s->next_id = first_id;
    assert_int_equal(h->io->ops->timer_new(h->io, sess_timer, s, &s->timer), 0);
    return s;
}

/* ---- its transport operations ---- */

static void mem_close(flare_conn *c, void *tr, int abort)
{
    msess *s = tr;
    (void)c;
    if (s->peer)
        send_frame(s, F_CLOSE, 0, NULL, abort ? 1 : 0);
    sess_free(s);
}

static const flare__transport_ops mem_ops = {.name = "mem", .close = mem_close};

/* /ip4/ADDR/udp/PORT/quic-v1, then nothing or /p2p/ID. */
static int mem_match(const flare_multiaddr *ma)
{
    flare_ipaddr ip;
    int proto;
    return flare_multiaddr_to_ipaddr(ma, &ip, &proto) == 0 && proto == FLARE_MA_UDP &&
           flare_multiaddr_has(ma, FLARE_MA_QUIC_V1);
}

static flare__listener *find_listener(const flare_multiaddr *ma)
{
    flare_multiaddr bare = *ma;
    flare_multiaddr_decapsulate(&bare, FLARE_MA_P2P);
    for (size_t i = 0; i < sizeof(listeners) / sizeof(listeners[0]); i++)
        if (listeners[i] && flare_multiaddr_equal(&listeners[i]->ma, &bare))
            return listeners[i];
    return NULL;
}

static int mem_listen(flare_host *h, void *state, const flare_multiaddr *ma, flare__listener *l)
{
    (void)h;
    (void)state;
    if (find_listener(ma))
        return FLARE_ERR_ADDR_IN_USE;
    for (size_t i = 0; i < sizeof(listeners) / sizeof(listeners[0]); i++)
        if (!listeners[i]) {
            listeners[i] = l;
            l->ma = *ma;
            return 0;
        }
    return FLARE_ERR_LIMIT;
}

static void mem_close_listener(flare_host *h, void *state, flare__listener *l)
{
    (void)h;
    (void)state;
    for (size_t i = 0; i < sizeof(listeners) / sizeof(listeners[0]); i++)
        if (listeners[i] == l)
            listeners[i] = NULL;
}

/* The dial reached the listener's host: it accepts (gater, resource
 * manager), is authenticated at once and answers HELLO. */
static void pending_timer(flare_io_timer *t, void *user)
{
    pending *p = user;
    flare__listener *l = p->l;
    flare_host *h = l->host;
    msess *d = p->dialer;
    flare_multiaddr from = p->from;
    (void)t;
    h->io->ops->timer_del(p->timer);
    free(p);
    if (!d)
        return;
    d->dial = NULL;
    flare_ipaddr rip;
    flare_multiaddr_to_ipaddr(&from, &rip, NULL);
    flare_conn *c = flare__conn_accept(h, &mem_tr, &rip, &from);
    if (!c) { /* refused: the dialer hears a close */
        msess tmp = {.h = h, .peer = d};
        send_frame(&tmp, F_CLOSE, 0, NULL, 1);
        return;
    }
    msess *s = sess_new(h, c, 2);
    s->peer = d;
    d->peer = s;
    s->peer_key = d->h->key.pub;
    d->peer_key = h->key.pub;
    flare__conn_attach(c, &mem_ops, s);
    c->remote_ip = rip;
    assert_int_equal(flare__conn_set_remote_ma(c, &from), 0);
    assert_int_equal(flare__conn_set_local_ma(c, &l->ma), 0);
    flare_multiaddr_to_ipaddr(&l->ma, &c->local_ip, NULL);
    c->busy++;
    flare__conn_accepted(c);
    /* The listener authenticates the dialer first: refused, it closes. */
    if (!c->close_pending && ready(s) == 0)
        send_frame(s, F_HELLO, 0, NULL, 0);
    flare__conn_unbusy(c);
}

static int mem_dial(flare_host *h, void *state, flare_conn *c, const flare_multiaddr *ma,
                    const flare_dial_opts *o)
{
    (void)state;
    (void)o;
    flare__listener *l = find_listener(ma);
    if (!l)
        return FLARE_ERR_REFUSED;
    pending *p = calloc(1, sizeof(*p));
    assert_non_null(p);
    msess *s = sess_new(h, c, 1);
    p->dialer = s;
    p->l = l;
    s->dial = p;
    /* We "send" from our first listen address (like QUIC reusing its port). */
    assert_true(flare_host_listen_addrs(h, &p->from, 1) == 1);
    assert_int_equal(flare__conn_set_local_ma(c, &p->from), 0);
    flare_multiaddr_to_ipaddr(&p->from, &c->local_ip, NULL);
    flare_multiaddr_to_ipaddr(ma, &c->remote_ip, NULL);
    flare__conn_attach(c, &mem_ops, s);
    flare_io *lio = l->host->io;
    assert_int_equal(lio->ops->timer_new(lio, pending_timer, p, &p->timer), 0);
    lio->ops->timer_start(p->timer, now_of(h) + DELAY);
    return 0;
}

static const flare__transport mem_tr = {
    .name = "mem",
    .kind = FLARE__TR_SESSION,
    .can_dial = mem_match,
    .can_listen = mem_match,
    .listen = mem_listen,
    .close_listener = mem_close_listener,
    .dial = mem_dial,
};

/* ---- the world ------------------------------------------------------------------------ */

typedef struct node {
    flare_sim_host *sh;
    flare_host *h;
    flare_multiaddr addr;
    int opened, closed, identified, close_err;
    char transport[16], security[16], muxer[16];
} node;

typedef struct world {
    flare_sim *sim;
    node a, b;
} world;

static void on_event(flare_host *h, const flare_host_event *ev, void *user)
{
    node *n = user;
    (void)h;
    if (ev->type == FLARE_HOST_EV_CONN_OPENED) {
        n->opened++;
        flare_conn *c = ev->u.conn.conn;
        snprintf(n->transport, sizeof(n->transport), "%s", flare_conn_transport(c));
        snprintf(n->security, sizeof(n->security), "%s", flare_conn_security(c));
        snprintf(n->muxer, sizeof(n->muxer), "%s", flare_conn_muxer(c));
    } else if (ev->type == FLARE_HOST_EV_CONN_CLOSED) {
        n->closed++;
        n->close_err = ev->u.conn.error;
    } else if (ev->type == FLARE_HOST_EV_IDENTIFIED)
        n->identified++;
}

static void node_make(world *w, node *n, const char *name, const char *ma, uint8_t seedb,
                      size_t conns_inbound)
{
    static const flare__transport *const trs[] = {&mem_tr, &flare__tr_tcp};
    const flare__service *const *svcs;
    size_t nsvcs = flare__services_builtin(&svcs);
    n->sh = flare_sim_host_new(w->sim, name);
    flare_privkey k;
    uint8_t seed[32] = {seedb};
    assert_int_equal(flare_privkey_from_seed(&k, seed), 0);
    flare_host_settings cfg;
    flare_host_settings_default(&cfg);
    cfg.enable_autonat_client = 0;
    cfg.limits.conns_inbound = conns_inbound;
    assert_int_equal(
        flare__host_new(&n->h, flare_sim_host_io(n->sh), &k, &cfg, NULL, svcs, nsvcs, trs, 2), 0);
    flare_host_set_event_cb(n->h, on_event, n);
    assert_int_equal(flare_multiaddr_parse(&n->addr, ma), 0);
    assert_int_equal(flare_host_listen(n->h, &n->addr), 0);
}

/* b_inbound: B's inbound connection budget. */
static void world_init_lim(world *w, size_t b_inbound)
{
    memset(w, 0, sizeof(*w));
    w->sim = flare_sim_new(11, NULL);
    node_make(w, &w->a, "a", "/ip4/198.51.100.1/udp/4001/quic-v1", 1, 768);
    node_make(w, &w->b, "b", "/ip4/198.51.100.2/udp/4001/quic-v1", 2, b_inbound);
}

static void world_init(world *w)
{
    world_init_lim(w, 768);
}

static void world_free(world *w)
{
    flare_sim_run_for(w->sim, 100 * MS); /* dials and frames in flight land */
    flare_host_del(w->a.h);
    flare_host_del(w->b.h);
    flare_sim_del(w->sim);
}

static void run_ms(world *w, int ms)
{
    flare_sim_run_for(w->sim, (flare_tstamp)ms * MS);
}

typedef struct dial_res {
    int calls, status;
    flare_conn *conn;
} dial_res;

static void dial_cb(flare_host *h, flare_conn *c, int status, void *user)
{
    dial_res *r = user;
    (void)h;
    r->calls++;
    r->status = status;
    r->conn = c;
}

static void dial_b(world *w, dial_res *r)
{
    flare_multiaddr ma = w->b.addr;
    assert_int_equal(flare_multiaddr_with_peerid(&ma, flare_host_peerid(w->b.h)), 0);
    assert_int_equal(flare_host_dial(w->a.h, &ma, NULL, dial_cb, r), 0);
}

typedef struct ping_res {
    int calls, status;
    flare_tstamp rtt;
} ping_res;

static void ping_cb(flare_host *h, const flare_peerid *peer, int status, flare_tstamp rtt,
                    void *user)
{
    ping_res *r = user;
    (void)h;
    (void)peer;
    r->calls++;
    r->status = status;
    r->rtt = rtt;
}

/* ---- echo: B sends back everything, then its FIN ---- */

typedef struct echo {
    flare_buf got;
    int eof, closed, close_err, opened;
} echo;

static echo server;

static void echo_data(flare_stream *s, const uint8_t *d, size_t len, void *user)
{
    (void)user;
    assert_true(flare_stream_write(s, d, len) >= 0);
}

static void echo_eof(flare_stream *s, void *user)
{
    (void)user;
    flare_stream_close_write(s);
}

static void echo_close(flare_stream *s, int err, void *user)
{
    (void)s;
    (void)user;
    server.closed++;
    server.close_err = err;
}

static const flare_stream_cbs echo_cbs = {
    .on_data = echo_data, .on_eof = echo_eof, .on_close = echo_close};

/* The handler resets every stream as soon as it has data. */
static void reset_data(flare_stream *s, const uint8_t *d, size_t len, void *user)
{
    (void)d;
    (void)len;
    (void)user;
    flare_stream_reset(s);
}

static const flare_stream_cbs reset_cbs = {.on_data = reset_data, .on_close = echo_close};

static void client_open(flare_stream *s, int status, void *user)
{
    echo *e = user;
    (void)s;
    e->opened = status == 0 ? 1 : status;
}

static void client_data(flare_stream *s, const uint8_t *d, size_t len, void *user)
{
    echo *e = user;
    (void)s;
    assert_int_equal(flare_buf_append(&e->got, d, len), 0);
}

static void client_eof(flare_stream *s, void *user)
{
    echo *e = user;
    (void)s;
    e->eof = 1;
}

static void client_close(flare_stream *s, int err, void *user)
{
    echo *e = user;
    (void)s;
    e->closed++;
    e->close_err = err;
}

static const flare_stream_cbs client_cbs = {
    .on_open = client_open, .on_data = client_data, .on_eof = client_eof, .on_close = client_close};

/* ---- tests ---------------------------------------------------------------------------- */

/* Two hosts connect over the session transport: no upgrade, the
 * transport's security and muxer are named, identify and ping run. */
static void test_connect_identify_ping(void **state)
{
    (void)state;
    world w;
    world_init(&w);
    dial_res r = {0};
    dial_b(&w, &r);
    run_ms(&w, 500);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.status, 0);
    assert_non_null(r.conn);
    assert_string_equal(flare_conn_transport(r.conn), "mem");
    assert_string_equal(flare_conn_security(r.conn), "/memsec");
    assert_string_equal(flare_conn_muxer(r.conn), "/memmux");
    assert_true(flare_conn_is_outbound(r.conn));
    assert_true(flare_peerid_equal(flare_conn_peer(r.conn), flare_host_peerid(w.b.h)));
    /* Both sides saw CONN_OPENED naming the transport and its security. */
    assert_int_equal(w.a.opened, 1);
    assert_int_equal(w.b.opened, 1);
    assert_string_equal(w.a.transport, "mem");
    assert_string_equal(w.b.transport, "mem");
    assert_string_equal(w.b.security, "/memsec");
    assert_string_equal(w.b.muxer, "/memmux");
    flare_conn *bc = flare_host_conn_to(w.b.h, flare_host_peerid(w.a.h));
    assert_non_null(bc);
    assert_false(flare_conn_is_outbound(bc));
    assert_true(flare_multiaddr_equal(flare_conn_remote_addr(bc), &w.a.addr));
    /* identify ran both ways over the transport's streams. */
    assert_true(w.a.identified >= 1);
    assert_true(w.b.identified >= 1);
    assert_true(flare_host_peer_supports(w.a.h, flare_host_peerid(w.b.h), FLARE_PING_PROTOCOL_ID));
    /* A second dial reuses the connection. */
    dial_res r2 = {0};
    dial_b(&w, &r2);
    run_ms(&w, 10);
    assert_int_equal(r2.calls, 1);
    assert_ptr_equal(r2.conn, r.conn);
    /* ping: one round trip is two one-way delays. */
    ping_res p = {0};
    assert_int_equal(flare_host_ping(w.a.h, flare_host_peerid(w.b.h), ping_cb, &p), 0);
    run_ms(&w, 200);
    assert_int_equal(p.calls, 1);
    assert_int_equal(p.status, 0);
    assert_true(p.rtt >= 2 * DELAY && p.rtt < 10 * DELAY);
    world_free(&w);
}

/* Streams: more data than the transport's window each way (its
 * backpressure), half-close, then reset in both directions. */
static void test_streams_echo_reset(void **state)
{
    (void)state;
    world w;
    world_init(&w);
    memset(&server, 0, sizeof(server));
    assert_int_equal(flare_host_set_handler(w.b.h, "/echo/1", &echo_cbs, NULL, 0), 0);
    assert_int_equal(flare_host_set_handler(w.b.h, "/reset/1", &reset_cbs, NULL, 0), 0);
    dial_res r = {0};
    dial_b(&w, &r);
    run_ms(&w, 200);
    assert_int_equal(r.status, 0);

    size_t total = 5 * WINDOW + 123;
    uint8_t *data = malloc(total);
    for (size_t i = 0; i < total; i++)
        data[i] = (uint8_t)(i * 7 + 1);
    echo e = {0};
    flare_buf_init(&e.got, NULL);
    flare_stream *s = NULL;
    assert_int_equal(flare_conn_new_stream(r.conn, "/echo/1", &client_cbs, &e, 0, &s), 0);
    assert_true(flare_stream_write(s, data, total) >= 0);
    assert_int_equal(flare_stream_close_write(s), 0);
    run_ms(&w, 2000);
    assert_int_equal(e.opened, 1);
    assert_int_equal(e.got.len, total);
    assert_memory_equal(e.got.base, data, total);
    assert_int_equal(e.eof, 1);
    assert_int_equal(e.closed, 1);
    assert_int_equal(e.close_err, 0);
    assert_int_equal(server.closed, 1);
    assert_int_equal(server.close_err, 0);
    flare_buf_free(&e.got);

    /* The listener resets: the opener's on_close says so. */
    echo e2 = {0};
    flare_buf_init(&e2.got, NULL);
    assert_int_equal(flare_conn_new_stream(r.conn, "/reset/1", &client_cbs, &e2, 0, &s), 0);
    assert_true(flare_stream_write(s, data, 10) >= 0);
    run_ms(&w, 200);
    assert_int_equal(e2.closed, 1);
    assert_int_equal(e2.close_err, FLARE_ERR_RESET);
    assert_int_equal(server.closed, 2);

    /* The opener resets: the handler's on_close says so. */
    echo e3 = {0};
    flare_buf_init(&e3.got, NULL);
    assert_int_equal(flare_conn_new_stream(r.conn, "/echo/1", &client_cbs, &e3, 0, &s), 0);
    assert_true(flare_stream_write(s, data, 10) >= 0);
    run_ms(&w, 100);
    assert_int_equal(e3.got.len, 10);
    flare_stream_reset(s);
    run_ms(&w, 100);
    assert_int_equal(e3.closed, 1);
    assert_int_equal(e3.close_err, FLARE_ERR_RESET);
    assert_int_equal(server.closed, 3);
    assert_int_equal(server.close_err, FLARE_ERR_RESET);
    flare_buf_free(&e3.got);
    flare_buf_free(&e2.got);
    free(data);
    world_free(&w);
}

/* Closing the connection: both sides report it closed, open streams end. */
static void test_close(void **state)
{
    (void)state;
    world w;
    world_init(&w);
    memset(&server, 0, sizeof(server));
    assert_int_equal(flare_host_set_handler(w.b.h, "/echo/1", &echo_cbs, NULL, 0), 0);
    dial_res r = {0};
    dial_b(&w, &r);
    run_ms(&w, 200);
    assert_int_equal(r.status, 0);
    echo e = {0};
    flare_buf_init(&e.got, NULL);
    flare_stream *s = NULL;
    assert_int_equal(flare_conn_new_stream(r.conn, "/echo/1", &client_cbs, &e, 0, &s), 0);
    assert_true(flare_stream_write(s, (const uint8_t *)"hi", 2) >= 0);
    run_ms(&w, 100);
    assert_int_equal(e.got.len, 2);
    flare_conn_close(r.conn);
    run_ms(&w, 100);
    assert_int_equal(e.closed, 1);
    assert_int_equal(server.closed, 1);
    assert_int_equal(w.a.closed, 1);
    assert_int_equal(w.b.closed, 1);
    assert_int_equal(w.b.close_err, 0);
    assert_int_equal(flare_host_num_conns(w.a.h), 0);
    assert_int_equal(flare_host_num_conns(w.b.h), 0);
    flare_buf_free(&e.got);
    world_free(&w);
}

/* The gater and the resource manager judge such connections too: after
 * the transport's handshake (a denied peer) and at accept (no room). */
static void test_gater_and_limits(void **state)
{
    (void)state;
    world w;
    world_init(&w);
    assert_int_equal(flare_host_gater_peer(w.b.h, FLARE_GATER_DENY, flare_host_peerid(w.a.h), 1),
                     0);
    dial_res r = {0};
    dial_b(&w, &r);
    run_ms(&w, 200);
    assert_int_equal(r.calls, 1);
    assert_int_not_equal(r.status, 0);
    assert_int_equal(w.b.opened, 0);
    assert_int_equal(flare_host_num_conns(w.a.h), 0);
    assert_int_equal(flare_host_num_conns(w.b.h), 0);
    assert_true(flare_host_gater_refused(w.b.h) >= 1);
    assert_int_equal(flare_host_gater_peer(w.b.h, FLARE_GATER_DENY, flare_host_peerid(w.a.h), 0),
                     0);
    /* The dialer denies by IP: refused before anything is sent. */
    flare_ipaddr ip;
    assert_int_equal(flare_multiaddr_to_ipaddr(&w.b.addr, &ip, NULL), 0);
    assert_int_equal(flare_host_gater_subnet(w.a.h, FLARE_GATER_DENY, &ip, 32, 1), 0);
    dial_res r2 = {0};
    flare_multiaddr ma = w.b.addr;
    assert_int_equal(flare_host_dial(w.a.h, &ma, NULL, dial_cb, &r2), FLARE_ERR_REFUSED);
    assert_int_equal(flare_host_gater_subnet(w.a.h, FLARE_GATER_DENY, &ip, 32, 0), 0);
    world_free(&w);
    /* One inbound connection slot on B: the second connection's accept
     * refuses. */
    world_init_lim(&w, 1);
    dial_res r3 = {0}, r4 = {0};
    dial_b(&w, &r3);
    run_ms(&w, 200);
    assert_int_equal(r3.status, 0);
    flare_dial_opts o = {.force_new = 1};
    ma = w.b.addr;
    assert_int_equal(flare_multiaddr_with_peerid(&ma, flare_host_peerid(w.b.h)), 0);
    assert_int_equal(flare_host_dial(w.a.h, &ma, &o, dial_cb, &r4), 0);
    run_ms(&w, 200);
    assert_int_equal(r4.calls, 1);
    assert_int_not_equal(r4.status, 0);
    assert_int_equal(w.b.opened, 1);
    assert_int_equal(flare_host_num_conns(w.b.h), 1);
    world_free(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connect_identify_ping),
        cmocka_unit_test(test_streams_echo_reset),
        cmocka_unit_test(test_close),
        cmocka_unit_test(test_gater_and_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
