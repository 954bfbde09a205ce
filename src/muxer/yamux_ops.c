/* yamux (src/muxer/yamux/) behind the muxer operations. */
#include "flare/yamux.h"
#include "muxer/muxer.h"
#include "muxer/yamux/yamux_int.h"

_Static_assert(FLARE_YAMUX_HEADER_LEN <= FLARE__MUX_HDR_MAX, "yamux header fits");

static int y_recv(void *m, const uint8_t *in, size_t len, flare_tstamp now, flare_buf *out)
{
    return flare_yamux_recv(m, in, len, now, out);
}

static int y_open(void *m, uint32_t *id, flare_buf *out)
{
    return flare_yamux_open_stream(m, id, out);
}

static long y_write(void *m, uint32_t id, const uint8_t *data, size_t len, flare_buf *out)
{
    return flare_yamux_write(m, id, data, len, out);
}

static long y_write_frame(void *m, uint32_t id, size_t len, uint8_t *hdr, size_t *hdr_len,
                          flare_buf *out)
{
    *hdr_len = FLARE_YAMUX_HEADER_LEN;
    return flare_yamux_write_frame(m, id, len, hdr, out);
}

static long y_read(void *m, uint32_t id, uint8_t *dst, size_t cap, flare_buf *out)
{
    return flare_yamux_read(m, id, dst, cap, out);
}

static size_t y_readable(const void *m, uint32_t id)
{
    return flare_yamux_readable(m, id);
}

static int y_close(void *m, uint32_t id, flare_buf *out)
{
    return flare_yamux_close_stream(m, id, out);
}

static int y_reset(void *m, uint32_t id, flare_buf *out)
{
    return flare_yamux_reset_stream(m, id, out);
}

static int y_goaway(void *m, int error, flare_buf *out)
{
    return flare_yamux_goaway(m, error ? FLARE_YAMUX_GOAWAY_PROTO_ERROR : 0, out);
}

static int y_poll(void *m, flare__mux_event *ev)
{
    static const flare__mux_event_type map[] = {
        [FLARE_YAMUX_EV_STREAM_OPENED] = FLARE__MUX_EV_STREAM_OPENED,
        [FLARE_YAMUX_EV_STREAM_READABLE] = FLARE__MUX_EV_STREAM_READABLE,
        [FLARE_YAMUX_EV_STREAM_WRITABLE] = FLARE__MUX_EV_STREAM_WRITABLE,
        [FLARE_YAMUX_EV_STREAM_REMOTE_CLOSED] = FLARE__MUX_EV_STREAM_REMOTE_CLOSED,
        [FLARE_YAMUX_EV_STREAM_RESET] = FLARE__MUX_EV_STREAM_RESET,
        [FLARE_YAMUX_EV_STREAM_CLOSED] = FLARE__MUX_EV_STREAM_CLOSED,
        [FLARE_YAMUX_EV_PING_RTT] = FLARE__MUX_EV_OTHER,
        [FLARE_YAMUX_EV_GOAWAY] = FLARE__MUX_EV_GOAWAY,
        [FLARE_YAMUX_EV_SESSION_ERROR] = FLARE__MUX_EV_SESSION_ERROR,
    };
    flare_yamux_event ye;
    if (flare_yamux_poll_event(m, &ye) != 1)
        return 0;
    ev->type = (size_t)ye.type < sizeof(map) / sizeof(map[0]) ? map[ye.type] : FLARE__MUX_EV_OTHER;
    ev->stream_id = ye.stream_id;
    ev->error = ye.error;
    return 1;
}

static flare_tstamp y_expiry(const void *m)
{
    return flare_yamux_expiry(m);
}

static int y_handle_expiry(void *m, flare_tstamp now, flare_buf *out)
{
    return flare_yamux_handle_expiry(m, now, out);
}

static int y_end_turn(void *m, flare_buf *out)
{
    return flare__yamux_flush_acks(m, out);
}

static size_t y_num_streams(const void *m)
{
    return flare_yamux_num_streams(m);
}

static void y_free(void *m)
{
    flare_yamux_del(m);
}

static const flare__muxer_ops yamux_ops = {
    .recv = y_recv,
    .open_stream = y_open,
    .write = y_write,
    .write_frame = y_write_frame,
    .read = y_read,
    .readable = y_readable,
    .close_stream = y_close,
    .reset_stream = y_reset,
    .goaway = y_goaway,
    .poll_event = y_poll,
    .expiry = y_expiry,
    .handle_expiry = y_handle_expiry,
    .num_streams = y_num_streams,
    .end_turn = y_end_turn,
    .free = y_free,
};

static int y_new(void **m, const flare__muxer_cfg *cfg)
{
    flare_yamux_settings ys;
    flare_yamux_settings_default(&ys);
    ys.is_client = cfg->is_client;
    ys.max_streams = cfg->max_streams;
    ys.keepalive_interval = cfg->keepalive_interval;
    flare_yamux *y = NULL;
    int rv = flare_yamux_new(&y, &ys, cfg->mem, cfg->rng, cfg->now);
    if (y)
        y->lazy_ack = 1; /* the host calls end_turn before every write */
    *m = y;
    return rv;
}

const flare__muxer flare__mux_yamux = {
    .id = "/yamux/1.0.0",
    .ops = &yamux_ops,
    .new_session = y_new,
};
