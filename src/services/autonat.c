/*
 * AutoNAT servers (v1 /libp2p/autonat/1.0.0, v2 /libp2p/autonat/2/...):
 * host glue around the cores of flare/autonat.h.
 *
 * Policy lives in the cores (observed IP only, no relayed requesters, rate
 * limits, dial data); the glue does the dialing: always a NEW connection
 * (force_new) from a port other than our listen port (no_reuse), so that a
 * NAT or firewall that only lets in replies to the requester's own traffic
 * does not make the requester look reachable. Every dial-back has a 15 s
 * deadline and its connection is closed after use.
 *
 * A request object (sreq) lives until its stream is answered or gone AND
 * every dial it started has called back (the host always calls back, even
 * on teardown), so no callback ever sees freed memory.
 */
#include <string.h>

#include "core/mem.h"
#include "flare/lpframe.h"
#include "services/autonat.h"

#define V1_DIAL_ADDRS 4 /* addresses dialed in parallel for one v1 request */

typedef enum { SREQ_READ, SREQ_DIAL, SREQ_DONE } sreq_phase;

typedef struct flare__an_sreq {
    struct flare__an_sreq *next, *prev;
    flare__autonat *an;
    int v2;
    sreq_phase phase;
    flare_stream *s; /* request stream; NULL once answered or gone */
    flare_buf in;
    flare_peerid requester;
    /* One or the other: a public node answers many requests at once. */
    union {
        flare_autonat2_server_req r2; /* v2 */
        struct {                      /* v1: the addresses we dial back */
            size_t nd1;
            flare_multiaddr d1[V1_DIAL_ADDRS];
        };
    };
    unsigned dials_pending;
    unsigned dials_failed;
    flare_conn *back; /* v2: the dial-back connection */
    flare_stream *bs; /* v2: the dial-back stream */
    flare_buf bin;    /* v2: DialBackResponse bytes */
    flare_io_timer *timer;
} sreq;

static void sreq_maybe_free(sreq *r);
static void dial_timeout(flare_io_timer *t, void *user);

/* ---- shared helpers ------------------------------------------------------------ */

static void drain_data(flare_stream *s, const uint8_t *d, size_t n, void *u)
{
    (void)s;
    (void)d;
    (void)n;
    (void)u;
}

static void drain_eof(flare_stream *s, void *u)
{
    (void)u;
    flare_stream_close_write(s);
}

const flare_stream_cbs flare__autonat_drain_cbs = {.on_data = drain_data, .on_eof = drain_eof};

void flare__autonat_detach(flare_stream *s)
{
    flare_stream_set_user(s, &flare__autonat_drain_cbs, NULL);
    flare_stream_close_write(s);
}

static flare_host *an_host(const sreq *r)
{
    return r->an->h;
}

/* ---- request lifecycle ----------------------------------------------------------- */

static sreq *sreq_new(flare__autonat *an, flare_stream *s, int v2)
{
    flare_host *h = an->h;
    sreq *r = flare__calloc(h->mem, 1, sizeof(*r));
    if (!r)
        return NULL;
    if (h->io->ops->timer_new(h->io, dial_timeout, r, &r->timer) != 0) {
        flare__free(h->mem, r);
        return NULL;
    }
    r->an = an;
    r->v2 = v2;
    r->s = s;
    r->requester = flare_stream_conn(s)->peer;
    flare_buf_init(&r->in, h->mem);
    flare_buf_init(&r->bin, h->mem);
    r->next = an->sreqs;
    if (an->sreqs)
        an->sreqs->prev = r;
    an->sreqs = r;
    return r;
}

static void sreq_free(sreq *r)
{
    flare__autonat *an = r->an;
    if (r->prev)
        r->prev->next = r->next;
    else
        an->sreqs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    an->h->io->ops->timer_del(r->timer);
    flare_buf_free(&r->in);
    flare_buf_free(&r->bin);
    flare__free(an->h->mem, r);
}

static void sreq_maybe_free(sreq *r)
{
    if (r->phase == SREQ_DONE && !r->s && !r->bs && r->dials_pending == 0)
        sreq_free(r);
}

/* Sends out (if any) on the request stream; then either half-closes it
 * (answered) or resets it (protocol error without a reply). Either way we
 * stop listening to it. */
static void sreq_reply(sreq *r, const flare_buf *out, int reset)
{
    flare_stream *s = r->s;
    r->s = NULL;
    r->phase = SREQ_DONE;
    if (!s)
        return;
    if (out && out->len && flare_stream_write(s, out->base, out->len) < 0)
        reset = 1;
    if (reset && !(out && out->len))
        flare__stream_abort(s);
    else
        flare__autonat_detach(s);
}

/* Closes a dial-back connection we no longer need. */
static void close_back(sreq *r)
{
    if (r->bs) {
        flare_stream *bs = r->bs;
        r->bs = NULL;
        flare__stream_abort(bs);
    }
    if (r->back) {
        flare_conn *c = r->back;
        r->back = NULL;
        flare_conn_close(c);
    }
}

/* ---- v1 ------------------------------------------------------------------------- */

static void v1_finish(sreq *r, const flare_multiaddr *connected)
{
    if (r->phase != SREQ_DIAL)
        return;
    an_host(r)->io->ops->timer_stop(r->timer);
    flare_buf out;
    flare_buf_init(&out, an_host(r)->mem);
    flare_multiaddr bare;
    if (connected) {
        bare = *connected;
        flare_multiaddr_decapsulate(&bare, FLARE_MA_P2P);
    }
    int rv = flare_autonat1_server_dial_result(connected ? &bare : NULL, &out);
    sreq_reply(r, &out, rv != 0);
    flare_buf_free(&out);
}

static void v1_dial_cb(flare_host *h, flare_conn *c, int status, void *user)
{
    sreq *r = user;
    (void)h;
    r->dials_pending--;
    if (status == 0 && c) {
        /* Connected: that is the whole answer; the connection is not needed. */
        flare_multiaddr ma = *flare_conn_remote_addr(c);
        flare_conn_close(c);
        v1_finish(r, &ma);
    } else {
        r->dials_failed++;
        if (r->dials_failed == r->nd1)
            v1_finish(r, NULL);
    }
    sreq_maybe_free(r);
}

static void v1_start_dials(sreq *r)
{
    flare_host *h = an_host(r);
    flare_dial_opts o = {.no_reuse = 1, .force_new = 1};
    r->phase = SREQ_DIAL;
    h->io->ops->timer_start(r->timer, flare_io_now(h->io) + FLARE_AUTONAT_DIAL_TIMEOUT);
    size_t n = r->nd1;
    for (size_t i = 0; i < n; i++) {
        flare_multiaddr ma = r->d1[i];
        if (flare_multiaddr_with_peerid(&ma, &r->requester) == 0 &&
            flare_host_dial(h, &ma, &o, v1_dial_cb, r) == 0)
            r->dials_pending++;
        else
            r->dials_failed++;
    }
    if (r->dials_failed == n)
        v1_finish(r, NULL);
}

static void v1_process(sreq *r)
{
    flare__autonat *an = r->an;
    flare_host *h = an->h;
    flare_conn *c = flare_stream_conn(r->s);
    flare_buf out;
    flare_buf_init(&out, h->mem);
    size_t used = 0;
    flare_multiaddr ra;
    flare_autonat1_dial d;
    int rv = flare_autonat1_server_handle(&an->s1, r->in.base, r->in.len, &used, &c->peer,
                                          flare__conn_remote_ma(c, &ra), c->limited,
                                          flare_io_now(h->io), &d, &out);
    if (rv == FLARE_ERR_AGAIN) {
        if (r->in.len > FLARE_AUTONAT_V1_MSG_MAX + 10)
            sreq_reply(r, NULL, 1);
    } else if (rv < 0) {
        sreq_reply(r, &out, 1);
    } else if (rv == 0) {
        sreq_reply(r, &out, 0);
    } else {
        r->nd1 = d.naddrs < V1_DIAL_ADDRS ? d.naddrs : V1_DIAL_ADDRS;
        memcpy(r->d1, d.addrs, r->nd1 * sizeof(*r->d1));
        v1_start_dials(r);
    }
    flare_buf_free(&out);
}

/* ---- v2 ------------------------------------------------------------------------- */

static void v2_finish(sreq *r, flare_autonat2_dial_status ds)
{
    if (r->phase != SREQ_DIAL)
        return;
    an_host(r)->io->ops->timer_stop(r->timer);
    close_back(r);
    flare_buf out;
    flare_buf_init(&out, an_host(r)->mem);
    int rv = flare_autonat2_server_req_dial_result(&r->r2, ds, &out);
    sreq_reply(r, &out, rv != 0);
    flare_buf_free(&out);
}

static void back_data(flare_stream *s, const uint8_t *data, size_t len, void *user)
{
    sreq *r = user;
    (void)s;
    if (flare_buf_append(&r->bin, data, len)) {
        v2_finish(r, FLARE_AUTONAT2_DIAL_E_DIAL_BACK_ERROR);
        return;
    }
    size_t used;
    int rv = flare_autonat2_parse_dial_back_response(r->bin.base, r->bin.len, &used);
    if (rv == FLARE_ERR_AGAIN)
        return;
    v2_finish(r, rv == 0 ? FLARE_AUTONAT2_DIAL_OK : FLARE_AUTONAT2_DIAL_E_DIAL_BACK_ERROR);
    sreq_maybe_free(r);
}

static void back_close(flare_stream *s, int err, void *user)
{
    sreq *r = user;
    (void)s;
    (void)err;
    r->bs = NULL;
    v2_finish(r, FLARE_AUTONAT2_DIAL_E_DIAL_BACK_ERROR);
    sreq_maybe_free(r);
}

static const flare_stream_cbs back_cbs = {.on_data = back_data, .on_close = back_close};

static void v2_dial_cb(flare_host *h, flare_conn *c, int status, void *user)
{
    sreq *r = user;
    r->dials_pending--;
    if (r->phase != SREQ_DIAL || h->destroying) {
        if (c)
            flare_conn_close(c);
    } else if (status || !c) {
        v2_finish(r, FLARE_AUTONAT2_DIAL_E_DIAL_ERROR);
    } else {
        r->back = c;
        flare_buf out;
        flare_buf_init(&out, h->mem);
        int rv = flare_autonat2_encode_dial_back(&out, r->r2.nonce);
        if (rv == 0)
            rv = flare_conn_new_stream(c, FLARE_AUTONAT_V2_DIAL_BACK_ID, &back_cbs, r, 0, &r->bs);
        if (rv == 0)
            rv = flare_stream_write(r->bs, out.base, out.len) < 0 ? FLARE_ERR_CLOSED : 0;
        if (rv == 0)
            flare_stream_close_write(r->bs);
        flare_buf_free(&out);
        if (rv)
            v2_finish(r, FLARE_AUTONAT2_DIAL_E_DIAL_BACK_ERROR);
    }
    sreq_maybe_free(r);
}

static void v2_start_dial(sreq *r)
{
    flare_host *h = an_host(r);
    flare_dial_opts o = {.no_reuse = 1, .force_new = 1};
    flare_multiaddr ma = r->r2.target;
    r->phase = SREQ_DIAL;
    h->io->ops->timer_start(r->timer, flare_io_now(h->io) + FLARE_AUTONAT_DIAL_TIMEOUT);
    if (flare_multiaddr_with_peerid(&ma, &r->requester) == 0 &&
        flare_host_dial(h, &ma, &o, v2_dial_cb, r) == 0)
        r->dials_pending++;
    else
        v2_finish(r, FLARE_AUTONAT2_DIAL_E_DIAL_ERROR);
}

static void v2_process(sreq *r)
{
    flare_host *h = an_host(r);
    flare_buf out;
    flare_buf_init(&out, h->mem);
    int rv = 0;
    size_t off = 0;
    for (;;) {
        size_t used = 0;
        rv = flare_autonat2_server_req_recv(&r->r2, r->in.base + off, r->in.len - off, &used,
                                            flare_io_now(h->io), &out);
        off += used;
        if (rv != 0 || used == 0 || off == r->in.len)
            break;
    }
    flare_buf_consume(&r->in, off);
    if (rv < 0) {
        sreq_reply(r, &out, 1);
    } else if (rv == 2) {
        sreq_reply(r, &out, 0);
    } else {
        if (out.len && flare_stream_write(r->s, out.base, out.len) < 0)
            sreq_reply(r, NULL, 1);
        else if (r->in.len > FLARE_AUTONAT_V2_MSG_MAX + 10)
            sreq_reply(r, NULL, 1);
        else if (rv == 1)
            v2_start_dial(r);
    }
    flare_buf_free(&out);
}

/* ---- streams and timers ---------------------------------------------------------- */

static void dial_timeout(flare_io_timer *t, void *user)
{
    sreq *r = user;
    (void)t;
    if (r->v2)
        v2_finish(r,
                  r->bs ? FLARE_AUTONAT2_DIAL_E_DIAL_BACK_ERROR : FLARE_AUTONAT2_DIAL_E_DIAL_ERROR);
    else
        v1_finish(r, NULL);
    sreq_maybe_free(r);
}

static void sreq_data(flare_stream *s, const uint8_t *data, size_t len, void *user)
{
    sreq *r = user;
    (void)s;
    if (r->phase != SREQ_READ && !(r->v2 && r->phase == SREQ_DIAL))
        return;
    if (flare_buf_append(&r->in, data, len)) {
        sreq_reply(r, NULL, 1);
    } else if (r->phase == SREQ_DIAL) {
        /* Nothing may follow the request (or the dial data) while we dial. */
        sreq_reply(r, NULL, 1);
        close_back(r);
    } else if (r->v2) {
        v2_process(r);
    } else {
        v1_process(r);
    }
    sreq_maybe_free(r);
}

static void sreq_eof(flare_stream *s, void *user)
{
    sreq *r = user;
    (void)s;
    if (r->phase == SREQ_READ)
        sreq_reply(r, NULL, 1); /* gave up before a complete request */
    sreq_maybe_free(r);
}

static void sreq_close(flare_stream *s, int err, void *user)
{
    sreq *r = user;
    (void)s;
    (void)err;
    r->s = NULL;
    if (r->phase == SREQ_READ)
        r->phase = SREQ_DONE;
    sreq_maybe_free(r);
}

static const flare_stream_cbs sreq_cbs = {
    .on_data = sreq_data, .on_eof = sreq_eof, .on_close = sreq_close};

static void open_common(flare_stream *s, int status, flare__autonat *an, int v2)
{
    if (status)
        return;
    sreq *r = sreq_new(an, s, v2);
    if (!r) {
        flare__stream_abort(s);
        return;
    }
    flare_host *h = an->h;
    if (v2) {
        flare_conn *c = flare_stream_conn(s);
        flare_ipaddr ip;
        /* Refuse families we cannot dial instead of reporting a dial error. */
        an->s2.settings.no_ipv4 = flare__host_listen_addr_for(h, NULL, 4, &ip) != 0;
        an->s2.settings.no_ipv6 = flare__host_listen_addr_for(h, NULL, 6, &ip) != 0;
        flare_multiaddr ra;
        flare_autonat2_server_req_init(&r->r2, &an->s2, &c->peer, flare__conn_remote_ma(c, &ra),
                                       c->limited);
    }
    flare_stream_set_user(s, &sreq_cbs, r);
}

static void v1_open(flare_stream *s, int status, void *user)
{
    open_common(s, status, user, 0);
}

static void v2_open(flare_stream *s, int status, void *user)
{
    open_common(s, status, user, 1);
}

static const flare_stream_cbs v1_handler = {.on_open = v1_open};
static const flare_stream_cbs v2_handler = {.on_open = v2_open};

/* ---- registration ----------------------------------------------------------------- */

static int server_init(flare__autonat *an)
{
    flare_host *h = an->h;
    flare_autonat1_server_settings s1;
    flare_autonat1_server_settings_default(&s1);
    s1.doc_is_public = h->cfg.doc_addrs_public;
    s1.max_dial_addrs = V1_DIAL_ADDRS;
    int rv = flare_autonat1_server_init(&an->s1, &s1, h->mem);
    if (rv)
        return rv;
    an->s1_ok = 1;
    flare_autonat2_server_settings s2;
    flare_autonat2_server_settings_default(&s2);
    s2.doc_is_public = h->cfg.doc_addrs_public;
    s2.allow_quic = 1; /* the QUIC transport dials them back */
    s2.allow_ws = 1;   /* and the WebSocket transport /ws, /tls/ws, /wss */
    rv = flare_autonat2_server_init(&an->s2, &s2, h->mem, h->rng);
    if (rv)
        return rv;
    an->s2_ok = 1;
    /* Never over limited connections: a relayed requester cannot be
     * dialed back at an address we observed. */
    rv = flare_host_set_handler(h, FLARE_AUTONAT_V1_PROTOCOL_ID, &v1_handler, an, 0);
    if (rv == 0)
        rv = flare_host_set_handler(h, FLARE_AUTONAT_V2_DIAL_REQUEST_ID, &v2_handler, an, 0);
    return rv;
}

flare__autonat *flare__autonat_of(flare_host *h)
{
    return flare__svc_state(h, &flare__svc_autonat);
}

static int autonat_init(flare_host *h, void **state)
{
    if (!h->cfg.enable_autonat_server && !h->cfg.enable_autonat_client)
        return 0;
    flare__autonat *an = flare__calloc(h->mem, 1, sizeof(*an));
    if (!an)
        return FLARE_ERR_NOMEM;
    an->h = h;
    *state = an;
    an->server = h->cfg.enable_autonat_server;
    an->client = h->cfg.enable_autonat_client;
    int rv = an->server ? server_init(an) : 0;
    if (rv == 0 && an->client)
        rv = flare__autonat_client_init(an);
    return rv;
}

/* After every connection is gone (their callbacks ran): free what is left. */
static void autonat_free(flare_host *h, void *state)
{
    flare__autonat *an = state;
    if (!an)
        return;
    while (an->sreqs)
        sreq_free(an->sreqs);
    flare__autonat_client_free(an);
    if (an->s1_ok)
        flare_autonat1_server_free(&an->s1);
    if (an->s2_ok)
        flare_autonat2_server_free(&an->s2);
    flare__free(h->mem, an);
}

static const flare__svc_stream_limit limits[] = {{FLARE_AUTONAT_V1_PROTOCOL_ID, 4},
                                                 {FLARE_AUTONAT_V2_DIAL_REQUEST_ID, 4},
                                                 {FLARE_AUTONAT_V2_DIAL_BACK_ID, 4},
                                                 {NULL, 0}};

const flare__service flare__svc_autonat = {
    .name = "autonat",
    .stream_limits = limits,
    .init = autonat_init,
    .free = autonat_free,
    .on_inbound = flare__autonat_inbound,
    .on_conn_identified = flare__autonat_peer_identified,
    .on_addrs_changed = flare__autonat_addrs_changed,
};
