#include <sodium.h>
#include <string.h>

#include "flare/multihash.h"
#include "flare/varint.h"

int flare_multihash_parse(const uint8_t *in, size_t len, flare_multihash_view *mh)
{
    uint64_t code, dlen;
    int a = flare_uvarint_decode(in, len, &code);
    if (a < 0)
        return a;
    int b = flare_uvarint_decode(in + a, len - (size_t)a, &dlen);
    if (b < 0)
        return b;
    size_t off = (size_t)a + (size_t)b;
    if (dlen > len - off)
        return FLARE_ERR_TRUNCATED;
    if (code == FLARE_MH_SHA2_256 && dlen != FLARE_MH_SHA2_256_LEN)
        return FLARE_ERR_MALFORMED;
    mh->code = code;
    mh->digest = in + off;
    mh->digest_len = (size_t)dlen;
    return (int)(off + dlen);
}

int flare_multihash_parse_exact(const uint8_t *in, size_t len, flare_multihash_view *mh)
{
    int n = flare_multihash_parse(in, len, mh);
    if (n >= 0 && (size_t)n != len)
        return FLARE_ERR_MALFORMED;
    return n;
}

int flare_multihash_sum(uint64_t code, const uint8_t *data, size_t len, uint8_t *out, size_t cap)
{
    uint8_t hdr[2 * FLARE_UVARINT_MAX_LEN];
    size_t dlen;
    if (code == FLARE_MH_IDENTITY)
        dlen = len;
    else if (code == FLARE_MH_SHA2_256)
        dlen = FLARE_MH_SHA2_256_LEN;
    else
        return FLARE_ERR_UNSUPPORTED;
    int a = flare_uvarint_encode(code, hdr);
    int b = flare_uvarint_encode(dlen, hdr + a);
    if (a < 0 || b < 0)
        return FLARE_ERR_OUT_OF_RANGE;
    size_t h = (size_t)a + (size_t)b;
    if (h + dlen > cap)
        return FLARE_ERR_BUFFER_TOO_SMALL;
    memcpy(out, hdr, h);
    if (code == FLARE_MH_IDENTITY)
        memcpy(out + h, data, len);
    else
        crypto_hash_sha256(out + h, data, len);
    return (int)(h + dlen);
}
