/*
 * transport/quic/quic_mux.c - QUIC streams as a muxer session (see
 * quic_mux.h).
 */
#include <string.h>

#include "core/mem.h"
#include "flare/buf.h"
#include "transport/quic/quic_mux.h"

typedef struct qstream {
    struct qstream *next;
    flare__quic_mux *m;
    flare__quic_stream *st; /* NULL once the QUIC stream is gone or detached */
    uint32_t id;
    flare_buf rx;
    unsigned fin_rx : 1, reset : 1, want_writable : 1, gone : 1, closed_sent : 1;
} qstream;

struct flare__quic_mux {
    flare__quic_conn *qc;
    const flare_mem *mem;
    void (*flush)(void *user);
    void (*gone)(void *user);
    void *flush_user;
    qstream *streams;
    size_t nstreams;
    flare__mux_event *ev;
    size_t ev_head, ev_len, ev_cap;
    int dead, err;
};

static int push(flare__quic_mux *m, flare__mux_event_type type, uint32_t id, int err)
{
    if (m->ev_head + m->ev_len == m->ev_cap) {
        if (m->ev_head > 0) {
            memmove(m->ev, m->ev + m->ev_head, m->ev_len * sizeof(*m->ev));
            m->ev_head = 0;
        } else {
            size_t cap = m->ev_cap ? m->ev_cap * 2 : 16;
            flare__mux_event *ev = flare__realloc(m->mem, m->ev, cap * sizeof(*ev));
            if (!ev)
                return FLARE_ERR_NOMEM;
            m->ev = ev;
            m->ev_cap = cap;
        }
    }
    m->ev[m->ev_head + m->ev_len++] =
        (flare__mux_event){.type = type, .stream_id = id, .error = err};
    return 0;
}

static qstream *find(const flare__quic_mux *m, uint32_t id)
{
    for (qstream *s = m->streams; s; s = s->next)
        if (s->id == id)
            return s;
    return NULL;
}

static void qs_free(flare__quic_mux *m, qstream *s)
{
    for (qstream **pp = &m->streams; *pp; pp = &(*pp)->next) {
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    }
    if (s->st)
        flare__quic_stream_set_user(s->st, NULL);
    flare_buf_free(&s->rx);
    m->nstreams--;
    flare__free(m->mem, s);
}

static qstream *qs_new(flare__quic_mux *m, flare__quic_stream *st)
{
    int64_t qid = flare__quic_stream_id(st);
    if (qid < 0 || qid >= (int64_t)UINT32_MAX)
        return NULL;
    qstream *s = flare__calloc(m->mem, 1, sizeof(*s));
    if (!s)
        return NULL;
    s->m = m;
    s->st = st;
    s->id = (uint32_t)qid + 1; /* the host's id 0 means "the session" */
    flare_buf_init(&s->rx, m->mem);
    s->next = m->streams;
    m->streams = s;
    m->nstreams++;
    flare__quic_stream_set_user(st, s);
    return s;
}

/* Both directions are over and the host has read everything: CLOSED. */
static void maybe_closed(qstream *s)
{
    if (s->closed_sent || !s->gone || (s->rx.len && !s->reset))
        return;
    s->closed_sent = 1;
    push(s->m, FLARE__MUX_EV_STREAM_CLOSED, s->id, 0);
}

flare__quic_mux *flare__quic_mux_new(flare__quic_conn *qc, const flare_mem *mem,
                                     void (*flush)(void *user), void (*gone)(void *user),
                                     void *user)
{
    flare__quic_mux *m = flare__calloc(mem, 1, sizeof(*m));
    if (!m)
        return NULL;
    m->qc = qc;
    m->mem = mem;
    m->flush = flush;
    m->gone = gone;
    m->flush_user = user;
    return m;
}

void flare__quic_mux_conn_lost(flare__quic_mux *m, int err)
{
    if (m->dead)
        return;
    m->dead = 1;
    m->err = err ? err : FLARE_ERR_CLOSED;
    m->qc = NULL;
    for (qstream *s = m->streams; s; s = s->next)
        s->st = NULL; /* the core frees them with the connection */
    push(m, FLARE__MUX_EV_SESSION_ERROR, 0, m->err);
}

int flare__quic_mux_has_events(const flare__quic_mux *m)
{
    return m->ev_len > 0;
}

/* ---- from the QUIC core ------------------------------------------------------------ */

int flare__quic_mux_stream_open(flare__quic_mux *m, flare__quic_stream *st)
{
    if (m->dead)
        return FLARE_ERR_CLOSED;
    qstream *s = qs_new(m, st);
    if (!s)
        return FLARE_ERR_NOMEM;
    if (push(m, FLARE__MUX_EV_STREAM_OPENED, s->id, 0) != 0) {
        qs_free(m, s);
        return FLARE_ERR_NOMEM;
    }
    return 0;
}

void flare__quic_mux_stream_data(flare__quic_stream *st, const uint8_t *data, size_t len, int fin)
{
    qstream *s = flare__quic_stream_user(st);
    if (!s || s->reset) {
        flare__quic_stream_consumed(st, len);
        return;
    }
    int was_empty = s->rx.len == 0;
    if (len && flare_buf_append(&s->rx, data, len) != 0) {
        flare__quic_stream_reset(st, 0);
        return;
    }
    if (len && was_empty)
        push(s->m, FLARE__MUX_EV_STREAM_READABLE, s->id, 0);
    if (fin && !s->fin_rx) {
        s->fin_rx = 1;
        push(s->m, FLARE__MUX_EV_STREAM_REMOTE_CLOSED, s->id, 0);
    }
}

void flare__quic_mux_stream_reset(flare__quic_stream *st)
{
    qstream *s = flare__quic_stream_user(st);
    if (!s || s->reset)
        return;
    s->reset = 1;
    push(s->m, FLARE__MUX_EV_STREAM_RESET, s->id, FLARE_ERR_RESET);
}

void flare__quic_mux_stream_writable(flare__quic_stream *st)
{
    qstream *s = flare__quic_stream_user(st);
    if (!s || !s->want_writable)
        return;
    s->want_writable = 0;
    push(s->m, FLARE__MUX_EV_STREAM_WRITABLE, s->id, 0);
}

void flare__quic_mux_stream_closed(flare__quic_stream *st)
{
    qstream *s = flare__quic_stream_user(st);
    if (!s)
        return;
    s->st = NULL;
    s->gone = 1;
    maybe_closed(s);
}

/* ---- muxer operations ---------------------------------------------------------------- */

static int q_open(void *mv, uint32_t *id, flare_buf *out)
{
    flare__quic_mux *m = mv;
    if (m->dead)
        return FLARE_ERR_CLOSED;
    flare__quic_stream *st;
    int rv = flare__quic_stream_open(m->qc, NULL, &st);
    if (rv == FLARE_ERR_STATE)
        return FLARE_ERR_CLOSED;
    if (rv)
        return rv;
    qstream *s = qs_new(m, st);
    if (!s) {
        flare__quic_stream_reset(st, 0);
        return FLARE_ERR_LIMIT;
    }
    *id = s->id;
    return 0;
}

static long q_write(void *mv, uint32_t id, const uint8_t *data, size_t len, flare_buf *out)
{
    flare__quic_mux *m = mv;
    qstream *s = find(m, id);
    if (!s)
        return FLARE_ERR_NOT_FOUND;
    if (s->reset)
        return FLARE_ERR_RESET;
    if (!s->st)
        return FLARE_ERR_CLOSED;
    if (s->want_writable)
        return 0;
    int rv = flare__quic_stream_write(s->st, data, len);
    if (rv < 0)
        return rv == FLARE_ERR_STATE ? FLARE_ERR_CLOSED : rv;
    if (rv == 1)
        s->want_writable = 1;
    return (long)len;
}

static long q_read(void *mv, uint32_t id, uint8_t *dst, size_t cap, flare_buf *out)
{
    flare__quic_mux *m = mv;
    qstream *s = find(m, id);
    if (!s)
        return FLARE_ERR_NOT_FOUND;
    if (s->reset)
        return FLARE_ERR_RESET;
    size_t n = s->rx.len < cap ? s->rx.len : cap;
    if (n) {
        memcpy(dst, s->rx.base, n);
        flare_buf_consume(&s->rx, n);
        if (s->st)
            flare__quic_stream_consumed(s->st, n);
        if (!s->rx.len)
            flare_buf_free(&s->rx);
        maybe_closed(s);
        return (long)n;
    }
    if (s->fin_rx)
        return 0;
    return m->dead ? FLARE_ERR_RESET : FLARE_ERR_AGAIN;
}

static size_t q_readable(const void *mv, uint32_t id)
{
    qstream *s = find(mv, id);
    return s ? s->rx.len : 0;
}

static int q_close(void *mv, uint32_t id, flare_buf *out)
{
    qstream *s = find(mv, id);
    if (!s)
        return FLARE_ERR_NOT_FOUND;
    if (s->st)
        flare__quic_stream_fin(s->st);
    return 0;
}

static int q_reset(void *mv, uint32_t id, flare_buf *out)
{
    flare__quic_mux *m = mv;
    qstream *s = find(m, id);
    if (!s)
        return FLARE_ERR_NOT_FOUND;
    if (s->st) {
        flare__quic_stream_reset(s->st, 0);
        flare__quic_stream_set_user(s->st, NULL);
        s->st = NULL;
    }
    s->reset = 1;
    s->gone = 1;
    maybe_closed(s);
    return 0;
}

static int q_goaway(void *mv, int error, flare_buf *out)
{
    flare__quic_mux *m = mv;
    if (m->qc)
        flare__quic_conn_close(m->qc, error ? 1 : 0);
    return 0;
}

static int q_poll(void *mv, flare__mux_event *ev)
{
    flare__quic_mux *m = mv;
    if (!m->ev_len)
        return 0;
    *ev = m->ev[m->ev_head++];
    if (--m->ev_len == 0)
        m->ev_head = 0;
    if (ev->type == FLARE__MUX_EV_STREAM_CLOSED) {
        qstream *s = find(m, ev->stream_id);
        if (s)
            qs_free(m, s);
    }
    return 1;
}

static flare_tstamp q_expiry(const void *mv)
{
    return FLARE_TSTAMP_NEVER; /* QUIC's timers run in the transport */
}

static int q_handle_expiry(void *mv, flare_tstamp now, flare_buf *out)
{
    return 0;
}

static size_t q_num_streams(const void *mv)
{
    return ((const flare__quic_mux *)mv)->nstreams;
}

static void q_flush(void *mv)
{
    flare__quic_mux *m = mv;
    if (m->flush)
        m->flush(m->flush_user);
}

static void q_free(void *mv)
{
    flare__quic_mux *m = mv;
    while (m->streams) {
        if (m->streams->st)
            flare__quic_stream_reset(m->streams->st, 0);
        qs_free(m, m->streams);
    }
    if (m->gone)
        m->gone(m->flush_user);
    flare__free(m->mem, m->ev);
    flare__free(m->mem, m);
}

const flare__muxer_ops flare__quic_mux_ops = {
    .open_stream = q_open,
    .write = q_write,
    .read = q_read,
    .readable = q_readable,
    .close_stream = q_close,
    .reset_stream = q_reset,
    .goaway = q_goaway,
    .poll_event = q_poll,
    .expiry = q_expiry,
    .handle_expiry = q_handle_expiry,
    .num_streams = q_num_streams,
    .flush = q_flush,
    .free = q_free,
};
