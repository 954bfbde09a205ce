#include <string.h>

#include "flare/buf.h"
#include "flare/varint.h"
#include "core/mem.h"

void flare_buf_init(flare_buf *b, const flare_mem *mem)
{
    b->base = NULL;
    b->alloc = NULL;
    b->len = 0;
    b->cap = 0;
    b->mem = flare__mem(mem);
}

/* A buffer built by hand around caller memory may leave alloc unset. */
static uint8_t *start(const flare_buf *b)
{
    return b->alloc ? b->alloc : b->base;
}

void flare_buf_free(flare_buf *b)
{
    flare__free(b->mem, start(b));
    b->base = b->alloc = NULL;
    b->len = b->cap = 0;
}

/* Moves the unread bytes to the start of the allocation. */
static void compact(flare_buf *b, uint8_t *a)
{
    if (b->base != a && b->len)
        memmove(a, b->base, b->len);
    b->base = a;
}

int flare_buf_reserve(flare_buf *b, size_t extra)
{
    uint8_t *a = start(b);
    size_t off = b->base ? (size_t)(b->base - a) : 0;
    if (extra > SIZE_MAX - b->len)
        return FLARE_ERR_NOMEM;
    size_t need = b->len + extra;
    if (need <= b->cap - off)
        return 0;
    /* Reclaim the dead prefix when the room suffices and the move costs at
     * most 8 times the bytes consumed since the last move (off >= len / 8):
     * the copy is amortized O(1) per byte, unlike a move on every consume,
     * and a queue kept near its bound does not double its allocation. */
    if (need <= b->cap && off >= b->len / 8) {
        compact(b, a);
        return 0;
    }
    /* Growing also when the bytes would fit after a move: the move would
     * cost more than it frees, and a same-size copy would free nothing. */
    size_t cap = b->cap ? b->cap : 64;
    if (need <= cap)
        cap = cap > SIZE_MAX / 2 ? SIZE_MAX : cap * 2;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    uint8_t *p;
    if (off == 0) {
        p = flare__realloc(b->mem, a, cap);
        if (!p)
            return FLARE_ERR_NOMEM;
    } else {
        /* Copy only the unread bytes, not the dead prefix. */
        p = flare__malloc(b->mem, cap);
        if (!p)
            return FLARE_ERR_NOMEM;
        if (b->len)
            memcpy(p, b->base, b->len);
        flare__free(b->mem, a);
    }
    b->alloc = b->base = p;
    b->cap = cap;
    return 0;
}

/* Bytes free after the unread ones (what flare_buf_reserve checks first). */
static size_t room(const flare_buf *b)
{
    if (!b->base)
        return 0;
    size_t off = (size_t)(b->base - start(b));
    return b->cap - off - b->len;
}

int flare_buf_append(flare_buf *b, const void *data, size_t len)
{
    if (len == 0)
        return 0;
    /* Encoders append a field at a time: most appends fit. */
    if (len <= room(b)) {
        memcpy(b->base + b->len, data, len);
        b->len += len;
        return 0;
    }
    int rv = flare_buf_reserve(b, len);
    if (rv)
        return rv;
    memcpy(b->base + b->len, data, len);
    b->len += len;
    return 0;
}

int flare_buf_append_byte(flare_buf *b, uint8_t c)
{
    if (room(b)) {
        b->base[b->len++] = c;
        return 0;
    }
    return flare_buf_append(b, &c, 1);
}

int flare_buf_append_uvarint(flare_buf *b, uint64_t v)
{
    /* Tags and lengths: one or two bytes written in place. */
    if (v < 0x4000 && room(b) >= 2) {
        uint8_t *p = b->base + b->len;
        if (v < 0x80) {
            p[0] = (uint8_t)v;
            b->len += 1;
        } else {
            p[0] = (uint8_t)(v | 0x80);
            p[1] = (uint8_t)(v >> 7);
            b->len += 2;
        }
        return 0;
    }
    uint8_t tmp[FLARE_UVARINT_MAX_LEN];
    int n = flare_uvarint_encode(v, tmp);
    if (n < 0)
        return n;
    return flare_buf_append(b, tmp, (size_t)n);
}

void flare_buf_consume(flare_buf *b, size_t n)
{
    if (!b->alloc)
        b->alloc = b->base;
    if (n >= b->len) {
        flare_buf_reset(b);
        return;
    }
    b->base += n;
    b->len -= n;
}

void flare_buf_reset(flare_buf *b)
{
    b->len = 0;
    b->base = start(b);
}
