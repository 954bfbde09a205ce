/*
 * QUIC v1 (/ip4|ip6/ADDR/udp/PORT/quic-v1) as a host transport of the
 * session kind (transport.h): TLS 1.3 with libp2p certificates secures the
 * connection and every QUIC stream is a libp2p stream (multistream-select per
 * stream; no Noise, no yamux).
 *
 * One UDP socket per listen address carries one QUIC endpoint (quic/quic.h)
 * that both accepts and dials: a dial leaves from the listen socket of its
 * address family, so the NAT mapping is the listen address's (hole
 * punching). Without a listener (or with no_reuse) a dial-only socket per
 * family on an ephemeral port does the same job.
 *
 * The QUIC core's callbacks run inside ngtcp2; the host is only told after
 * the endpoint call returns (ready, session input, loss), so host code never
 * re-enters ngtcp2.
 */
#include <string.h>

#include "core/mem.h"
#include "security/tls/tls_cert.h"
#include "transport/quic.h"
#include "transport/quic/quic_mux.h"
#include "transport/transport.h"
#include "transport/udp_mux.h"

typedef struct qsock qsock;

/* One QUIC connection as the host sees it. */
typedef struct qlink {
    struct qlink *next;
    qsock *sock;
    flare__quic_conn *qc; /* NULL once the QUIC connection is gone */
    flare_conn *c;        /* NULL once the host let go */
    flare__quic_mux *mux;
    flare_pubkey pk;
    int verified;
    int ready_pending, input_pending, lost_pending, lost_err;
} qlink;

struct qsock {
    qsock *next;
    struct quic_tr *tr;
    flare_io_udp *udp;
    flare__quic_ep *ep;
    flare_io_timer *timer;
    flare_ipaddr local;
    flare__listener *l; /* NULL: dial-only */
    int busy;
    /* A probe socket (flare__quic_probe_open): never picked for other dials. */
    int probe;
    flare__quic_probe_cb probe_cb;
    void *probe_user;
    int has_pin; /* the next dial to pin leaves from here */
    flare_ipaddr pin;
    int held; /* inside a read batch: the endpoint's flush waits for its end */
};

typedef struct quic_tr {
    flare_host *h;
    gnutls_certificate_credentials_t cred; /* NULL until the first socket */
    flare__tr_seed seed;                   /* the certificate's randomness */
    uint8_t reset_secret[32];
    qsock *socks;
    qlink *links;
} quic_tr;

const flare__transport flare__tr_quic;

static flare_tstamp now_of(const quic_tr *t)
{
    return flare_io_now(t->h->io);
}

/* ---- links and host notifications ------------------------------------------------- */

static void link_free(quic_tr *t, qlink *k)
{
    for (qlink **pp = &t->links; *pp; pp = &(*pp)->next) {
        if (*pp == k) {
            *pp = k->next;
            break;
        }
    }
    flare__free(t->h->mem, k);
}

static void sock_arm(qsock *s);

/* Datagrams sent between cork(s, 1) and cork(s, 0) leave in few system
 * calls, if the driver can batch. */
static void sock_cork(qsock *s, int on)
{
    flare_io *io = s->tr->h->io;
    if (io->ops->udp_cork && s->udp)
        io->ops->udp_cork(s->udp, on);
}

static void mux_flush(void *user)
{
    qlink *k = user;
    /* Inside a read batch the batch's end flushes (one ACK for the batch). */
    if (k->sock && !k->sock->busy && !k->sock->held) {
        qsock *s = k->sock;
        sock_cork(s, 1);
        flare__quic_ep_flush(s->ep, now_of(s->tr));
        sock_cork(s, 0);
        sock_arm(s);
    } else if (k->sock) {
        sock_arm(k->sock);
    }
}

static void notify_ready(qlink *k)
{
    /* The connection's counting allocator: the resource manager's memory
     * limits cover what the peer makes the streams buffer. */
    k->mux = flare__quic_mux_new(k->qc, &k->c->rc.mem, mux_flush, NULL, k);
    if (!k->mux) {
        flare__quic_conn_close(k->qc, 1);
        return;
    }
    flare__session s = {
        .remote_key = &k->pk,
        .security = "tls",
        .muxer = "quic",
        .mux = &flare__quic_mux_ops,
        .mux_st = k->mux,
    };
    flare__conn_session_ready(k->c, &s); /* on failure c fails: close follows */
}

/* Tells the host what happened during an endpoint call. */
static void sock_settle(qsock *s)
{
    quic_tr *t = s->tr;
    for (qlink *k = t->links, *next; k; k = next) {
        next = k->next;
        if (k->sock != s)
            continue;
        if (k->lost_pending) {
            k->lost_pending = 0;
            flare_conn *c = k->c;
            int err = k->lost_err ? k->lost_err : FLARE_ERR_CLOSED;
            k->c = NULL;
            if (k->mux) {
                flare__quic_mux_conn_lost(k->mux, k->lost_err);
                flare__quic_mux_ops.free(k->mux);
                k->mux = NULL;
            }
            link_free(t, k);
            if (c)
                flare__conn_transport_lost(c, err);
            next = t->links; /* the host may have closed others meanwhile */
            continue;
        }
        if (k->ready_pending) {
            k->ready_pending = 0;
            if (k->c && k->qc) {
                notify_ready(k);
                next = t->links;
                continue;
            }
        }
        if (k->input_pending) {
            k->input_pending = 0;
            if (k->c && k->mux) {
                flare__conn_session_input(k->c);
                next = t->links;
            }
        }
    }
}

/* ---- endpoint callbacks ---------------------------------------------------------------- */

static void on_send(void *user, const flare_ipaddr *to, const uint8_t *data, size_t len)
{
    qsock *s = user;
    flare_io *io = s->tr->h->io;
    io->ops->udp_send(s->udp, to, data, len);
}

static qlink *link_new(qsock *s, flare__quic_conn *qc, flare_conn *c)
{
    quic_tr *t = s->tr;
    qlink *k = flare__calloc(t->h->mem, 1, sizeof(*k));
    if (!k)
        return NULL;
    k->sock = s;
    k->qc = qc;
    k->c = c;
    k->next = t->links;
    t->links = k;
    return k;
}

static const flare__transport_ops quic_ops;

static int on_accept(void *user, flare__quic_conn *qc, const flare_ipaddr *from)
{
    qsock *s = user;
    flare_host *h = s->tr->h;
    flare_multiaddr rma;
    if (!s->l) /* a dial-only socket, or its listener was closed */
        return 1;
    if (flare_multiaddr_from_ipaddr(&rma, from, FLARE_MA_UDP) != 0)
        return 1;
    flare_conn *c = flare__conn_accept(h, &flare__tr_quic, from, &rma);
    if (!c)
        return 1;
    qlink *k = link_new(s, qc, c);
    if (!k) {
        flare__conn_fail(c, FLARE_ERR_NOMEM);
        return 1;
    }
    flare__quic_conn_set_user(qc, k);
    flare__conn_attach(c, &quic_ops, k);
    c->remote_ip = *from;
    c->local_ip = s->local;
    flare_multiaddr lma;
    if (flare_multiaddr_from_ipaddr(&lma, &s->local, FLARE_MA_UDP) == 0)
        (void)flare__conn_set_local_ma(c, &lma);
    (void)flare__conn_set_remote_ma(c, &rma); /* NOMEM: empty */
    flare__conn_accepted(c);
    return 0;
}

static int on_verify(void *user, flare__quic_conn *qc, gnutls_session_t tls)
{
    qsock *s = user;
    qlink *k = flare__quic_conn_user(qc);
    if (!k || !k->c)
        return FLARE_ERR_STATE;
    flare_host *h = s->tr->h;
    flare_peerid id;
    int rv = flare__tls_session_verify(tls, h->io->ops->unix_time(h->io),
                                       k->c->expect_peer ? &k->c->peer : NULL, &k->pk, &id);
    if (rv == 0)
        k->verified = 1;
    return rv;
}

static void on_established(void *user, flare__quic_conn *qc)
{
    qlink *k = flare__quic_conn_user(qc);
    if (k && k->c && k->verified)
        k->ready_pending = 1;
}

static void on_closed(void *user, flare__quic_conn *qc, int err, uint64_t code)
{
    qlink *k = flare__quic_conn_user(qc);
    if (!k)
        return;
    k->qc = NULL;
    if (k->mux) /* its streams are freed with qc */
        flare__quic_mux_conn_lost(k->mux, err);
    if (!k->c) { /* the host let go already */
        if (k->mux)
            flare__quic_mux_ops.free(k->mux);
        link_free(((qsock *)user)->tr, k);
        return;
    }
    k->lost_pending = 1;
    k->lost_err = err;
}

static qlink *link_of_stream(flare__quic_stream *st)
{
    return flare__quic_conn_user(flare__quic_stream_conn(st));
}

static void mark_input(flare__quic_stream *st)
{
    qlink *k = link_of_stream(st);
    if (k)
        k->input_pending = 1;
}

static int on_stream_open(void *user, flare__quic_conn *qc, flare__quic_stream *st)
{
    qlink *k = flare__quic_conn_user(qc);
    if (!k || !k->mux || !k->c)
        return 1;
    k->input_pending = 1;
    return flare__quic_mux_stream_open(k->mux, st) == 0 ? 0 : 1;
}

static void on_stream_data(void *user, flare__quic_stream *st, const uint8_t *data, size_t len,
                           int fin)
{
    flare__quic_mux_stream_data(st, data, len, fin);
    mark_input(st);
}

static void on_stream_reset(void *user, flare__quic_stream *st, uint64_t code, int stop)
{
    flare__quic_mux_stream_reset(st);
    mark_input(st);
}

static void on_stream_writable(void *user, flare__quic_stream *st)
{
    flare__quic_mux_stream_writable(st);
    mark_input(st);
}

static void on_stream_closed(void *user, flare__quic_stream *st)
{
    mark_input(st);
    flare__quic_mux_stream_closed(st);
}

/* ---- sockets ------------------------------------------------------------------------- */

/* Something the host must hear about from the loop. */
static int sock_pending(const qsock *s)
{
    for (const qlink *k = s->tr->links; k; k = k->next)
        if (k->sock == s && (k->lost_pending || k->ready_pending || k->input_pending))
            return 1;
    return 0;
}

static void sock_arm(qsock *s)
{
    flare_io *io = s->tr->h->io;
    flare_tstamp at = flare__quic_ep_dirty(s->ep) || sock_pending(s) ? now_of(s->tr)
                                                                     : flare__quic_ep_expiry(s->ep);
    if (at == FLARE_TSTAMP_NEVER)
        io->ops->timer_stop(s->timer);
    else
        io->ops->timer_start(s->timer, at);
}

static void sock_unhold(qsock *s)
{
    if (s->held) {
        s->held = 0;
        flare__quic_ep_defer_flush(s->ep, 0);
    }
}

static void sock_on_timer(flare_io_timer *tm, void *user)
{
    qsock *s = user;
    sock_unhold(s); /* a read batch whose end the driver did not report */
    sock_cork(s, 1);
    s->busy++;
    flare__quic_ep_timeout(s->ep, now_of(s->tr));
    s->busy--;
    sock_settle(s);
    sock_cork(s, 0);
    sock_arm(s);
}

/* A datagram, or (data NULL) the end of a batch of them from a batching
 * driver: then one flush answers the whole batch. */
static void sock_on_recv(flare_io_udp *u, const flare_ipaddr *from, const uint8_t *data, size_t len,
                         void *user)
{
    qsock *s = user;
    /* STUN and DTLS share the port (RFC 7983): theirs go to other
     * consumers, the rest (greased QUIC short headers too) to QUIC. */
    if (len && data[0] < FLARE__UDP_FIRST_QUIC_LO &&
        flare__udp_mux_input(s->tr->h, u, &s->local, from, data, len))
        return;
    sock_cork(s, 1);
    s->busy++;
    if (!data) {
        sock_unhold(s);
        flare__quic_ep_flush(s->ep, now_of(s->tr));
    } else {
        if (!s->held && s->tr->h->io->ops->udp_cork) {
            s->held = 1;
            flare__quic_ep_defer_flush(s->ep, 1);
        }
        flare__quic_ep_input(s->ep, from, data, len, now_of(s->tr));
    }
    s->busy--;
    sock_settle(s);
    sock_cork(s, 0);
    sock_arm(s);
    if (s->probe_cb)
        s->probe_cb(s->probe_user, s, from);
}

static void sock_free(quic_tr *t, qsock *s)
{
    flare_io *io = t->h->io;
    for (qsock **pp = &t->socks; *pp; pp = &(*pp)->next) {
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    }
    for (qlink *k = t->links, *next; k; k = next) {
        next = k->next;
        if (k->sock != s)
            continue;
        if (k->mux)
            flare__quic_mux_ops.free(k->mux);
        if (k->c) {
            flare_conn *c = k->c;
            k->c = NULL;
            link_free(t, k);
            flare__conn_transport_lost(c, FLARE_ERR_CLOSED);
            next = t->links;
        } else {
            link_free(t, k);
        }
    }
    flare__quic_ep_del(s->ep);
    if (s->udp)
        flare__udp_mux_sock_remove(t->h, s->udp);
    if (s->timer)
        io->ops->timer_del(s->timer);
    if (s->udp)
        io->ops->udp_close(s->udp);
    flare__free(t->h->mem, s);
}

/* Our certificate, made when the first socket opens: most hosts never use
 * QUIC, and a certificate costs an ECDSA key, a signature and GnuTLS heap. */
static int ensure_cred(quic_tr *t)
{
    if (t->cred)
        return 0;
    flare_host *h = t->h;
    return flare__quic_tls_cred(&h->key, h->io->ops->unix_time(h->io), flare__tr_seed_rng(&t->seed),
                                &t->cred);
}

static int sock_new(quic_tr *t, const flare_ipaddr *local, unsigned flags, qsock **out)
{
    flare_host *h = t->h;
    flare_io *io = h->io;
    int rv = ensure_cred(t);
    if (rv)
        return rv;
    qsock *s = flare__calloc(h->mem, 1, sizeof(*s));
    if (!s)
        return FLARE_ERR_NOMEM;
    s->tr = t;
    s->next = t->socks;
    t->socks = s;
    rv = io->ops->udp_bind(io, local, flags | FLARE_IO_UDP_BATCH, sock_on_recv, s, &s->udp);
    if (rv == 0)
        rv = io->ops->udp_addr(s->udp, &s->local);
    if (rv == 0)
        rv = io->ops->timer_new(io, sock_on_timer, s, &s->timer);
    if (rv == 0) {
        flare__quic_config cfg;
        memset(&cfg, 0, sizeof(cfg));
        flare__quic_settings_default(&cfg.settings);
        cfg.settings.handshake_timeout = h->cfg.handshake_timeout;
        cfg.cbs = (flare__quic_cbs){
            .send = on_send,
            .accept = on_accept,
            .verify = on_verify,
            .established = on_established,
            .closed = on_closed,
            .stream_open = on_stream_open,
            .stream_data = on_stream_data,
            .stream_reset = on_stream_reset,
            .stream_writable = on_stream_writable,
            .stream_closed = on_stream_closed,
        };
        cfg.user = s;
        cfg.cred = t->cred;
        cfg.rng = h->rng;
        cfg.mem = h->mem;
        cfg.local = s->local;
        cfg.reset_secret = t->reset_secret;
        rv = flare__quic_ep_new(&cfg, &s->ep);
    }
    if (rv) {
        sock_free(t, s);
        return rv;
    }
    flare__udp_mux_sock_add(h, s->udp, &s->local, 0);
    *out = s;
    return 0;
}

/* ---- transport ----------------------------------------------------------------------- */

static int quic_init(flare_host *h, void **state)
{
    quic_tr *t = flare__calloc(h->mem, 1, sizeof(*t));
    if (!t)
        return FLARE_ERR_NOMEM;
    t->h = h;
    int rv = flare__quic_reset_secret(&h->key, t->reset_secret);
    if (rv) {
        flare__free(h->mem, t);
        return rv;
    }
    flare__tr_seed_draw(&t->seed, h->rng, FLARE__TLS_CERT_RNG_LEN);
    *state = t;
    return 0;
}

static void quic_free(flare_host *h, void *state)
{
    quic_tr *t = state;
    if (!t)
        return;
    while (t->socks)
        sock_free(t, t->socks);
    while (t->links)
        link_free(t, t->links);
    if (t->cred)
        gnutls_certificate_free_credentials(t->cred);
    flare__free(h->mem, t);
}

/* /ip4|ip6/ADDR/udp/PORT/quic-v1, then nothing or /p2p/ID. */
static int quic_match(const flare_multiaddr *ma)
{
    flare_ipaddr ip;
    int proto;
    if (flare_multiaddr_to_ipaddr(ma, &ip, &proto) || proto != FLARE_MA_UDP)
        return 0;
    size_t off = 0;
    flare_ma_component mc;
    int n = 0;
    while (flare_multiaddr_next(ma, &off, &mc) == 1) {
        if (mc.code == FLARE_MA_IP6ZONE)
            continue;
        n++;
        if (n == 3 && mc.code != FLARE_MA_QUIC_V1)
            return 0;
        if (n > 3 && !(n == 4 && mc.code == FLARE_MA_P2P))
            return 0;
    }
    return n >= 3;
}

static int quic_listen(flare_host *h, void *state, const flare_multiaddr *ma, flare__listener *l)
{
    quic_tr *t = state;
    flare_ipaddr ip;
    int rv = flare_multiaddr_to_ipaddr(ma, &ip, NULL);
    if (rv)
        return rv;
    qsock *s;
    rv = sock_new(t, &ip, FLARE_IO_REUSE, &s);
    if (rv)
        return rv;
    s->l = l;
    l->handle = s;
    flare__udp_mux_sock_add(h, s->udp, &s->local, 1);
    return flare_multiaddr_from_ipaddr(&l->ma, &s->local, FLARE_MA_UDP);
}

static void quic_close_listener(flare_host *h, void *state, flare__listener *l)
{
    qsock *s = l->handle;
    s->l = NULL; /* no new connections; its own go on until the transport ends */
    flare__udp_mux_sock_add(h, s->udp, &s->local, 0);
}

/* The socket a dial to remote leaves from: a probe socket pinned to it, a
 * listener's, else a dial-only one. */
static int dial_sock(quic_tr *t, const flare_ipaddr *remote, int reuse, qsock **out)
{
    int family = remote->family;
    for (qsock *s = t->socks; s; s = s->next) {
        if (s->has_pin && flare_ipaddr_equal(&s->pin, remote)) {
            s->has_pin = 0;
            *out = s;
            return 0;
        }
    }
    for (qsock *s = t->socks; s; s = s->next) {
        if (s->probe)
            continue;
        if (s->local.family == family && (s->l ? reuse : !reuse)) {
            *out = s;
            return 0;
        }
    }
    for (qsock *s = t->socks; s; s = s->next) {
        if (s->local.family == family && !s->l && !s->probe) {
            *out = s;
            return 0;
        }
    }
    flare_ipaddr any;
    memset(&any, 0, sizeof(any));
    any.family = (uint8_t)family;
    return sock_new(t, &any, 0, out);
}

static int quic_dial(flare_host *h, void *state, flare_conn *c, const flare_multiaddr *ma,
                     const flare_dial_opts *o)
{
    quic_tr *t = state;
    flare_ipaddr remote;
    int rv = flare_multiaddr_to_ipaddr(ma, &remote, NULL);
    if (rv)
        return rv;
    qsock *s;
    rv = dial_sock(t, &remote, h->cfg.reuse_port && !o->no_reuse, &s);
    if (rv)
        return rv;
    qlink *k = link_new(s, NULL, c);
    if (!k)
        return FLARE_ERR_NOMEM;
    rv = flare__quic_connect(s->ep, &remote, k, now_of(t), &k->qc);
    if (rv) {
        link_free(t, k);
        return rv;
    }
    flare__conn_attach(c, &quic_ops, k);
    c->remote_ip = remote;
    flare_multiaddr a;
    if (flare_multiaddr_from_ipaddr(&a, &remote, FLARE_MA_UDP) == 0)
        (void)flare__conn_set_remote_ma(c, &a); /* fits inline: cannot fail */
    c->local_ip = s->local;
    if (flare_multiaddr_from_ipaddr(&a, &s->local, FLARE_MA_UDP) == 0)
        (void)flare__conn_set_local_ma(c, &a);
    sock_arm(s); /* the Initial goes out from the loop */
    return 0;
}

/* The host let go of c: close the QUIC connection (CONNECTION_CLOSE). */
static void quic_close(flare_conn *c, void *tr, int abort)
{
    qlink *k = tr;
    k->c = NULL;
    if (k->mux) {
        flare__quic_mux_ops.free(k->mux);
        k->mux = NULL;
    }
    if (!k->qc) {
        link_free(k->sock->tr, k);
        return;
    }
    flare__quic_conn_close(k->qc, abort ? 1 : 0);
    sock_arm(k->sock);
}

static const flare__transport_ops quic_ops = {
    .name = "quic-v1",
    .close = quic_close,
};

const flare__transport flare__tr_quic = {
    .name = "quic-v1",
    .kind = FLARE__TR_SESSION,
    .init = quic_init,
    .free = quic_free,
    .can_dial = quic_match,
    .can_listen = quic_match,
    .listen = quic_listen,
    .close_listener = quic_close_listener,
    .dial = quic_dial,
};

int flare__quic_punch(flare_host *h, const flare_ipaddr *to, const uint8_t *data, size_t len)
{
    quic_tr *t = flare__tr_state(h, &flare__tr_quic);
    if (!t)
        return FLARE_ERR_NOT_FOUND;
    for (qsock *s = t->socks; s; s = s->next)
        if (s->l && s->local.family == to->family)
            return h->io->ops->udp_send(s->udp, to, data, len);
    return FLARE_ERR_NOT_FOUND;
}

int flare__quic_probe_open(flare_host *h, int family, flare__quic_probe_cb cb, void *user,
                           void **sock)
{
    quic_tr *t = flare__tr_state(h, &flare__tr_quic);
    if (!t)
        return FLARE_ERR_NOT_FOUND;
    flare_ipaddr any;
    memset(&any, 0, sizeof(any));
    any.family = (uint8_t)family;
    qsock *s;
    int rv = sock_new(t, &any, 0, &s);
    if (rv)
        return rv;
    s->probe = 1;
    s->probe_cb = cb;
    s->probe_user = user;
    *sock = s;
    return 0;
}

int flare__quic_probe_send(flare_host *h, void *sock, const flare_ipaddr *to, const uint8_t *data,
                           size_t len)
{
    qsock *s = sock;
    return h->io->ops->udp_send(s->udp, to, data, len);
}

void flare__quic_probe_pin(void *sock, const flare_ipaddr *to)
{
    qsock *s = sock;
    s->pin = *to;
    s->has_pin = 1;
}

void flare__quic_probe_close(flare_host *h, void *sock)
{
    quic_tr *t = flare__tr_state(h, &flare__tr_quic);
    qsock *s = sock;
    s->probe_cb = NULL;
    s->has_pin = 0;
    for (qlink *k = t ? t->links : NULL; k; k = k->next)
        if (k->sock == s)
            return; /* it carries a connection: it goes with the transport */
    if (t && !s->busy)
        sock_free(t, s);
}

int flare__quic_cred_made(flare_host *h)
{
    quic_tr *t = flare__tr_state(h, &flare__tr_quic);
    return t && t->cred;
}
