/* Bounded DER TLVs (see tls_der.h). */
#include "security/tls/tls_der.h"

#include <string.h>

#include "flare/common.h"

int flare__der_get(flare__der *d, uint8_t tag, flare__der *val, flare__der *whole)
{
    if (d->len < 2)
        return FLARE_ERR_TRUNCATED;
    if (d->p[0] != tag)
        return FLARE_ERR_MALFORMED;
    size_t hdr = 2, n = d->p[1];
    if (n & 0x80) {
        size_t k = n & 0x7f;
        /* 0x80 is BER's indefinite form; more than 3 bytes is beyond any bound here */
        if (k == 0 || k > 3)
            return FLARE_ERR_MALFORMED;
        if (d->len < 2 + k)
            return FLARE_ERR_TRUNCATED;
        if (d->p[2] == 0)
            return FLARE_ERR_MALFORMED; /* leading zero: non-minimal */
        n = 0;
        for (size_t i = 0; i < k; i++)
            n = (n << 8) | d->p[2 + i];
        if (n < 0x80)
            return FLARE_ERR_MALFORMED; /* fits the short form */
        hdr += k;
    }
    if (n > d->len - hdr)
        return FLARE_ERR_TRUNCATED;
    if (whole) {
        whole->p = d->p;
        whole->len = hdr + n;
    }
    val->p = d->p + hdr;
    val->len = n;
    d->p += hdr + n;
    d->len -= hdr + n;
    return 0;
}

int flare__der_put(uint8_t *out, size_t cap, size_t *pos, uint8_t tag, const uint8_t *val,
                   size_t len)
{
    uint8_t hdr[5];
    size_t h = 0;
    hdr[h++] = tag;
    if (len < 0x80) {
        hdr[h++] = (uint8_t)len;
    } else if (len < 0x100) {
        hdr[h++] = 0x81;
        hdr[h++] = (uint8_t)len;
    } else if (len < 0x10000) {
        hdr[h++] = 0x82;
        hdr[h++] = (uint8_t)(len >> 8);
        hdr[h++] = (uint8_t)len;
    } else {
        return FLARE_ERR_BUFFER_TOO_SMALL;
    }
    if (*pos > cap || cap - *pos < h + len)
        return FLARE_ERR_BUFFER_TOO_SMALL;
    memcpy(out + *pos, hdr, h);
    memcpy(out + *pos + h, val, len);
    *pos += h + len;
    return 0;
}
