/*
 * A stream's resend buffer on relayed connections: the last bytes it wrote
 * into the muxer (up to migrate_buffer), so that a move to another
 * connection can send again what the peer had not received. It grows with
 * use, so a quiet stream holds nothing, and is charged to the connection
 * like the rest of the stream.
 */
#include <string.h>

#include "core/mem.h"
#include "host/host_int.h"

struct flare__mig_ring {
    uint8_t *buf;
    size_t cap, head, len; /* bytes buf[head..] wrapping, len of them */
};

static const flare_mem *ring_mem(const flare_stream *s)
{
    return &s->conn->rc.mem;
}

void flare__stream_ring_free(flare_stream *s)
{
    if (!s->ring)
        return;
    flare__free(ring_mem(s), s->ring->buf);
    flare__free(ring_mem(s), s->ring);
    s->ring = NULL;
}

/* The buffer cannot keep up: the stream will not move. */
static void ring_off(flare_stream *s)
{
    flare__stream_ring_free(s);
    s->mig_off = 1;
}

/* Room for want bytes (at most bound), the contents kept in order. */
static int ring_grow(flare_stream *s, size_t want)
{
    struct flare__mig_ring *r = s->ring;
    if (want <= r->cap)
        return 0;
    size_t cap = r->cap ? r->cap : 4096;
    while (cap < want)
        cap *= 2;
    size_t bound = s->conn->host->cfg.migrate_buffer;
    if (cap > bound)
        cap = bound;
    uint8_t *nb = flare__malloc(ring_mem(s), cap);
    if (!nb)
        return FLARE_ERR_NOMEM;
    size_t first = r->cap - r->head < r->len ? r->cap - r->head : r->len;
    if (r->len) {
        memcpy(nb, r->buf + r->head, first);
        memcpy(nb + first, r->buf, r->len - first);
    }
    flare__free(ring_mem(s), r->buf);
    r->buf = nb;
    r->cap = cap;
    r->head = 0;
    return 0;
}

void flare__stream_record(flare_stream *s, const uint8_t *data, size_t len)
{
    size_t bound = s->conn->host->cfg.migrate_buffer;
    if (bound == 0) {
        ring_off(s);
        return;
    }
    if (!s->ring) {
        s->ring = flare__calloc(ring_mem(s), 1, sizeof(*s->ring));
        if (!s->ring) {
            s->mig_off = 1;
            return;
        }
    }
    struct flare__mig_ring *r = s->ring;
    if (len > bound) { /* only the tail can matter */
        data += len - bound;
        len = bound;
    }
    size_t want = r->len + len < bound ? r->len + len : bound;
    if (ring_grow(s, want)) {
        ring_off(s);
        return;
    }
    if (r->len + len > r->cap) { /* the oldest bytes go */
        size_t drop = r->len + len - r->cap;
        r->head = (r->head + drop) % r->cap;
        r->len -= drop;
    }
    size_t tail = (r->head + r->len) % r->cap;
    size_t first = r->cap - tail < len ? r->cap - tail : len;
    memcpy(r->buf + tail, data, first);
    memcpy(r->buf, data + first, len - first);
    r->len += len;
}

uint64_t flare__stream_floor(const flare_stream *s)
{
    return s->tx_total - (s->ring ? s->ring->len : 0);
}

/* Appends the kept bytes from offset from (floor <= from <= tx_total). */
int flare__stream_ring_copy(const flare_stream *s, uint64_t from, flare_buf *out)
{
    size_t n = (size_t)(s->tx_total - from);
    const struct flare__mig_ring *r = s->ring;
    if (n == 0)
        return 0;
    size_t skip = r->len - n;
    size_t at = (r->head + skip) % r->cap;
    size_t first = r->cap - at < n ? r->cap - at : n;
    int rv = flare_buf_append(out, r->buf + at, first);
    if (rv == 0)
        rv = flare_buf_append(out, r->buf, n - first);
    return rv;
}
