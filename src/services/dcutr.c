/*
 * DCUtR (/libp2p/dcutr): direct connection upgrade through a relay, host
 * glue around the sans-I/O cores of include/flare/dcutr.h.
 *
 * Roles (libp2p/specs relay/DCUtR.md; go >= 0.41, rust): A dialed B through
 * the relay, so B's side of the relayed connection is inbound. B initiates:
 * it opens the stream, sends CONNECT with its addresses, measures the RTT
 * from A's CONNECT, sends SYNC and dials after RTT/2; A dials when SYNC
 * arrives. On the direct connection A is the client of every protocol and B
 * the server, whichever TCP socket connected: both dial with explicit roles,
 * and A also marks B's addresses so that if its listener accepts B's SYN
 * (one outcome of a TCP simultaneous open on Linux), that inbound
 * connection still makes A the initiator. Any direct connection to the peer
 * that shows up during the punch counts as success.
 *
 * Besides, B races a plain direct dial to A's public addresses (connection
 * reversal) from an ephemeral port, so it never competes with the punch for
 * the listen port's 4-tuples.
 *
 * After success new streams use the direct connection (flare_host_conn_to
 * prefers it) and the relayed one is closed after a grace period.
 */
#include <string.h>

#include "core/mem.h"
#include "flare/dcutr.h"
#include "flare/lpframe.h"
#include "services/services.h"
#include "transport/circuit.h"
#include "transport/quic.h"

#define GRACE      (2 * FLARE_NS_PER_S)
#define DRAIN_MAX  (10 * 60 * FLARE_NS_PER_S)
#define EXPECT_MAX 64

typedef struct expect {
    flare_ipaddr ip;
    flare_tstamp until;
} expect;

typedef struct punch {
    struct punch *next;
    flare_host *host;
    uint64_t id;
    flare_conn *relayed;
    flare_peerid peer;
    flare_peerid relay_peer; /* the relay carrying the relayed connection */
    int initiator;           /* 1: we are B */
    flare_dcutr_initiator *b;
    flare_dcutr_responder *a;
    flare_stream *stream;
    flare_io_timer *timer;
    int dials;   /* hole-punch dials in flight */
    int dial_ok; /* one of them (or an accepted connection) worked */
    int in_dial; /* the core awaits a dial result */
    int finished;
    int reversal_tried; /* B: connection reversal dialed (needs A's identify) */
    int unsupported;    /* B: A refused the DCUtR protocol */
    int refs;           /* callbacks that still point here */
    flare_conn *direct;
    flare_tstamp relay_up_at;
    flare_tstamp done_at; /* the punch ended: the relayed connection drains */
    unsigned attempt;
    flare_tstamp rtt;
} punch;

struct udp_punch;

typedef struct dcutr_svc {
    punch *list;
    struct udp_punch *udp; /* B's packet sprays under way (freed with the host) */
    uint64_t next_id;
    /* Both made at their first use: most hosts of a large network never
     * punch, and the two cost 6.5 KB. */
    flare_dcutr_tracer *tracer;
    uint64_t tracer_seen;
    expect *exp; /* EXPECT_MAX */
} dcutr_svc;

static dcutr_svc *svc_of(flare_host *h)
{
    return flare__svc_state(h, &flare__svc_dcutr);
}

static flare_tstamp now_of(flare_host *h)
{
    return flare_io_now(h->io);
}

/* The service's tracer, made now if need be; NULL without memory (the
 * punch goes on untraced). */
static flare_dcutr_tracer *tracer_of(flare_host *h)
{
    dcutr_svc *d = svc_of(h);
    if (!d->tracer && (d->tracer = flare__malloc(h->mem, sizeof(*d->tracer))))
        flare_dcutr_tracer_init(d->tracer);
    return d->tracer;
}

/* ---- events and tracing -------------------------------------------------------------- */

static void emit_steps(flare_host *h)
{
    dcutr_svc *d = svc_of(h);
    while (d->tracer && d->tracer_seen < d->tracer->logged) {
        const flare_dcutr_trace_entry *e = NULL;
        /* The ring keeps the newest FLARE_DCUTR_TRACE_LOG entries. */
        if (d->tracer->logged - d->tracer_seen <= FLARE_DCUTR_TRACE_LOG)
            e = flare_dcutr_tracer_entry(d->tracer,
                                         (size_t)(d->tracer->logged - d->tracer_seen - 1));
        d->tracer_seen++;
        if (!e)
            continue;
        flare_peerid *peer = NULL;
        for (punch *p = d->list; p; p = p->next)
            if (p->id == e->id)
                peer = &p->peer;
        flare_host_event ev = {
            .type = FLARE_HOST_EV_HOLEPUNCH_STEP,
            .u.holepunch_step = {.peer = peer,
                                 .step = flare_dcutr_step_name((flare_dcutr_step)e->step),
                                 .value = e->value,
                                 .attempt = e->attempt,
                                 .initiator = e->initiator}};
        if (e->step == FLARE_DCUTR_STEP_RTT)
            ev.u.holepunch_step.rtt = (flare_tstamp)e->value;
        if (e->step == FLARE_DCUTR_STEP_ATTEMPT_FAILED || e->step == FLARE_DCUTR_STEP_GAVE_UP)
            ev.u.holepunch_step.reason = flare_dcutr_reason_name((flare_dcutr_reason)e->value);
        flare__host_emit(h, &ev);
    }
}

static void trace(punch *p, flare_dcutr_step step, uint64_t value)
{
    flare_dcutr_tracer *t = tracer_of(p->host);
    if (t)
        flare_dcutr_tracer_step(t, p->id, p->initiator, p->attempt, step, now_of(p->host), value);
}

/* ---- inbound expectations (A: B's SYN may land on our listener) ---------------------- */

static void expect_add(flare_host *h, const flare_multiaddr *ma, flare_tstamp until)
{
    dcutr_svc *d = svc_of(h);
    flare_ipaddr ip;
    int proto;
    if (flare_multiaddr_to_ipaddr(ma, &ip, &proto) || proto != FLARE_MA_TCP)
        return;
    if (!d->exp && !(d->exp = flare__calloc(h->mem, EXPECT_MAX, sizeof(*d->exp))))
        return;
    size_t victim = 0;
    for (size_t i = 0; i < EXPECT_MAX; i++) {
        if (d->exp[i].until < d->exp[victim].until)
            victim = i;
        if (flare_ipaddr_equal(&d->exp[i].ip, &ip)) {
            victim = i;
            break;
        }
    }
    d->exp[victim].ip = ip;
    d->exp[victim].until = until;
}

/* An accepted connection from an address we expect a punch from (a TCP
 * simultaneous open our listener accepted): we stay the initiator. */
static void on_inbound(flare_host *h, void *state, flare_conn *c)
{
    dcutr_svc *d = state;
    if (!d || !d->exp)
        return;
    flare_tstamp now = now_of(h);
    for (size_t i = 0; i < EXPECT_MAX; i++)
        if (d->exp[i].until > now && flare_ipaddr_equal(&d->exp[i].ip, &c->remote_ip)) {
            c->initiator = 1;
            return;
        }
}

/* ---- lifecycle of a punch ------------------------------------------------------------- */

/* Frees p's timer, protocol cores and p itself (no unlinking, no callbacks). */
static void punch_release(flare_host *h, punch *p)
{
    h->io->ops->timer_del(p->timer);
    if (p->b) {
        flare_dcutr_initiator_free(p->b);
        flare__free(h->mem, p->b);
    }
    if (p->a) {
        flare_dcutr_responder_free(p->a);
        flare__free(h->mem, p->a);
    }
    flare__free(h->mem, p);
}

static void punch_unref(punch *p)
{
    if (--p->refs > 0)
        return;
    flare_host *h = p->host;
    dcutr_svc *d = svc_of(h);
    for (punch **pp = &d->list; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    /* The connection manager may trim these peers' connections again. */
    int peer_used = 0, relay_used = 0;
    for (punch *o = d->list; o; o = o->next) {
        peer_used |=
            flare_peerid_equal(&o->peer, &p->peer) || flare_peerid_equal(&o->relay_peer, &p->peer);
        relay_used |= flare_peerid_equal(&o->peer, &p->relay_peer) ||
                      flare_peerid_equal(&o->relay_peer, &p->relay_peer);
    }
    if (!peer_used)
        flare__connmgr_protect(h, &p->peer, FLARE__TAG_HOLEPUNCH, 0);
    if (!relay_used)
        flare__connmgr_protect(h, &p->relay_peer, FLARE__TAG_HOLEPUNCH, 0);
    punch_release(h, p);
}

static const flare_stream_cbs quiet_cbs = {0};

static void drop_stream(punch *p, int reset)
{
    flare_stream *s = p->stream;
    if (!s)
        return;
    p->stream = NULL;
    flare_stream_set_user(s, &quiet_cbs, NULL);
    if (reset)
        flare__stream_abort(s);
    else
        flare_stream_close_write(s);
    punch_unref(p);
}

static void punch_finish(punch *p, int err, flare_dcutr_reason reason)
{
    flare_host *h = p->host;
    if (p->finished)
        return;
    p->finished = 1;
    p->done_at = now_of(h);
    drop_stream(p, err != 0);
    h->io->ops->timer_stop(p->timer);
    emit_steps(h);
    flare_multiaddr wa;
    const flare_multiaddr *won = !err && p->direct ? flare__conn_remote_ma(p->direct, &wa) : NULL;
    flare_host_event ev = {
        .type = FLARE_HOST_EV_HOLEPUNCH,
        .u.holepunch = {.peer = &p->peer,
                        .family = !won                                     ? NULL
                                  : flare_multiaddr_has(won, FLARE_MA_IP6) ? "ip6"
                                                                           : "ip4",
                        .transport = !won                                         ? NULL
                                     : flare_multiaddr_has(won, FLARE_MA_QUIC_V1) ? "quic"
                                                                                  : "tcp",
                        .conn = err ? NULL : p->direct,
                        .addr = won,
                        .error = err,
                        .rtt = p->rtt,
                        .attempt = p->attempt,
                        .initiator = p->initiator,
                        .reason = err ? flare_dcutr_reason_name(reason) : NULL}};
    flare__host_emit(h, &ev);
    if (!err && p->relayed && !p->relayed->close_pending) {
        /* Streams on the relayed connection get a moment to finish. */
        h->io->ops->timer_start(p->timer, now_of(h) + GRACE);
        return; /* the timer drops the last reference */
    }
    p->relayed = NULL;
    punch_unref(p);
}

static void on_success(punch *p, flare_conn *direct)
{
    flare_host *h = p->host;
    if (p->finished || p->dial_ok)
        return;
    p->dial_ok = 1;
    p->direct = direct;
    flare_tstamp now = now_of(h);
    /* The core logs the outcome when it awaits a dial result; a success it
     * did not ask for (connection reversal) is logged here. */
    flare_multiaddr da;
    flare__conn_remote_ma(direct, &da);
    int told = p->b ? flare_dcutr_initiator_dial_result(p->b, 1, &da, now) == 0
                    : flare_dcutr_responder_dial_result(p->a, 1, &da, now) == 0;
    if (!told) {
        flare_dcutr_tracer *t = tracer_of(h);
        if (t)
            flare_dcutr_tracer_outcome(t, 1, &da, p->attempt ? p->attempt : 1);
        trace(p, FLARE_DCUTR_STEP_DIRECT_UP, 0);
    }
    /* Dials still under way to the peer (the other punch addresses, the
     * reversal dial) are no longer needed. */
    for (flare_conn *c = h->conns; c;) {
        if (c != direct && c->outbound && !c->limited && c->state != FLARE__CONN_READY &&
            !c->close_pending && flare_peerid_equal(&c->peer, &p->peer)) {
            flare__conn_fail(c, FLARE_ERR_CLOSED); /* may free c and run callbacks */
            c = h->conns;
            continue;
        }
        c = c->next;
    }
    punch_finish(p, 0, FLARE_DCUTR_REASON_NONE);
}

/* ---- dialing ------------------------------------------------------------------------------ */

static void process(punch *p);

typedef struct dial_ctx {
    punch *p;
    flare_multiaddr ma;
} dial_ctx;

static void punch_dialed(flare_host *h, flare_conn *c, int status, void *user)
{
    dial_ctx *dc = user;
    punch *p = dc->p;
    flare__free(h->mem, dc);
    p->dials--;
    if (status == 0 && c && !c->limited) {
        on_success(p, c);
    } else if (p->dials == 0 && p->in_dial && !p->finished) {
        /* A listener may have accepted the peer's SYN instead (EADDRNOTAVAIL
         * here): that connection is the punch's success. */
        flare_conn *direct = flare_host_conn_to(h, &p->peer);
        if (direct && !direct->limited) {
            on_success(p, direct);
        } else {
            p->in_dial = 0;
            if (p->b)
                flare_dcutr_initiator_dial_result(p->b, 0, NULL, now_of(h));
            else
                flare_dcutr_responder_dial_result(p->a, 0, NULL, now_of(h));
            process(p);
        }
    }
    punch_unref(p);
}

/* How we judge addresses a peer gave us (its CONNECT, its identify). */
static flare_dcutr_addr_settings peer_addr_opts(const flare_host *h)
{
    flare_dcutr_addr_settings o;
    flare_dcutr_addr_settings_default(&o);
    o.doc_is_public = h->cfg.doc_addrs_public;
    o.allow_quic = 1;
    o.allow_private = h->cfg.dial_private_peer_addrs;
    return o;
}

/* ---- QUIC: B punches with UDP packets, A dials ------------------------------------------ *
 * QUIC has no simultaneous open: A is the QUIC client and dials B's QUIC
 * addresses; B, instead of dialing, sends UDP packets of random bytes from
 * its QUIC listen socket to A's QUIC addresses at random 10-200 ms intervals
 * (opening its NAT's mapping toward A) until A's connection arrives or the
 * attempt's dial timeout passes; it then is the QUIC server. */

#define UDP_PUNCH_MAX  FLARE_DCUTR_MAX_DIALS
#define UDP_PUNCH_SIZE 64

typedef struct udp_punch {
    struct udp_punch *next;
    punch *p;
    flare_ipaddr to[UDP_PUNCH_MAX];
    size_t n;
    flare_io_timer *timer;
    flare_tstamp end;
} udp_punch;

static void punch_dialed(flare_host *h, flare_conn *c, int status, void *user);

static void udp_punch_send(flare_host *h, udp_punch *u)
{
    uint8_t junk[UDP_PUNCH_SIZE];
    h->rng.fn(junk, sizeof(junk), h->rng.user);
    junk[0] &= 0x7f; /* a short header's form bit: never mistaken for an Initial */
    for (size_t i = 0; i < u->n; i++)
        flare__quic_punch(h, &u->to[i], junk, sizeof(junk));
    uint8_t r[2];
    h->rng.fn(r, sizeof(r), h->rng.user);
    flare_tstamp gap = (10 + ((unsigned)r[0] << 8 | r[1]) % 191) * FLARE_NS_PER_MS;
    h->io->ops->timer_start(u->timer, now_of(h) + gap);
}

/* Unlinks and frees u with its timer. */
static void udp_punch_free(flare_host *h, udp_punch *u)
{
    for (udp_punch **pp = &svc_of(h)->udp; *pp; pp = &(*pp)->next)
        if (*pp == u) {
            *pp = u->next;
            break;
        }
    h->io->ops->timer_del(u->timer);
    flare__free(h->mem, u);
}

static void udp_punch_timer(flare_io_timer *t, void *user)
{
    udp_punch *u = user;
    punch *p = u->p;
    flare_host *h = p->host;
    if (!p->finished && !p->dial_ok && now_of(h) < u->end) {
        udp_punch_send(h, u);
        return;
    }
    udp_punch_free(h, u);
    dial_ctx *dc = flare__calloc(h->mem, 1, sizeof(*dc));
    if (!dc) { /* cannot report through punch_dialed: settle the counts here */
        p->dials--;
        punch_unref(p);
        return;
    }
    dc->p = p;
    punch_dialed(h, NULL, FLARE_ERR_TIMEOUT, dc);
}

/* Starts B's packets toward A's QUIC addresses; 0 or an error (nothing
 * started). Counts as one dial of the punch until it ends. */
static int udp_punch_start(punch *p, const flare_ipaddr *to, size_t n)
{
    flare_host *h = p->host;
    udp_punch *u = flare__calloc(h->mem, 1, sizeof(*u));
    if (!u)
        return FLARE_ERR_NOMEM;
    if (h->io->ops->timer_new(h->io, udp_punch_timer, u, &u->timer)) {
        flare__free(h->mem, u);
        return FLARE_ERR_NOMEM;
    }
    u->p = p;
    u->next = svc_of(h)->udp;
    svc_of(h)->udp = u;
    memcpy(u->to, to, n * sizeof(*to));
    u->n = n;
    u->end = now_of(h) + FLARE_DCUTR_DEFAULT_DIAL_TIMEOUT;
    p->dials++;
    p->refs++;
    udp_punch_send(h, u);
    return 0;
}

static int is_quic(const flare_multiaddr *ma, flare_ipaddr *ip)
{
    int proto;
    return flare_multiaddr_to_ipaddr(ma, ip, &proto) == 0 && proto == FLARE_MA_UDP &&
           flare_multiaddr_has(ma, FLARE_MA_QUIC_V1);
}

static void dial_addrs(punch *p, const flare_multiaddr *given, size_t ngiven)
{
    flare_host *h = p->host;
    /* The peer chose these: never its pick of our LAN's or loopback's ports,
     * and only a few of them. */
    flare_multiaddr addrs[FLARE_DCUTR_MAX_DIALS];
    flare_dcutr_addr_settings ao = peer_addr_opts(h);
    int k = flare_dcutr_dial_addrs(given, ngiven, &ao, addrs, FLARE_DCUTR_MAX_DIALS);
    size_t n = k > 0 ? (size_t)k : 0;
    p->in_dial = 1;
    /* A is the client on the direct connection, B the server. */
    flare_dial_opts o = {.role = p->initiator ? FLARE_ROLE_RESPONDER : FLARE_ROLE_INITIATOR,
                         .force_new = 1};
    flare_tstamp until = now_of(h) + FLARE_DCUTR_DEFAULT_DIAL_TIMEOUT + FLARE_NS_PER_S;
    flare_ipaddr quic_to[UDP_PUNCH_MAX];
    size_t nquic = 0;
    for (size_t i = 0; i < n; i++) {
        if (p->initiator && is_quic(&addrs[i], &quic_to[nquic])) {
            nquic++; /* B does not dial QUIC: it punches (below) */
            continue;
        }
        if (!p->initiator)
            expect_add(h, &addrs[i], until);
        dial_ctx *dc = flare__calloc(h->mem, 1, sizeof(*dc));
        if (!dc)
            break;
        dc->p = p;
        dc->ma = addrs[i];
        flare_multiaddr_with_peerid(&dc->ma, &p->peer);
        if (flare_host_dial(h, &dc->ma, &o, punch_dialed, dc)) {
            flare__free(h->mem, dc);
            continue;
        }
        p->dials++;
        p->refs++;
    }
    if (nquic)
        udp_punch_start(p, quic_to, nquic);
    if (p->dials == 0) {
        p->in_dial = 0;
        if (p->b)
            flare_dcutr_initiator_dial_result(p->b, 0, NULL, now_of(h));
        else
            flare_dcutr_responder_dial_result(p->a, 0, NULL, now_of(h));
    }
}

/* ---- the exchange ------------------------------------------------------------------------- */

static size_t our_addrs(flare_host *h, flare_multiaddr *out, size_t cap)
{
    flare_multiaddr conf[16], cand[16];
    size_t nc = flare_host_external_addrs(h, conf, 16, 0);
    size_t na = flare_host_external_addrs(h, cand, 16, 1);
    /* Private ones only where we would dial them too (tests on one LAN). */
    flare_dcutr_addr_settings o = peer_addr_opts(h);
    int n = flare_dcutr_select_addrs(conf, nc, cand, na, &o, out, cap);
    return n > 0 ? (size_t)n : 0;
}

static int open_stream(punch *p);

static void handle_event(punch *p, const flare_dcutr_event *ev)
{
    switch (ev->type) {
    case FLARE_DCUTR_EV_DIAL:
        p->attempt = ev->attempt;
        if (ev->rtt)
            p->rtt = ev->rtt;
        if (p->initiator)
            drop_stream(p, 0); /* SYNC is out: the stream is done */
        dial_addrs(p, ev->addrs, ev->naddrs);
        break;
    case FLARE_DCUTR_EV_RETRY:
        p->attempt = ev->attempt;
        drop_stream(p, 1);
        if (open_stream(p))
            punch_finish(p, FLARE_ERR_CLOSED, FLARE_DCUTR_REASON_STREAM);
        break;
    case FLARE_DCUTR_EV_SUCCESS:
        break; /* reported by on_success */
    case FLARE_DCUTR_EV_FAILED:
        p->attempt = ev->attempt;
        if (ev->final)
            punch_finish(p, FLARE_ERR_UNREACHABLE, ev->reason);
        else if (!p->relayed || p->relayed->close_pending)
            flare_dcutr_responder_abort(p->a, now_of(p->host)); /* B cannot come back */
        else
            drop_stream(p, 1); /* B may retry on a new stream */
        break;
    }
}

static void arm(punch *p)
{
    flare_host *h = p->host;
    if (p->finished)
        return;
    flare_tstamp d = p->b ? flare_dcutr_initiator_expiry(p->b) : flare_dcutr_responder_expiry(p->a);
    if (d == FLARE_TSTAMP_NEVER)
        h->io->ops->timer_stop(p->timer);
    else
        h->io->ops->timer_start(p->timer, d);
}

static void process(punch *p)
{
    flare_dcutr_event ev;
    p->refs++;
    while (!p->finished && (p->b ? flare_dcutr_initiator_poll_event(p->b, &ev)
                                 : flare_dcutr_responder_poll_event(p->a, &ev)) == 1)
        handle_event(p, &ev);
    emit_steps(p->host);
    arm(p);
    punch_unref(p);
}

static void on_timer(flare_io_timer *t, void *user)
{
    punch *p = user;
    (void)t;
    if (p->finished) { /* the grace period after success */
        /* The application's streams still on it (a peer that cannot move
         * them) finish there; the relay's own limits bound the wait. */
        if (p->relayed && !p->relayed->close_pending && flare__conn_app_streams(p->relayed) &&
            now_of(p->host) < p->done_at + DRAIN_MAX) {
            p->host->io->ops->timer_start(p->timer, now_of(p->host) + GRACE);
            return;
        }
        if (p->relayed && !p->relayed->close_pending)
            flare_conn_close(p->relayed);
        p->relayed = NULL;
        punch_unref(p);
        return;
    }
    flare_tstamp now = now_of(p->host);
    int rv = p->b ? flare_dcutr_initiator_handle_expiry(p->b, now)
                  : flare_dcutr_responder_handle_expiry(p->a, now);
    if (rv == FLARE_ERR_TIMEOUT)
        drop_stream(p, 1);
    process(p);
}

static void st_data(flare_stream *s, const uint8_t *d, size_t len, void *user)
{
    punch *p = user;
    flare_host *h = p->host;
    flare_buf out;
    flare_buf_init(&out, h->mem);
    int rv;
    p->refs++;
    if (p->b) {
        rv = flare_dcutr_initiator_recv(p->b, d, len, now_of(h), &out);
    } else {
        flare_multiaddr mine[FLARE_DCUTR_MAX_ADDRS];
        size_t n = our_addrs(h, mine, FLARE_DCUTR_MAX_ADDRS);
        rv = flare_dcutr_responder_recv(p->a, d, len, now_of(h), mine, n, &out);
    }
    if (out.len && p->stream == s)
        flare_stream_write(s, out.base, out.len);
    flare_buf_free(&out);
    if (rv < 0 && rv != FLARE_ERR_PROTO && p->stream == s)
        drop_stream(p, 1);
    process(p);
    punch_unref(p);
}

static void st_close(flare_stream *s, int err, void *user)
{
    punch *p = user;
    (void)s;
    if (p->stream != s)
        return;
    p->stream = NULL;
    p->refs++;
    if (p->unsupported && !p->finished && !p->dial_ok) {
        punch_unref(p); /* the stream's reference */
        punch_finish(p, FLARE_ERR_UNSUPPORTED, FLARE_DCUTR_REASON_UNSUPPORTED);
        punch_unref(p);
        return;
    }
    p->refs--;
    if (p->b && !p->finished && !p->in_dial)
        flare_dcutr_initiator_stream_error(p->b, err ? err : FLARE_ERR_CLOSED, now_of(p->host));
    else if (p->a && !p->finished) /* B's stream ended before SYNC: that attempt failed */
        flare_dcutr_responder_stream_error(p->a, err ? err : FLARE_ERR_CLOSED, now_of(p->host));
    p->refs++;
    punch_unref(p); /* the stream's reference */
    process(p);
    punch_unref(p);
}

static void st_open(flare_stream *s, int status, void *user)
{
    punch *p = user;
    /* A does not speak DCUtR (it answered "na" to the optimistic proposal):
     * nothing to punch with; the relayed connection stays as it is. */
    if (status == FLARE_ERR_NEGOTIATION && p->b && p->stream == s)
        p->unsupported = 1; /* on_close follows */
}

static const flare_stream_cbs stream_cbs = {
    .on_open = st_open, .on_data = st_data, .on_close = st_close};

static int open_stream(punch *p)
{
    flare_host *h = p->host;
    if (!p->relayed || p->relayed->close_pending)
        return FLARE_ERR_CLOSED;
    flare_multiaddr mine[FLARE_DCUTR_MAX_ADDRS];
    size_t n = our_addrs(h, mine, FLARE_DCUTR_MAX_ADDRS);
    flare_buf out;
    flare_buf_init(&out, h->mem);
    int rv = flare_dcutr_initiator_start(p->b, now_of(h), mine, n, &out);
    flare_conn *c = p->relayed;
    flare__conn_hold(c); /* the proposal and CONNECT in one write */
    if (rv == 0)
        rv = flare_conn_new_stream(c, FLARE_DCUTR_PROTOCOL_ID, &stream_cbs, p,
                                   FLARE_STREAM_ALLOW_LIMITED, &p->stream);
    if (rv == 0) {
        p->refs++;
        flare_stream_write(p->stream, out.base, out.len);
    }
    flare__conn_release(c);
    flare_buf_free(&out);
    return rv;
}

static punch *punch_new(flare_host *h, flare_conn *relayed, int initiator)
{
    dcutr_svc *d = svc_of(h);
    punch *p = flare__calloc(h->mem, 1, sizeof(*p));
    if (!p)
        return NULL;
    p->host = h;
    p->id = ++d->next_id;
    p->relayed = relayed;
    p->peer = relayed->peer;
    p->initiator = initiator;
    p->refs = 1;
    p->relay_up_at = now_of(h);
    flare_dcutr_settings s;
    flare_dcutr_settings_default(&s);
    s.tracer = tracer_of(h);
    s.trace_id = p->id;
    int rv = h->io->ops->timer_new(h->io, on_timer, p, &p->timer);
    if (rv == 0 && initiator) {
        p->b = flare__calloc(h->mem, 1, sizeof(*p->b));
        rv = p->b ? flare_dcutr_initiator_init(p->b, &s, h->mem) : FLARE_ERR_NOMEM;
    } else if (rv == 0) {
        p->a = flare__calloc(h->mem, 1, sizeof(*p->a));
        rv = p->a ? flare_dcutr_responder_init(p->a, &s, h->mem) : FLARE_ERR_NOMEM;
    }
    if (rv) {
        if (p->timer)
            h->io->ops->timer_del(p->timer);
        flare__free(h->mem, p->b);
        flare__free(h->mem, p->a);
        flare__free(h->mem, p);
        return NULL;
    }
    p->next = d->list;
    d->list = p;
    /* Neither the relayed connection (nor the relay connection carrying
     * it) nor the direct one may be trimmed while we punch and during the
     * grace period after. */
    const flare_peerid *relay = flare__circuit_relay(relayed);
    if (relay)
        p->relay_peer = *relay;
    flare__connmgr_protect(h, &p->peer, FLARE__TAG_HOLEPUNCH, 1);
    if (relay)
        flare__connmgr_protect(h, &p->relay_peer, FLARE__TAG_HOLEPUNCH, 1);
    trace(p, FLARE_DCUTR_STEP_RELAY_UP, 0);
    return p;
}

static punch *find(flare_host *h, const flare_peerid *peer)
{
    for (punch *p = svc_of(h)->list; p; p = p->next)
        if (!p->finished && flare_peerid_equal(&p->peer, peer))
            return p;
    return NULL;
}

/* ---- connection reversal (B dials A's public addresses directly) ----------------------- */

static void reversal_dialed(flare_host *h, flare_conn *c, int status, void *user)
{
    punch *p = user;
    flare_dcutr_tracer *t = tracer_of(h);
    if (t)
        flare_dcutr_tracer_direct_dial(t, status == 0);
    if (status == 0 && c && !c->limited)
        on_success(p, c);
    punch_unref(p);
}

static void try_reversal(punch *p)
{
    flare_host *h = p->host;
    flare_peer_info *info = flare__malloc(h->mem, sizeof(*info));
    if (!info)
        return;
    if (flare_host_peer_info(h, &p->peer, info) == 0) {
        flare_dcutr_addr_settings o = peer_addr_opts(h);
        for (size_t i = 0; i < info->naddrs; i++) {
            if (!flare_dcutr_addr_usable(&info->addrs[i], &o))
                continue;
            flare_multiaddr ma = info->addrs[i];
            flare_multiaddr_with_peerid(&ma, &p->peer);
            /* From an ephemeral port: the punch owns the listen port's tuples. */
            flare_dial_opts dopt = {.force_new = 1, .no_reuse = 1};
            if (flare_host_dial(h, &ma, &dopt, reversal_dialed, p) == 0) {
                p->refs++;
                trace(p, FLARE_DCUTR_STEP_DIRECT_DIAL, 0);
                break; /* one is enough: it only helps when A is really public */
            }
        }
    }
    flare__free(h->mem, info);
}

/* ---- triggers ------------------------------------------------------------------------------ */

/* B: starts the punch on an inbound relayed connection. Optimistically
 * (identified 0) as soon as the connection is up, without waiting for
 * identify: the stream's multistream proposal is pipelined with CONNECT,
 * and a peer without DCUtR answers "na", which ends the punch (st_open). */
static void start_b(flare_host *h, flare_conn *c, int identified)
{
    unsigned mark = flare__svc_mark(h, &flare__svc_dcutr);
    if (!h->cfg.enable_holepunch || !c->limited || c->outbound || c->close_pending ||
        (c->svc_marks & mark) || find(h, &c->peer))
        return;
    if (identified && !flare__peerstore_supports(h->peerstore, &c->peer, FLARE_DCUTR_PROTOCOL_ID))
        return;
    c->svc_marks |= mark; /* once per relayed connection (identify pushes repeat) */
    flare_conn *direct = flare_host_conn_to(h, &c->peer);
    flare_multiaddr mine[FLARE_DCUTR_MAX_ADDRS];
    flare_dcutr_punch_hint hint = {.have_direct_conn = direct && !direct->limited,
                                   .our_addrs = our_addrs(h, mine, FLARE_DCUTR_MAX_ADDRS)};
    hint.our_nat = flare_host_nat_type(h, 4) == FLARE_NAT_ENDPOINT_DEPENDENT ? FLARE_DCUTR_NAT_EDM
                   : flare_host_nat_type(h, 4) == FLARE_NAT_ENDPOINT_INDEPENDENT
                       ? FLARE_DCUTR_NAT_EIM
                       : FLARE_DCUTR_NAT_UNKNOWN;
    flare_dcutr_verdict v = flare_dcutr_should_punch(&hint);
    if (v != FLARE_DCUTR_PUNCH) {
        flare_host_event ev = {.type = FLARE_HOST_EV_HOLEPUNCH,
                               .u.holepunch = {.peer = &c->peer,
                                               .error = FLARE_ERR_REFUSED,
                                               .initiator = 1,
                                               .reason = flare_dcutr_verdict_name(v)}};
        flare__host_emit(h, &ev);
        return;
    }
    punch *p = punch_new(h, c, 1);
    if (!p)
        return;
    if (identified) {
        p->reversal_tried = 1;
        try_reversal(p);
    }
    if (!p->finished && open_stream(p))
        punch_finish(p, FLARE_ERR_CLOSED, FLARE_DCUTR_REASON_STREAM);
    else
        process(p);
}

/* B: identify tells us A's addresses (for connection reversal), or, if the
 * optimistic start did not happen, that A speaks DCUtR. */
static void on_identified(flare_host *h, void *state, flare_conn *c)
{
    if (!state)
        return;
    punch *p = find(h, &c->peer);
    if (p && p->initiator && p->relayed == c && !p->reversal_tried && !p->dial_ok) {
        p->reversal_tried = 1;
        try_reversal(p);
        return;
    }
    start_b(h, c, 1);
}

/* Any new direct connection to a peer we are punching to is the result. */
static void on_conn_ready(flare_host *h, void *state, flare_conn *c)
{
    if (!state)
        return;
    if (c->limited) {
        start_b(h, c, 0);
        return;
    }
    /* A: whichever way it came (B's connection reversal too). */
    punch *p = find(h, &c->peer);
    if (p && (p->in_dial || p->dials || !p->initiator))
        on_success(p, c);
}

static void on_conn_closed(flare_host *h, void *state, flare_conn *c)
{
    dcutr_svc *d = state;
    (void)h;
    for (punch *p = d ? d->list : NULL; p; p = p->next) {
        if (p->relayed == c)
            p->relayed = NULL;
        if (p->direct == c)
            p->direct = NULL;
    }
    /* A between attempts: B cannot open another stream without the relayed
     * connection, so the punch is over (finishing unlinks: look again). */
    punch *p = d ? d->list : NULL;
    while (p) {
        if (p->a && !p->finished && !p->relayed && !p->in_dial && !p->dials &&
            flare_dcutr_responder_abort(p->a, now_of(h)) == 0) {
            process(p);
            p = d->list;
            continue;
        }
        p = p->next;
    }
}

/* A: B opened the stream on the relayed connection we dialed. */
static void handler_open(flare_stream *s, int status, void *user)
{
    flare_host *h = user;
    flare_conn *c = flare_stream_conn(s);
    if (status)
        return;
    if (!h->cfg.enable_holepunch || !c->limited || !c->outbound) {
        flare__stream_abort(s);
        return;
    }
    /* One punch per relayed connection: B's streams after it ended would
     * make us dial its addresses again and again. */
    unsigned mark = flare__svc_mark(h, &flare__svc_dcutr);
    punch *p = find(h, &c->peer);
    if (!p && !(c->svc_marks & mark)) {
        p = punch_new(h, c, 0);
        c->svc_marks |= mark;
    }
    if (!p || p->initiator) {
        flare__stream_abort(s);
        return;
    }
    if (flare_dcutr_responder_stream_open(p->a, now_of(h))) {
        flare__stream_abort(s);
        return;
    }
    drop_stream(p, 1);
    p->stream = s;
    p->refs++;
    flare_stream_set_user(s, &stream_cbs, p);
    process(p);
}

static const flare_stream_cbs handler_cbs = {.on_open = handler_open};

static int dcutr_init(flare_host *h, void **state)
{
    dcutr_svc *d = flare__calloc(h->mem, 1, sizeof(*d));
    if (!d)
        return FLARE_ERR_NOMEM;
    *state = d;
    if (!h->cfg.enable_holepunch)
        return 0;
    return flare_host_set_handler(h, FLARE_DCUTR_PROTOCOL_ID, &handler_cbs, h,
                                  FLARE_HANDLER_ALLOW_LIMITED);
}

static void dcutr_free(flare_host *h, void *state)
{
    dcutr_svc *d = state;
    if (!d)
        return;
    /* A spray's timer may still be pending: it and the punch go together. */
    while (d->udp)
        udp_punch_free(h, d->udp);
    while (d->list) {
        punch *p = d->list;
        d->list = p->next;
        punch_release(h, p);
    }
    flare__free(h->mem, d->tracer);
    flare__free(h->mem, d->exp);
    flare__free(h->mem, d);
}

int flare_host_holepunch_metrics(flare_host *h, flare_buf *out)
{
    dcutr_svc *d = svc_of(h);
    if (!d)
        return FLARE_ERR_STATE;
    if (d->tracer)
        return flare_dcutr_metrics_format(d->tracer, out);
    flare_dcutr_tracer none; /* nothing punched yet: zero counters */
    flare_dcutr_tracer_init(&none);
    return flare_dcutr_metrics_format(&none, out);
}

static const flare__svc_stream_limit limits[] = {{FLARE_DCUTR_PROTOCOL_ID, 4}, {NULL, 0}};

const flare__service flare__svc_dcutr = {
    .name = "dcutr",
    .stream_limits = limits,
    .init = dcutr_init,
    .free = dcutr_free,
    .on_inbound = on_inbound,
    .on_conn_ready = on_conn_ready,
    .on_conn_identified = on_identified,
    .on_conn_closed = on_conn_closed,
};
