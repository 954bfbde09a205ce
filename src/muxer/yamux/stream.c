/* yamux stream table (sorted array, binary search; inline while small), per-stream receive
 * buffers and the session's event queue. */
#include <string.h>

#include "core/mem.h"
#include "muxer/yamux/yamux_int.h"

static flare__ystream *const *table(const flare_yamux *y)
{
    return y->streams ? y->streams : y->st_in;
}

/* Index of the first stream with id >= id. */
static size_t lower_bound(const flare_yamux *y, uint32_t id)
{
    flare__ystream *const *t = table(y);
    size_t lo = 0, hi = y->nstreams;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (t[mid]->id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

flare__ystream *flare__ystream_find(const flare_yamux *y, uint32_t id)
{
    size_t i = lower_bound(y, id);
    if (i < y->nstreams && table(y)[i]->id == id)
        return table(y)[i];
    return NULL;
}

/* Room for one more stream in the table. */
static int table_room(flare_yamux *y)
{
    uint32_t cap = y->streams ? y->cap_streams : FLARE__YST_INLINE;
    if (y->nstreams < cap)
        return 0;
    if (cap > UINT32_MAX / 2)
        return FLARE_ERR_NOMEM;
    flare__ystream **p = flare__realloc(y->mem, y->streams, 2 * (size_t)cap * sizeof(*p));
    if (!p)
        return FLARE_ERR_NOMEM;
    if (!y->streams)
        memcpy(p, y->st_in, sizeof(y->st_in));
    y->streams = p;
    y->cap_streams = 2 * cap;
    return 0;
}

int flare__ystream_add(flare_yamux *y, uint32_t id, int inbound, flare__ystream **out)
{
    int rv = table_room(y);
    if (rv)
        return rv;
    flare__ystream *st = flare__calloc(y->mem, 1, sizeof(*st));
    if (!st)
        return FLARE_ERR_NOMEM;
    st->id = id;
    st->inbound = inbound ? 1 : 0;
    st->send_window = FLARE_YAMUX_DEFAULT_WINDOW;
    st->recv_avail = FLARE_YAMUX_DEFAULT_WINDOW;
    st->recv_target = y->s.initial_window;
    st->epoch = y->now;
    /* Ids mostly grow, so this is usually an append. */
    size_t i = lower_bound(y, id);
    flare__ystream **t = flare__ystream_table(y);
    memmove(&t[i + 1], &t[i], (y->nstreams - i) * sizeof(*t));
    t[i] = st;
    y->nstreams++;
    *out = st;
    return 0;
}

static void stream_free(flare_yamux *y, flare__ystream *st)
{
    flare__free(y->mem, st->buf);
    flare__free(y->mem, st);
}

void flare__ystream_remove(flare_yamux *y, uint32_t id)
{
    size_t i = lower_bound(y, id);
    flare__ystream **t = flare__ystream_table(y);
    if (i >= y->nstreams || t[i]->id != id)
        return;
    stream_free(y, t[i]);
    memmove(&t[i], &t[i + 1], (y->nstreams - i - 1) * sizeof(*t));
    if (--y->nstreams == 0) { /* an idle session (nearly all of a DHT node's) holds no table */
        flare__free(y->mem, y->streams);
        y->streams = NULL;
        y->cap_streams = 0;
    }
}

void flare__ystream_free_all(flare_yamux *y)
{
    flare__ystream **t = flare__ystream_table(y);
    for (size_t i = 0; i < y->nstreams; i++)
        stream_free(y, t[i]);
    flare__free(y->mem, y->streams);
    y->streams = NULL;
    y->nstreams = y->cap_streams = 0;
}

int flare__ystream_buf_append(flare_yamux *y, flare__ystream *st, const uint8_t *p, size_t n,
                              size_t frame_left)
{
    if (n == 0)
        return 0;
    if (st->off + st->len + n > st->cap) {
        if (st->len + n <= st->cap) {
            memmove(st->buf, st->buf + st->off, st->len);
            st->off = 0;
        } else {
            /* Room for the rest of the frame at once; the caller bounds it
             * by the receive window. */
            size_t need = st->len + (frame_left > n ? frame_left : n);
            size_t cap = st->cap ? st->cap : 4096;
            while (cap < need)
                cap *= 2;
            uint8_t *nb = flare__malloc(y->mem, cap);
            if (!nb)
                return FLARE_ERR_NOMEM;
            if (st->len)
                memcpy(nb, st->buf + st->off, st->len);
            flare__free(y->mem, st->buf);
            st->buf = nb;
            st->cap = cap;
            st->off = 0;
        }
    }
    memcpy(st->buf + st->off + st->len, p, n);
    st->len += n;
    st->batch = st->batch + n < UINT32_MAX ? st->batch + (uint32_t)n : UINT32_MAX;
    return 0;
}

/* A stream that streams (big batches) keeps a buffer of up to this size
 * between batches: freeing and refaulting it every time cost a relayed
 * bulk circuit ~15 % more relay CPU per MiB with a 64 KiB bound. It stays
 * pinned only until the stream's next small batch or its close. */
#define KEEP_MAX   (256 * 1024)
#define KEEP_BATCH (16 * 1024)

size_t flare__ystream_buf_take(flare_yamux *y, flare__ystream *st, uint8_t *dst, size_t cap)
{
    size_t n = st->len < cap ? st->len : cap;
    if (n)
        memcpy(dst, st->buf + st->off, n);
    st->off += n;
    st->len -= n;
    if (st->len == 0) {
        st->off = 0;
        /* Drained after a small batch (handshakes, requests, keepalives) or
         * holding a large buffer: give it back, so idle streams (thousands
         * of idle relay circuits) cost no receive memory. */
        if (st->batch < KEEP_BATCH || st->cap > KEEP_MAX)
            flare__ystream_buf_drop(y, st);
        st->batch = 0;
    }
    return n;
}

void flare__ystream_buf_drop(flare_yamux *y, flare__ystream *st)
{
    flare__free(y->mem, st->buf);
    st->buf = NULL;
    st->off = st->len = st->cap = 0;
    st->batch = 0;
}

static flare__yevent *ev_ring(flare_yamux *y)
{
    return y->ev ? y->ev : y->ev_in;
}

static uint32_t ev_cap(const flare_yamux *y)
{
    return y->ev ? y->ev_cap : FLARE__YEV_INLINE;
}

int flare__yevent_push(flare_yamux *y, const flare__yevent *e)
{
    uint32_t cap = ev_cap(y);
    if (y->ev_len == cap) {
        if (cap > UINT32_MAX / 2)
            return FLARE_ERR_NOMEM;
        flare__yevent *old = ev_ring(y);
        flare__yevent *p = flare__malloc(y->mem, 2 * (size_t)cap * sizeof(*p));
        if (!p)
            return FLARE_ERR_NOMEM;
        for (uint32_t i = 0; i < y->ev_len; i++)
            p[i] = old[(y->ev_head + i) % cap];
        flare__free(y->mem, y->ev);
        y->ev = p;
        y->ev_cap = cap = 2 * cap;
        y->ev_head = 0;
    }
    ev_ring(y)[(y->ev_head + y->ev_len) % cap] = *e;
    y->ev_len++;
    return 0;
}

int flare__yevent_pop(flare_yamux *y, flare__yevent *e)
{
    if (y->ev_len == 0)
        return 0;
    *e = ev_ring(y)[y->ev_head];
    y->ev_head = (y->ev_head + 1) % ev_cap(y);
    /* Drained: an idle session (nearly all of a DHT node's) holds no
     * queue of its own. */
    if (--y->ev_len == 0)
        flare__yevent_free(y);
    return 1;
}

void flare__yevent_free(flare_yamux *y)
{
    flare__free(y->mem, y->ev);
    y->ev = NULL;
    y->ev_head = y->ev_len = y->ev_cap = 0;
}
