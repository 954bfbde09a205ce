/* Helpers for yamux tests: two sessions pumped against each other in memory
 * with hand-driven time, and raw frame injection. */
#ifndef FLARE_TEST_YAMUX_PAIR_H
#define FLARE_TEST_YAMUX_PAIR_H

#include <stdlib.h>

#include "support/test.h"

#include "flare/yamux.h"
#include "muxer/yamux/yamux_int.h"

#define MAX_EV 8192

/* A reproducible randomness source for the sessions' ping values. */
static inline flare_rng test_rng(void)
{
    static flare_prng prng;
    static int seeded;
    if (!seeded) {
        flare_prng_seed(&prng, 7);
        seeded = 1;
    }
    return flare_prng_rng(&prng);
}

typedef struct side {
    flare_yamux *y;
    flare_buf out;
    flare_yamux_event ev[MAX_EV];
    size_t nev;
} side;

typedef struct pair {
    side a, b; /* a is the client, b the server */
    flare_tstamp now;
    size_t split; /* 0: deliver whole buffers; else at most this many bytes per recv */
} pair;

static inline void settings_nokeepalive(flare_yamux_settings *s, int client)
{
    flare_yamux_settings_default(s);
    s->is_client = client;
    s->keepalive_interval = 0;
    s->ping_timeout = 0;
}

static inline pair *pair_new_with(const flare_yamux_settings *sa, const flare_yamux_settings *sb)
{
    pair *p = calloc(1, sizeof(*p));
    assert_non_null(p);
    assert_int_equal(flare_yamux_new(&p->a.y, sa, NULL, test_rng(), 0), 0);
    assert_int_equal(flare_yamux_new(&p->b.y, sb, NULL, test_rng(), 0), 0);
    flare_buf_init(&p->a.out, NULL);
    flare_buf_init(&p->b.out, NULL);
    return p;
}

static inline pair *pair_new(void)
{
    flare_yamux_settings sa, sb;
    settings_nokeepalive(&sa, 1);
    settings_nokeepalive(&sb, 0);
    return pair_new_with(&sa, &sb);
}

static inline void pair_del(pair *p)
{
    flare_yamux_del(p->a.y);
    flare_yamux_del(p->b.y);
    flare_buf_free(&p->a.out);
    flare_buf_free(&p->b.out);
    free(p);
}

/* Moves from's pending output into to; returns recv's result. */
static inline int deliver(pair *p, side *from, side *to)
{
    size_t off = 0;
    int rv = 0;
    while (off < from->out.len && rv == 0) {
        size_t n = from->out.len - off;
        if (p->split && n > p->split)
            n = p->split;
        rv = flare_yamux_recv(to->y, from->out.base + off, n, p->now, &to->out);
        off += n;
    }
    flare_buf_reset(&from->out);
    return rv;
}

/* Exchanges bytes until both sides are quiet; returns the first error. */
static inline int pump(pair *p)
{
    for (int i = 0; i < 1000000 && (p->a.out.len || p->b.out.len); i++) {
        int rv = deliver(p, &p->a, &p->b);
        if (rv)
            return rv;
        rv = deliver(p, &p->b, &p->a);
        if (rv)
            return rv;
    }
    return 0;
}

/* Polls every pending event of s into s->ev. */
static inline void drain(side *s)
{
    flare_yamux_event ev;
    while (flare_yamux_poll_event(s->y, &ev)) {
        assert_true(s->nev < MAX_EV);
        s->ev[s->nev++] = ev;
    }
}

static inline size_t count_ev(const side *s, flare_yamux_event_type t)
{
    size_t n = 0;
    for (size_t i = 0; i < s->nev; i++)
        n += s->ev[i].type == t;
    return n;
}

/* Index of the first event of type t for stream id (any stream if id is 0), or -1. */
static inline long find_ev(const side *s, flare_yamux_event_type t, uint32_t id)
{
    for (size_t i = 0; i < s->nev; i++)
        if (s->ev[i].type == t && (id == 0 || s->ev[i].stream_id == id))
            return (long)i;
    return -1;
}

static inline void frame(uint8_t *h, uint8_t ver, uint8_t type, uint16_t flags, uint32_t sid,
                         uint32_t len)
{
    h[0] = ver;
    h[1] = type;
    h[2] = (uint8_t)(flags >> 8);
    h[3] = (uint8_t)flags;
    h[4] = (uint8_t)(sid >> 24);
    h[5] = (uint8_t)(sid >> 16);
    h[6] = (uint8_t)(sid >> 8);
    h[7] = (uint8_t)sid;
    h[8] = (uint8_t)(len >> 24);
    h[9] = (uint8_t)(len >> 16);
    h[10] = (uint8_t)(len >> 8);
    h[11] = (uint8_t)len;
}

/* Feeds one raw header to s->y. */
static inline int inject(side *s, uint8_t type, uint16_t flags, uint32_t sid, uint32_t len)
{
    uint8_t h[12];
    frame(h, 0, type, flags, sid, len);
    return flare_yamux_recv(s->y, h, sizeof(h), 0, &s->out);
}

/* Whether buf holds a frame with this header, at any 12-byte-aligned frame
 * boundary (walking Data payloads). */
static inline int has_frame(const flare_buf *b, uint8_t type, uint16_t flags, uint32_t sid,
                            uint32_t len)
{
    size_t off = 0;
    while (off + 12 <= b->len) {
        const uint8_t *h = b->base + off;
        uint16_t f = (uint16_t)(h[2] << 8 | h[3]);
        uint32_t s = (uint32_t)h[4] << 24 | (uint32_t)h[5] << 16 | (uint32_t)h[6] << 8 | h[7];
        uint32_t l = (uint32_t)h[8] << 24 | (uint32_t)h[9] << 16 | (uint32_t)h[10] << 8 | h[11];
        if (h[1] == type && f == flags && s == sid && l == len)
            return 1;
        off += 12 + (h[1] == FLARE_YAMUX_TYPE_DATA ? l : 0);
    }
    return 0;
}

#endif
