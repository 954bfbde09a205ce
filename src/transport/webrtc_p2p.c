/*
 * WebRTC private-to-private (.../p2p-circuit/webrtc/p2p/PEER) as a host
 * transport of the session kind (transport.h), after libp2p/specs
 * webrtc/webrtc.md.
 *
 * The dialer gets a relayed connection to the peer (an existing one, or a
 * dial of the address without /webrtc), opens /webrtc-signaling/0.0.1 on
 * it, sends its SDP offer (signal.h, sdp.h) and trickles its candidates;
 * the listener (the handler of that protocol, any connection) answers and
 * trickles its own. Full ICE (flare/ice.h) runs over the host's UDP listen
 * socket on the IP the relayed connection leaves from (QUIC's, shared
 * through udp_mux: the NAT mapping peers saw), or else a socket of the
 * link's own bound to that IP: the dialer controls and nominates. Candidates: the socket's (host),
 * what a connected public peer's STUN server saw of it (server-reflexive; every flare node answers
 * STUN on its UDP listen ports), peer-reflexive ones from checks. The peer's candidates are judged
 * by the host's address scope rule (dial_private_peer_addrs), as DCUtR judges a peer's addresses.
 *
 * Once a pair is selected, DTLS runs over it: the answerer is the DTLS
 * client (it answers a=setup:active, as browsers and libdatachannel do),
 * each side checking the fingerprint of the other's SDP. No Noise: the SDP
 * came over the relayed connection, which authenticated the peer; its key
 * is the new connection's. Data channels are the streams (mux.h); a
 * channel js-libp2p's dialer opens with the label "init" to start ICE is
 * an ordinary inbound stream to us that its opener closes at once. When
 * the connection is up both sides close their side of the signalling
 * stream.
 *
 * Bounds: links at a time (WP_MAX_LINKS; WP_PEER_LINKS being set up for one
 * signalling peer), one signalling message
 * (FLARE__SIGNAL_MAX_MSG), candidates taken (WP_MAX_CANDS messages, the ICE
 * agent's max_remote), DTLS datagrams held until ICE selects
 * (WP_EARLY), and the whole set-up (handshake_timeout).
 */
#include <string.h>

#include "core/mem.h"
#include "flare/ice.h"
#include "flare/stun.h"
#include "transport/transport.h"
#include "transport/udp_mux.h"
#include "transport/webrtc/link.h"
#include "transport/webrtc/sdp.h"
#include "transport/webrtc/signal.h"

#define WP_MAX_LINKS  32 /* links being set up or up, inbound and outbound */
#define WP_PEER_LINKS 4  /* inbound links being set up for one peer */
#define WP_MAX_CANDS  32 /* candidate messages taken from one peer */
#define WP_EARLY      4  /* DTLS datagrams held until ICE selects a pair */
#define WP_DGRAM      FLARE__DTLS_MAX_DGRAM
#define WP_UFRAG_LEN  8
#define WP_PWD_LEN    24
#define WP_STUN_PEERS 8

typedef struct wp_tr wp_tr;

typedef struct wp_early {
    size_t len;
    flare_ipaddr from;
    uint8_t data[WP_DGRAM];
} wp_early;

typedef struct wlink {
    flare__webrtc_link l; /* first: its ops get the wlink back by a cast; l.c is the WebRTC
                             connection, l.pending while the relayed dial's callback is due */
    struct wlink *next;
    wp_tr *t;
    int outbound;
    flare_peerid peer; /* inbound: who signalled */
    flare_stream *sig; /* the signalling stream; NULL once gone */
    flare_buf sin;     /* signalling bytes not yet a whole message */
    flare_pubkey key;  /* the peer's, from the relayed connection */
    flare_io_udp *udp;
    flare_ipaddr local;
    int shared; /* udp is a listen socket of the host's (udp_mux): not ours */
    char rpwd[FLARE__SDP_ICE_MAX + 1]; /* the peer's: tells its answers apart */
    flare_ice_agent *ice;
    char ufrag[WP_UFRAG_LEN + 1], pwd[WP_PWD_LEN + 1];
    char mid[33];    /* the offer's media section, named again in the answer */
    int have_remote; /* the peer's SDP arrived */
    int dtls_client;
    uint8_t rfp[FLARE__DTLS_FP_LEN];
    unsigned ncand_msgs;
    flare_stun_txn stun; /* a binding request for our server-reflexive address */
    flare_ipaddr stun_to;
    int stun_on;
    wp_early *early;
    size_t nearly;
    flare_tstamp deadline;
    int sig_closed;
} wlink;

struct wp_tr {
    flare_host *h;
    flare__dtls_cert *cert;
    wlink *links;
    size_t nlinks;
};

const flare__transport flare__tr_webrtc;
static const flare__transport_ops wp_ops;
static const flare_stream_cbs sig_cbs;
static void send_local_cands(wlink *k, size_t from);
static int ensure_cert(wp_tr *t);

static flare_tstamp now_of(const wp_tr *t)
{
    return flare_io_now(t->h->io);
}

/* ---- links ------------------------------------------------------------------------- */

static void link_free(wlink *k)
{
    wp_tr *t = k->t;
    flare_io *io = t->h->io;
    for (wlink **pp = &t->links; *pp; pp = &(*pp)->next) {
        if (*pp == k) {
            *pp = k->next;
            t->nlinks--;
            break;
        }
    }
    if (k->sig) {
        flare_stream_set_user(k->sig, &(flare_stream_cbs){0}, NULL);
        flare_stream_reset(k->sig);
        k->sig = NULL;
    }
    flare__webrtc_link_deinit(&k->l);
    if (k->udp && !k->shared)
        io->ops->udp_close(k->udp);
    flare_ice_agent_del(k->ice);
    flare_buf_free(&k->sin);
    flare__free(t->h->mem, k->early);
    flare__free(t->h->mem, k);
}

/* The link failed: tell the host (c fails with err), free it. */
static void link_lost(wlink *k, int err)
{
    flare__webrtc_link_lost(&k->l, err);
}

static int selected_remote(wlink *k, flare_ipaddr *to)
{
    flare_ipaddr l;
    return k->ice ? flare_ice_selected(k->ice, &l, to) : FLARE_ERR_NOT_FOUND;
}

/* A shared socket is still the host's (its listener may have closed). */
static int sock_alive(const wlink *k)
{
    flare__udp_sock_info info[FLARE__UDP_SOCKS_MAX];
    size_t n = flare__udp_mux_socks(k->t->h, info, FLARE__UDP_SOCKS_MAX);
    for (size_t i = 0; i < n; i++)
        if (info[i].u == k->udp)
            return 1;
    return 0;
}

/* What ICE, STUN and DTLS have to send, out now. */
static void link_flush(wlink *k)
{
    uint8_t buf[WP_DGRAM];
    wp_tr *t = k->t;
    flare_io *io = t->h->io;
    flare_tstamp now = now_of(t);
    flare_ipaddr from, to;
    int n;
    if (!k->udp || (k->shared && !sock_alive(k)))
        return;
    while (k->ice && (n = flare_ice_poll_send(k->ice, now, buf, sizeof(buf), &from, &to)) > 0)
        io->ops->udp_send(k->udp, &to, buf, (size_t)n);
    if (k->stun_on) {
        n = flare_stun_txn_poll_send(&k->stun, now, buf, sizeof(buf));
        if (n < 0)
            k->stun_on = 0; /* no answer: host candidates only */
        else if (n > 0)
            io->ops->udp_send(k->udp, &k->stun_to, buf, (size_t)n);
    }
    if (k->l.pc && selected_remote(k, &to) == 0)
        flare__webrtc_link_send(&k->l, k->udp, &to, buf, sizeof(buf));
}

/* ICE's, the STUN query's, pc's, and the set-up deadline's. */
static flare_tstamp link_expiry(const flare__webrtc_link *l)
{
    const wlink *k = (const wlink *)l;
    flare_tstamp at = FLARE_TSTAMP_NEVER, e;
    if (k->ice && (e = flare_ice_expiry(k->ice)) < at)
        at = e;
    if (k->stun_on && (e = flare_stun_txn_expiry(&k->stun)) < at)
        at = e;
    if (l->pc && (e = flare__webrtc_pc_expiry(l->pc)) < at)
        at = e;
    if (!l->ready && k->deadline < at)
        at = k->deadline;
    return at;
}

static void link_arm(wlink *k)
{
    flare__webrtc_link_arm(&k->l);
}

static void ops_flush(flare__webrtc_link *l)
{
    link_flush((wlink *)l);
}

static void ops_free(flare__webrtc_link *l)
{
    link_free((wlink *)l);
}

static void ops_timer(flare__webrtc_link *l);
static void link_up(flare__webrtc_link *l, flare__session *s);

static const flare__webrtc_link_ops link_ops = {
    .flush = ops_flush,
    .expiry = link_expiry,
    .timer = ops_timer,
    .free = ops_free,
    .up = link_up,
    .security = "dtls",
};

static int start_pc(wlink *k)
{
    flare_host *h = k->t->h;
    flare__webrtc_pc_cfg cfg = {
        .is_dtls_client = k->dtls_client,
        .remote_fp = k->rfp,
        .authenticated = &k->key,
        .max_streams = (uint32_t)h->cfg.max_streams_per_conn,
    };
    flare__webrtc_link_pc_cfg(&k->l, k->t->cert, &cfg);
    flare_tstamp now = now_of(k->t);
    int rv = flare__webrtc_pc_new(&k->l.pc, &cfg, now);
    if (rv)
        return rv;
    flare_ipaddr to;
    (void)selected_remote(k, &to);
    for (size_t i = 0; i < k->nearly; i++)
        if (flare_ipaddr_equal(&k->early[i].from, &to))
            (void)flare__webrtc_pc_input(k->l.pc, k->early[i].data, k->early[i].len, now);
    k->nearly = 0;
    return 0;
}

/* /ip4|ip6/ADDR/udp/PORT/webrtc. */
static void udp_webrtc_addr(flare_multiaddr *ma, const flare_ipaddr *ip)
{
    if (flare_multiaddr_from_ipaddr(ma, ip, FLARE_MA_UDP) != 0)
        return;
    if (flare_multiaddr_has(ma, FLARE_MA_QUIC_V1))
        (void)flare_multiaddr_decapsulate(ma, FLARE_MA_QUIC_V1);
    (void)flare_multiaddr_push(ma, FLARE_MA_WEBRTC, NULL, 0);
}

static void close_signalling(wlink *k)
{
    if (k->sig && !k->sig_closed) {
        k->sig_closed = 1;
        (void)flare_stream_close_write(k->sig);
    }
}

/* The connection is up, the host gets s next: its addresses, the end of
 * signalling, and the peer's key as the relayed connection authenticated it. */
static void link_up(flare__webrtc_link *l, flare__session *s)
{
    wlink *k = (wlink *)l;
    flare_conn *c = k->l.c;
    flare_ipaddr r;
    if (selected_remote(k, &r) == 0) {
        c->remote_ip = r;
        if (!c->outbound) {
            flare_multiaddr ma;
            udp_webrtc_addr(&ma, &r);
            (void)flare__conn_set_remote_ma(c, &ma); /* NOMEM: empty */
        }
    }
    close_signalling(k);
    s->remote_key = &k->key;
}

/* After an input or a timer: send, move on, hand the session over. */
static void link_settle(wlink *k)
{
    if (k->l.dead) { /* the host let go while we were busy: free it now */
        if (!k->l.busy && !k->l.pending)
            link_free(k);
        return;
    }
    k->l.busy++;
    int err = 0;
    flare_ice_state is = k->ice ? flare_ice_get_state(k->ice) : FLARE_ICE_NEW;
    if (is == FLARE_ICE_FAILED)
        err = k->l.ready ? FLARE_ERR_CLOSED : FLARE_ERR_UNREACHABLE;
    else if (is == FLARE_ICE_CONNECTED && !k->l.pc && k->l.c)
        err = start_pc(k);
    link_flush(k);
    if (!err && k->l.pc)
        err = flare__webrtc_link_report(&k->l);
    if (!err && !k->l.ready && now_of(k->t) >= k->deadline)
        err = FLARE_ERR_TIMEOUT;
    flare__webrtc_link_settled(&k->l, err);
}

static void ops_timer(flare__webrtc_link *l)
{
    link_settle((wlink *)l);
}

static void stun_answer(wlink *k, const flare_stun_msg *m)
{
    flare_ipaddr mapped;
    k->stun_on = 0;
    if (m->cls != FLARE_STUN_SUCCESS ||
        flare_stun_get_addr(m, FLARE_STUN_ATTR_XOR_MAPPED_ADDRESS, &mapped) != 0 ||
        flare_ipaddr_equal(&mapped, &k->local))
        return;
    flare_ice_candidate lc[FLARE_ICE_MAX_LOCAL];
    size_t n = flare_ice_local_candidates(k->ice, lc, FLARE_ICE_MAX_LOCAL);
    if (flare_ice_add_local(k->ice, FLARE_ICE_SRFLX, &mapped, &k->local) == 0)
        send_local_cands(k, n);
}

/* A datagram on a shared socket: 1 if it is one of k's (a check for its
 * ufrag, an answer to its STUN query or with the peer's integrity, DTLS
 * from its selected remote), else 0 for the socket's other users. */
static int shared_is_ours(wlink *k, const flare_ipaddr *from, const uint8_t *data, size_t len)
{
    if (data[0] <= 3) {
        flare_stun_msg m;
        if (!flare_stun_is_stun(data, len) || flare_stun_parse(&m, data, len) != 0)
            return 0;
        if (m.cls == FLARE_STUN_REQUEST) {
            const flare_stun_attr *a = flare_stun_find(&m, FLARE_STUN_ATTR_USERNAME);
            size_t ul = strlen(k->ufrag);
            return a && a->len > ul && memcmp(m.raw + a->off, k->ufrag, ul) == 0 &&
                   m.raw[a->off + ul] == ':';
        }
        if (k->stun_on && memcmp(m.txid, k->stun.txid, FLARE_STUN_TXID_LEN) == 0)
            return 1; /* matched (and finished) by on_udp */
        return k->rpwd[0] && m.cls != FLARE_STUN_INDICATION &&
               flare_stun_check_integrity(&m, (const uint8_t *)k->rpwd, strlen(k->rpwd)) == 0;
    }
    flare_ipaddr sel;
    return data[0] >= 20 && data[0] <= 63 && k->l.pc && selected_remote(k, &sel) == 0 &&
           flare_ipaddr_equal(&sel, from);
}

static void on_udp(flare_io_udp *u, const flare_ipaddr *from, const uint8_t *data, size_t len,
                   void *user);

static int on_mux(flare_host *h, void *user, flare_io_udp *u, const flare_ipaddr *local,
                  const flare_ipaddr *from, const uint8_t *data, size_t len)
{
    wp_tr *t = user;
    if (len == 0)
        return 0;
    for (wlink *k = t->links; k; k = k->next) {
        if (k->shared && k->udp == u && !k->l.dead && shared_is_ours(k, from, data, len)) {
            on_udp(u, from, data, len, k);
            return 1;
        }
    }
    return 0;
}

static void on_udp(flare_io_udp *u, const flare_ipaddr *from, const uint8_t *data, size_t len,
                   void *user)
{
    wlink *k = user;
    if (len == 0 || k->l.dead)
        return;
    flare_tstamp now = now_of(k->t);
    if (data[0] <= 3) {
        flare_stun_msg m;
        if (k->stun_on && flare_stun_is_stun(data, len) && flare_stun_parse(&m, data, len) == 0 &&
            m.cls != FLARE_STUN_REQUEST && flare_stun_txn_match(&k->stun, &m)) {
            stun_answer(k, &m);
        } else if (k->ice) {
            (void)flare_ice_input(k->ice, &k->local, from, data, len, now);
        }
    } else if (data[0] >= 20 && data[0] <= 63) {
        flare_ipaddr sel;
        if (k->l.pc && selected_remote(k, &sel) == 0 && flare_ipaddr_equal(&sel, from)) {
            (void)flare__webrtc_pc_input(k->l.pc, data, len, now);
        } else if (!k->l.pc && k->nearly < WP_EARLY && len <= WP_DGRAM) {
            if (!k->early && !(k->early = flare__calloc(k->t->h->mem, WP_EARLY, sizeof(*k->early))))
                return;
            wp_early *e = &k->early[k->nearly++];
            memcpy(e->data, data, len);
            e->len = len;
            e->from = *from;
        }
    } else {
        return; /* neither STUN nor DTLS (RFC 7983): not ours */
    }
    link_settle(k);
}

static wlink *link_new(wp_tr *t, int outbound)
{
    if (t->nlinks >= WP_MAX_LINKS)
        return NULL;
    wlink *k = flare__webrtc_link_new(sizeof(*k), &link_ops, t->h, NULL);
    if (!k)
        return NULL;
    k->t = t;
    k->outbound = outbound;
    flare_buf_init(&k->sin, t->h->mem);
    k->deadline = now_of(t) + t->h->cfg.handshake_timeout;
    k->next = t->links;
    t->links = k;
    t->nlinks++;
    return k;
}

/* ---- candidates ---------------------------------------------------------------------- */

static void random_str(flare_rng rng, char *out, size_t n)
{
    static const char alpha[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    uint8_t r[64];
    rng.fn(r, n, rng.user);
    for (size_t i = 0; i < n; i++)
        out[i] = alpha[r[i] % (sizeof(alpha) - 1)];
    out[n] = 0;
}

static int is_public(flare_host *h, const flare_ipaddr *ip)
{
    return flare_ma_class_is_public(flare_ipaddr_classify(ip), h->cfg.doc_addrs_public);
}

/* A connected public peer's UDP address of our family, whose STUN server
 * can tell us our address as seen from outside: peers on direct
 * connections, the address with a UDP port from what they announced. */
static int stun_server_for(wlink *k, flare_ipaddr *out)
{
    flare_host *h = k->t->h;
    flare_multiaddr addrs[WP_STUN_PEERS];
    flare_tstamp now = now_of(k->t);
    for (flare_conn *c = h->conns; c; c = c->next) {
        if (c->state != FLARE__CONN_READY || c->limited || c->close_pending)
            continue;
        size_t n = flare__peerstore_addrs(h->peerstore, &c->peer, now, addrs, WP_STUN_PEERS);
        for (size_t i = 0; i < n; i++) {
            flare_ipaddr ip;
            int proto;
            if (flare_multiaddr_to_ipaddr(&addrs[i], &ip, &proto) == 0 && proto == FLARE_MA_UDP &&
                ip.family == k->local.family && ip.port && is_public(h, &ip)) {
                *out = ip;
                return 0;
            }
        }
    }
    return FLARE_ERR_NOT_FOUND;
}

static void start_stun(wlink *k)
{
    flare_rng rng = k->t->h->rng;
    if (stun_server_for(k, &k->stun_to) != 0)
        return;
    uint8_t req[64], txid[FLARE_STUN_TXID_LEN];
    rng.fn(txid, sizeof(txid), rng.user);
    flare_stun_builder b;
    flare_stun_build_init(&b, req, sizeof(req), FLARE_STUN_BINDING, FLARE_STUN_REQUEST, txid);
    flare_stun_add_fingerprint(&b);
    int n = flare_stun_build_finish(&b);
    if (n < 0)
        return;
    flare_stun_txn_settings ts;
    flare_stun_txn_settings_default(&ts);
    ts.rto = 250 * FLARE_NS_PER_MS;
    ts.max_sends = 4;
    k->stun_on = flare_stun_txn_start(&k->stun, &ts, req, (size_t)n, now_of(k->t)) == 0;
}

static int send_msg(wlink *k, int type, const char *data, size_t len)
{
    if (!k->sig || k->sig_closed)
        return FLARE_ERR_CLOSED;
    flare_buf b;
    flare_buf_init(&b, k->t->h->mem);
    int rv = flare__signal_encode(&b, type, data, len);
    if (rv == 0)
        rv = flare_stream_write(k->sig, b.base, b.len) < 0 ? FLARE_ERR_CLOSED : 0;
    flare_buf_free(&b);
    return rv;
}

/* Trickles our local candidates from index from on. */
static void send_local_cands(wlink *k, size_t from)
{
    flare_ice_candidate lc[FLARE_ICE_MAX_LOCAL];
    size_t n = flare_ice_local_candidates(k->ice, lc, FLARE_ICE_MAX_LOCAL);
    for (size_t i = from; i < n; i++) {
        flare__sdp_cand sc;
        memset(&sc, 0, sizeof(sc));
        sc.addr = lc[i].addr;
        sc.priority = lc[i].priority;
        sc.component = 1;
        sc.type = (flare__cand_type)lc[i].type;
        sc.foundation[0] = (char)('1' + (lc[i].type & 7));
        flare_buf b;
        flare_buf_init(&b, k->t->h->mem);
        if (flare__sdp_cand_json_write(&sc, &b) == 0)
            (void)send_msg(k, FLARE__SIGNAL_ICE_CANDIDATE, (const char *)b.base, b.len);
        flare_buf_free(&b);
    }
}

static void add_remote_cand(wlink *k, const flare__sdp_cand *sc)
{
    flare_ice_candidate c = {
        .type = (flare_ice_cand_type)sc->type, .addr = sc->addr, .priority = sc->priority};
    (void)flare_ice_add_remote(k->ice, &c); /* refused, too many, duplicate: ignored */
}

static int ip_unspecified(const flare_ipaddr *a)
{
    static const uint8_t zero[16];
    return memcmp(a->ip, zero, a->family == 4 ? 4 : 16) == 0;
}

/* A UDP listen socket of the host (QUIC's, shared through udp_mux) on ip
 * (or on the unspecified address of its family): the link uses it, so its
 * candidates are the listen port's, whose NAT mapping peers already saw. */
static int share_sock(wlink *k, const flare_ipaddr *ip)
{
    flare__udp_sock_info info[FLARE__UDP_SOCKS_MAX];
    size_t n = flare__udp_mux_socks(k->t->h, info, FLARE__UDP_SOCKS_MAX);
    for (size_t i = 0; i < n; i++) {
        flare_ipaddr l = info[i].local;
        l.port = 0;
        if (!info[i].listening || l.family != ip->family ||
            (!ip_unspecified(&l) && !flare_ipaddr_equal(&l, ip)))
            continue;
        k->udp = info[i].u;
        k->local = *ip;
        k->local.port = info[i].local.port;
        k->shared = 1;
        return 1;
    }
    return 0;
}

/* The socket (bound to the IP the relayed connection leaves from), the
 * agent with its host candidate, and the STUN query. */
static int setup_local(wlink *k, const flare_conn *relayed, int controlling)
{
    wp_tr *t = k->t;
    flare_host *h = t->h;
    flare_io *io = h->io;
    flare_ipaddr ip = relayed->local_ip;
    ip.port = 0;
    if (ip.family != 4 && ip.family != 6)
        return FLARE_ERR_UNSUPPORTED;
    int rv = 0;
    if (!share_sock(k, &ip))
        rv = io->ops->udp_bind(io, &ip, 0, on_udp, k, &k->udp);
    if (rv == 0 && !k->shared)
        rv = io->ops->udp_addr(k->udp, &k->local);
    if (rv)
        return rv;
    random_str(h->rng, k->ufrag, WP_UFRAG_LEN);
    random_str(h->rng, k->pwd, WP_PWD_LEN);
    flare_ice_settings is;
    flare_ice_settings_default(&is);
    is.controlling = controlling;
    is.allow_private = h->cfg.dial_private_peer_addrs;
    is.doc_is_public = h->cfg.doc_addrs_public;
    if ((rv = flare_ice_agent_new(&k->ice, &is, k->ufrag, k->pwd, h->rng, h->mem)) != 0)
        return rv;
    if ((rv = flare_ice_add_local(k->ice, FLARE_ICE_HOST, &k->local, &k->local)) != 0)
        return rv;
    start_stun(k);
    if (!relayed->sec || !relayed->sec->remote_key)
        return FLARE_ERR_UNSUPPORTED;
    if ((rv = relayed->sec->remote_key(relayed->sec_st, &k->key)) < 0)
        return rv;
    return 0;
}

static int write_sdp(wlink *k, int type)
{
    flare__sdp d;
    memset(&d, 0, sizeof(d));
    memcpy(d.ufrag, k->ufrag, sizeof(k->ufrag));
    memcpy(d.pwd, k->pwd, sizeof(k->pwd));
    memcpy(d.mid, k->mid, sizeof(k->mid));
    memcpy(d.fp, flare__dtls_cert_fingerprint(k->t->cert), sizeof(d.fp));
    d.has_fp = 1;
    d.setup = type == FLARE__SIGNAL_SDP_OFFER ? FLARE__SDP_SETUP_ACTPASS : FLARE__SDP_SETUP_ACTIVE;
    d.sctp_port = FLARE__SCTP_PORT;
    d.max_message_size = FLARE__SCTP_MAX_MESSAGE;
    uint64_t sess;
    flare_rng rng = k->t->h->rng;
    rng.fn((uint8_t *)&sess, sizeof(sess), rng.user);
    flare_buf b;
    flare_buf_init(&b, k->t->h->mem);
    int rv = flare__sdp_write(&d, sess, &b);
    if (rv == 0)
        rv = send_msg(k, type, (const char *)b.base, b.len);
    flare_buf_free(&b);
    if (rv == 0)
        send_local_cands(k, 0);
    return rv;
}

/* The peer's description: credentials, fingerprint, role, candidates. */
static int take_sdp(wlink *k, const flare__signal_msg *m)
{
    flare__sdp *d = flare__calloc(k->t->h->mem, 1, sizeof(*d));
    if (!d)
        return FLARE_ERR_NOMEM;
    int rv = flare__sdp_parse(m->data, m->len, d);
    if (rv == 0)
        rv = flare_ice_set_remote_credentials(k->ice, d->ufrag, d->pwd);
    if (rv == 0) {
        memcpy(k->rfp, d->fp, sizeof(k->rfp));
        memcpy(k->rpwd, d->pwd, sizeof(k->rpwd));
        if (!k->outbound)
            memcpy(k->mid, d->mid, sizeof(k->mid));
        /* The answerer picks: active makes it the client, us the server. */
        k->dtls_client = k->outbound ? d->setup == FLARE__SDP_SETUP_PASSIVE : 1;
        for (size_t i = 0; i < d->ncand; i++)
            add_remote_cand(k, &d->cand[i]);
        k->have_remote = 1;
        rv = flare_ice_start(k->ice, now_of(k->t));
    }
    flare__free(k->t->h->mem, d);
    return rv ? (rv == FLARE_ERR_STATE ? FLARE_ERR_PROTO : rv) : 0;
}

/* ---- signalling -------------------------------------------------------------------- */

static flare_conn *accept_conn(wlink *k, flare_conn *relayed);

static int on_message(wlink *k, const flare__signal_msg *m)
{
    if (!k->have_remote) {
        int want = k->outbound ? FLARE__SIGNAL_SDP_ANSWER : FLARE__SIGNAL_SDP_OFFER;
        if (m->type != want)
            return FLARE_ERR_PROTO;
        if (!k->outbound) {
            flare_conn *relayed = flare_stream_conn(k->sig);
            int rv = setup_local(k, relayed, 0);
            if (rv)
                return rv;
            if (!accept_conn(k, relayed))
                return FLARE_ERR_REFUSED;
        }
        int rv = take_sdp(k, m);
        if (rv == 0 && !k->outbound)
            rv = write_sdp(k, FLARE__SIGNAL_SDP_ANSWER);
        return rv;
    }
    if (m->type != FLARE__SIGNAL_ICE_CANDIDATE)
        return FLARE_ERR_PROTO;
    if (++k->ncand_msgs > WP_MAX_CANDS)
        return 0; /* enough: the rest is ignored */
    flare__sdp_cand sc;
    if (flare__sdp_cand_json_parse(m->data, m->len, &sc) == 0)
        add_remote_cand(k, &sc); /* end of candidates, mDNS, TCP, garbage: ignored */
    return 0;
}

static void sig_data(flare_stream *s, const uint8_t *data, size_t len, void *user)
{
    wlink *k = user;
    if (!k || k->l.dead)
        return;
    if (k->sin.len + len > FLARE__SIGNAL_MAX_MSG + 16 || flare_buf_append(&k->sin, data, len)) {
        link_lost(k, FLARE_ERR_TOO_LARGE);
        return;
    }
    int rv = 0;
    k->l.busy++;
    while (rv == 0 && k->sin.len > 0 && !k->l.dead) {
        flare__signal_msg m;
        long n = flare__signal_parse(k->sin.base, k->sin.len, &m);
        if (n == FLARE_ERR_AGAIN)
            break;
        if (n < 0) {
            rv = (int)n;
            break;
        }
        rv = on_message(k, &m);
        flare_buf_consume(&k->sin, (size_t)n);
    }
    k->l.busy--;
    if (rv) {
        link_lost(k, rv);
        return;
    }
    link_settle(k);
}

static void sig_eof(flare_stream *s, void *user)
{
    wlink *k = user;
    if (!k || k->l.dead)
        return;
    /* No more candidates; the checks go on. Without the peer's SDP it failed. */
    if (!k->have_remote)
        link_lost(k, FLARE_ERR_PROTO);
    else if (k->l.ready)
        close_signalling(k);
}

static void sig_close(flare_stream *s, int err, void *user)
{
    wlink *k = user;
    if (!k)
        return;
    k->sig = NULL;
    if (!k->l.dead && !k->have_remote)
        link_lost(k, err ? err : FLARE_ERR_PROTO);
}

static void sig_open(flare_stream *s, int status, void *user)
{
    wlink *k = user;
    if (k && status && !k->l.dead && !k->have_remote)
        link_lost(k, status); /* on_close follows and finds sig cleared */
}

static const flare_stream_cbs sig_cbs = {
    .on_open = sig_open,
    .on_data = sig_data,
    .on_eof = sig_eof,
    .on_close = sig_close,
};

/* ---- listener ---------------------------------------------------------------------- */

/* The inbound connection, from the offer on (the gater and the resource
 * manager judge it now). */
static flare_conn *accept_conn(wlink *k, flare_conn *relayed)
{
    flare_host *h = k->t->h;
    flare_multiaddr rma;
    flare__conn_remote_ma(relayed, &rma);
    if (flare_multiaddr_push(&rma, FLARE_MA_WEBRTC, NULL, 0) != 0)
        flare__conn_remote_ma(relayed, &rma);
    flare_conn *c = flare__conn_accept(h, &flare__tr_webrtc, NULL, &rma);
    if (!c)
        return NULL;
    flare__conn_attach(c, &wp_ops, k);
    k->l.c = c;
    c->local_ip = k->local;
    flare_multiaddr lma;
    udp_webrtc_addr(&lma, &k->local);
    (void)flare__conn_set_remote_ma(c, &rma); /* NOMEM: empty */
    (void)flare__conn_set_local_ma(c, &lma);
    flare__conn_accepted(c);
    return k->l.c;
}

/* A signalling stream from a peer (any connection, relayed ones included). */
static void on_signal_stream(flare_stream *s, int status, void *user)
{
    wp_tr *t = user;
    const flare_peerid *peer = flare_conn_peer(flare_stream_conn(s));
    size_t n = 0;
    for (wlink *o = t->links; o; o = o->next)
        n += !o->outbound && !o->l.ready && flare_peerid_equal(&o->peer, peer);
    wlink *k = status || n >= WP_PEER_LINKS || ensure_cert(t) ? NULL : link_new(t, 0);
    if (!k) {
        flare_stream_set_user(s, &(flare_stream_cbs){0}, NULL);
        flare_stream_reset(s);
        return;
    }
    k->sig = s;
    k->peer = *peer;
    flare_stream_set_user(s, &sig_cbs, k);
    link_arm(k);
}

/* ---- dialer ------------------------------------------------------------------------ */

static void on_relayed(flare_host *h, flare_conn *relayed, int status, void *user)
{
    wlink *k = user;
    k->l.pending = 0;
    if (k->l.dead || !k->l.c) {
        link_free(k);
        return;
    }
    int rv = status;
    if (rv == 0)
        rv = setup_local(k, relayed, 1);
    if (rv == 0)
        rv = flare_conn_new_stream(relayed, FLARE__SIGNAL_PROTOCOL_ID, &sig_cbs, k,
                                   FLARE_STREAM_ALLOW_LIMITED, &k->sig);
    if (rv == 0) {
        k->l.c->local_ip = k->local;
        flare_multiaddr lma;
        udp_webrtc_addr(&lma, &k->local);
        rv = flare__conn_set_local_ma(k->l.c, &lma);
    }
    if (rv == 0) {
        rv = write_sdp(k, FLARE__SIGNAL_SDP_OFFER);
    }
    if (rv) {
        link_lost(k, rv);
        return;
    }
    link_settle(k);
}

/* The address without /webrtc: the relayed address of the peer. */
static int circuit_of(const flare_multiaddr *ma, flare_multiaddr *out)
{
    size_t off = 0;
    flare_ma_component mc;
    int seen = 0;
    memset(out, 0, sizeof(*out));
    while (flare_multiaddr_next(ma, &off, &mc) == 1) {
        if (mc.code == FLARE_MA_WEBRTC) {
            seen = 1;
            continue;
        }
        int rv = flare_multiaddr_push(out, mc.code, mc.value, mc.value_len);
        if (rv)
            return rv;
    }
    return seen ? 0 : FLARE_ERR_INVALID_ARG;
}

/* .../p2p-circuit/webrtc/p2p/PEER. */
static int wp_can_dial(const flare_multiaddr *ma)
{
    size_t off = 0;
    flare_ma_component mc;
    int prev = 0, step = 0; /* 1: after p2p-circuit/webrtc; 2: then /p2p */
    while (flare_multiaddr_next(ma, &off, &mc) == 1) {
        if (step == 1)
            step = mc.code == FLARE_MA_P2P ? 2 : -1;
        else if (step == 2)
            step = -1;
        else if (mc.code == FLARE_MA_WEBRTC)
            step = prev == FLARE_MA_P2P_CIRCUIT ? 1 : -1;
        prev = (int)mc.code;
    }
    return step == 2;
}

static int wp_dial(flare_host *h, void *state, flare_conn *c, const flare_multiaddr *ma,
                   const flare_dial_opts *o)
{
    wp_tr *t = state;
    if (!t)
        return FLARE_ERR_UNSUPPORTED;
    int rc = ensure_cert(t);
    if (rc)
        return rc;
    flare_multiaddr circ;
    int rv = circuit_of(ma, &circ);
    if (rv)
        return rv;
    wlink *k = link_new(t, 1);
    if (!k)
        return FLARE_ERR_LIMIT;
    k->l.pending = 1;
    rv = flare_host_dial(h, &circ, NULL, on_relayed, k);
    if (rv) {
        k->l.pending = 0;
        link_free(k);
        return rv;
    }
    k->l.c = c;
    flare__conn_attach(c, &wp_ops, k);
    (void)flare__conn_set_remote_ma(c, ma); /* NOMEM: empty */
    c->limited = 0;
    link_arm(k);
    return 0;
}

/* The host let go of c. */
static void wp_close(flare_conn *c, void *tr, int abort)
{
    wlink *k = tr;
    flare__webrtc_link_close(&k->l, abort);
}

/* ---- transport --------------------------------------------------------------------- */

/* The DTLS certificate: the host's (webrtc_cert_pem, imported at host
 * creation, the only time that string may be read), else one made at the
 * first use (most hosts never use it). 0 or an error. */
static int ensure_cert(wp_tr *t)
{
    return t->cert ? 0 : flare__webrtc_cert_new(t->h, t->h->rng, &t->cert);
}

static int wp_init(flare_host *h, void **state)
{
    if (!h->cfg.enable_webrtc)
        return 0;
    wp_tr *t = flare__calloc(h->mem, 1, sizeof(*t));
    if (!t)
        return FLARE_ERR_NOMEM;
    t->h = h;
    int rv = 0;
    if (h->cfg.webrtc_cert_pem)
        rv = flare__dtls_cert_import(&t->cert, (const uint8_t *)h->cfg.webrtc_cert_pem,
                                     strlen(h->cfg.webrtc_cert_pem));
    if (rv == 0)
        rv = flare__udp_mux_add(h, FLARE__UDP_FIRST_STUN_LO, FLARE__UDP_FIRST_DTLS_HI, on_mux, t);
    if (rv == 0) {
        flare_stream_cbs cbs = {.on_open = on_signal_stream};
        rv = flare_host_set_handler(h, FLARE__SIGNAL_PROTOCOL_ID, &cbs, t,
                                    FLARE_HANDLER_ALLOW_LIMITED);
        if (rv)
            flare__udp_mux_remove(h, on_mux, t);
    }
    if (rv) {
        flare__dtls_cert_del(t->cert);
        flare__free(h->mem, t);
        return rv;
    }
    *state = t;
    return 0;
}

static void wp_free(flare_host *h, void *state)
{
    wp_tr *t = state;
    if (!t)
        return;
    while (t->links) {
        wlink *k = t->links;
        k->l.c = NULL;
        k->sig = NULL; /* the host freed its streams already */
        k->l.pending = 0;
        link_free(k);
    }
    flare__udp_mux_remove(h, on_mux, t);
    flare__dtls_cert_del(t->cert);
    flare__free(h->mem, t);
}

static const flare__transport_ops wp_ops = {
    .name = "webrtc",
    .close = wp_close,
};

const flare__transport flare__tr_webrtc = {
    .name = "webrtc",
    .kind = FLARE__TR_SESSION,
    .replaces_limited = 1,
    .init = wp_init,
    .free = wp_free,
    .can_dial = wp_can_dial,
    .dial = wp_dial,
};
