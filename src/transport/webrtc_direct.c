/*
 * WebRTC-direct (/ip4|ip6/ADDR/udp/PORT/webrtc-direct/certhash/HASH) as a
 * host transport of the session kind (transport.h), after libp2p/specs
 * webrtc/webrtc-direct.md: no signalling; the listener is ICE-lite, the
 * DTLS server and the Noise initiator (pc.h), and its certificate is the
 * one the /certhash names.
 *
 * ICE is reduced to what the spec needs. The dialer picks a random ufrag
 * and uses it as both ufrags and as the password; it sends a Binding
 * request (USERNAME "ufrag:ufrag", integrity keyed with the ufrag) and
 * starts DTLS as client once the answer's integrity checks. The listener
 * has no ufrag of its own: it takes the first half of the USERNAME, checks
 * the integrity with it, answers (XOR-MAPPED-ADDRESS, integrity,
 * FINGERPRINT), and keeps one peer connection per remote address. DTLS
 * from an address that passed no check, and anything that is neither STUN
 * nor DTLS (RFC 7983), is dropped.
 *
 * Each listen address has a UDP socket of its own; each dial has one too
 * (an ephemeral port). Each link has a timer at the peer connection's
 * expiry (DTLS replays, the SCTP tick, the set-up deadline) and the STUN
 * transaction's.
 *
 * The certificate is the host's if it was given one
 * (flare_host_settings.webrtc_cert_pem, kept beside the node's key by the
 * CLI, so the /certhash stays the same across restarts), imported at host
 * creation; else one is made at the first listen, dial or export (most
 * hosts never use this transport).
 */
#include <string.h>

#include "core/mem.h"
#include "flare/stun.h"
#include "transport/transport.h"
#include "transport/udp_mux.h"
#include "transport/webrtc/link.h"

#define WD_MAX_LINKS 64 /* inbound links per listener (handshaking or up) */
#define WD_UFRAG_MAX 256
#define WD_UFRAG_PFX "libp2p+webrtc+v1/"
#define WD_DGRAM     FLARE__DTLS_MAX_DGRAM
#define WD_PRIORITY  0x7e0000ffu

typedef struct wd_tr wd_tr;
typedef struct wsock wsock;

typedef struct wlink {
    flare__webrtc_link l; /* first: its ops get the wlink back by a cast; l.pc is NULL until
                             the STUN check passed (dialer) */
    struct wlink *next;
    wsock *sock;
    flare_ipaddr peer;
    flare_stun_txn txn; /* the dialer's check */
    char ufrag[WD_UFRAG_MAX + 1];
    uint8_t fp[FLARE__DTLS_FP_LEN]; /* the dialer's expected fingerprint */
    int outbound;
} wlink;

struct wsock {
    wsock *next;
    wd_tr *tr;
    flare_io_udp *udp;
    flare_ipaddr local;
    flare__listener *l; /* NULL: a dial's own socket */
    size_t nlinks;
    int shared; /* QUIC's socket, reached through udp_mux: not ours to close */
};

struct wd_tr {
    flare_host *h;
    flare__dtls_cert *cert; /* NULL until the first use (ensure_cert) */
    flare__tr_seed seed;    /* its randomness */
    wsock *socks;
    wlink *links;
};

const flare__transport flare__tr_webrtc_direct;
static const flare__transport_ops wd_ops;

static flare_tstamp now_of(const wd_tr *t)
{
    return flare_io_now(t->h->io);
}

/* ---- links ------------------------------------------------------------------------- */

static void sock_free(wd_tr *t, wsock *s);

static void link_free(flare__webrtc_link *l)
{
    wlink *k = (wlink *)l;
    wsock *s = k->sock;
    wd_tr *t = s->tr;
    for (wlink **pp = &t->links; *pp; pp = &(*pp)->next) {
        if (*pp == k) {
            *pp = k->next;
            break;
        }
    }
    flare__webrtc_link_deinit(l);
    s->nlinks--;
    flare__free(t->h->mem, k);
    if (!s->l && s->nlinks == 0)
        sock_free(t, s); /* a dial's own socket */
}

static void link_flush(flare__webrtc_link *l)
{
    wlink *k = (wlink *)l;
    uint8_t buf[WD_DGRAM];
    if (l->pc)
        flare__webrtc_link_send(l, k->sock->udp, &k->peer, buf, sizeof(buf));
}

/* pc's, or before it the dialer's STUN check's. */
static flare_tstamp link_expiry(const flare__webrtc_link *l)
{
    const wlink *k = (const wlink *)l;
    if (l->pc)
        return flare__webrtc_pc_expiry(l->pc);
    return k->outbound ? flare_stun_txn_expiry(&k->txn) : FLARE_TSTAMP_NEVER;
}

static void link_timer(flare__webrtc_link *l);

static const flare__webrtc_link_ops link_ops = {
    .flush = link_flush,
    .expiry = link_expiry,
    .timer = link_timer,
    .free = link_free,
    .security = "noise",
};

/* The link failed or ended by itself: tell the host, free it. */
static void link_lost(wlink *k, int err)
{
    flare__webrtc_link_lost(&k->l, err);
}

/* After an input or a timer: send, hand the session over, report news. */
static void link_settle(wlink *k)
{
    link_flush(&k->l);
    if (!k->l.pc) {
        flare__webrtc_link_arm(&k->l);
        return;
    }
    k->l.busy++;
    int err = flare__webrtc_link_report(&k->l);
    flare__webrtc_link_settled(&k->l, err);
}

static int link_start_pc(wlink *k, int is_client)
{
    wd_tr *t = k->sock->tr;
    flare_conn *c = k->l.c;
    flare__webrtc_pc_cfg cfg = {
        .is_dtls_client = is_client,
        .remote_fp = is_client ? k->fp : NULL,
        .expected_remote = c && c->expect_peer ? &c->peer : NULL,
    };
    flare__webrtc_link_pc_cfg(&k->l, t->cert, &cfg);
    return flare__webrtc_pc_new(&k->l.pc, &cfg, now_of(t));
}

/* Before pc, the dialer's STUN check: resent, or given up. */
static void link_timer(flare__webrtc_link *l)
{
    wlink *k = (wlink *)l;
    wd_tr *t = k->sock->tr;
    if (!l->pc && k->outbound) {
        uint8_t buf[WD_DGRAM];
        int n = flare_stun_txn_poll_send(&k->txn, now_of(t), buf, sizeof(buf));
        if (n < 0) {
            link_lost(k, FLARE_ERR_TIMEOUT);
            return;
        }
        if (n > 0)
            t->h->io->ops->udp_send(k->sock->udp, &k->peer, buf, (size_t)n);
    }
    link_settle(k);
}

static wlink *link_new(wsock *s, const flare_ipaddr *peer, flare_conn *c)
{
    wd_tr *t = s->tr;
    wlink *k = flare__webrtc_link_new(sizeof(*k), &link_ops, t->h, c);
    if (!k)
        return NULL;
    k->sock = s;
    k->peer = *peer;
    k->next = t->links;
    t->links = k;
    s->nlinks++;
    return k;
}

static wlink *link_find(wsock *s, const flare_ipaddr *from)
{
    for (wlink *k = s->tr->links; k; k = k->next)
        if (k->sock == s && flare_ipaddr_equal(&k->peer, from))
            return k;
    return NULL;
}

/* /ip4|ip6/ADDR/udp/PORT/webrtc-direct. */
static int wd_addr(flare_multiaddr *ma, const flare_ipaddr *ip)
{
    int rv = flare_multiaddr_from_ipaddr(ma, ip, FLARE_MA_UDP);
    if (rv == 0 && flare_multiaddr_has(ma, FLARE_MA_QUIC_V1))
        rv = flare_multiaddr_decapsulate(ma, FLARE_MA_QUIC_V1);
    if (rv == 0)
        rv = flare_multiaddr_push(ma, FLARE_MA_WEBRTC_DIRECT, NULL, 0);
    return rv;
}

/* ---- STUN -------------------------------------------------------------------------- */

/* The local ufrag of a check: USERNAME's part before ':'. */
static int stun_ufrag(const flare_stun_msg *m, char *out)
{
    const flare_stun_attr *a = flare_stun_find(m, FLARE_STUN_ATTR_USERNAME);
    if (!a)
        return FLARE_ERR_NOT_FOUND;
    const char *u = (const char *)m->raw + a->off;
    const char *colon = memchr(u, ':', a->len);
    size_t n = colon ? (size_t)(colon - u) : 0;
    if (n == 0 || n > WD_UFRAG_MAX || memchr(u, 0, n))
        return FLARE_ERR_MALFORMED;
    memcpy(out, u, n);
    out[n] = 0;
    return 0;
}

static int stun_auth(const flare_stun_msg *m, const char *key)
{
    size_t kl = strlen(key);
    if (m->integrity_off)
        return flare_stun_check_integrity(m, (const uint8_t *)key, kl);
    return flare_stun_check_integrity_sha256(m, (const uint8_t *)key, kl);
}

/* A new inbound link for a peer that passed a check. */
static wlink *accept_link(wsock *s, const flare_ipaddr *from)
{
    flare_host *h = s->tr->h;
    flare_multiaddr rma;
    if (s->nlinks >= WD_MAX_LINKS || wd_addr(&rma, from) != 0)
        return NULL;
    flare_conn *c = flare__conn_accept(h, &flare__tr_webrtc_direct, from, &rma);
    if (!c)
        return NULL;
    wlink *k = link_new(s, from, c);
    if (!k || link_start_pc(k, 0) != 0) {
        if (k) {
            k->l.c = NULL;
            link_free(&k->l);
        }
        flare__conn_fail(c, FLARE_ERR_NOMEM);
        return NULL;
    }
    flare__conn_attach(c, &wd_ops, k);
    c->remote_ip = *from;
    (void)flare__conn_set_remote_ma(c, &rma); /* NOMEM: empty */
    c->local_ip = s->local;
    (void)flare__conn_set_local_ma(c, &s->l->ma);
    flare__conn_accepted(c);
    return k;
}

/* The listener's side: answer a check, creating the link on the first.
 * Returns 1 if the check was ours (authenticated). */
static int stun_request(wsock *s, const flare_stun_msg *m, const flare_ipaddr *from)
{
    wd_tr *t = s->tr;
    char ufrag[WD_UFRAG_MAX + 1];
    if (m->method != FLARE_STUN_BINDING || stun_ufrag(m, ufrag) != 0 || stun_auth(m, ufrag) != 0)
        return 0;
    wlink *k = link_find(s, from);
    if (k && strcmp(k->ufrag, ufrag) != 0)
        return 1; /* another session's credentials from this address */
    if (!k) {
        if (!s->l || !(k = accept_link(s, from)))
            return 1;
        memcpy(k->ufrag, ufrag, strlen(ufrag) + 1);
    }
    flare_stun_builder b;
    uint8_t buf[WD_DGRAM];
    flare_stun_build_init(&b, buf, sizeof(buf), FLARE_STUN_BINDING, FLARE_STUN_SUCCESS, m->txid);
    flare_stun_add_addr(&b, FLARE_STUN_ATTR_XOR_MAPPED_ADDRESS, from);
    flare_stun_add_integrity(&b, (const uint8_t *)ufrag, strlen(ufrag));
    flare_stun_add_fingerprint(&b);
    int n = flare_stun_build_finish(&b);
    if (n > 0)
        t->h->io->ops->udp_send(s->udp, from, buf, (size_t)n);
    link_settle(k);
    return 1;
}

/* The dialer's side: our check was answered; DTLS may start. */
static void stun_response(wlink *k, const flare_stun_msg *m)
{
    if (k->l.pc || !flare_stun_txn_match(&k->txn, m))
        return;
    if (m->cls != FLARE_STUN_SUCCESS || stun_auth(m, k->ufrag) != 0) {
        link_lost(k, FLARE_ERR_PROTO);
        return;
    }
    int rv = link_start_pc(k, 1);
    if (rv) {
        link_lost(k, rv);
        return;
    }
    link_settle(k);
}

/* ---- sockets ----------------------------------------------------------------------- */

/* A datagram on s: returns 1 if it was WebRTC-direct's (an authenticated
 * check, the answer to ours, DTLS of a link), else 0 (on a shared socket the
 * STUN server and QUIC see it next). */
static int sock_input(wsock *s, const flare_ipaddr *from, const uint8_t *data, size_t len)
{
    if (len == 0)
        return 0;
    if (data[0] <= FLARE__UDP_FIRST_STUN_HI) {
        flare_stun_msg m;
        if (!flare_stun_is_stun(data, len) || flare_stun_parse(&m, data, len) != 0)
            return 0;
        if (m.cls == FLARE_STUN_REQUEST)
            return stun_request(s, &m, from);
        wlink *k = link_find(s, from);
        if (!k || !k->outbound || m.cls == FLARE_STUN_INDICATION)
            return 0;
        stun_response(k, &m);
        return 1;
    }
    if (data[0] < FLARE__UDP_FIRST_DTLS_LO || data[0] > FLARE__UDP_FIRST_DTLS_HI)
        return 0;
    wlink *k = link_find(s, from);
    if (!k || !k->l.pc)
        return 0;
    (void)flare__webrtc_pc_input(k->l.pc, data, len, now_of(s->tr));
    link_settle(k);
    return 1;
}

static void sock_on_recv(flare_io_udp *u, const flare_ipaddr *from, const uint8_t *data, size_t len,
                         void *user)
{
    (void)sock_input(user, from, data, len);
}

/* A datagram on a socket of QUIC's (udp_mux): ours if we listen there. */
static int on_mux(flare_host *h, void *user, flare_io_udp *u, const flare_ipaddr *local,
                  const flare_ipaddr *from, const uint8_t *data, size_t len)
{
    wd_tr *t = user;
    for (wsock *s = t->socks; s; s = s->next)
        if (s->shared && s->udp == u)
            return sock_input(s, from, data, len);
    return 0;
}

static void sock_free(wd_tr *t, wsock *s)
{
    for (wsock **pp = &t->socks; *pp; pp = &(*pp)->next) {
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    }
    if (s->udp && !s->shared)
        t->h->io->ops->udp_close(s->udp);
    flare__free(t->h->mem, s);
}

static int sock_new(wd_tr *t, const flare_ipaddr *local, unsigned flags, wsock **out)
{
    flare_io *io = t->h->io;
    wsock *s = flare__calloc(t->h->mem, 1, sizeof(*s));
    if (!s)
        return FLARE_ERR_NOMEM;
    s->tr = t;
    s->next = t->socks;
    t->socks = s;
    int rv = io->ops->udp_bind(io, local, flags, sock_on_recv, s, &s->udp);
    if (rv == 0)
        rv = io->ops->udp_addr(s->udp, &s->local);
    if (rv) {
        sock_free(t, s);
        return rv;
    }
    *out = s;
    return 0;
}

/* ---- transport --------------------------------------------------------------------- */

static int ensure_cert(wd_tr *t)
{
    return t->cert ? 0 : flare__webrtc_cert_new(t->h, flare__tr_seed_rng(&t->seed), &t->cert);
}

static int wd_init(flare_host *h, void **state)
{
    wd_tr *t = flare__calloc(h->mem, 1, sizeof(*t));
    if (!t)
        return FLARE_ERR_NOMEM;
    t->h = h;
    int rv = 0;
    if (h->cfg.webrtc_cert_pem) /* the string is only ours during host creation */
        rv = flare__dtls_cert_import(&t->cert, (const uint8_t *)h->cfg.webrtc_cert_pem,
                                     strlen(h->cfg.webrtc_cert_pem));
    else
        flare__tr_seed_draw(&t->seed, h->rng, FLARE__DTLS_CERT_RNG_LEN);
    if (rv == 0 &&
        (rv = flare__udp_mux_add(h, FLARE__UDP_FIRST_STUN_LO, FLARE__UDP_FIRST_DTLS_HI, on_mux, t)))
        flare__dtls_cert_del(t->cert);
    if (rv) {
        flare__free(h->mem, t);
        return rv;
    }
    *state = t;
    return 0;
}

static void wd_free(flare_host *h, void *state)
{
    wd_tr *t = state;
    if (!t)
        return;
    while (t->links) {
        wlink *k = t->links;
        k->l.c = NULL;
        link_free(&k->l);
    }
    while (t->socks)
        sock_free(t, t->socks);
    flare__udp_mux_remove(h, on_mux, t);
    flare__dtls_cert_del(t->cert);
    flare__free(h->mem, t);
}

/* /ip4|ip6/ADDR/udp/PORT/webrtc-direct, then /certhash/H (dialing: one
 * SHA-256 hash required) and optionally /p2p/ID. */
static int wd_match(const flare_multiaddr *ma, int dial)
{
    flare_ipaddr ip;
    int proto;
    if (flare_multiaddr_to_ipaddr(ma, &ip, &proto) || proto != FLARE_MA_UDP)
        return 0;
    size_t off = 0;
    flare_ma_component mc;
    int n = 0, hashes = 0;
    while (flare_multiaddr_next(ma, &off, &mc) == 1) {
        if (mc.code == FLARE_MA_IP6ZONE)
            continue;
        n++;
        if (n <= 2)
            continue;
        if (n == 3 && mc.code != FLARE_MA_WEBRTC_DIRECT)
            return 0;
        if (n > 3 && mc.code == FLARE_MA_CERTHASH && !hashes)
            hashes++;
        else if (n > 3 && !(mc.code == FLARE_MA_P2P && off == ma->len))
            return 0;
    }
    return n >= 3 && (!dial || hashes == 1);
}

static int wd_can_dial(const flare_multiaddr *ma)
{
    return wd_match(ma, 1);
}

static int wd_can_listen(const flare_multiaddr *ma)
{
    return wd_match(ma, 0);
}

/* The announced address: the bound one with our certificate's hash. */
static int listen_ma(wd_tr *t, const flare_ipaddr *ip, flare_multiaddr *out)
{
    const uint8_t *fp = flare__dtls_cert_fingerprint(t->cert);
    uint8_t mh[2 + FLARE__DTLS_FP_LEN] = {0x12, FLARE__DTLS_FP_LEN};
    memcpy(mh + 2, fp, FLARE__DTLS_FP_LEN);
    int rv = wd_addr(out, ip);
    if (rv == 0)
        rv = flare_multiaddr_push(out, FLARE_MA_CERTHASH, mh, sizeof(mh));
    return rv;
}

/* A QUIC listener bound to ip (a given port) already: WebRTC-direct shares
 * its port (RFC 7983 demultiplexing in udp_mux). */
static int share_sock(wd_tr *t, const flare_ipaddr *ip, wsock **out)
{
    flare__udp_sock_info info[16];
    size_t n = ip->port ? flare__udp_mux_socks(t->h, info, 16) : 0;
    for (size_t i = 0; i < n; i++) {
        if (!info[i].listening || !flare_ipaddr_equal(&info[i].local, ip))
            continue;
        for (wsock *s = t->socks; s; s = s->next)
            if (s->udp == info[i].u)
                return FLARE_ERR_ADDR_IN_USE; /* a webrtc-direct listener there already */
        wsock *s = flare__calloc(t->h->mem, 1, sizeof(*s));
        if (!s)
            return FLARE_ERR_NOMEM;
        s->tr = t;
        s->udp = info[i].u;
        s->local = info[i].local;
        s->shared = 1;
        s->next = t->socks;
        t->socks = s;
        *out = s;
        return 0;
    }
    return FLARE_ERR_NOT_FOUND;
}

static int wd_listen(flare_host *h, void *state, const flare_multiaddr *ma, flare__listener *l)
{
    wd_tr *t = state;
    flare_ipaddr ip;
    int rv = flare_multiaddr_to_ipaddr(ma, &ip, NULL);
    if (rv == 0)
        rv = ensure_cert(t);
    if (rv)
        return rv;
    wsock *s;
    rv = share_sock(t, &ip, &s);
    if (rv == FLARE_ERR_NOT_FOUND)
        rv = sock_new(t, &ip, FLARE_IO_REUSE, &s);
    if (rv)
        return rv;
    s->l = l;
    l->handle = s;
    rv = listen_ma(t, &s->local, &l->ma);
    if (rv) {
        sock_free(t, s);
        return rv;
    }
    return 0;
}

static void wd_close_listener(flare_host *h, void *state, flare__listener *l)
{
    wsock *s = l->handle;
    s->l = NULL; /* its links go on until they end; no new ones */
    if (s->nlinks == 0)
        sock_free(state, s);
}

static int dial_fp(const flare_multiaddr *ma, uint8_t fp[FLARE__DTLS_FP_LEN])
{
    flare_ma_component mc;
    if (flare_multiaddr_find(ma, FLARE_MA_CERTHASH, &mc) != 0 ||
        mc.value_len != 2 + FLARE__DTLS_FP_LEN || mc.value[0] != 0x12 ||
        mc.value[1] != FLARE__DTLS_FP_LEN)
        return FLARE_ERR_UNSUPPORTED;
    memcpy(fp, mc.value + 2, FLARE__DTLS_FP_LEN);
    return 0;
}

static void random_ufrag(flare_rng rng, char *out)
{
    static const char alpha[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    uint8_t r[24];
    rng.fn(r, sizeof(r), rng.user);
    size_t n = strlen(WD_UFRAG_PFX);
    memcpy(out, WD_UFRAG_PFX, n);
    for (size_t i = 0; i < sizeof(r); i++)
        out[n++] = alpha[r[i] % (sizeof(alpha) - 1)];
    out[n] = 0;
}

/* The check: USERNAME "ufrag:ufrag", controlling, nominating. */
static int start_check(wlink *k, flare_rng rng, flare_tstamp now)
{
    uint8_t req[FLARE_STUN_TXN_MAX_REQ], txid[FLARE_STUN_TXID_LEN], tie[8];
    char user[2 * WD_UFRAG_MAX + 2];
    rng.fn(txid, sizeof(txid), rng.user);
    rng.fn(tie, sizeof(tie), rng.user);
    size_t ul = strlen(k->ufrag);
    memcpy(user, k->ufrag, ul);
    user[ul] = ':';
    memcpy(user + ul + 1, k->ufrag, ul);
    uint64_t tb = 0;
    for (int i = 0; i < 8; i++)
        tb = tb << 8 | tie[i];
    flare_stun_builder b;
    flare_stun_build_init(&b, req, sizeof(req), FLARE_STUN_BINDING, FLARE_STUN_REQUEST, txid);
    flare_stun_add_attr(&b, FLARE_STUN_ATTR_USERNAME, user, 2 * ul + 1);
    flare_stun_add_u32(&b, FLARE_STUN_ATTR_PRIORITY, WD_PRIORITY);
    flare_stun_add_u64(&b, FLARE_STUN_ATTR_ICE_CONTROLLING, tb);
    flare_stun_add_attr(&b, FLARE_STUN_ATTR_USE_CANDIDATE, NULL, 0);
    flare_stun_add_integrity(&b, (const uint8_t *)k->ufrag, ul);
    flare_stun_add_fingerprint(&b);
    int n = flare_stun_build_finish(&b);
    if (n < 0)
        return n;
    flare_stun_txn_settings ts;
    flare_stun_txn_settings_default(&ts);
    ts.rto = 250 * FLARE_NS_PER_MS;
    return flare_stun_txn_start(&k->txn, &ts, req, (size_t)n, now);
}

static int wd_dial(flare_host *h, void *state, flare_conn *c, const flare_multiaddr *ma,
                   const flare_dial_opts *o)
{
    wd_tr *t = state;
    flare_ipaddr remote;
    uint8_t fp[FLARE__DTLS_FP_LEN];
    int rv = flare_multiaddr_to_ipaddr(ma, &remote, NULL);
    if (rv == 0)
        rv = dial_fp(ma, fp);
    if (rv == 0)
        rv = ensure_cert(t);
    if (rv)
        return rv;
    flare_ipaddr any;
    memset(&any, 0, sizeof(any));
    any.family = remote.family;
    wsock *s;
    if ((rv = sock_new(t, &any, 0, &s)) != 0)
        return rv;
    wlink *k = link_new(s, &remote, c);
    if (!k) {
        sock_free(t, s);
        return FLARE_ERR_NOMEM;
    }
    k->outbound = 1;
    memcpy(k->fp, fp, sizeof(fp));
    random_ufrag(h->rng, k->ufrag);
    if ((rv = start_check(k, h->rng, now_of(t))) != 0) {
        k->l.c = NULL;
        link_free(&k->l);
        return rv;
    }
    flare__conn_attach(c, &wd_ops, k);
    c->remote_ip = remote;
    flare_multiaddr a = *ma;
    (void)flare_multiaddr_decapsulate(&a, FLARE_MA_P2P);
    (void)flare__conn_set_remote_ma(c, &a); /* NOMEM: empty */
    c->local_ip = s->local;
    if (wd_addr(&a, &s->local) == 0)
        (void)flare__conn_set_local_ma(c, &a);
    h->io->ops->timer_start(k->l.timer, now_of(t)); /* the check goes out from the loop */
    return 0;
}

/* The host let go of c. */
static void wd_close(flare_conn *c, void *tr, int abort)
{
    wlink *k = tr;
    flare__webrtc_link_close(&k->l, abort);
}

static const flare__transport_ops wd_ops = {
    .name = "webrtc-direct",
    .close = wd_close,
};

const flare__transport flare__tr_webrtc_direct = {
    .name = "webrtc-direct",
    .kind = FLARE__TR_SESSION,
    .init = wd_init,
    .free = wd_free,
    .can_dial = wd_can_dial,
    .can_listen = wd_can_listen,
    .listen = wd_listen,
    .close_listener = wd_close_listener,
    .dial = wd_dial,
};

int flare_host_webrtc_cert_pem(flare_host *h, flare_buf *out)
{
    wd_tr *t = h && out ? flare__tr_state(h, &flare__tr_webrtc_direct) : NULL;
    if (!t)
        return h && out ? FLARE_ERR_UNSUPPORTED : FLARE_ERR_INVALID_ARG;
    int rv = ensure_cert(t);
    return rv ? rv : flare__dtls_cert_export(t->cert, out);
}

int flare__webrtc_direct_cert_made(flare_host *h)
{
    wd_tr *t = flare__tr_state(h, &flare__tr_webrtc_direct);
    return t && t->cert;
}
