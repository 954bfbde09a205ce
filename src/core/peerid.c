/* libp2p peer IDs: multihash of the PublicKey protobuf; base58btc and CIDv1 text. */
#include <string.h>

#include "flare/multibase.h"
#include "flare/multihash.h"
#include "flare/peerid.h"
#include "flare/varint.h"

/* Keys whose encoding fits in 42 bytes are inlined (identity multihash). */
#define PEERID_INLINE_MAX 42
#define CID_VERSION_1     1

int flare_peerid_from_pubkey(flare_peerid *id, const flare_pubkey *k)
{
    if (!id || !k)
        return FLARE_ERR_INVALID_ARG;
    uint8_t enc[FLARE_PUBKEY_PROTO_MAX];
    int n = flare_pubkey_encode(k, enc, sizeof(enc));
    if (n < 0)
        return n;
    uint64_t code = n <= PEERID_INLINE_MAX ? FLARE_MH_IDENTITY : FLARE_MH_SHA2_256;
    int m = flare_multihash_sum(code, enc, (size_t)n, id->bytes, sizeof(id->bytes));
    if (m < 0)
        return m;
    id->len = (uint8_t)m;
    return 0;
}

int flare_peerid_from_bytes(flare_peerid *id, const uint8_t *in, size_t len)
{
    if (!id || (!in && len))
        return FLARE_ERR_INVALID_ARG;
    if (len == 0)
        return FLARE_ERR_TRUNCATED;
    if (len > FLARE_PEERID_MAX)
        return FLARE_ERR_TOO_LARGE;
    flare_multihash_view mh;
    int rv = flare_multihash_parse_exact(in, len, &mh);
    if (rv < 0)
        return rv;
    if (mh.code == FLARE_MH_IDENTITY) {
        if (mh.digest_len > PEERID_INLINE_MAX)
            return FLARE_ERR_TOO_LARGE;
        flare_pubkey k;
        rv = flare_pubkey_decode(&k, mh.digest, mh.digest_len);
        if (rv < 0)
            return rv;
    } else if (mh.code != FLARE_MH_SHA2_256) {
        return FLARE_ERR_UNKNOWN_CODE;
    }
    memcpy(id->bytes, in, len);
    id->len = (uint8_t)len;
    return 0;
}

/* <version><codec><multihash> after the multibase prefix is stripped. */
static int peerid_from_cid(flare_peerid *id, const uint8_t *cid, size_t len)
{
    uint64_t version, codec;
    int n = flare_uvarint_decode(cid, len, &version);
    if (n < 0)
        return n;
    if (version != CID_VERSION_1)
        return FLARE_ERR_UNKNOWN_CODE;
    size_t off = (size_t)n;
    n = flare_uvarint_decode(cid + off, len - off, &codec);
    if (n < 0)
        return n;
    if (codec != FLARE_CID_LIBP2P_KEY)
        return FLARE_ERR_UNKNOWN_CODE;
    off += (size_t)n;
    return flare_peerid_from_bytes(id, cid + off, len - off);
}

int flare_peerid_parse(flare_peerid *id, const char *s, size_t len)
{
    if (!id || (!s && len))
        return FLARE_ERR_INVALID_ARG;
    if (len == 0)
        return FLARE_ERR_TRUNCATED;
    if (len > FLARE_PEERID_STR_MAX)
        return FLARE_ERR_TOO_LARGE;
    /* Room for any text of FLARE_PEERID_STR_MAX characters (base16 is the
     * densest at 4 bits per character, base58 the least dense we accept). */
    uint8_t raw[FLARE_PEERID_STR_MAX];
    int n;
    if (s[0] == '1' || (len >= 2 && s[0] == 'Q' && s[1] == 'm')) {
        n = flare_base_decode(FLARE_MULTIBASE_BASE58BTC, s, len, raw, sizeof(raw));
        if (n < 0)
            return n == FLARE_ERR_BUFFER_TOO_SMALL ? FLARE_ERR_TOO_LARGE : n;
        return flare_peerid_from_bytes(id, raw, (size_t)n);
    }
    n = flare_multibase_decode(s, len, raw, sizeof(raw), NULL);
    if (n < 0)
        return n == FLARE_ERR_BUFFER_TOO_SMALL ? FLARE_ERR_TOO_LARGE : n;
    return peerid_from_cid(id, raw, (size_t)n);
}

int flare_peerid_to_string(const flare_peerid *id, char *out, size_t cap)
{
    if (!id || !out || id->len == 0 || id->len > FLARE_PEERID_MAX)
        return FLARE_ERR_INVALID_ARG;
    return flare_base_encode(FLARE_MULTIBASE_BASE58BTC, id->bytes, id->len, out, cap);
}

int flare_peerid_to_cid(const flare_peerid *id, char *out, size_t cap)
{
    if (!id || !out || id->len == 0 || id->len > FLARE_PEERID_MAX)
        return FLARE_ERR_INVALID_ARG;
    uint8_t cid[2 + FLARE_PEERID_MAX];
    cid[0] = CID_VERSION_1;
    cid[1] = FLARE_CID_LIBP2P_KEY;
    memcpy(cid + 2, id->bytes, id->len);
    return flare_multibase_encode(FLARE_MULTIBASE_BASE32, cid, 2u + id->len, out, cap);
}

/* The last eight bytes first: IDs of one key type share their first six
 * (multihash and key headers), so a whole-ID memcmp of two different IDs
 * walks the prefix before it finds a difference, and hash chains, peer
 * lists and connection indexes compare far more different IDs than equal
 * ones. */
int flare_peerid_equal(const flare_peerid *a, const flare_peerid *b)
{
    size_t n = a->len;
    if (n != b->len)
        return 0;
    if (n >= 8 && n <= FLARE_PEERID_MAX) {
        uint64_t x, y;
        memcpy(&x, a->bytes + n - 8, 8);
        memcpy(&y, b->bytes + n - 8, 8);
        if (x != y)
            return 0;
    }
    return memcmp(a->bytes, b->bytes, n) == 0;
}

int flare_peerid_extract_pubkey(const flare_peerid *id, flare_pubkey *k)
{
    if (!id || !k)
        return FLARE_ERR_INVALID_ARG;
    flare_multihash_view mh;
    int rv = flare_multihash_parse_exact(id->bytes, id->len, &mh);
    if (rv < 0)
        return rv;
    if (mh.code != FLARE_MH_IDENTITY)
        return FLARE_ERR_NOT_FOUND;
    return flare_pubkey_decode(k, mh.digest, mh.digest_len);
}

int flare_peerid_matches_pubkey(const flare_peerid *id, const flare_pubkey *k)
{
    flare_peerid want;
    if (!id || !k || flare_peerid_from_pubkey(&want, k) != 0)
        return 0;
    return flare_peerid_equal(id, &want);
}
