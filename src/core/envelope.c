/* Signed envelopes (libp2p/specs RFC 0002). */
#include <string.h>

#include "core/pb.h"
#include "flare/envelope.h"
#include "flare/sig_cache.h"
#include "flare/varint.h"

/* Room for the signed bytes of the largest envelope we accept: the domain,
 * payload type and payload, each with a length prefix. */
#define SIGNING_MAX (FLARE_ENVELOPE_DOMAIN_MAX + FLARE_ENVELOPE_MAX + 3 * FLARE_UVARINT_MAX_LEN)

enum { F_PUBKEY = 1, F_TYPE = 2, F_PAYLOAD = 3, F_SIG = 5 };

static size_t put_lp(uint8_t *out, size_t off, const uint8_t *p, size_t len)
{
    off += (size_t)flare_uvarint_encode(len, out + off);
    if (len)
        memcpy(out + off, p, len);
    return off + len;
}

/* Writes the bytes the signature covers; returns their length or
 * FLARE_ERR_TOO_LARGE. */
static int signing_bytes(const char *domain, size_t dlen, const uint8_t *type, size_t tlen,
                         const uint8_t *payload, size_t plen, uint8_t out[SIGNING_MAX])
{
    if (tlen > FLARE_ENVELOPE_MAX || plen > FLARE_ENVELOPE_MAX || tlen + plen > FLARE_ENVELOPE_MAX)
        return FLARE_ERR_TOO_LARGE;
    size_t off = put_lp(out, 0, (const uint8_t *)domain, dlen);
    off = put_lp(out, off, type, tlen);
    off = put_lp(out, off, payload, plen);
    return (int)off;
}

static int domain_len(const char *domain, size_t *dlen)
{
    if (!domain)
        return FLARE_ERR_INVALID_ARG;
    *dlen = strlen(domain);
    return *dlen == 0 || *dlen > FLARE_ENVELOPE_DOMAIN_MAX ? FLARE_ERR_INVALID_ARG : 0;
}

int flare_envelope_seal(const flare_privkey *k, const char *domain, const uint8_t *payload_type,
                        size_t payload_type_len, const uint8_t *payload, size_t payload_len,
                        flare_buf *out)
{
    size_t dlen;
    if (!k || !out || !payload_type || payload_type_len == 0 || (!payload && payload_len) ||
        domain_len(domain, &dlen) != 0)
        return FLARE_ERR_INVALID_ARG;
    uint8_t msg[SIGNING_MAX];
    int mlen =
        signing_bytes(domain, dlen, payload_type, payload_type_len, payload, payload_len, msg);
    if (mlen < 0)
        return mlen;
    uint8_t sig[FLARE_SIG_MAX], pk[FLARE_PUBKEY_PROTO_MAX];
    size_t siglen;
    int rv = flare_privkey_sign(k, msg, (size_t)mlen, sig, &siglen);
    if (rv)
        return rv;
    int pklen = flare_pubkey_encode(&k->pub, pk, sizeof(pk));
    if (pklen < 0)
        return pklen;
    size_t start = out->len;
    /* Fields in number order; an empty payload is omitted, as proto3 does. */
    if ((rv = flare__pb_put_bytes_field(out, F_PUBKEY, pk, (size_t)pklen)) ||
        (rv = flare__pb_put_bytes_field(out, F_TYPE, payload_type, payload_type_len)) ||
        (payload_len && (rv = flare__pb_put_bytes_field(out, F_PAYLOAD, payload, payload_len))) ||
        (rv = flare__pb_put_bytes_field(out, F_SIG, sig, siglen))) {
        out->len = start;
        return rv;
    }
    if (out->len - start > FLARE_ENVELOPE_MAX) {
        out->len = start;
        return FLARE_ERR_TOO_LARGE;
    }
    return 0;
}

/* Splits the protobuf into *env's views; *pk receives field 1. */
static int envelope_parse(const uint8_t *in, size_t len, flare_envelope *env, const uint8_t **pk,
                          size_t *pklen)
{
    flare__pb_reader r;
    flare__pb_field f;
    int rv, have_pk = 0, have_type = 0, have_sig = 0;
    flare__pb_reader_init(&r, in, len);
    env->payload = in; /* an absent payload is empty */
    env->payload_len = 0;
    while ((rv = flare__pb_next(&r, &f)) > 0) {
        if (f.num != F_PUBKEY && f.num != F_TYPE && f.num != F_PAYLOAD && f.num != F_SIG)
            continue; /* unknown fields are skipped, as protobuf requires */
        if (f.wire != FLARE__PB_LEN)
            return FLARE_ERR_MALFORMED;
        if (f.num == F_PUBKEY) {
            *pk = f.data;
            *pklen = f.len;
            have_pk = 1;
        } else if (f.num == F_TYPE) {
            env->payload_type = f.data;
            env->payload_type_len = f.len;
            have_type = f.len > 0;
        } else if (f.num == F_PAYLOAD) {
            env->payload = f.data;
            env->payload_len = f.len;
        } else {
            env->signature = f.data;
            env->signature_len = f.len;
            have_sig = f.len > 0;
        }
    }
    if (rv < 0)
        return rv;
    return have_pk && have_type && have_sig ? 0 : FLARE_ERR_MALFORMED;
}

int flare_envelope_open(const uint8_t *in, size_t len, const char *expected_domain,
                        const uint8_t *expected_type, size_t expected_type_len, flare_envelope *env)
{
    return flare_envelope_open_cached(in, len, expected_domain, expected_type, expected_type_len,
                                      NULL, env);
}

int flare_envelope_open_cached(const uint8_t *in, size_t len, const char *expected_domain,
                               const uint8_t *expected_type, size_t expected_type_len,
                               flare_sig_cache *cache, flare_envelope *env)
{
    size_t dlen;
    if (!env || (!in && len) || domain_len(expected_domain, &dlen) != 0)
        return FLARE_ERR_INVALID_ARG;
    if (len > FLARE_ENVELOPE_MAX)
        return FLARE_ERR_TOO_LARGE;
    const uint8_t *pk = NULL;
    size_t pklen = 0;
    int rv = envelope_parse(in, len, env, &pk, &pklen);
    if (rv)
        return rv;
    rv = flare_pubkey_decode(&env->pubkey, pk, pklen);
    if (rv)
        return rv;
    if (expected_type && (env->payload_type_len != expected_type_len ||
                          memcmp(env->payload_type, expected_type, expected_type_len) != 0))
        return FLARE_ERR_UNKNOWN_CODE;
    uint8_t msg[SIGNING_MAX];
    int mlen = signing_bytes(expected_domain, dlen, env->payload_type, env->payload_type_len,
                             env->payload, env->payload_len, msg);
    if (mlen < 0)
        return mlen;
    rv = flare_sig_cache_verify(cache, &env->pubkey, msg, (size_t)mlen, env->signature,
                                env->signature_len);
    if (rv)
        return rv;
    return flare_peerid_from_pubkey(&env->signer, &env->pubkey);
}
