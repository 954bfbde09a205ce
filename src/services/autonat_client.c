/*
 * AutoNAT client: probe rounds driven by the reachability core
 * (flare/reachability.h), v2 probes (preferred) and v1 probes (fallback),
 * and the /libp2p/autonat/2/dial-back handler that checks nonces.
 *
 * What we ask about: our public candidate addresses (public listen
 * addresses, and the address manager's external addresses incl.
 * candidates). Whom we ask: connected peers (direct connections only) that
 * announced the protocol in identify.
 *
 * v1 results are judged by the core with the addresses we asked and our
 * listen ports, so a server that answers OK over the connection we opened
 * (js-libp2p does) proves nothing.
 */
#include <string.h>

#include "core/mem.h"
#include "services/autonat.h"

#define MAX_PORTS 8

typedef struct flare__an_round {
    struct flare__an_round *next;
    flare__autonat *an;
    unsigned pending;
    int answered, started;
    flare_autonat_probe_cb cb;
    void *user;
    flare_io_timer *timer;
} round_t;

typedef struct flare__an_probe {
    struct flare__an_probe *next, *prev;
    flare__autonat *an;
    round_t *round;
    int v2, family;
    flare_stream *s;
    flare_buf in;
    /* One or the other (13 KB each): a node probes several servers at once. */
    union {
        flare_autonat2_client_req c2; /* v2 */
        struct {                      /* v1: the addresses we asked */
            size_t nasked;
            flare_multiaddr asked[FLARE_AUTONAT_MAX_ADDRS];
        };
    };
    size_t nports;
    uint16_t ports[MAX_PORTS];
    flare_tstamp started;
    flare_io_timer *timer;
} probe;

static void arm(flare__autonat *an);

/* ---- reachability bookkeeping ------------------------------------------------------ */

static void emit_events(flare__autonat *an)
{
    flare_reach_event e;
    while (flare_reachability_poll_event(&an->reach, &e)) {
        if (e.kind != FLARE_REACH_EV_FAMILY)
            continue;
        flare_host_event ev = {.type = FLARE_HOST_EV_REACHABILITY,
                               .u.reachability = {.family = e.family, .reach = e.new_state}};
        flare__host_emit(an->h, &ev);
    }
}

static int is_public(const flare_host *h, const flare_multiaddr *ma)
{
    flare_ma_class c = flare_multiaddr_classify(ma);
    if (h->cfg.autonat_allow_private && c != FLARE_MA_UNSPECIFIED)
        return 1;
    return flare_ma_class_is_public(c, h->cfg.doc_addrs_public);
}

static size_t add_unique(flare_multiaddr *out, size_t n, size_t cap, const flare_multiaddr *ma)
{
    for (size_t j = 0; j < n; j++)
        if (flare_multiaddr_equal(&out[j], ma))
            return n;
    if (n < cap)
        out[n++] = *ma;
    return n;
}

/* Our public candidates: public listen addresses, then external ones
 * (observed, and mapped on our gateway). */
static size_t candidates(flare_host *h, flare_multiaddr *out, size_t cap)
{
    flare_multiaddr tmp[16];
    size_t n = 0;
    size_t k = flare_host_listen_addrs(h, tmp, 16);
    for (size_t i = 0; i < k; i++)
        if (is_public(h, &tmp[i]))
            n = add_unique(out, n, cap, &tmp[i]);
    k = flare__portmap_candidates(h, tmp, 16); /* mapped by our gateway: likeliest first */
    k += flare_host_external_addrs(h, tmp + k, 16 - k, 1);
    for (size_t i = 0; i < k; i++)
        if (is_public(h, &tmp[i]))
            n = add_unique(out, n, cap, &tmp[i]);
    return n;
}

static void refresh_addrs(flare__autonat *an)
{
    flare_multiaddr c[FLARE_REACH_MAX_ADDRS];
    size_t n = candidates(an->h, c, FLARE_REACH_MAX_ADDRS);
    flare_reachability_set_addrs(&an->reach, c, n, flare_io_now(an->h->io));
    emit_events(an); /* dropped addresses may change a family's verdict */
}

/* ---- rounds ------------------------------------------------------------------------ */

static void round_fire(flare_io_timer *t, void *user)
{
    round_t *rd = user;
    flare__autonat *an = rd->an;
    (void)t;
    for (round_t **p = &an->rounds; *p; p = &(*p)->next) {
        if (*p == rd) {
            *p = rd->next;
            break;
        }
    }
    int status = rd->answered ? 0 : rd->started ? FLARE_ERR_UNREACHABLE : FLARE_ERR_NOT_FOUND;
    flare_autonat_probe_cb cb = rd->cb;
    void *u = rd->user;
    an->h->io->ops->timer_del(rd->timer);
    flare__free(an->h->mem, rd);
    if (cb)
        cb(an->h, status, u);
}

static void round_probe_done(round_t *rd, int answered)
{
    if (!rd)
        return;
    rd->answered |= answered;
    if (--rd->pending == 0)
        rd->an->h->io->ops->timer_start(rd->timer, flare_io_now(rd->an->h->io));
}

/* ---- probes ------------------------------------------------------------------------ */

static void probe_free(probe *p)
{
    flare__autonat *an = p->an;
    if (p->prev)
        p->prev->next = p->next;
    else
        an->probes = p->next;
    if (p->next)
        p->next->prev = p->prev;
    if (p->timer)
        an->h->io->ops->timer_del(p->timer);
    flare_buf_free(&p->in);
    flare__free(an->h->mem, p);
}

/* The probe is over: stop listening to its stream (half-close it, or reset
 * it after a protocol error) and count it in its round. */
static void probe_end(probe *p, int answered, int reset)
{
    flare_stream *s = p->s;
    p->s = NULL;
    if (s) {
        if (reset)
            flare__stream_abort(s);
        else
            flare__autonat_detach(s);
    }
    round_t *rd = p->round;
    flare__autonat *an = p->an;
    probe_free(p);
    round_probe_done(rd, answered);
    emit_events(an);
    arm(an);
}

void flare__autonat_inbound(flare_host *h, void *state, flare_conn *c)
{
    flare__autonat *an = state;
    if (!an || !an->client)
        return;
    unsigned i = an->inbound_next++ % FLARE__AUTONAT_INBOUND_LOG;
    an->inbound_port[i] = c->local_ip.port;
    an->inbound_at[i] = flare_io_now(h->io);
}

/* Did a TCP connection reach our port `port` since `since`? */
static int dialed_back_since(const flare__autonat *an, uint16_t port, flare_tstamp since)
{
    for (unsigned i = 0; i < FLARE__AUTONAT_INBOUND_LOG; i++)
        if (an->inbound_at[i] && an->inbound_at[i] >= since && an->inbound_port[i] == port)
            return 1;
    return 0;
}

static void v1_recv(probe *p)
{
    flare_host *h = p->an->h;
    flare_autonat_outcome o = FLARE_AUTONAT_NO_INFO;
    flare_multiaddr got;
    flare_ipaddr ip;
    int proto;
    size_t used;
    int rv = flare_autonat1_client_response(p->in.base, p->in.len, &used, p->asked, p->nasked,
                                            p->ports, p->nports, &o, &got);
    if (rv == FLARE_ERR_AGAIN)
        return;
    /* js-libp2p "dials back" by reusing the connection we asked over (seen
     * in the NAT lab: it reports success for a node behind a NAT). When our
     * dials leave from the listen port, that OK names our listen port, so
     * the core's check cannot tell; a real dial-back shows up as an inbound
     * connection on that port during the probe. */
    if (rv == 0 && o == FLARE_AUTONAT_REACHABLE &&
        (flare_multiaddr_to_ipaddr(&got, &ip, &proto) != 0 ||
         !dialed_back_since(p->an, ip.port, p->started)))
        o = FLARE_AUTONAT_NO_INFO;
    flare_reachability_observe_v1(&p->an->reach, p->family, rv == 0 ? o : FLARE_AUTONAT_NO_INFO,
                                  flare_io_now(h->io));
    probe_end(p, rv == 0 && o != FLARE_AUTONAT_NO_INFO, rv != 0);
}

static void v2_recv(probe *p)
{
    flare_host *h = p->an->h;
    flare_buf out;
    flare_buf_init(&out, h->mem);
    size_t used = 0;
    int rv = flare_autonat2_client_req_recv(&p->c2, p->in.base, p->in.len, &used, &out);
    flare_buf_consume(&p->in, used);
    if (out.len && flare_stream_write(p->s, out.base, out.len) < 0 && rv == 0)
        rv = FLARE_ERR_CLOSED;
    flare_buf_free(&out);
    if (rv == 0) {
        if (used && p->in.len)
            v2_recv(p); /* several messages in one read */
        return;
    }
    int answered = 0;
    if (rv == 1 && p->c2.addr_idx >= 0) {
        flare_autonat_outcome o = p->c2.outcome;
        flare_reachability_observe_v2(&p->an->reach, &p->c2.addrs[p->c2.addr_idx], o,
                                      flare_io_now(h->io));
        answered = o != FLARE_AUTONAT_NO_INFO;
    }
    probe_end(p, answered, rv != 1);
}

static void probe_data(flare_stream *s, const uint8_t *data, size_t len, void *user)
{
    probe *p = user;
    (void)s;
    size_t max = p->v2 ? FLARE_AUTONAT_V2_MSG_MAX : FLARE_AUTONAT_V1_MSG_MAX;
    if (p->in.len + len > max + 10 || flare_buf_append(&p->in, data, len)) {
        probe_end(p, 0, 1);
        return;
    }
    if (p->v2)
        v2_recv(p);
    else
        v1_recv(p);
}

static void probe_eof(flare_stream *s, void *user)
{
    (void)s;
    probe_end(user, 0, 0); /* the server closed without a (complete) answer */
}

static void probe_open(flare_stream *s, int status, void *user)
{
    /* A failed negotiation is followed by on_close: the probe ends there. */
    (void)s;
    (void)status;
    (void)user;
}

static void probe_close(flare_stream *s, int err, void *user)
{
    probe *p = user;
    (void)s;
    (void)err;
    p->s = NULL;
    probe_end(p, 0, 0);
}

static void probe_timeout(flare_io_timer *t, void *user)
{
    (void)t;
    probe_end(user, 0, 1);
}

static const flare_stream_cbs probe_cbs = {
    .on_open = probe_open, .on_data = probe_data, .on_eof = probe_eof, .on_close = probe_close};

static size_t listen_ports(flare_host *h, uint16_t *ports, size_t cap)
{
    flare_multiaddr l[16];
    size_t k = flare_host_listen_addrs(h, l, 16), n = 0;
    for (size_t i = 0; i < k && n < cap; i++) {
        flare_ipaddr ip;
        int proto;
        if (flare_multiaddr_to_ipaddr(&l[i], &ip, &proto) == 0)
            ports[n++] = ip.port;
    }
    return n;
}

/* Opens a probe to server over conn c about addrs. */
static int probe_start(flare__autonat *an, round_t *rd, flare_conn *c, int v2,
                       const flare_multiaddr *addrs, size_t n)
{
    flare_host *h = an->h;
    probe *p = flare__calloc(h->mem, 1, sizeof(*p));
    if (!p)
        return FLARE_ERR_NOMEM;
    p->an = an;
    p->v2 = v2;
    p->family = c->remote_ip.family;
    p->started = flare_io_now(h->io);
    flare_buf_init(&p->in, h->mem);
    p->next = an->probes;
    if (an->probes)
        an->probes->prev = p;
    an->probes = p;
    flare_buf out;
    flare_buf_init(&out, h->mem);
    int rv = h->io->ops->timer_new(h->io, probe_timeout, p, &p->timer);
    if (rv == 0 && v2) {
        rv = flare_autonat2_client_req_init(&p->c2, addrs, n, FLARE_AUTONAT2_DEFAULT_MAX_DIAL_DATA,
                                            h->rng, &out);
    } else if (rv == 0) {
        p->nasked = n;
        memcpy(p->asked, addrs, n * sizeof(*addrs));
        p->nports = listen_ports(h, p->ports, MAX_PORTS);
        rv = flare_autonat1_client_request(&out, &h->id, addrs, n);
    }
    const char *proto = v2 ? FLARE_AUTONAT_V2_DIAL_REQUEST_ID : FLARE_AUTONAT_V1_PROTOCOL_ID;
    flare__conn_hold(c); /* the proposal and the request in one write */
    if (rv == 0)
        rv = flare_conn_new_stream(c, proto, &probe_cbs, p, 0, &p->s);
    if (rv == 0 && flare_stream_write(p->s, out.base, out.len) < 0) {
        flare__stream_abort(p->s);
        rv = FLARE_ERR_CLOSED;
    }
    flare__conn_release(c);
    flare_buf_free(&out);
    if (rv) {
        probe_free(p);
        return rv;
    }
    p->round = rd;
    rd->pending++;
    rd->started = 1;
    h->io->ops->timer_start(p->timer, flare_io_now(h->io) + FLARE__AUTONAT_PROBE_TIMEOUT);
    return 0;
}

/* Connected AutoNAT servers, v2 ones first; conns[i] is the best direct
 * connection to peers[i]. */
static size_t find_servers(flare_host *h, flare_peerid *peers, flare_conn **conns, int *v2,
                           size_t cap)
{
    size_t n = 0;
    for (int want_v2 = 1; want_v2 >= 0; want_v2--) {
        const char *proto =
            want_v2 ? FLARE_AUTONAT_V2_DIAL_REQUEST_ID : FLARE_AUTONAT_V1_PROTOCOL_ID;
        for (flare_conn *c = h->conns; c && n < cap; c = c->next) {
            if (c->state != FLARE__CONN_READY || c->close_pending || c->limited)
                continue;
            if (!flare__peerstore_supports(h->peerstore, &c->peer, proto))
                continue;
            int dup = 0;
            for (size_t j = 0; j < n && !dup; j++)
                dup = flare_peerid_equal(&peers[j], &c->peer);
            if (dup)
                continue;
            peers[n] = c->peer;
            conns[n] = c;
            v2[n] = want_v2;
            n++;
        }
    }
    return n;
}

static int start_round(flare__autonat *an, flare_autonat_probe_cb cb, void *user)
{
    flare_host *h = an->h;
    round_t *rd = flare__calloc(h->mem, 1, sizeof(*rd));
    if (!rd)
        return FLARE_ERR_NOMEM;
    if (h->io->ops->timer_new(h->io, round_fire, rd, &rd->timer)) {
        flare__free(h->mem, rd);
        return FLARE_ERR_NOMEM;
    }
    rd->an = an;
    rd->cb = cb;
    rd->user = user;
    rd->next = an->rounds;
    an->rounds = rd;
    rd->pending = 1; /* held while starting, so that the round ends from the loop */

    refresh_addrs(an);
    flare_multiaddr addrs[FLARE_AUTONAT_MAX_ADDRS];
    size_t na = flare_reachability_addrs_to_probe(&an->reach, addrs, FLARE_AUTONAT_MAX_ADDRS);
    enum { CAP = 64 };
    flare_peerid *peers = flare__malloc(h->mem, CAP * sizeof(*peers));
    flare_conn *conns[CAP];
    int v2[CAP];
    size_t idx[CAP];
    if (na && peers) {
        size_t ns = find_servers(h, peers, conns, v2, CAP);
        size_t want = h->cfg.autonat_servers_max ? h->cfg.autonat_servers_max : 3;
        size_t k = flare_reachability_pick_servers(&an->reach, flare_io_now(h->io), peers, ns,
                                                   want < CAP ? want : CAP, idx);
        for (size_t i = 0; i < k; i++)
            probe_start(an, rd, conns[idx[i]], v2[idx[i]], addrs, na);
    }
    flare__free(h->mem, peers);
    round_probe_done(rd, 0);
    return 0;
}

/* ---- schedule ---------------------------------------------------------------------- */

static void arm(flare__autonat *an)
{
    if (!an->timer || an->h->destroying)
        return;
    flare_tstamp d = flare_reachability_expiry(&an->reach);
    if (d == FLARE_TSTAMP_NEVER)
        an->h->io->ops->timer_stop(an->timer);
    else
        an->h->io->ops->timer_start(an->timer, d);
}

static void on_timer(flare_io_timer *t, void *user)
{
    flare__autonat *an = user;
    (void)t;
    if (flare_reachability_handle_expiry(&an->reach, flare_io_now(an->h->io)))
        start_round(an, NULL, NULL);
    arm(an);
}

void flare__autonat_peer_identified(flare_host *h, void *state, flare_conn *c)
{
    flare__autonat *an = state;
    if (!an || !an->client || h->destroying || flare_io_now(h->io) < an->boot_at)
        return;
    refresh_addrs(an);
    if (!c->limited &&
        (flare__peerstore_supports(h->peerstore, &c->peer, FLARE_AUTONAT_V2_DIAL_REQUEST_ID) ||
         flare__peerstore_supports(h->peerstore, &c->peer, FLARE_AUTONAT_V1_PROTOCOL_ID)))
        flare_reachability_poke(&an->reach, flare_io_now(h->io));
    arm(an);
}

void flare__autonat_addrs_changed(flare_host *h, void *state, flare__addrs_change why)
{
    flare__autonat *an = state;
    (void)why;
    if (!an || !an->client || h->destroying || flare_io_now(h->io) < an->boot_at)
        return;
    refresh_addrs(an);
    arm(an);
}

/* ---- dial-back handler --------------------------------------------------------------- */

typedef struct back_reader {
    flare__autonat *an;
    flare_buf in;
} back_reader;

static void back_reader_done(flare_stream *s, back_reader *b, int ok)
{
    flare_stream_set_user(s, &flare__autonat_drain_cbs, NULL);
    flare_buf_free(&b->in);
    flare__free(b->an->h->mem, b);
    if (!ok)
        flare__stream_abort(s);
}

/* Offers the nonce to every pending v2 probe; writes the response on a match. */
static int match_nonce(flare__autonat *an, flare_stream *s, uint64_t nonce)
{
    flare_conn *c = flare_stream_conn(s);
    flare_buf out;
    flare_buf_init(&out, an->h->mem);
    int matched = 0;
    for (probe *p = an->probes; p && !matched; p = p->next) {
        if (!p->v2 || !p->s)
            continue;
        int same = flare_stream_conn(p->s) == c;
        /* A dial-back to a port our gateway maps arrives on the listen port. */
        flare_multiaddr la;
        const flare_multiaddr *local = flare__conn_local_ma(c, &la);
        for (size_t i = 0; i < p->c2.naddrs; i++)
            if (flare__portmap_maps_to(an->h, &p->c2.addrs[i], &la))
                local = &p->c2.addrs[i];
        if (flare_autonat2_client_req_dial_back(&p->c2, nonce, local, same, &out) == 0)
            matched = 1;
    }
    if (matched && flare_stream_write(s, out.base, out.len) >= 0)
        flare_stream_close_write(s);
    else
        matched = 0;
    flare_buf_free(&out);
    return matched;
}

static void back_data(flare_stream *s, const uint8_t *data, size_t len, void *user)
{
    back_reader *b = user;
    if (b->in.len + len > 64 || flare_buf_append(&b->in, data, len)) {
        back_reader_done(s, b, 0);
        return;
    }
    size_t used;
    uint64_t nonce;
    int rv = flare_autonat2_parse_dial_back(b->in.base, b->in.len, &used, &nonce);
    if (rv == FLARE_ERR_AGAIN)
        return;
    flare__autonat *an = b->an;
    int ok = rv == 0 && match_nonce(an, s, nonce);
    back_reader_done(s, b, ok);
}

static void back_close(flare_stream *s, int err, void *user)
{
    back_reader *b = user;
    (void)err;
    (void)s;
    flare_buf_free(&b->in);
    flare__free(b->an->h->mem, b);
}

static const flare_stream_cbs back_reader_cbs = {.on_data = back_data, .on_close = back_close};

static void back_open(flare_stream *s, int status, void *user)
{
    flare__autonat *an = user;
    if (status)
        return;
    back_reader *b = flare__calloc(an->h->mem, 1, sizeof(*b));
    if (!b) {
        flare__stream_abort(s);
        return;
    }
    b->an = an;
    flare_buf_init(&b->in, an->h->mem);
    flare_stream_set_user(s, &back_reader_cbs, b);
}

static const flare_stream_cbs back_handler = {.on_open = back_open};

/* ---- lifecycle and API --------------------------------------------------------------- */

int flare__autonat_client_init(flare__autonat *an)
{
    flare_host *h = an->h;
    flare_reachability_settings rs;
    flare_reachability_settings_default(&rs);
    rs.boot_delay = h->cfg.autonat_boot_delay;
    rs.retry_interval = h->cfg.autonat_retry_interval;
    rs.refresh_interval = h->cfg.autonat_refresh_interval;
    flare_tstamp now = flare_io_now(h->io);
    int rv = flare_reachability_init(&an->reach, &rs, h->mem, now);
    if (rv)
        return rv;
    an->boot_at = flare_reachability_expiry(&an->reach);
    rv = h->io->ops->timer_new(h->io, on_timer, an, &an->timer);
    if (rv == 0)
        rv = flare_host_set_handler(h, FLARE_AUTONAT_V2_DIAL_BACK_ID, &back_handler, an, 0);
    if (rv == 0)
        arm(an);
    return rv;
}

void flare__autonat_client_free(flare__autonat *an)
{
    flare_host *h = an->h;
    while (an->probes)
        probe_free(an->probes);
    while (an->rounds) {
        round_t *rd = an->rounds;
        an->rounds = rd->next;
        h->io->ops->timer_del(rd->timer);
        flare__free(h->mem, rd);
    }
    if (an->timer)
        h->io->ops->timer_del(an->timer);
    an->timer = NULL;
    if (an->client)
        flare_reachability_free(&an->reach);
}

flare_reach_state flare_host_reachability(flare_host *h, int family)
{
    const flare__autonat *an = flare__autonat_of(h);
    if (!an || !an->client || (family != 4 && family != 6))
        return FLARE_REACH_UNKNOWN;
    return flare_reachability_family_state(&an->reach, family);
}

size_t flare_host_reachability_addrs(flare_host *h, flare_multiaddr *out, flare_reach_state *states,
                                     size_t cap)
{
    const flare__autonat *an = flare__autonat_of(h);
    if (!an || !an->client)
        return 0;
    const flare_reachability *r = &an->reach;
    size_t n = 0;
    for (size_t i = 0; i < r->naddrs && n < cap; i++, n++) {
        out[n] = r->addrs[i].addr;
        if (states)
            states[n] = r->addrs[i].t.state;
    }
    return n;
}

int flare_host_autonat_probe(flare_host *h, flare_autonat_probe_cb cb, void *user)
{
    flare__autonat *an = flare__autonat_of(h);
    if (!an || !an->client)
        return FLARE_ERR_STATE;
    return start_round(an, cb, user);
}
