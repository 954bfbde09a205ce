/*
 * WebSocket endpoint: the upgrade, then wslay's event API over memory.
 * wslay runs unbuffered (its frame-chunk callback hands us each piece of a
 * data frame as it arrives, so no message is ever held whole) and checks
 * the frame rules itself: masking by clients only, unfragmented control
 * frames of at most 125 bytes, no reserved bits, valid close codes. Its
 * own allocations (queued outgoing messages, control frames) do not go
 * through flare_mem: wslay has no allocator hook; they stay small because
 * every queued message is flushed into the caller's buffer at once.
 */
#include "transport/ws_core.h"

#include <string.h>
#include <wslay/wslay.h>

#define WS_UPGRADE_TIME (10 * FLARE_NS_PER_S)

static ssize_t ws_recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
                          void *user)
{
    flare__ws *ws = user;
    (void)flags;
    if (ws->inlen == 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    size_t n = len < ws->inlen ? len : ws->inlen;
    memcpy(buf, ws->in, n);
    ws->in += n;
    ws->inlen -= n;
    return (ssize_t)n;
}

static ssize_t ws_send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                          void *user)
{
    flare__ws *ws = user;
    (void)flags;
    if (!ws->wire || flare_buf_append(ws->wire, data, len)) {
        ws->cb_err = FLARE_ERR_NOMEM;
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return (ssize_t)len;
}

static int ws_genmask_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *user)
{
    flare__ws *ws = user;
    (void)ctx;
    ws->rng.fn(buf, len, ws->rng.user);
    return 0;
}

static void ws_frame_start_cb(wslay_event_context_ptr ctx,
                              const struct wslay_event_on_frame_recv_start_arg *arg, void *user)
{
    flare__ws *ws = user;
    (void)ctx;
    ws->frame_op = arg->opcode;
    if (arg->opcode == WSLAY_BINARY_FRAME || arg->opcode == WSLAY_TEXT_FRAME)
        ws->msg_op = arg->opcode;
}

static void ws_frame_chunk_cb(wslay_event_context_ptr ctx,
                              const struct wslay_event_on_frame_recv_chunk_arg *arg, void *user)
{
    flare__ws *ws = user;
    int data = ws->frame_op == WSLAY_BINARY_FRAME ||
               (ws->frame_op == WSLAY_CONTINUATION_FRAME && ws->msg_op == WSLAY_BINARY_FRAME);
    if (ws->frame_op == WSLAY_TEXT_FRAME ||
        (ws->frame_op == WSLAY_CONTINUATION_FRAME && ws->msg_op == WSLAY_TEXT_FRAME)) {
        /* The byte stream travels in binary messages only. */
        if (!ws->cb_err)
            ws->cb_err = FLARE_ERR_PROTO;
        wslay_event_shutdown_read(ctx);
        return;
    }
    if (data && arg->data_length && !ws->cb_err &&
        flare_buf_append(ws->app, arg->data, arg->data_length)) {
        ws->cb_err = FLARE_ERR_NOMEM;
        wslay_event_shutdown_read(ctx);
    }
}

static const struct wslay_event_callbacks ws_callbacks = {
    .recv_callback = ws_recv_cb,
    .send_callback = ws_send_cb,
    .genmask_callback = ws_genmask_cb,
    .on_frame_recv_start_callback = ws_frame_start_cb,
    .on_frame_recv_chunk_callback = ws_frame_chunk_cb,
};

int flare__ws_init(flare__ws *ws, const flare__ws_settings *s, flare_tstamp now,
                   const flare_mem *mem)
{
    memset(ws, 0, sizeof(*ws));
    if (s->client && !s->rng.fn)
        return FLARE_ERR_INVALID_ARG;
    ws->client = s->client;
    ws->rng = s->rng;
    ws->frame_max = s->frame_max ? s->frame_max : FLARE__WS_FRAME_MAX;
    ws->deadline = now + (s->upgrade_time ? s->upgrade_time : WS_UPGRADE_TIME);
    flare_buf_init(&ws->hdr, mem);
    return 0;
}

void flare__ws_free(flare__ws *ws)
{
    if (ws->ctx)
        wslay_event_context_free(ws->ctx);
    ws->ctx = NULL;
    flare_buf_free(&ws->hdr);
}

int flare__ws_start(flare__ws *ws, flare_buf *wire, const char *host, const char *path)
{
    if (!ws->client || ws->state != FLARE__WS_UPGRADE)
        return FLARE_ERR_STATE;
    uint8_t nonce[16];
    char key[FLARE__WS_KEY_LEN + 1];
    ws->rng.fn(nonce, sizeof(nonce), ws->rng.user);
    int rv = flare__ws_http_request(wire, host, path ? path : "/", nonce, key);
    if (rv == 0)
        rv = flare__ws_accept_for(key, FLARE__WS_KEY_LEN, ws->accept);
    return rv;
}

static int open_framing(flare__ws *ws)
{
    int rv = ws->client ? wslay_event_context_client_init(&ws->ctx, &ws_callbacks, ws)
                        : wslay_event_context_server_init(&ws->ctx, &ws_callbacks, ws);
    if (rv)
        return FLARE_ERR_NOMEM;
    wslay_event_config_set_no_buffering(ws->ctx, 1);
    wslay_event_config_set_max_recv_msg_length(ws->ctx, ws->frame_max);
    ws->state = FLARE__WS_OPEN;
    ws->deadline = FLARE_TSTAMP_NEVER;
    flare_buf_free(&ws->hdr);
    return 0;
}

/* Upgrade bytes: returns how many of data belonged to the header block
 * (*done once it is complete), or an error. */
static int upgrade_input(flare__ws *ws, const uint8_t *data, size_t len, flare_buf *wire,
                         size_t *used, int *done)
{
    size_t before = ws->hdr.len;
    size_t take = FLARE__WS_HTTP_MAX - before;
    if (take > len)
        take = len;
    int rv = flare_buf_append(&ws->hdr, data, take);
    if (rv)
        return rv;
    /* Rescan from just before the new bytes (the blank line may straddle). */
    size_t from = before > 3 ? before - 3 : 0;
    size_t end = flare__ws_http_end(ws->hdr.base + from, ws->hdr.len - from);
    *done = 0;
    *used = take;
    if (!end) {
        if (ws->hdr.len < FLARE__WS_HTTP_MAX)
            return 0;
        ws->state = FLARE__WS_CLOSED;
        if (ws->client)
            return FLARE_ERR_TOO_LARGE;
        ws->refused = 431;
        flare__ws_http_refusal(wire, 431);
        return FLARE_ERR_TOO_LARGE;
    }
    end += from;
    *used = end - before;
    *done = 1;
    if (ws->client) {
        rv = flare__ws_http_parse_response(ws->hdr.base, end, ws->accept);
        if (rv) {
            ws->state = FLARE__WS_CLOSED;
            return rv;
        }
        return open_framing(ws);
    }
    char accept[FLARE__WS_ACCEPT_LEN + 1];
    int status = flare__ws_http_parse_request(ws->hdr.base, end, accept);
    if (status) {
        ws->state = FLARE__WS_CLOSED;
        ws->refused = status;
        flare__ws_http_refusal(wire, status);
        return status == 431 ? FLARE_ERR_TOO_LARGE : FLARE_ERR_PROTO;
    }
    rv = flare__ws_http_response(wire, accept);
    if (rv == 0)
        rv = open_framing(ws);
    return rv;
}

/* After wslay ran: sends what it queued (pongs, close frames) and turns its
 * state into our result. */
static int after_wslay(flare__ws *ws, int rv, unsigned *events)
{
    int srv = wslay_event_send(ws->ctx);
    if (ws->cb_err) {
        /* A text message, or our own allocation failed: tell the peer why. */
        if (ws->cb_err == FLARE_ERR_PROTO) {
            wslay_event_queue_close(ws->ctx, WSLAY_CODE_UNSUPPORTED_DATA, NULL, 0);
            wslay_event_send(ws->ctx);
        }
        ws->state = FLARE__WS_CLOSED;
        return ws->cb_err;
    }
    if (rv || srv) {
        ws->state = FLARE__WS_CLOSED;
        return rv == WSLAY_ERR_NOMEM || srv == WSLAY_ERR_NOMEM ? FLARE_ERR_NOMEM : FLARE_ERR_PROTO;
    }
    if (wslay_event_get_close_received(ws->ctx)) {
        ws->close_code = wslay_event_get_status_code_received(ws->ctx);
        ws->state = FLARE__WS_CLOSED;
        *events |= FLARE__WS_EV_EOF;
        return 0;
    }
    if (!wslay_event_get_read_enabled(ws->ctx)) {
        /* wslay refused a frame and queued its close frame. */
        ws->state = FLARE__WS_CLOSED;
        return wslay_event_get_status_code_sent(ws->ctx) == WSLAY_CODE_MESSAGE_TOO_BIG
                   ? FLARE_ERR_TOO_LARGE
                   : FLARE_ERR_PROTO;
    }
    return 0;
}

int flare__ws_input(flare__ws *ws, const uint8_t *data, size_t len, flare_buf *app, flare_buf *wire,
                    unsigned *events)
{
    *events = 0;
    if (ws->state == FLARE__WS_CLOSED)
        return 0; /* nothing may follow a close frame or a refusal */
    if (ws->state == FLARE__WS_UPGRADE) {
        size_t used;
        int done;
        int rv = upgrade_input(ws, data, len, wire, &used, &done);
        if (rv || !done)
            return rv;
        *events |= FLARE__WS_EV_OPEN;
        data += used;
        len -= used;
        if (len == 0)
            return 0;
    }
    ws->in = data;
    ws->inlen = len;
    ws->app = app;
    ws->wire = wire;
    int rv = wslay_event_recv(ws->ctx);
    rv = after_wslay(ws, rv, events);
    ws->in = NULL;
    ws->inlen = 0;
    ws->app = ws->wire = NULL;
    return rv;
}

static int flush(flare__ws *ws, flare_buf *wire)
{
    ws->wire = wire;
    int rv = wslay_event_send(ws->ctx);
    ws->wire = NULL;
    if (ws->cb_err)
        return ws->cb_err;
    return rv ? FLARE_ERR_PROTO : 0;
}

int flare__ws_write(flare__ws *ws, const uint8_t *data, size_t len, flare_buf *wire)
{
    if (ws->state != FLARE__WS_OPEN || !wslay_event_get_write_enabled(ws->ctx))
        return FLARE_ERR_STATE;
    while (len) {
        size_t n = len < FLARE__WS_MSG_OUT ? len : FLARE__WS_MSG_OUT;
        struct wslay_event_msg m = {.opcode = WSLAY_BINARY_FRAME, .msg = data, .msg_length = n};
        if (wslay_event_queue_msg(ws->ctx, &m))
            return FLARE_ERR_NOMEM;
        /* Flush each message: wslay's queue never holds more than one. */
        int rv = flush(ws, wire);
        if (rv)
            return rv;
        data += n;
        len -= n;
    }
    return 0;
}

int flare__ws_ping(flare__ws *ws, const uint8_t *payload, size_t len, flare_buf *wire)
{
    if (ws->state != FLARE__WS_OPEN)
        return FLARE_ERR_STATE;
    if (len > 125)
        return FLARE_ERR_INVALID_ARG;
    struct wslay_event_msg m = {.opcode = WSLAY_PING, .msg = payload, .msg_length = len};
    if (wslay_event_queue_msg(ws->ctx, &m))
        return FLARE_ERR_STATE;
    return flush(ws, wire);
}

int flare__ws_close(flare__ws *ws, uint16_t code, flare_buf *wire)
{
    if (!ws->ctx || wslay_event_get_close_sent(ws->ctx))
        return FLARE_ERR_STATE;
    if (wslay_event_queue_close(ws->ctx, code, NULL, 0))
        return FLARE_ERR_STATE;
    return flush(ws, wire);
}

flare_tstamp flare__ws_deadline(const flare__ws *ws)
{
    return ws->state == FLARE__WS_UPGRADE ? ws->deadline : FLARE_TSTAMP_NEVER;
}

int flare__ws_check_time(const flare__ws *ws, flare_tstamp now)
{
    return ws->state == FLARE__WS_UPGRADE && now >= ws->deadline ? FLARE_ERR_TIMEOUT : 0;
}
