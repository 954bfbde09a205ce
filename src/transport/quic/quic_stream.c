/*
 * transport/quic/quic_stream.c - QUIC streams: the send queue (chunks that
 * stay in place until acknowledged, since ngtcp2 keeps pointers into them for
 * retransmission), packing stream data into packets, and the receive window.
 */
#include <string.h>

#include "transport/quic/quic_int.h"

/* Vectors handed to ngtcp2 per call. */
#define MAX_VECS 16

flare__quic_stream *flare__quic_stream_new(flare__quic_conn *qc, int64_t id)
{
    flare__quic_stream *st = flare__calloc(qc->ep->mem, 1, sizeof(*st));
    if (!st)
        return NULL;
    st->qc = qc;
    st->id = id;
    st->next = qc->streams;
    if (qc->streams)
        qc->streams->prev = st;
    qc->streams = st;
    qc->nstreams++;
    ngtcp2_conn_set_stream_user_data(qc->conn, id, st);
    return st;
}

void flare__quic_stream_free(flare__quic_stream *st)
{
    flare__quic_conn *qc = st->qc;
    const flare_mem *mem = qc->ep->mem;
    while (st->head) {
        flare__quic_chunk *c = st->head;
        st->head = c->next;
        flare__free(mem, c);
    }
    if (!st->closed && qc->conn)
        ngtcp2_conn_set_stream_user_data(qc->conn, st->id, NULL);
    if (st->prev)
        st->prev->next = st->next;
    else
        qc->streams = st->next;
    if (st->next)
        st->next->prev = st->prev;
    qc->nstreams--;
    flare__free(mem, st);
}

int flare__quic_stream_open(flare__quic_conn *qc, void *user, flare__quic_stream **out)
{
    *out = NULL;
    if (!flare__quic_conn_established(qc))
        return FLARE_ERR_STATE;
    int64_t id;
    int rv = ngtcp2_conn_open_bidi_stream(qc->conn, &id, NULL);
    if (rv == NGTCP2_ERR_STREAM_ID_BLOCKED)
        return FLARE_ERR_LIMIT;
    if (rv != 0)
        return FLARE_ERR_NOMEM;
    flare__quic_stream *st = flare__quic_stream_new(qc, id);
    if (!st) {
        ngtcp2_conn_shutdown_stream(qc->conn, id, 0);
        qc->dirty = 1;
        return FLARE_ERR_NOMEM;
    }
    st->user = user;
    *out = st;
    return 0;
}

void flare__quic_stream_set_user(flare__quic_stream *st, void *user)
{
    st->user = user;
}

void *flare__quic_stream_user(const flare__quic_stream *st)
{
    return st->user;
}

flare__quic_conn *flare__quic_stream_conn(const flare__quic_stream *st)
{
    return st->qc;
}

int64_t flare__quic_stream_id(const flare__quic_stream *st)
{
    return st->id;
}

size_t flare__quic_stream_pending(const flare__quic_stream *st)
{
    return st->queued;
}

int flare__quic_stream_write(flare__quic_stream *st, const uint8_t *data, size_t len)
{
    if (st->fin || st->reset || st->shut_wr || st->qc->closing || st->qc->dead)
        return FLARE_ERR_STATE;
    const flare_mem *mem = st->qc->ep->mem;
    size_t done = 0;
    while (done < len) {
        flare__quic_chunk *t = st->tail;
        if (!t || t->len == FLARE__QUIC_CHUNK) {
            t = flare__malloc(mem, sizeof(*t));
            if (!t)
                return FLARE_ERR_NOMEM;
            t->next = NULL;
            t->len = 0;
            if (st->tail)
                st->tail->next = t;
            else
                st->head = t;
            st->tail = t;
        }
        if (!st->send_chunk) {
            st->send_chunk = t;
            st->send_off = t->len;
        }
        size_t n = FLARE__QUIC_CHUNK - t->len;
        if (n > len - done)
            n = len - done;
        memcpy(t->data + t->len, data + done, n);
        t->len += n;
        done += n;
    }
    st->queued += len;
    st->unsent += len;
    st->qc->dirty = 1;
    if (st->queued > st->qc->ep->cfg.settings.stream_send_high) {
        st->full = 1;
        return 1;
    }
    return 0;
}

void flare__quic_stream_fin(flare__quic_stream *st)
{
    if (st->fin || st->reset)
        return;
    st->fin = 1;
    st->qc->dirty = 1;
}

void flare__quic_stream_reset(flare__quic_stream *st, uint64_t app_code)
{
    if (st->reset)
        return;
    st->reset = 1;
    st->rd_done = 1;
    /* Both directions at once; ngtcp2 answers later packets of the stream
     * itself. Safe from inside ngtcp2's callbacks: it only queues frames. */
    ngtcp2_conn_shutdown_stream(st->qc->conn, st->id, app_code);
    st->qc->dirty = 1;
}

void flare__quic_stream_consumed(flare__quic_stream *st, size_t n)
{
    if (n == 0)
        return;
    ngtcp2_conn_extend_max_stream_offset(st->qc->conn, st->id, n);
    ngtcp2_conn_extend_max_offset(st->qc->conn, n);
    st->qc->dirty = 1;
}

void flare__quic_stream_acked(flare__quic_stream *st, uint64_t datalen)
{
    const flare_mem *mem = st->qc->ep->mem;
    if (datalen > st->queued - st->unsent)
        datalen = st->queued - st->unsent; /* cannot happen; stay consistent */
    st->queued -= datalen;
    while (datalen > 0 && st->head) {
        flare__quic_chunk *c = st->head;
        size_t n = c->len - st->head_off;
        if (n > datalen)
            n = datalen;
        st->head_off += n;
        datalen -= n;
        if (st->head_off == c->len && (c != st->tail || c->len == FLARE__QUIC_CHUNK)) {
            st->head = c->next;
            if (!st->head)
                st->tail = NULL;
            if (st->send_chunk == c) {
                st->send_chunk = c->next;
                st->send_off = 0;
            }
            st->head_off = 0;
            flare__free(mem, c);
        }
    }
    size_t high = st->qc->ep->cfg.settings.stream_send_high;
    if (st->full && st->queued <= high / 2) {
        st->full = 0;
        if (st->qc->ep->cfg.cbs.stream_writable)
            st->qc->ep->cfg.cbs.stream_writable(st->qc->ep->cfg.user, st);
    }
}

/* ---- packing ------------------------------------------------------------------------- */

static int sendable(const flare__quic_stream *st)
{
    return !st->reset && !st->shut_wr && !st->blocked && !st->closed &&
           (st->unsent > 0 || (st->fin && !st->fin_sent));
}

static size_t fill_vecs(const flare__quic_stream *st, ngtcp2_vec *v, size_t *total)
{
    size_t n = 0;
    *total = 0;
    const flare__quic_chunk *c = st->send_chunk;
    size_t off = st->send_off;
    while (c && n < MAX_VECS) {
        if (c->len > off) {
            v[n].base = (uint8_t *)c->data + off;
            v[n].len = c->len - off;
            *total += v[n].len;
            n++;
        }
        c = c->next;
        off = 0;
    }
    return n;
}

static void advance(flare__quic_stream *st, size_t n)
{
    st->unsent -= n;
    while (n > 0 && st->send_chunk) {
        flare__quic_chunk *c = st->send_chunk;
        size_t left = c->len - st->send_off;
        if (n < left) {
            st->send_off += n;
            return;
        }
        n -= left;
        st->send_off = c->len;
        if (c->next) {
            st->send_chunk = c->next;
            st->send_off = 0;
        }
    }
}

static flare__quic_stream *next_sendable(flare__quic_conn *qc)
{
    for (flare__quic_stream *st = qc->streams; st; st = st->next)
        if (sendable(st))
            return st;
    return NULL;
}

/* Moves st to the back of the list, so streams take turns. */
static void rotate(flare__quic_conn *qc, flare__quic_stream *st)
{
    if (!st->next)
        return;
    if (st->prev)
        st->prev->next = st->next;
    else
        qc->streams = st->next;
    st->next->prev = st->prev;
    flare__quic_stream *last = st->next;
    while (last->next)
        last = last->next;
    last->next = st;
    st->prev = last;
    st->next = NULL;
}

int flare__quic_streams_write(flare__quic_conn *qc, ngtcp2_path_storage *ps, flare_tstamp now,
                              size_t *budget)
{
    flare__quic_ep *ep = qc->ep;
    for (flare__quic_stream *st = qc->streams; st; st = st->next)
        st->blocked = 0; /* connection-level blocking has no callback: retry */
    while (*budget > 0) {
        flare__quic_stream *st = qc->established ? next_sendable(qc) : NULL;
        ngtcp2_vec v[MAX_VECS];
        size_t total = 0, nv = 0;
        uint32_t flags = 0;
        if (st) {
            flags = NGTCP2_WRITE_STREAM_FLAG_MORE;
            nv = fill_vecs(st, v, &total);
            if (st->fin && total == st->unsent)
                flags |= NGTCP2_WRITE_STREAM_FLAG_FIN;
        }
        ngtcp2_ssize ndatalen = -1;
        ngtcp2_pkt_info pi;
        ngtcp2_ssize n =
            ngtcp2_conn_writev_stream(qc->conn, &ps->path, &pi, ep->pkt, sizeof(ep->pkt), &ndatalen,
                                      flags, st ? st->id : -1, v, nv, now);
        if (st && ndatalen >= 0) {
            advance(st, (size_t)ndatalen);
            if ((flags & NGTCP2_WRITE_STREAM_FLAG_FIN) && (size_t)ndatalen == total)
                st->fin_sent = 1;
            rotate(qc, st);
        }
        if (n < 0) {
            if (n == NGTCP2_ERR_WRITE_MORE)
                continue;
            if (st && n == NGTCP2_ERR_STREAM_DATA_BLOCKED) {
                st->blocked = 1;
                continue;
            }
            if (st && (n == NGTCP2_ERR_STREAM_SHUT_WR || n == NGTCP2_ERR_STREAM_NOT_FOUND)) {
                st->shut_wr = 1;
                continue;
            }
            return (int)n;
        }
        if (n == 0)
            return 0;
        flare__quic_send(qc, &ps->path, ep->pkt, (size_t)n);
        (*budget)--;
    }
    return 0;
}
