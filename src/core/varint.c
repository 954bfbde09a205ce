#include "flare/varint.h"

int flare_uvarint_decode(const uint8_t *in, size_t len, uint64_t *value)
{
    uint64_t v = 0;
    for (size_t i = 0; i < FLARE_UVARINT_MAX_LEN; i++) {
        if (i >= len)
            return FLARE_ERR_TRUNCATED;
        uint8_t b = in[i];
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            /* A last byte of 0 after others means a shorter form existed. */
            if (b == 0 && i > 0)
                return FLARE_ERR_OVERLONG;
            *value = v;
            return (int)(i + 1);
        }
    }
    return FLARE_ERR_OVERLONG;
}

int flare_uvarint_encode(uint64_t v, uint8_t *out)
{
    if (v > FLARE_UVARINT_MAX_VALUE)
        return FLARE_ERR_OUT_OF_RANGE;
    int n = 0;
    while (v >= 0x80) {
        out[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    out[n++] = (uint8_t)v;
    return n;
}

size_t flare_uvarint_len(uint64_t v)
{
    if (v > FLARE_UVARINT_MAX_VALUE)
        return 0;
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}
