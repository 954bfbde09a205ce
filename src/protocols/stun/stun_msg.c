/*
 * STUN messages (RFC 8489): parsing with bounds, building, integrity
 * (HMAC-SHA1 and HMAC-SHA256 over the message up to the attribute, with the
 * header length covering it) and FINGERPRINT.
 */
#include <gnutls/crypto.h>
#include <string.h>

#include "flare/stun.h"

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void wr32(uint8_t *p, uint32_t v)
{
    wr16(p, (uint16_t)(v >> 16));
    wr16(p + 2, (uint16_t)v);
}

uint32_t flare_stun_crc32(const uint8_t *data, size_t len)
{
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < len; i++) {
        crc ^= data[i];
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

int flare_stun_is_stun(const uint8_t *data, size_t len)
{
    if (!data || len < FLARE_STUN_HEADER_LEN || data[0] > 3)
        return 0;
    size_t mlen = rd16(data + 2);
    return rd32(data + 4) == FLARE_STUN_MAGIC && (mlen & 3) == 0 &&
           mlen + FLARE_STUN_HEADER_LEN == len;
}

/* Comprehension-required attributes this core understands. */
static int known_required(uint16_t type)
{
    switch (type) {
    case FLARE_STUN_ATTR_MAPPED_ADDRESS:
    case FLARE_STUN_ATTR_USERNAME:
    case FLARE_STUN_ATTR_MESSAGE_INTEGRITY:
    case FLARE_STUN_ATTR_ERROR_CODE:
    case FLARE_STUN_ATTR_UNKNOWN_ATTRIBUTES:
    case FLARE_STUN_ATTR_REALM:
    case FLARE_STUN_ATTR_NONCE:
    case FLARE_STUN_ATTR_MI_SHA256:
    case FLARE_STUN_ATTR_XOR_MAPPED_ADDRESS:
    case FLARE_STUN_ATTR_PRIORITY:
    case FLARE_STUN_ATTR_USE_CANDIDATE:
        return 1;
    default:
        return type >= 0x8000;
    }
}

/* Checks the header; returns the attribute bytes' length or an error. */
static int parse_header(flare_stun_msg *m, const uint8_t *data, size_t len)
{
    if (len < FLARE_STUN_HEADER_LEN)
        return FLARE_ERR_TRUNCATED;
    if (len > FLARE_STUN_MAX_MSG)
        return FLARE_ERR_TOO_LARGE;
    if (data[0] & 0xC0 || rd32(data + 4) != FLARE_STUN_MAGIC)
        return FLARE_ERR_MALFORMED;
    size_t mlen = rd16(data + 2);
    if (mlen & 3)
        return FLARE_ERR_MALFORMED;
    if (mlen + FLARE_STUN_HEADER_LEN > len)
        return FLARE_ERR_TRUNCATED;
    if (mlen + FLARE_STUN_HEADER_LEN < len)
        return FLARE_ERR_MALFORMED;
    uint16_t t = rd16(data);
    m->method = (uint16_t)((t & 0x000F) | (t & 0x00E0) >> 1 | (t & 0x3E00) >> 2);
    m->cls = (flare_stun_class)((t >> 4 & 1) | (t >> 7 & 2));
    memcpy(m->txid, data + 8, FLARE_STUN_TXID_LEN);
    m->raw = data;
    m->len = len;
    return (int)mlen;
}

/* Takes note of one attribute at off (its header). */
static int parse_attr(flare_stun_msg *m, size_t off, uint16_t type, uint16_t alen)
{
    if (m->fingerprint_off)
        return FLARE_ERR_MALFORMED; /* FINGERPRINT must be last */
    if (type == FLARE_STUN_ATTR_FINGERPRINT) {
        if (alen != 4)
            return FLARE_ERR_MALFORMED;
        m->fingerprint_off = off;
        return 0;
    }
    if (m->integrity_off || m->integrity256_off) {
        if (type != FLARE_STUN_ATTR_MI_SHA256 || m->integrity256_off)
            return 0; /* ignored after MESSAGE-INTEGRITY */
    }
    if (type == FLARE_STUN_ATTR_MESSAGE_INTEGRITY) {
        if (alen != 20)
            return FLARE_ERR_MALFORMED;
        m->integrity_off = off;
    } else if (type == FLARE_STUN_ATTR_MI_SHA256) {
        if (alen < 16 || alen > 32 || alen % 4)
            return FLARE_ERR_MALFORMED;
        m->integrity256_off = off;
    }
    if (m->nattrs >= FLARE_STUN_MAX_ATTRS)
        return FLARE_ERR_LIMIT;
    m->attrs[m->nattrs++] = (flare_stun_attr){type, alen, (uint16_t)(off + 4)};
    if (!known_required(type) && m->unknown_required < 4)
        m->unknown_types[m->unknown_required++] = type;
    else if (!known_required(type))
        m->unknown_required++;
    return 0;
}

int flare_stun_parse(flare_stun_msg *m, const uint8_t *data, size_t len)
{
    if (!m || !data)
        return FLARE_ERR_INVALID_ARG;
    memset(m, 0, sizeof(*m));
    int mlen = parse_header(m, data, len);
    if (mlen < 0)
        return mlen;
    size_t off = FLARE_STUN_HEADER_LEN;
    while (off < len) {
        if (len - off < 4)
            return FLARE_ERR_MALFORMED;
        uint16_t type = rd16(data + off), alen = rd16(data + off + 2);
        size_t padded = ((size_t)alen + 3) & ~(size_t)3;
        if (padded > len - off - 4)
            return FLARE_ERR_MALFORMED;
        int rv = parse_attr(m, off, type, alen);
        if (rv)
            return rv;
        off += 4 + padded;
    }
    if (m->fingerprint_off) {
        uint32_t want = flare_stun_crc32(data, m->fingerprint_off) ^ FLARE_STUN_FINGERPRINT_XOR;
        if (rd32(data + m->fingerprint_off + 4) != want)
            return FLARE_ERR_BAD_SIGNATURE;
    }
    return 0;
}

const flare_stun_attr *flare_stun_find(const flare_stun_msg *m, uint16_t type)
{
    for (size_t i = 0; i < m->nattrs; i++)
        if (m->attrs[i].type == type)
            return &m->attrs[i];
    return NULL;
}

int flare_stun_get_addr(const flare_stun_msg *m, uint16_t type, flare_ipaddr *out)
{
    const flare_stun_attr *a = flare_stun_find(m, type);
    if (!a)
        return FLARE_ERR_NOT_FOUND;
    const uint8_t *v = m->raw + a->off;
    int xor = type != FLARE_STUN_ATTR_MAPPED_ADDRESS;
    if (a->len < 4)
        return FLARE_ERR_MALFORMED;
    memset(out, 0, sizeof(*out));
    size_t iplen;
    if (v[1] == 1 && a->len == 8) {
        out->family = 4;
        iplen = 4;
    } else if (v[1] == 2 && a->len == 20) {
        out->family = 6;
        iplen = 16;
    } else {
        return FLARE_ERR_MALFORMED;
    }
    out->port = rd16(v + 2);
    memcpy(out->ip, v + 4, iplen);
    if (xor) {
        out->port ^= (uint16_t)(FLARE_STUN_MAGIC >> 16);
        for (size_t i = 0; i < iplen; i++) /* cookie then transaction id */
            out->ip[i] ^= m->raw[4 + i];
    }
    return 0;
}

int flare_stun_get_error(const flare_stun_msg *m, int *code, const char **reason,
                         size_t *reason_len)
{
    const flare_stun_attr *a = flare_stun_find(m, FLARE_STUN_ATTR_ERROR_CODE);
    if (!a)
        return FLARE_ERR_NOT_FOUND;
    const uint8_t *v = m->raw + a->off;
    if (a->len < 4 || v[2] < 3 || v[2] > 6 || v[3] > 99)
        return FLARE_ERR_MALFORMED;
    *code = v[2] * 100 + v[3];
    if (reason)
        *reason = (const char *)v + 4;
    if (reason_len)
        *reason_len = a->len - 4u;
    return 0;
}

int flare_stun_get_u32(const flare_stun_msg *m, uint16_t type, uint32_t *out)
{
    const flare_stun_attr *a = flare_stun_find(m, type);
    if (!a)
        return FLARE_ERR_NOT_FOUND;
    if (a->len != 4)
        return FLARE_ERR_MALFORMED;
    *out = rd32(m->raw + a->off);
    return 0;
}

int flare_stun_get_u64(const flare_stun_msg *m, uint16_t type, uint64_t *out)
{
    const flare_stun_attr *a = flare_stun_find(m, type);
    if (!a)
        return FLARE_ERR_NOT_FOUND;
    if (a->len != 8)
        return FLARE_ERR_MALFORMED;
    *out = (uint64_t)rd32(m->raw + a->off) << 32 | rd32(m->raw + a->off + 4);
    return 0;
}

/* HMAC over msg[0..off) with the header's length set to end at the
 * attribute at off, whose value is vlen bytes. */
static int mac_upto(gnutls_mac_algorithm_t alg, const uint8_t *msg, size_t off, size_t vlen,
                    const uint8_t *key, size_t key_len, uint8_t *digest)
{
    uint8_t hdr[FLARE_STUN_HEADER_LEN];
    memcpy(hdr, msg, sizeof(hdr));
    wr16(hdr + 2, (uint16_t)(off + 4 + vlen - FLARE_STUN_HEADER_LEN));
    gnutls_hmac_hd_t h;
    if (gnutls_hmac_init(&h, alg, key_len ? key : (const uint8_t *)"", key_len) < 0)
        return FLARE_ERR_CRYPTO;
    int rv = gnutls_hmac(h, hdr, sizeof(hdr));
    if (rv >= 0 && off > FLARE_STUN_HEADER_LEN)
        rv = gnutls_hmac(h, msg + FLARE_STUN_HEADER_LEN, off - FLARE_STUN_HEADER_LEN);
    gnutls_hmac_deinit(h, digest);
    return rv < 0 ? FLARE_ERR_CRYPTO : 0;
}

/* Constant time: a forged tag must not be found byte by byte. */
static int ct_equal(const uint8_t *a, const uint8_t *b, size_t n)
{
    uint8_t d = 0;
    for (size_t i = 0; i < n; i++)
        d |= a[i] ^ b[i];
    return d == 0;
}

int flare_stun_check_integrity(const flare_stun_msg *m, const uint8_t *key, size_t key_len)
{
    if (!m->integrity_off)
        return FLARE_ERR_NOT_FOUND;
    uint8_t d[20];
    if (mac_upto(GNUTLS_MAC_SHA1, m->raw, m->integrity_off, 20, key, key_len, d))
        return FLARE_ERR_BAD_SIGNATURE;
    return ct_equal(d, m->raw + m->integrity_off + 4, 20) ? 0 : FLARE_ERR_BAD_SIGNATURE;
}

int flare_stun_check_integrity_sha256(const flare_stun_msg *m, const uint8_t *key, size_t key_len)
{
    if (!m->integrity256_off)
        return FLARE_ERR_NOT_FOUND;
    size_t n = rd16(m->raw + m->integrity256_off + 2);
    uint8_t d[32];
    if (mac_upto(GNUTLS_MAC_SHA256, m->raw, m->integrity256_off, n, key, key_len, d))
        return FLARE_ERR_BAD_SIGNATURE;
    return ct_equal(d, m->raw + m->integrity256_off + 4, n) ? 0 : FLARE_ERR_BAD_SIGNATURE;
}

/* ---- building ------------------------------------------------------------------------- */

void flare_stun_build_init(flare_stun_builder *b, uint8_t *buf, size_t cap, uint16_t method,
                           flare_stun_class cls, const uint8_t txid[FLARE_STUN_TXID_LEN])
{
    b->buf = buf;
    b->cap = cap;
    b->len = FLARE_STUN_HEADER_LEN;
    b->err = 0;
    if (!buf || !txid || method > 0xFFF || (unsigned)cls > 3) {
        b->err = FLARE_ERR_INVALID_ARG;
        return;
    }
    if (cap < FLARE_STUN_HEADER_LEN) {
        b->err = FLARE_ERR_BUFFER_TOO_SMALL;
        return;
    }
    uint16_t t = (uint16_t)((method & 0x000F) | (method & 0x0070) << 1 | (method & 0x0F80) << 2 |
                            (cls & 1) << 4 | (cls & 2) << 7);
    wr16(buf, t);
    wr16(buf + 2, 0);
    wr32(buf + 4, FLARE_STUN_MAGIC);
    memcpy(buf + 8, txid, FLARE_STUN_TXID_LEN);
}

/* Reserves an attribute of vlen bytes (padded); returns its value or NULL. */
static uint8_t *reserve(flare_stun_builder *b, uint16_t type, size_t vlen)
{
    if (b->err)
        return NULL;
    size_t padded = (vlen + 3) & ~(size_t)3;
    if (vlen > 0xFFFF || b->len + 4 + padded > b->cap || b->len + 4 + padded > 0xFFFF + 20) {
        b->err = vlen > 0xFFFF ? FLARE_ERR_INVALID_ARG : FLARE_ERR_BUFFER_TOO_SMALL;
        return NULL;
    }
    uint8_t *p = b->buf + b->len;
    wr16(p, type);
    wr16(p + 2, (uint16_t)vlen);
    memset(p + 4, 0, padded);
    b->len += 4 + padded;
    wr16(b->buf + 2, (uint16_t)(b->len - FLARE_STUN_HEADER_LEN));
    return p + 4;
}

void flare_stun_add_attr(flare_stun_builder *b, uint16_t type, const void *value, size_t len)
{
    uint8_t *p = reserve(b, type, len);
    if (p && len)
        memcpy(p, value, len);
}

void flare_stun_add_addr(flare_stun_builder *b, uint16_t type, const flare_ipaddr *a)
{
    if (!b->err && (!a || (a->family != 4 && a->family != 6)))
        b->err = FLARE_ERR_INVALID_ARG;
    size_t iplen = a && a->family == 6 ? 16 : 4;
    uint8_t *p = reserve(b, type, 4 + iplen);
    if (!p)
        return;
    int xor = type != FLARE_STUN_ATTR_MAPPED_ADDRESS;
    p[1] = a->family == 6 ? 2 : 1;
    wr16(p + 2, xor? (uint16_t)(a->port ^ (FLARE_STUN_MAGIC >> 16)) : a->port);
    for (size_t i = 0; i < iplen; i++)
        p[4 + i] = (uint8_t)(a->ip[i] ^ (xor? b->buf[4 + i] : 0));
}

void flare_stun_add_u32(flare_stun_builder *b, uint16_t type, uint32_t v)
{
    uint8_t *p = reserve(b, type, 4);
    if (p)
        wr32(p, v);
}

void flare_stun_add_u64(flare_stun_builder *b, uint16_t type, uint64_t v)
{
    uint8_t *p = reserve(b, type, 8);
    if (p) {
        wr32(p, (uint32_t)(v >> 32));
        wr32(p + 4, (uint32_t)v);
    }
}

void flare_stun_add_error(flare_stun_builder *b, int code, const char *reason)
{
    if (!b->err && (code < 300 || code > 699))
        b->err = FLARE_ERR_INVALID_ARG;
    size_t rlen = reason ? strlen(reason) : 0;
    if (rlen > 763)
        rlen = 763;
    uint8_t *p = reserve(b, FLARE_STUN_ATTR_ERROR_CODE, 4 + rlen);
    if (!p)
        return;
    p[2] = (uint8_t)(code / 100);
    p[3] = (uint8_t)(code % 100);
    if (rlen)
        memcpy(p + 4, reason, rlen);
}

static void add_mac(flare_stun_builder *b, uint16_t type, gnutls_mac_algorithm_t alg, size_t n,
                    const uint8_t *key, size_t key_len)
{
    size_t off = b->len;
    uint8_t *p = reserve(b, type, n);
    if (!p)
        return;
    uint8_t d[32];
    if (mac_upto(alg, b->buf, off, n, key, key_len, d)) {
        b->err = FLARE_ERR_CRYPTO;
        return;
    }
    memcpy(p, d, n);
}

void flare_stun_add_integrity(flare_stun_builder *b, const uint8_t *key, size_t key_len)
{
    add_mac(b, FLARE_STUN_ATTR_MESSAGE_INTEGRITY, GNUTLS_MAC_SHA1, 20, key, key_len);
}

void flare_stun_add_integrity_sha256(flare_stun_builder *b, const uint8_t *key, size_t key_len)
{
    add_mac(b, FLARE_STUN_ATTR_MI_SHA256, GNUTLS_MAC_SHA256, 32, key, key_len);
}

void flare_stun_add_fingerprint(flare_stun_builder *b)
{
    size_t off = b->len;
    uint8_t *p = reserve(b, FLARE_STUN_ATTR_FINGERPRINT, 4);
    if (p)
        wr32(p, flare_stun_crc32(b->buf, off) ^ FLARE_STUN_FINGERPRINT_XOR);
}

int flare_stun_build_finish(flare_stun_builder *b)
{
    return b->err ? b->err : (int)b->len;
}
