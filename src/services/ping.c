/* The ping service (/ipfs/ping/1.0.0): host glue around the ping cores. */
#include <string.h>

#include "core/mem.h"
#include "flare/ping.h"
#include "services/services.h"

/* ---- server ------------------------------------------------------------------- */

static void srv_open(flare_stream *s, int status, void *user)
{
    flare_host *h = user;
    if (status)
        return;
    flare_ping_server *ps = flare__malloc(h->mem, sizeof(*ps));
    if (!ps) {
        flare__stream_abort(s);
        return;
    }
    flare_ping_server_init(ps);
    flare_stream_set_user(s, NULL, ps);
}

static void srv_data(flare_stream *s, const uint8_t *data, size_t len, void *user)
{
    flare_ping_server *ps = user;
    flare_buf out;
    flare_buf_init(&out, NULL);
    if (flare_ping_server_recv(ps, data, len, &out) == 0 && out.len)
        flare_stream_write(s, out.base, out.len);
    flare_buf_free(&out);
}

static void srv_eof(flare_stream *s, void *user)
{
    (void)user;
    flare_stream_close_write(s);
}

static void srv_close(flare_stream *s, int err, void *user)
{
    flare_conn *c = flare_stream_conn(s);
    (void)err;
    /* user is the host until srv_open replaced it with the server state. */
    if (user != c->host)
        flare__free(c->host->mem, user);
}

static const flare_stream_cbs server_cbs = {
    .on_open = srv_open, .on_data = srv_data, .on_eof = srv_eof, .on_close = srv_close};

static int ping_init(flare_host *h, void **state)
{
    (void)state;
    if (!h->cfg.enable_ping)
        return 0;
    return flare_host_set_handler(h, FLARE_PING_PROTOCOL_ID, &server_cbs, h,
                                  FLARE_HANDLER_ALLOW_LIMITED);
}

/* ---- client ------------------------------------------------------------------- */

typedef struct ping_req {
    flare_host *host;
    flare_peerid peer;
    flare_ping_client pc;
    flare_io_timer *timer;
    flare_stream *stream;
    flare_ping_cb cb;
    void *user;
    int done;
} ping_req;

static void req_finish(ping_req *r, int status, flare_tstamp rtt)
{
    if (r->done)
        return;
    r->done = 1;
    flare_host *h = r->host;
    if (status == 0) {
        flare_host_event ev = {
            .type = FLARE_HOST_EV_PING,
            .u.ping = {.conn = flare_stream_conn(r->stream), .peer = &r->peer, .rtt = rtt}};
        flare__host_emit(h, &ev);
    }
    if (r->cb)
        r->cb(h, &r->peer, status, rtt, r->user);
}

static void req_free(ping_req *r)
{
    r->host->io->ops->timer_del(r->timer);
    flare__free(r->host->mem, r);
}

static void cli_open(flare_stream *s, int status, void *user)
{
    ping_req *r = user;
    (void)s;
    if (status)
        req_finish(r, status, 0);
}

static void cli_data(flare_stream *s, const uint8_t *data, size_t len, void *user)
{
    ping_req *r = user;
    flare_tstamp rtt = 0;
    int rv = flare_ping_client_recv(&r->pc, data, len, flare_io_now(r->host->io), &rtt);
    if (rv == 0)
        return;
    req_finish(r, rv == 1 ? 0 : rv, rtt);
    if (rv == 1) {
        flare_stream_close_write(s);
        return;
    }
    flare__stream_abort(s); /* no on_close after an abort: free here */
    req_free(r);
}

static void cli_close(flare_stream *s, int err, void *user)
{
    ping_req *r = user;
    (void)s;
    req_finish(r, err ? err : FLARE_ERR_CLOSED, 0);
    req_free(r);
}

static void cli_timeout(flare_io_timer *t, void *user)
{
    ping_req *r = user;
    (void)t;
    req_finish(r, FLARE_ERR_TIMEOUT, 0);
    flare__stream_abort(r->stream);
    req_free(r);
}

static const flare_stream_cbs client_cbs = {
    .on_open = cli_open, .on_data = cli_data, .on_close = cli_close};

int flare_host_ping(flare_host *h, const flare_peerid *peer, flare_ping_cb cb, void *user)
{
    ping_req *r = flare__calloc(h->mem, 1, sizeof(*r));
    if (!r)
        return FLARE_ERR_NOMEM;
    r->host = h;
    r->peer = *peer;
    r->cb = cb;
    r->user = user;
    int rv = flare_ping_client_init(&r->pc, FLARE_PING_DEFAULT_TIMEOUT, h->rng);
    if (rv == 0)
        rv = h->io->ops->timer_new(h->io, cli_timeout, r, &r->timer);
    if (rv) {
        flare__free(h->mem, r);
        return rv;
    }
    rv = flare_host_new_stream(h, peer, FLARE_PING_PROTOCOL_ID, &client_cbs, r,
                               FLARE_STREAM_ALLOW_LIMITED, &r->stream);
    if (rv) {
        req_free(r);
        return rv;
    }
    flare_buf out;
    flare_buf_init(&out, h->mem);
    flare_tstamp now = flare_io_now(h->io);
    rv = flare_ping_client_send(&r->pc, now, &out);
    if (rv == 0)
        rv = flare_stream_write(r->stream, out.base, out.len);
    flare_buf_free(&out);
    if (rv) {
        r->done = 1;
        flare__stream_abort(r->stream);
        req_free(r);
        return rv;
    }
    h->io->ops->timer_start(r->timer, flare_ping_client_expiry(&r->pc));
    return 0;
}

static const flare__svc_stream_limit limits[] = {{FLARE_PING_PROTOCOL_ID, 4}, {NULL, 0}};

const flare__service flare__svc_ping = {.name = "ping", .stream_limits = limits, .init = ping_init};
