#include <string.h>

#include "flare/buf.h"
#include "flare/varint.h"
#include "core/mem.h"

void flare_buf_init(flare_buf *b, const flare_mem *mem)
{
    b->base = NULL;
    b->len = 0;
    b->cap = 0;
    b->mem = flare__mem(mem);
}

void flare_buf_free(flare_buf *b)
{
    flare__free(b->mem, b->base);
    b->base = NULL;
    b->len = b->cap = 0;
}

int flare_buf_reserve(flare_buf *b, size_t extra)
{
    if (extra > SIZE_MAX - b->len)
        return FLARE_ERR_NOMEM;
    size_t need = b->len + extra;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    uint8_t *p = flare__realloc(b->mem, b->base, cap);
    if (!p)
        return FLARE_ERR_NOMEM;
    b->base = p;
    b->cap = cap;
    return 0;
}

int flare_buf_append(flare_buf *b, const void *data, size_t len)
{
    if (len == 0)
        return 0;
    int rv = flare_buf_reserve(b, len);
    if (rv)
        return rv;
    memcpy(b->base + b->len, data, len);
    b->len += len;
    return 0;
}

int flare_buf_append_byte(flare_buf *b, uint8_t c)
{
    return flare_buf_append(b, &c, 1);
}

int flare_buf_append_uvarint(flare_buf *b, uint64_t v)
{
    uint8_t tmp[FLARE_UVARINT_MAX_LEN];
    int n = flare_uvarint_encode(v, tmp);
    if (n < 0)
        return n;
    return flare_buf_append(b, tmp, (size_t)n);
}

void flare_buf_consume(flare_buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->base, b->base + n, b->len - n);
    b->len -= n;
}

void flare_buf_reset(flare_buf *b)
{
    b->len = 0;
}
