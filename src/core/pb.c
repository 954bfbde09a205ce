/* Internal protobuf helpers: protobuf-c allocator, zero-copy field reader. */
#include "core/pb.h"

#include "core/mem.h"

static void *pb_alloc(void *data, size_t size)
{
    return flare__malloc((const flare_mem *)data, size);
}

static void pb_free(void *data, void *ptr)
{
    flare__free((const flare_mem *)data, ptr);
}

ProtobufCAllocator flare__pb_allocator(const flare_mem *mem)
{
    ProtobufCAllocator a;
    a.alloc = pb_alloc;
    a.free = pb_free;
    /* protobuf-c wants a non-const pointer; we never write through it. */
    a.allocator_data = (void *)flare__mem(mem);
    return a;
}

int flare__pb_varint(const uint8_t *in, size_t len, uint64_t *v)
{
    uint64_t x = 0;
    for (size_t i = 0; i < 10; i++) {
        if (i >= len)
            return FLARE_ERR_TRUNCATED;
        uint8_t c = in[i];
        /* The tenth byte may carry only the top bit of a 64-bit value. */
        if (i == 9 && c > 1)
            return FLARE_ERR_OVERLONG;
        x |= (uint64_t)(c & 0x7f) << (7 * i);
        if (!(c & 0x80)) {
            *v = x;
            return (int)i + 1;
        }
    }
    return FLARE_ERR_OVERLONG;
}

static int pb_skip_fixed(flare__pb_reader *r, flare__pb_field *f, size_t n)
{
    if (r->len - r->off < n)
        return FLARE_ERR_TRUNCATED;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v |= (uint64_t)r->p[r->off + i] << (8 * i);
    f->v = v;
    r->off += n;
    return 1;
}

int flare__pb_next(flare__pb_reader *r, flare__pb_field *f)
{
    if (r->off >= r->len)
        return 0;
    uint64_t tag;
    int n = flare__pb_varint(r->p + r->off, r->len - r->off, &tag);
    if (n < 0)
        return n;
    r->off += (size_t)n;
    uint64_t num = tag >> 3;
    if (num == 0 || num > 0x1fffffff)
        return FLARE_ERR_MALFORMED;
    f->num = (uint32_t)num;
    f->wire = (int)(tag & 7);
    f->data = NULL;
    f->len = 0;
    f->v = 0;
    switch (f->wire) {
    case FLARE__PB_VARINT:
        n = flare__pb_varint(r->p + r->off, r->len - r->off, &f->v);
        if (n < 0)
            return n;
        r->off += (size_t)n;
        return 1;
    case FLARE__PB_I64:
        return pb_skip_fixed(r, f, 8);
    case FLARE__PB_I32:
        return pb_skip_fixed(r, f, 4);
    case FLARE__PB_LEN: {
        uint64_t l;
        n = flare__pb_varint(r->p + r->off, r->len - r->off, &l);
        if (n < 0)
            return n;
        r->off += (size_t)n;
        if (l > r->len - r->off)
            return FLARE_ERR_TRUNCATED;
        f->data = r->p + r->off;
        f->len = (size_t)l;
        r->off += (size_t)l;
        return 1;
    }
    default: /* groups (3, 4) are not used by libp2p; 6, 7 do not exist */
        return FLARE_ERR_MALFORMED;
    }
}

int flare__pb_put_varint_field(flare_buf *b, uint32_t num, uint64_t v)
{
    int rv = flare_buf_append_uvarint(b, (uint64_t)num << 3 | FLARE__PB_VARINT);
    if (rv < 0)
        return rv;
    /* Protobuf varints cover all 64 bits; flare's uvarint stops at 63. */
    uint8_t tmp[10];
    size_t n = 0;
    do {
        tmp[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v)
            tmp[n] |= 0x80;
        n++;
    } while (v);
    return flare_buf_append(b, tmp, n);
}

int flare__pb_put_bytes_field(flare_buf *b, uint32_t num, const uint8_t *data, size_t len)
{
    int rv = flare_buf_append_uvarint(b, (uint64_t)num << 3 | FLARE__PB_LEN);
    if (rv < 0)
        return rv;
    rv = flare_buf_append_uvarint(b, len);
    if (rv < 0)
        return rv;
    return len ? flare_buf_append(b, data, len) : 0;
}
