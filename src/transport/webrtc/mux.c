/* libp2p streams over data channels (mux.h). */
#include "transport/webrtc/mux.h"

#include <string.h>

#include "core/mem.h"
#include "transport/webrtc/frame.h"

typedef struct wstream {
    uint8_t used;
    uint8_t fin_sent, fin_pending, fin_acked; /* our direction */
    uint8_t fin_recv;                         /* the peer's direction */
    uint8_t reset;                            /* reset either way */
    uint8_t stop_recv;                        /* the peer stopped reading */
    uint8_t closing;                          /* we closed the channel */
    uint8_t gone;                             /* SCTP closed the channel */
    uint8_t want_write, readable_ev;
    uint8_t eof_read; /* the reader saw the end of the stream */
    flare_buf in;     /* payload ready to read */
    flare_buf part;   /* bytes of an incomplete message */
} wstream;

struct flare__webrtc_mux {
    flare__webrtc_mux_cfg cfg;
    flare__sctp *sctp;
    uint16_t nslots;
    wstream *st;
    size_t nstreams, buffered;
    int goaway, dead;
    flare_buf ev; /* flare__mux_event records */
    flare_buf tx; /* the message being sent */
    uint8_t rx[FLARE__SCTP_MAX_MESSAGE];
};

static void push_ev(flare__webrtc_mux *m, flare__mux_event_type t, uint32_t id, int err)
{
    flare__mux_event e = {.type = t, .stream_id = id, .error = err};
    (void)flare_buf_append(&m->ev, &e, sizeof(e));
}

static wstream *get(flare__webrtc_mux *m, uint32_t id)
{
    if ((id == 0 && m->cfg.ch0_reserved) || id >= m->nslots || !m->st[id].used)
        return NULL;
    return &m->st[id];
}

static void stream_free(flare__webrtc_mux *m, uint32_t id)
{
    wstream *s = &m->st[id];
    m->buffered -= s->in.len;
    flare_buf_free(&s->in);
    flare_buf_free(&s->part);
    memset(s, 0, sizeof(*s));
    m->nstreams--;
}

static int send_msg(flare__webrtc_mux *m, uint32_t id, int flag, const uint8_t *data, size_t len)
{
    flare_buf_reset(&m->tx);
    int rc = flare__webrtc_msg_encode(&m->tx, flag, data, len);
    if (rc != 0)
        return rc;
    return flare__sctp_send(m->sctp, (uint16_t)id, m->tx.base, m->tx.len);
}

static void close_channel(flare__webrtc_mux *m, uint32_t id)
{
    wstream *s = &m->st[id];
    if (s->closing || s->gone)
        return;
    s->closing = 1;
    (void)flare__sctp_close_channel(m->sctp, (uint16_t)id);
}

/* Both directions done and read: the channel can go. */
static void maybe_close(flare__webrtc_mux *m, uint32_t id)
{
    wstream *s = &m->st[id];
    if (s->fin_sent && s->fin_acked && s->fin_recv && s->in.len == 0)
        close_channel(m, id);
}

/* SCTP closed the channel: CLOSED once the reader has seen the end of what
 * was delivered (or the stream was reset). */
static void maybe_finish(flare__webrtc_mux *m, uint32_t id)
{
    wstream *s = &m->st[id];
    if (!s->gone || !(s->reset || s->eof_read))
        return;
    push_ev(m, FLARE__MUX_EV_STREAM_CLOSED, id, 0);
    stream_free(m, id);
}

static void reset_local(flare__webrtc_mux *m, uint32_t id, int tell_host)
{
    wstream *s = &m->st[id];
    if (!s->reset) {
        s->reset = 1;
        (void)send_msg(m, id, FLARE__WEBRTC_RESET_STREAM, NULL, 0);
        if (tell_host)
            push_ev(m, FLARE__MUX_EV_STREAM_RESET, id, FLARE_ERR_RESET);
    }
    m->buffered -= s->in.len;
    flare_buf_reset(&s->in);
    close_channel(m, id);
}

static void try_fin(flare__webrtc_mux *m, uint32_t id)
{
    wstream *s = &m->st[id];
    if (!s->fin_pending || s->reset)
        return;
    int rc = send_msg(m, id, FLARE__WEBRTC_FIN, NULL, 0);
    if (rc == FLARE_ERR_AGAIN) {
        s->want_write = 1;
        return;
    }
    s->fin_pending = 0;
    s->fin_sent = 1;
}

static void on_msg(flare__webrtc_mux *m, uint32_t id, const flare__webrtc_msg *msg)
{
    wstream *s = &m->st[id];
    if (msg->data != NULL && msg->len > 0 && !s->fin_recv && !s->reset) {
        if (flare_buf_append(&s->in, msg->data, msg->len) != 0) {
            reset_local(m, id, 1);
            return;
        }
        m->buffered += msg->len;
        if (!s->readable_ev) {
            s->readable_ev = 1;
            push_ev(m, FLARE__MUX_EV_STREAM_READABLE, id, 0);
        }
    }
    switch (msg->flag) {
    case FLARE__WEBRTC_FIN:
        if (!s->fin_recv && !s->reset) {
            s->fin_recv = 1;
            (void)send_msg(m, id, FLARE__WEBRTC_FIN_ACK, NULL, 0);
            push_ev(m, FLARE__MUX_EV_STREAM_REMOTE_CLOSED, id, 0);
        }
        break;
    case FLARE__WEBRTC_STOP_SENDING:
        if (!s->stop_recv) {
            s->stop_recv = 1;
            push_ev(m, FLARE__MUX_EV_STREAM_WRITABLE, id, 0); /* writers learn it */
        }
        break;
    case FLARE__WEBRTC_RESET_STREAM:
        if (!s->reset) {
            s->reset = 1;
            m->buffered -= s->in.len;
            flare_buf_reset(&s->in);
            push_ev(m, FLARE__MUX_EV_STREAM_RESET, id, FLARE_ERR_RESET);
            close_channel(m, id);
        }
        break;
    case FLARE__WEBRTC_FIN_ACK:
        s->fin_acked = s->fin_sent;
        break;
    default:
        break;
    }
    maybe_close(m, id);
}

static void on_data(flare__webrtc_mux *m, uint16_t id, const uint8_t *data, size_t len)
{
    wstream *s = get(m, id);
    if (s == NULL || s->reset)
        return;
    if (flare_buf_append(&s->part, data, len) != 0) {
        reset_local(m, id, 1);
        return;
    }
    while (s->part.len > 0 && !s->reset) {
        flare__webrtc_msg msg;
        long k = flare__webrtc_msg_parse(s->part.base, s->part.len, &msg);
        if (k == FLARE_ERR_AGAIN)
            break;
        if (k < 0) {
            /* Garbage or an oversized message from the peer. */
            flare_buf_reset(&s->part);
            reset_local(m, id, 1);
            return;
        }
        on_msg(m, id, &msg);
        if (!s->used)
            return;
        flare_buf_consume(&s->part, (size_t)k);
    }
}

static void on_open(flare__webrtc_mux *m, uint16_t id)
{
    if ((id == 0 && m->cfg.ch0_reserved) || id >= m->nslots)
        return;
    if (m->st[id].used && m->st[id].gone) {
        /* The peer reuses the id of a channel SCTP already closed (as
         * libdatachannel does at once): the old stream ends here, even if
         * its reader has not seen the end. */
        push_ev(m, FLARE__MUX_EV_STREAM_CLOSED, id, 0);
        stream_free(m, id);
    }
    if (m->goaway || m->dead || m->nstreams >= m->cfg.max_streams || m->st[id].used) {
        (void)flare__sctp_close_channel(m->sctp, id);
        return;
    }
    m->st[id].used = 1;
    m->nstreams++;
    flare_buf_init(&m->st[id].in, m->cfg.mem);
    flare_buf_init(&m->st[id].part, m->cfg.mem);
    push_ev(m, FLARE__MUX_EV_STREAM_OPENED, id, 0);
}

static void on_closed(flare__webrtc_mux *m, uint16_t id)
{
    wstream *s = get(m, id);
    if (s == NULL)
        return;
    s->gone = 1;
    if (!s->reset && !(s->fin_recv && (s->fin_sent || s->fin_pending))) {
        /* Closed without both FINs: a reset. */
        s->reset = 1;
        if (!s->closing)
            push_ev(m, FLARE__MUX_EV_STREAM_RESET, id, FLARE_ERR_RESET);
    }
    maybe_finish(m, id);
}

static void on_writable(flare__webrtc_mux *m)
{
    for (uint32_t i = 0; i < m->nslots; i++)
        if (m->st[i].used && m->st[i].want_write) {
            m->st[i].want_write = 0;
            try_fin(m, i);
            push_ev(m, FLARE__MUX_EV_STREAM_WRITABLE, i, 0);
        }
}

/* Moves the association's events into the streams while under the bound;
 * room to write is passed on even beyond it. */
static void pump(flare__webrtc_mux *m)
{
    uint8_t *buf = m->rx;
    flare__sctp_event e;
    if (flare__sctp_take_writable(m->sctp))
        on_writable(m);
    while (m->buffered < m->cfg.max_buffered && flare__sctp_poll(m->sctp, &e, buf, sizeof(m->rx))) {
        switch (e.type) {
        case FLARE__SCTP_EV_CHANNEL_OPEN:
            /* js-libp2p's dialer opens "init" only to make ICE start, and
             * closes it once connected: not a stream (js closes it too). */
            if (e.len == 4 && memcmp(buf, "init", 4) == 0)
                (void)flare__sctp_close_channel(m->sctp, e.id);
            else
                on_open(m, e.id);
            break;
        case FLARE__SCTP_EV_MESSAGE:
            if (e.id == 0 && m->cfg.ch0_reserved) {
                if (m->cfg.on_ch0 != NULL)
                    m->cfg.on_ch0(m->cfg.ch0_user, buf, e.len);
                break;
            }
            on_data(m, e.id, buf, e.len);
            break;
        case FLARE__SCTP_EV_CHANNEL_CLOSED:
            /* The handshake's channel 0 is gone: the peer may reuse id 0
             * for a stream (libdatachannel picks the lowest free id). */
            if (e.id == 0 && m->cfg.ch0_reserved)
                m->cfg.ch0_reserved = 0;
            else
                on_closed(m, e.id);
            break;
        case FLARE__SCTP_EV_WRITABLE:
            on_writable(m);
            break;
        case FLARE__SCTP_EV_DOWN:
            if (!m->dead) {
                m->dead = 1;
                push_ev(m, FLARE__MUX_EV_SESSION_ERROR, 0,
                        e.error == FLARE_ERR_CLOSED ? FLARE_ERR_CLOSED : FLARE_ERR_RESET);
            }
            break;
        default:
            break;
        }
    }
}

void flare__webrtc_mux_pump(flare__webrtc_mux *m)
{
    pump(m);
}

/* ---- flare__muxer_ops ------------------------------------------------------------------ */

static int op_open_stream(void *p, uint32_t *id, flare_buf *out)
{
    flare__webrtc_mux *m = p;
    if (m->goaway || m->dead)
        return FLARE_ERR_CLOSED;
    if (m->nstreams >= m->cfg.max_streams)
        return FLARE_ERR_LIMIT;
    uint16_t cid;
    int rc = flare__sctp_open_channel(m->sctp, &cid, "", "");
    if (rc != 0)
        return rc == FLARE_ERR_STATE ? FLARE_ERR_CLOSED : FLARE_ERR_LIMIT;
    if (cid >= m->nslots) {
        (void)flare__sctp_close_channel(m->sctp, cid);
        return FLARE_ERR_LIMIT;
    }
    wstream *s = &m->st[cid];
    memset(s, 0, sizeof(*s));
    s->used = 1;
    flare_buf_init(&s->in, m->cfg.mem);
    flare_buf_init(&s->part, m->cfg.mem);
    m->nstreams++;
    *id = cid;
    return 0;
}

static long op_write(void *p, uint32_t id, const uint8_t *data, size_t len, flare_buf *out)
{
    flare__webrtc_mux *m = p;
    wstream *s = get(m, id);
    if (s == NULL)
        return FLARE_ERR_NOT_FOUND;
    if (s->reset || s->stop_recv || s->gone)
        return FLARE_ERR_RESET;
    if (s->fin_sent || s->fin_pending)
        return FLARE_ERR_CLOSED;
    size_t done = 0;
    while (done < len) {
        size_t n = len - done;
        if (n > FLARE__WEBRTC_MAX_DATA)
            n = FLARE__WEBRTC_MAX_DATA;
        int rc = send_msg(m, id, FLARE__WEBRTC_NO_FLAG, data + done, n);
        if (rc == FLARE_ERR_AGAIN) {
            s->want_write = 1;
            break;
        }
        if (rc != 0)
            return done > 0 ? (long)done : (rc == FLARE_ERR_STATE ? FLARE_ERR_CLOSED : rc);
        done += n;
    }
    return (long)done;
}

static long op_read(void *p, uint32_t id, uint8_t *dst, size_t cap, flare_buf *out)
{
    flare__webrtc_mux *m = p;
    wstream *s = get(m, id);
    if (s == NULL)
        return FLARE_ERR_NOT_FOUND;
    if (s->reset)
        return FLARE_ERR_RESET;
    s->readable_ev = 0;
    if (s->in.len == 0) {
        if (!s->fin_recv && !s->gone)
            return FLARE_ERR_AGAIN;
        s->eof_read = 1;
        maybe_finish(m, id);
        return 0;
    }
    size_t n = s->in.len < cap ? s->in.len : cap;
    memcpy(dst, s->in.base, n);
    flare_buf_consume(&s->in, n);
    m->buffered -= n;
    if (s->in.len == 0)
        maybe_close(m, id);
    return (long)n;
}

static size_t op_readable(const void *p, uint32_t id)
{
    const flare__webrtc_mux *m = p;
    if ((id == 0 && m->cfg.ch0_reserved) || id >= m->nslots || !m->st[id].used)
        return 0;
    return m->st[id].in.len;
}

static int op_close_stream(void *p, uint32_t id, flare_buf *out)
{
    flare__webrtc_mux *m = p;
    wstream *s = get(m, id);
    if (s == NULL)
        return FLARE_ERR_NOT_FOUND;
    if (s->fin_sent || s->fin_pending || s->reset || s->gone)
        return 0;
    s->fin_pending = 1;
    try_fin(m, id);
    return 0;
}

static int op_reset_stream(void *p, uint32_t id, flare_buf *out)
{
    flare__webrtc_mux *m = p;
    wstream *s = get(m, id);
    if (s == NULL)
        return FLARE_ERR_NOT_FOUND;
    reset_local(m, id, 0);
    maybe_finish(m, id);
    return 0;
}

static int op_goaway(void *p, int error, flare_buf *out)
{
    flare__webrtc_mux *m = p;
    m->goaway = 1;
    return 0;
}

static int op_poll_event(void *p, flare__mux_event *ev)
{
    flare__webrtc_mux *m = p;
    if (m->ev.len == 0)
        pump(m);
    if (m->ev.len < sizeof(*ev))
        return 0;
    memcpy(ev, m->ev.base, sizeof(*ev));
    flare_buf_consume(&m->ev, sizeof(*ev));
    return 1;
}

static flare_tstamp op_expiry(const void *p)
{
    const flare__webrtc_mux *m = p;
    return flare__sctp_expiry(m->sctp);
}

static int op_handle_expiry(void *p, flare_tstamp now, flare_buf *out)
{
    flare__webrtc_mux *m = p;
    flare__sctp_handle_expiry(m->sctp, now);
    if (m->cfg.flush != NULL)
        m->cfg.flush(m->cfg.user);
    return 0;
}

static size_t op_num_streams(const void *p)
{
    const flare__webrtc_mux *m = p;
    return m->nstreams;
}

static void op_flush(void *p)
{
    flare__webrtc_mux *m = p;
    if (m->cfg.flush != NULL)
        m->cfg.flush(m->cfg.user);
}

static void op_free(void *p)
{
    flare__webrtc_mux_del(p);
}

const flare__muxer_ops flare__webrtc_mux_ops = {
    .recv = NULL,
    .open_stream = op_open_stream,
    .write = op_write,
    .write_frame = NULL,
    .read = op_read,
    .readable = op_readable,
    .close_stream = op_close_stream,
    .reset_stream = op_reset_stream,
    .goaway = op_goaway,
    .poll_event = op_poll_event,
    .expiry = op_expiry,
    .handle_expiry = op_handle_expiry,
    .num_streams = op_num_streams,
    .flush = op_flush,
    .free = op_free,
};

int flare__webrtc_mux_new(flare__webrtc_mux **out, const flare__webrtc_mux_cfg *cfg)
{
    if (out == NULL || cfg == NULL || cfg->sctp == NULL)
        return FLARE_ERR_INVALID_ARG;
    flare__webrtc_mux *m = flare__calloc(cfg->mem, 1, sizeof(*m));
    if (m == NULL)
        return FLARE_ERR_NOMEM;
    m->cfg = *cfg;
    m->sctp = cfg->sctp;
    m->nslots = FLARE__SCTP_MAX_CHANNELS;
    if (m->cfg.max_streams == 0 || m->cfg.max_streams > m->nslots)
        m->cfg.max_streams = m->nslots;
    if (m->cfg.max_buffered == 0)
        m->cfg.max_buffered = FLARE__WEBRTC_MUX_BUFFERED;
    m->st = flare__calloc(cfg->mem, m->nslots, sizeof(wstream));
    if (m->st == NULL) {
        flare__free(cfg->mem, m);
        return FLARE_ERR_NOMEM;
    }
    flare_buf_init(&m->ev, cfg->mem);
    flare_buf_init(&m->tx, cfg->mem);
    *out = m;
    return 0;
}

void flare__webrtc_mux_del(flare__webrtc_mux *m)
{
    if (m == NULL)
        return;
    for (uint32_t i = 0; i < m->nslots; i++)
        if (m->st[i].used) {
            flare_buf_free(&m->st[i].in);
            flare_buf_free(&m->st[i].part);
        }
    flare_buf_free(&m->ev);
    flare_buf_free(&m->tx);
    flare__free(m->cfg.mem, m->st);
    flare__free(m->cfg.mem, m);
}
