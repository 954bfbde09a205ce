/*
 * The hard-NAT punch (/flare/holepunch-hard/1.0.0, include/flare/hardpunch.h):
 * host glue around the sans-I/O core. Off until flare_host_enable_hardpunch;
 * then, like DCUtR, B (whose relayed connection is inbound) opens the stream
 * once identify shows that the peer speaks the protocol, and both sides
 * exchange what they know about their NAT. It runs beside DCUtR (a direct
 * connection from either ends both): DCUtR covers the easy pairs, this one
 * the pairs where one mapping is endpoint-dependent.
 *
 * Steps are reported as FLARE_HOST_EV_HOLEPUNCH_STEP events named "hard-*":
 * hard-start (value: our TCP role | UDP role << 4; roles 0 none, 1 hard,
 * 2 easy), then hard-direct,
 * hard-failed, or hard-none (nothing to try for this pair).
 */
#include <string.h>

#include "core/mem.h"
#include "flare/dcutr.h"
#include "flare/hardpunch.h"
#include "services/services.h"
#include "transport/quic.h"

#define HP_MAX      16 /* sessions at once */
#define HP_UDP_HARD 2  /* sessions holding probe sockets at once (file descriptors) */

typedef struct hp_sess {
    struct hp_sess *next;
    flare_host *host;
    flare_peerid peer;
    flare_conn *relayed;
    flare_stream *stream;
    flare_io_timer *timer;
    flare_hardpunch core;
    flare_hardpunch_plan plan;
    flare_hardpunch_plan uplan; /* UDP */
    void **socks;               /* hard side's probe sockets */
    unsigned nsocks;
    unsigned probes; /* easy side: sent so far */
    int udp_active;  /* still probing or waiting for a probe */
    flare_io_timer *utimer;
    flare_tstamp end;
    int dials; /* in flight */
    int punched;
    int done;
    int refs;
} hp_sess;

typedef struct hp_svc {
    int enabled;
    unsigned udp_hard; /* sessions holding probe sockets */
    flare_hardpunch_settings cfg;
    hp_sess *list;
    size_t n;
} hp_svc;

static hp_svc *svc_of(flare_host *h)
{
    return flare__svc_state(h, &flare__svc_hardpunch);
}

static flare_tstamp now_of(flare_host *h)
{
    return flare_io_now(h->io);
}

static void step(hp_sess *s, const char *name, uint64_t value)
{
    flare_host_event ev = {
        .type = FLARE_HOST_EV_HOLEPUNCH_STEP,
        .u.holepunch_step = {
            .peer = &s->peer, .initiator = s->core.initiator, .step = name, .value = value}};
    flare__host_emit(s->host, &ev);
}

static const flare_stream_cbs quiet_cbs = {0};

static void sess_unref(hp_sess *s)
{
    if (--s->refs > 0)
        return;
    flare_host *h = s->host;
    hp_svc *d = svc_of(h);
    for (hp_sess **pp = &d->list; *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            d->n--;
            break;
        }
    h->io->ops->timer_del(s->timer);
    if (s->utimer)
        h->io->ops->timer_del(s->utimer);
    flare__free(h->mem, s);
}

static void drop_stream(hp_sess *s, int reset)
{
    flare_stream *st = s->stream;
    if (!st)
        return;
    s->stream = NULL;
    flare_stream_set_user(st, &quiet_cbs, NULL);
    if (reset)
        flare__stream_abort(st);
    else
        flare_stream_close_write(st);
}

static void udp_stop(hp_sess *s)
{
    flare_host *h = s->host;
    s->udp_active = 0;
    if (s->utimer)
        h->io->ops->timer_stop(s->utimer);
    if (s->socks)
        svc_of(h)->udp_hard--;
    for (unsigned i = 0; i < s->nsocks; i++)
        if (s->socks[i])
            flare__quic_probe_close(h, s->socks[i]);
    flare__free(h->mem, s->socks);
    s->socks = NULL;
    s->nsocks = 0;
}

static void finish(hp_sess *s, const char *why)
{
    if (s->done)
        return;
    s->done = 1;
    udp_stop(s);
    drop_stream(s, !s->punched);
    s->host->io->ops->timer_stop(s->timer);
    step(s, why, 0);
    sess_unref(s);
}

/* ---- dialing ------------------------------------------------------------------------------ */

static void on_direct(hp_sess *s, flare_conn *c)
{
    flare_host *h = s->host;
    if (s->punched) {
        /* Several predicted pairs may match: the hard side keeps the first
         * and closes the others (one side decides, so one survives). */
        if (s->plan.role == FLARE_HARDPUNCH_ROLE_HARD && c != flare_host_conn_to(h, &s->peer))
            flare_conn_close(c);
        return;
    }
    s->punched = 1;
    /* The dials still under way are no longer needed. */
    for (flare_conn *x = h->conns; x;) {
        if (x != c && x->outbound && !x->limited && x->state != FLARE__CONN_READY &&
            !x->close_pending && flare_peerid_equal(&x->peer, &s->peer)) {
            flare__conn_fail(x, FLARE_ERR_CLOSED); /* may free x and run callbacks */
            x = h->conns;
            continue;
        }
        x = x->next;
    }
    finish(s, "hard-direct");
}

static void dialed(flare_host *h, flare_conn *c, int status, void *user)
{
    hp_sess *s = user;
    s->dials--;
    if (status == 0 && c && !c->limited) {
        on_direct(s, c);
    } else if (s->dials == 0 && !s->done && !s->udp_active) {
        /* A listener may have taken the peer's SYN (a simultaneous open
         * seen as an accept), or DCUtR's success cancelled our dials. */
        flare_conn *direct = flare_host_conn_to(h, &s->peer);
        if (direct && !direct->limited)
            on_direct(s, direct);
        else
            finish(s, "hard-failed");
    }
    sess_unref(s);
}

static void tcp_dials(hp_sess *s)
{
    flare_host *h = s->host;
    /* The hard side is the client of the direct connection: only the easy
     * side's listener can accept an unexpected SYN (its mapping is the
     * known one), and an accepted connection makes it the server. */
    flare_dial_opts o = {.force_new = 1};
    if (s->plan.role == FLARE_HARDPUNCH_ROLE_HARD) {
        o.role = FLARE_ROLE_INITIATOR;
        o.no_reuse = 1; /* a fresh socket, so a fresh mapping, per dial */
    } else {
        o.role = FLARE_ROLE_RESPONDER;
    }
    for (unsigned i = 0; i < s->plan.n; i++) {
        flare_ipaddr ip = s->plan.to;
        ip.port = s->plan.ports[i];
        flare_multiaddr ma;
        if (flare_multiaddr_from_ipaddr(&ma, &ip, FLARE_MA_TCP) ||
            flare_multiaddr_with_peerid(&ma, &s->peer))
            continue;
        if (flare_host_dial(h, &ma, &o, dialed, s) == 0) {
            s->dials++;
            s->refs++;
        }
    }
}

/* ---- UDP: birthday probing ------------------------------------------------------------- */

#define PROBE_SIZE 48

static void junk(flare_host *h, uint8_t *b)
{
    h->rng.fn(b, PROBE_SIZE, h->rng.user);
    b[0] &= 0x7f; /* a QUIC short header's form bit: never taken for an Initial */
}

/* Hard side: a probe of the easy side reached one of our sockets. */
static void probe_hit(void *user, void *sock, const flare_ipaddr *from)
{
    hp_sess *s = user;
    flare_host *h = s->host;
    if (s->done || !s->udp_active || !flare_ipaddr_equal(from, &s->uplan.to))
        return; /* someone else's datagram: not the peer's mapping */
    flare_multiaddr ma;
    if (flare_multiaddr_from_ipaddr(&ma, from, FLARE_MA_UDP) ||
        flare_multiaddr_with_peerid(&ma, &s->peer))
        return;
    flare__quic_probe_pin(sock, from);
    flare_dial_opts o = {.force_new = 1, .role = FLARE_ROLE_INITIATOR};
    s->refs++;
    for (unsigned i = 0; i < s->nsocks; i++)
        if (s->socks[i] == sock)
            s->socks[i] = NULL; /* kept: the connection leaves from it */
    s->udp_active = 0;
    if (flare_host_dial(h, &ma, &o, dialed, s) == 0) {
        s->dials++;
        s->refs++;
    }
    udp_stop(s);
    flare__quic_probe_close(h, sock); /* kept while it carries the connection */
    if (!s->dials && !s->done)
        finish(s, "hard-failed");
    sess_unref(s);
}

static void udp_timer(flare_io_timer *t, void *user)
{
    hp_sess *s = user;
    flare_host *h = s->host;
    (void)t;
    if (s->done || !s->udp_active)
        return;
    hp_svc *d = svc_of(h);
    if (s->probes >= d->cfg.udp_probes || now_of(h) >= s->end) {
        s->udp_active = 0;
        if (!s->dials) {
            s->refs++;
            finish(s, "hard-failed");
            sess_unref(s);
        }
        return;
    }
    uint8_t b[PROBE_SIZE], r[2];
    junk(h, b);
    h->rng.fn(r, 2, h->rng.user);
    flare_ipaddr to = s->uplan.to;
    to.port = flare_hardpunch_probe_port(r);
    flare__quic_punch(h, &to, b, sizeof(b));
    s->probes++;
    h->io->ops->timer_start(s->utimer, now_of(h) + d->cfg.udp_interval);
}

static void udp_start(hp_sess *s)
{
    flare_host *h = s->host;
    if (s->uplan.role == FLARE_HARDPUNCH_ROLE_EASY) {
        if (h->io->ops->timer_new(h->io, udp_timer, s, &s->utimer))
            return;
        s->udp_active = 1;
        udp_timer(s->utimer, s);
        return;
    }
    hp_svc *d = svc_of(h);
    if (s->uplan.role != FLARE_HARDPUNCH_ROLE_HARD || d->udp_hard >= HP_UDP_HARD)
        return;
    s->socks = flare__calloc(h->mem, s->uplan.n, sizeof(void *));
    if (!s->socks)
        return;
    d->udp_hard++;
    uint8_t b[PROBE_SIZE];
    junk(h, b);
    s->udp_active = 1;
    for (unsigned i = 0; i < s->uplan.n; i++) {
        if (flare__quic_probe_open(h, s->uplan.to.family, probe_hit, s, &s->socks[s->nsocks]))
            break;
        flare__quic_probe_send(h, s->socks[s->nsocks], &s->uplan.to, b, sizeof(b));
        s->nsocks++;
    }
    if (!s->nsocks)
        udp_stop(s);
}

/* The peer chose its addresses: never a port of our LAN or loopback (as
 * DCUtR), so it cannot aim our dials and datagrams at them. */
static void peer_scope(flare_host *h, flare_hardpunch_info *peer)
{
    flare_dcutr_addr_settings o;
    flare_dcutr_addr_settings_default(&o);
    o.doc_is_public = h->cfg.doc_addrs_public;
    o.allow_quic = 1;
    o.allow_private = h->cfg.dial_private_peer_addrs;
    flare_multiaddr ma;
    if (peer->has_tcp && (flare_multiaddr_from_ipaddr(&ma, &peer->tcp, FLARE_MA_TCP) ||
                          !flare_dcutr_addr_usable(&ma, &o)))
        peer->has_tcp = 0;
    if (peer->has_udp && (flare_multiaddr_from_ipaddr(&ma, &peer->udp, FLARE_MA_UDP) ||
                          !flare_dcutr_addr_usable(&ma, &o)))
        peer->has_udp = 0;
}

static void punch(hp_sess *s)
{
    flare_host *h = s->host;
    hp_svc *d = svc_of(h);
    peer_scope(h, &s->core.peer);
    flare_hardpunch_plan_tcp(&s->core.mine, &s->core.peer, &d->cfg, &s->plan);
    flare_hardpunch_plan_udp(&s->core.mine, &s->core.peer, &d->cfg, &s->uplan);
    drop_stream(s, 0);
    step(s, "hard-start", (uint64_t)s->plan.role | (uint64_t)s->uplan.role << 4);
    s->refs++;
    tcp_dials(s);
    udp_start(s);
    if (!s->done) {
        if (!s->dials && !s->udp_active)
            finish(s, s->plan.role || s->uplan.role ? "hard-failed" : "hard-none");
        else
            h->io->ops->timer_start(s->timer, s->end);
    }
    sess_unref(s);
}

/* ---- the exchange ----------------------------------------------------------------------- */

static void after_core(hp_sess *s)
{
    flare_host *h = s->host;
    if (s->done || s->dials)
        return;
    if (s->core.state == FLARE_HARDPUNCH_S_GO) {
        punch(s);
        return;
    }
    if (s->core.state == FLARE_HARDPUNCH_S_FAILED) {
        finish(s, "hard-failed");
        return;
    }
    flare_tstamp t = flare_hardpunch_expiry(&s->core);
    h->io->ops->timer_start(s->timer, t < s->end ? t : s->end);
}

static void on_timer(flare_io_timer *t, void *user)
{
    hp_sess *s = user;
    flare_tstamp now = now_of(s->host);
    (void)t;
    if (now >= s->end) {
        finish(s, "hard-failed"); /* late dials still report to us: refs */
        return;
    }
    s->refs++;
    flare_hardpunch_handle_expiry(&s->core, now);
    after_core(s);
    sess_unref(s);
}

static void st_data(flare_stream *st, const uint8_t *data, size_t len, void *user)
{
    hp_sess *s = user;
    flare_host *h = s->host;
    flare_buf out;
    flare_buf_init(&out, h->mem);
    s->refs++;
    flare_hardpunch_recv(&s->core, data, len, now_of(h), &out);
    if (out.len && s->stream == st)
        flare_stream_write(st, out.base, out.len);
    flare_buf_free(&out);
    after_core(s);
    sess_unref(s);
}

static void st_close(flare_stream *st, int err, void *user)
{
    hp_sess *s = user;
    (void)err;
    if (s->stream != st)
        return;
    s->stream = NULL;
    s->refs++;
    if (s->core.state != FLARE_HARDPUNCH_S_WAIT_GO && s->core.state != FLARE_HARDPUNCH_S_GO)
        finish(s, "hard-failed");
    sess_unref(s);
}

static const flare_stream_cbs stream_cbs = {.on_data = st_data, .on_close = st_close};

/* What we know of our NAT over UDP (IPv4): the type, and the address the
 * peer must reach (hard: only its IP matters). */
static void our_udp_info(flare_host *h, flare_hardpunch_info *info)
{
    flare_tstamp now = now_of(h);
    flare_nat_type t = flare_addrmgr_nat_type(h->addrmgr, now, 4, FLARE_MA_UDP);
    info->udp_nat = t == FLARE_NAT_ENDPOINT_DEPENDENT     ? FLARE_HARDPUNCH_NAT_HARD
                    : t == FLARE_NAT_ENDPOINT_INDEPENDENT ? FLARE_HARDPUNCH_NAT_EASY
                                                          : FLARE_HARDPUNCH_NAT_UNKNOWN;
    if (info->udp_nat == FLARE_HARDPUNCH_NAT_HARD) {
        unsigned st = 0, nobs = 0;
        info->has_udp = flare_addrmgr_port_prediction(h->addrmgr, now, 4, FLARE_MA_UDP, 0,
                                                      &info->udp, &st, &nobs) == 0;
        return;
    }
    flare_multiaddr ext[16];
    size_t n = flare_host_external_addrs(h, ext, 16, 1);
    for (size_t i = 0; i < n && !info->has_udp; i++) {
        int proto = 0;
        if (flare_multiaddr_to_ipaddr(&ext[i], &info->udp, &proto) == 0 && proto == FLARE_MA_UDP &&
            info->udp.family == 4 && flare_multiaddr_has(&ext[i], FLARE_MA_QUIC_V1) &&
            !flare_multiaddr_has(&ext[i], FLARE_MA_P2P_CIRCUIT))
            info->has_udp = 1;
    }
}

/* What we know of our NAT over TCP (IPv4), and over UDP. */
static void our_info(flare_host *h, flare_hardpunch_info *info)
{
    memset(info, 0, sizeof(*info));
    our_udp_info(h, info);
    flare_tstamp now = now_of(h);
    flare_nat_type t = flare_addrmgr_nat_type(h->addrmgr, now, 4, FLARE_MA_TCP);
    if (t == FLARE_NAT_ENDPOINT_DEPENDENT) {
        unsigned st = 0, nobs = 0;
        info->nat = FLARE_HARDPUNCH_NAT_HARD;
        if (flare_addrmgr_port_prediction(h->addrmgr, now, 4, FLARE_MA_TCP,
                                          FLARE_HARDPUNCH_MAX_STEP, &info->tcp, &st, &nobs) == 0) {
            info->has_tcp = 1;
            info->tcp_step = st;
        }
        return;
    }
    if (t == FLARE_NAT_ENDPOINT_INDEPENDENT)
        info->nat = FLARE_HARDPUNCH_NAT_EASY;
    flare_multiaddr ext[16];
    size_t n = flare_host_external_addrs(h, ext, 16, 1);
    for (size_t i = 0; i < n && !info->has_tcp; i++) {
        int proto = 0;
        if (flare_multiaddr_to_ipaddr(&ext[i], &info->tcp, &proto) == 0 && proto == FLARE_MA_TCP &&
            info->tcp.family == 4 && !flare_multiaddr_has(&ext[i], FLARE_MA_P2P_CIRCUIT))
            info->has_tcp = 1;
    }
}

static hp_sess *sess_new(flare_host *h, flare_conn *relayed, int initiator)
{
    hp_svc *d = svc_of(h);
    if (d->n >= HP_MAX)
        return NULL;
    for (hp_sess *x = d->list; x; x = x->next)
        if (!x->done && flare_peerid_equal(&x->peer, &relayed->peer))
            return NULL;
    hp_sess *s = flare__calloc(h->mem, 1, sizeof(*s));
    if (!s)
        return NULL;
    if (h->io->ops->timer_new(h->io, on_timer, s, &s->timer)) {
        flare__free(h->mem, s);
        return NULL;
    }
    s->host = h;
    s->peer = relayed->peer;
    s->relayed = relayed;
    s->refs = 1;
    s->end = now_of(h) + d->cfg.timeout;
    s->core.initiator = initiator;
    s->next = d->list;
    d->list = s;
    d->n++;
    return s;
}

static int sess_start(hp_sess *s, flare_buf *out)
{
    flare_hardpunch_info mine;
    our_info(s->host, &mine);
    return flare_hardpunch_init(&s->core, s->core.initiator, &mine, &svc_of(s->host)->cfg,
                                now_of(s->host), out);
}

/* B: an inbound relayed connection whose peer speaks the protocol. */
static void on_identified(flare_host *h, void *state, flare_conn *c)
{
    hp_svc *d = state;
    unsigned mark = flare__svc_mark(h, &flare__svc_hardpunch);
    if (!d || !d->enabled || !c->limited || c->outbound || c->close_pending ||
        (c->svc_marks & mark))
        return;
    c->svc_marks |= mark;
    if (!flare__peerstore_supports(h->peerstore, &c->peer, FLARE_HARDPUNCH_PROTOCOL_ID))
        return;
    hp_sess *s = sess_new(h, c, 1);
    if (!s)
        return;
    flare_buf out;
    flare_buf_init(&out, h->mem);
    int rv = sess_start(s, &out);
    if (rv == 0)
        rv = flare_conn_new_stream(c, FLARE_HARDPUNCH_PROTOCOL_ID, &stream_cbs, s,
                                   FLARE_STREAM_ALLOW_LIMITED, &s->stream);
    if (rv == 0)
        flare_stream_write(s->stream, out.base, out.len);
    flare_buf_free(&out);
    if (rv)
        finish(s, "hard-failed");
    else
        after_core(s);
}

/* A: B opened the stream on the relayed connection we dialed. */
static void handler_open(flare_stream *st, int status, void *user)
{
    flare_host *h = user;
    flare_conn *c = flare_stream_conn(st);
    hp_svc *d = svc_of(h);
    if (status)
        return;
    hp_sess *s = d && d->enabled && c->limited && c->outbound ? sess_new(h, c, 0) : NULL;
    if (!s) {
        flare__stream_abort(st);
        return;
    }
    flare_buf out;
    flare_buf_init(&out, h->mem);
    if (sess_start(s, &out)) {
        flare_buf_free(&out);
        flare__stream_abort(st);
        finish(s, "hard-failed");
        return;
    }
    flare_buf_free(&out);
    s->stream = st;
    flare_stream_set_user(st, &stream_cbs, s);
    after_core(s);
}

static const flare_stream_cbs handler_cbs = {.on_open = handler_open};

/* Any direct connection to a peer we punch to ends the punch (DCUtR's too). */
static void on_conn_ready(flare_host *h, void *state, flare_conn *c)
{
    hp_svc *d = state;
    if (!d || c->limited)
        return;
    for (hp_sess *s = d->list; s; s = s->next)
        if (flare_peerid_equal(&s->peer, &c->peer) && (!s->done || s->punched)) {
            s->refs++;
            on_direct(s, c);
            sess_unref(s);
            return;
        }
    (void)h;
}

static void on_conn_closed(flare_host *h, void *state, flare_conn *c)
{
    hp_svc *d = state;
    (void)h;
    for (hp_sess *s = d ? d->list : NULL; s; s = s->next)
        if (s->relayed == c)
            s->relayed = NULL;
}

int flare_host_enable_hardpunch(flare_host *h, const flare_hardpunch_settings *cfg)
{
    hp_svc *d = h ? svc_of(h) : NULL;
    if (!d)
        return FLARE_ERR_UNSUPPORTED;
    if (d->enabled)
        return FLARE_ERR_EXISTS;
    flare_hardpunch_settings s;
    if (cfg)
        s = *cfg;
    else
        flare_hardpunch_settings_default(&s);
    if (flare_hardpunch_settings_check(&s))
        return FLARE_ERR_INVALID_ARG;
    int rv = flare_host_set_handler(h, FLARE_HARDPUNCH_PROTOCOL_ID, &handler_cbs, h,
                                    FLARE_HANDLER_ALLOW_LIMITED);
    if (rv)
        return rv;
    d->cfg = s;
    d->enabled = 1;
    return 0;
}

static int hp_init(flare_host *h, void **state)
{
    hp_svc *d = flare__calloc(h->mem, 1, sizeof(*d));
    if (!d)
        return FLARE_ERR_NOMEM;
    flare_hardpunch_settings_default(&d->cfg);
    *state = d;
    return 0;
}

static void hp_free(flare_host *h, void *state)
{
    hp_svc *d = state;
    if (!d)
        return;
    while (d->list) {
        hp_sess *s = d->list;
        d->list = s->next;
        h->io->ops->timer_del(s->timer);
        if (s->utimer)
            h->io->ops->timer_del(s->utimer);
        flare__free(h->mem, s->socks); /* the sockets go with the transport */
        flare__free(h->mem, s);
    }
    flare__free(h->mem, d);
}

static const flare__svc_stream_limit limits[] = {{FLARE_HARDPUNCH_PROTOCOL_ID, 2}, {NULL, 0}};

const flare__service flare__svc_hardpunch = {
    .name = "hardpunch",
    .stream_limits = limits,
    .init = hp_init,
    .free = hp_free,
    .on_conn_ready = on_conn_ready,
    .on_conn_identified = on_identified,
    .on_conn_closed = on_conn_closed,
};
