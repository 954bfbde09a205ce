/* Multiaddr binary and text forms, iteration and structure helpers. */
#include <string.h>

#include "flare/multihash.h"
#include "flare/varint.h"
#include "multiaddr_internal.h"

/* Decodes the component at in[0..len) without checking its value.
 * Returns the bytes consumed. */
/* Codes and lengths nearly always take one or two bytes: decoded inline,
 * with the general decoder's rules (no overlong form), the rest by it. */
static inline int varint(const uint8_t *in, size_t len, uint64_t *v)
{
    if (len >= 1 && in[0] < 0x80) {
        *v = in[0];
        return 1;
    }
    if (len >= 2 && in[1] < 0x80 && in[1] != 0) {
        *v = (uint64_t)(in[0] & 0x7f) | (uint64_t)in[1] << 7;
        return 2;
    }
    return flare_uvarint_decode(in, len, v);
}

static int decode_component(const uint8_t *in, size_t len, const flare__ma_proto **pp,
                            flare_ma_component *c)
{
    uint64_t code, vlen;
    int a = varint(in, len, &code);
    if (a < 0)
        return a;
    const flare__ma_proto *p = flare__ma_proto_by_code(code);
    if (!p)
        return FLARE_ERR_UNKNOWN_CODE;
    size_t off = (size_t)a;
    if (p->size >= 0) {
        vlen = (uint64_t)p->size;
    } else {
        int b = varint(in + off, len - off, &vlen);
        if (b < 0)
            return b;
        off += (size_t)b;
    }
    if (vlen > len - off)
        return FLARE_ERR_TRUNCATED;
    *pp = p;
    c->code = code;
    c->name = p->name;
    c->value = in + off;
    c->value_len = (size_t)vlen;
    return (int)(off + vlen);
}

int flare_multiaddr_next(const flare_multiaddr *ma, size_t *offset, flare_ma_component *c)
{
    const flare__ma_proto *p;
    if (*offset >= ma->len)
        return 0;
    int n = decode_component(ma->bytes + *offset, ma->len - *offset, &p, c);
    if (n < 0)
        return n;
    *offset += (size_t)n;
    return 1;
}

int flare_multiaddr_from_bytes(flare_multiaddr *ma, const uint8_t *in, size_t len)
{
    ma->len = 0;
    if (len == 0)
        return FLARE_ERR_MALFORMED;
    if (len > FLARE_MULTIADDR_MAX)
        return FLARE_ERR_TOO_LARGE;
    for (size_t off = 0; off < len;) {
        const flare__ma_proto *p;
        flare_ma_component c;
        int n = decode_component(in + off, len - off, &p, &c);
        if (n < 0)
            return n;
        int rv = flare__ma_value_check(p, c.value, c.value_len);
        if (rv < 0)
            return rv;
        off += (size_t)n;
        /* A path takes the rest of the text form, so it must come last. */
        if (p->kind == FLARE__MA_PATH && off < len)
            return FLARE_ERR_MALFORMED;
    }
    memmove(ma->bytes, in, len); /* in may be ma->bytes */
    ma->len = (uint16_t)len;
    return 0;
}

/* 1 if the last component is a path (nothing may follow it). */
static int ends_with_path(const flare_multiaddr *ma)
{
    size_t off = 0;
    flare_ma_component c;
    const flare__ma_proto *p = NULL;
    while (flare_multiaddr_next(ma, &off, &c) == 1)
        p = flare__ma_proto_by_code(c.code);
    return p && p->kind == FLARE__MA_PATH;
}

/* Appends an already validated component. */
static int append_raw(flare_multiaddr *ma, const flare__ma_proto *p, const uint8_t *v, size_t len)
{
    uint8_t hdr[2 * FLARE_UVARINT_MAX_LEN];
    int a = flare_uvarint_encode(p->code, hdr);
    size_t h = (size_t)a;
    if (p->size < 0)
        h += (size_t)flare_uvarint_encode(len, hdr + h);
    if (h + len > (size_t)FLARE_MULTIADDR_MAX - ma->len)
        return FLARE_ERR_TOO_LARGE;
    memcpy(ma->bytes + ma->len, hdr, h);
    if (len)
        memcpy(ma->bytes + ma->len + h, v, len);
    ma->len = (uint16_t)(ma->len + h + len);
    return 0;
}

int flare_multiaddr_push(flare_multiaddr *ma, uint64_t code, const uint8_t *value, size_t len)
{
    const flare__ma_proto *p = flare__ma_proto_by_code(code);
    if (!p)
        return FLARE_ERR_UNKNOWN_CODE;
    if (len > FLARE_MULTIADDR_MAX)
        return FLARE_ERR_TOO_LARGE;
    int rv = flare__ma_value_check(p, value, len);
    if (rv < 0)
        return rv;
    if (ends_with_path(ma))
        return FLARE_ERR_MALFORMED;
    return append_raw(ma, p, value, len);
}

/* Parses one "name[/value]" at s[*pos..len) (just after a '/'). */
static int parse_component(flare_multiaddr *ma, const char *s, size_t len, size_t *pos)
{
    uint8_t val[FLARE_MULTIADDR_MAX];
    size_t start = *pos, end = start;
    while (end < len && s[end] != '/')
        end++;
    if (end == start)
        return FLARE_ERR_MALFORMED; /* empty protocol name ("//") */
    const flare__ma_proto *p = flare__ma_proto_by_name(s + start, end - start);
    if (!p)
        return FLARE_ERR_UNKNOWN_CODE;
    if (p->kind == FLARE__MA_NONE) {
        *pos = end + 1;
        return append_raw(ma, p, NULL, 0);
    }
    if (end >= len)
        return FLARE_ERR_MALFORMED; /* value missing */
    size_t vstart = end + 1, vend = vstart;
    if (p->kind == FLARE__MA_PATH) {
        vstart = end; /* the path keeps its leading '/' and takes the rest */
        vend = len;
    } else {
        while (vend < len && s[vend] != '/')
            vend++;
    }
    if (vend == vstart)
        return FLARE_ERR_MALFORMED;
    int n = flare__ma_value_from_text(p, s + vstart, vend - vstart, val, sizeof(val));
    if (n < 0)
        return n;
    *pos = vend + 1;
    return append_raw(ma, p, val, (size_t)n);
}

int flare_multiaddr_parse_n(flare_multiaddr *ma, const char *s, size_t len)
{
    ma->len = 0;
    if (len == 0 || s[0] != '/')
        return FLARE_ERR_MALFORMED;
    while (len > 0 && s[len - 1] == '/')
        len--; /* trailing slashes are ignored, as go-multiaddr does */
    if (len == 0)
        return FLARE_ERR_MALFORMED;
    for (size_t pos = 1; pos < len;) {
        int rv = parse_component(ma, s, len, &pos);
        if (rv < 0) {
            ma->len = 0;
            return rv;
        }
    }
    return 0;
}

int flare_multiaddr_parse(flare_multiaddr *ma, const char *s)
{
    return flare_multiaddr_parse_n(ma, s, strlen(s));
}

int flare_multiaddr_component_to_string(const flare_ma_component *c, char *out, size_t cap)
{
    const flare__ma_proto *p = flare__ma_proto_by_code(c->code);
    if (!p)
        return FLARE_ERR_UNKNOWN_CODE;
    return flare__ma_value_to_text(p, c->value, c->value_len, out, cap);
}

int flare_multiaddr_to_string(const flare_multiaddr *ma, char *out, size_t cap)
{
    size_t off = 0, n = 0;
    flare_ma_component c;
    int rv;
    if (cap < 2)
        return FLARE_ERR_BUFFER_TOO_SMALL;
    if (ma->len == 0) {
        memcpy(out, "/", 2);
        return 1;
    }
    out[0] = 0;
    while ((rv = flare_multiaddr_next(ma, &off, &c)) == 1) {
        const flare__ma_proto *p = flare__ma_proto_by_code(c.code);
        size_t nl = strlen(c.name);
        if (n + 1 + nl + 1 > cap)
            return FLARE_ERR_BUFFER_TOO_SMALL;
        out[n++] = '/';
        memcpy(out + n, c.name, nl);
        n += nl;
        out[n] = 0;
        if (p->kind == FLARE__MA_NONE)
            continue;
        if (p->kind != FLARE__MA_PATH) {
            if (n + 2 > cap)
                return FLARE_ERR_BUFFER_TOO_SMALL;
            out[n++] = '/';
        }
        int w = flare__ma_value_to_text(p, c.value, c.value_len, out + n, cap - n);
        if (w < 0)
            return w;
        n += (size_t)w;
    }
    return rv < 0 ? rv : (int)n;
}

/* --- structure helpers --- */

int flare_multiaddr_encapsulate(flare_multiaddr *ma, const flare_multiaddr *suffix)
{
    if ((size_t)ma->len + suffix->len > FLARE_MULTIADDR_MAX)
        return FLARE_ERR_TOO_LARGE;
    if (suffix->len && ends_with_path(ma))
        return FLARE_ERR_MALFORMED;
    memmove(ma->bytes + ma->len, suffix->bytes, suffix->len);
    ma->len = (uint16_t)(ma->len + suffix->len);
    return 0;
}

/* Offset of the last component with code (and optionally its end), or
 * FLARE_ERR_NOT_FOUND. */
static int find_last(const flare_multiaddr *ma, uint64_t code, flare_ma_component *out, size_t *end)
{
    size_t off = 0, start = 0;
    int found = FLARE_ERR_NOT_FOUND, rv;
    flare_ma_component c;
    while (start = off, (rv = flare_multiaddr_next(ma, &off, &c)) == 1) {
        if (c.code == code) {
            found = (int)start;
            if (out)
                *out = c;
            if (end)
                *end = off;
        }
    }
    return rv < 0 ? rv : found;
}

int flare_multiaddr_decapsulate(flare_multiaddr *ma, uint64_t code)
{
    int at = find_last(ma, code, NULL, NULL);
    if (at < 0)
        return at;
    ma->len = (uint16_t)at;
    return 0;
}

int flare_multiaddr_equal(const flare_multiaddr *a, const flare_multiaddr *b)
{
    return a->len == b->len && memcmp(a->bytes, b->bytes, a->len) == 0;
}

int flare_multiaddr_find(const flare_multiaddr *ma, uint64_t code, flare_ma_component *c)
{
    size_t off = 0;
    int rv;
    while ((rv = flare_multiaddr_next(ma, &off, c)) == 1)
        if (c->code == code)
            return 0;
    return rv < 0 ? rv : FLARE_ERR_NOT_FOUND;
}

int flare_multiaddr_has(const flare_multiaddr *ma, uint64_t code)
{
    flare_ma_component c;
    return flare_multiaddr_find(ma, code, &c) == 0;
}

/* --- peer ids --- */

int flare_multiaddr_get_peerid(const flare_multiaddr *ma, flare_peerid *id)
{
    flare_ma_component c;
    int rv = find_last(ma, FLARE_MA_P2P, &c, NULL);
    if (rv < 0)
        return rv;
    if (c.value_len > FLARE_PEERID_MAX)
        return FLARE_ERR_MALFORMED;
    memcpy(id->bytes, c.value, c.value_len);
    id->len = (uint8_t)c.value_len;
    return 0;
}

int flare_multiaddr_with_peerid(flare_multiaddr *ma, const flare_peerid *id)
{
    flare_ma_component c;
    size_t end = 0;
    if (id->len == 0 || id->len > FLARE_PEERID_MAX ||
        flare__ma_value_check(flare__ma_proto_by_code(FLARE_MA_P2P), id->bytes, id->len) < 0)
        return FLARE_ERR_INVALID_ARG;
    int at = find_last(ma, FLARE_MA_P2P, &c, &end);
    if (at >= 0 && end == ma->len) {
        if (c.value_len == id->len && memcmp(c.value, id->bytes, id->len) == 0)
            return 0;
        return FLARE_ERR_PEER_ID_MISMATCH;
    }
    return flare_multiaddr_push(ma, FLARE_MA_P2P, id->bytes, id->len);
}
