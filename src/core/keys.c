/* libp2p keys: protobuf encoding, Ed25519 private keys, verification dispatch. */
#include <sodium.h>
#include <string.h>

#include "core/keys_held.h"
#include "core/keys_int.h"
#include "core/mem.h"
#include "core/pb.h"
#include "flare/keys.h"

#define ED25519_PK_LEN   32
#define ED25519_SK_LEN   64
#define ED25519_SEED_LEN 32

static int sodium_ready(void)
{
    /* Idempotent and thread-safe: 0 first time, 1 afterwards, -1 on failure. */
    return sodium_init() < 0 ? FLARE_ERR_INTERNAL : 0;
}

static int key_type_known(uint64_t t)
{
    return t <= FLARE_KEY_ECDSA;
}

/* ---- Ed25519 private keys -------------------------------------------- */

int flare_privkey_from_seed(flare_privkey *k, const uint8_t seed[32])
{
    if (!k || !seed)
        return FLARE_ERR_INVALID_ARG;
    int rv = sodium_ready();
    if (rv)
        return rv;
    memset(k, 0, sizeof(*k));
    k->type = FLARE_KEY_ED25519;
    k->pub.type = FLARE_KEY_ED25519;
    k->pub.len = ED25519_PK_LEN;
    if (crypto_sign_seed_keypair(k->pub.data, k->sk, seed) != 0)
        return FLARE_ERR_INTERNAL;
    return 0;
}

int flare_privkey_generate(flare_privkey *k, flare_rng rng)
{
    if (!k || !rng.fn)
        return FLARE_ERR_INVALID_ARG;
    uint8_t seed[ED25519_SEED_LEN];
    rng.fn(seed, sizeof(seed), rng.user);
    int rv = flare_privkey_from_seed(k, seed);
    sodium_memzero(seed, sizeof(seed));
    return rv;
}

int flare_privkey_sign(const flare_privkey *k, const uint8_t *msg, size_t len, uint8_t *sig,
                       size_t *siglen)
{
    if (!k || !sig || !siglen || (!msg && len))
        return FLARE_ERR_INVALID_ARG;
    if (k->type != FLARE_KEY_ED25519)
        return FLARE_ERR_UNSUPPORTED;
    int rv = sodium_ready();
    if (rv)
        return rv;
    unsigned long long n = 0;
    if (crypto_sign_detached(sig, &n, msg, len, k->sk) != 0)
        return FLARE_ERR_INTERNAL;
    *siglen = (size_t)n;
    return 0;
}

void flare_privkey_clear(flare_privkey *k)
{
    if (k)
        sodium_memzero(k, sizeof(*k));
}

/* ---- public keys ----------------------------------------------------- */

static int ed25519_verify(const flare_pubkey *k, const uint8_t *msg, size_t len, const uint8_t *sig,
                          size_t siglen)
{
    if (k->len != ED25519_PK_LEN)
        return FLARE_ERR_MALFORMED;
    if (siglen != FLARE_ED25519_SIG_LEN)
        return FLARE_ERR_BAD_SIGNATURE;
    int rv = sodium_ready();
    if (rv)
        return rv;
    /* libsodium rejects non-canonical S and small-order keys (strict RFC 8032). */
    return crypto_sign_verify_detached(sig, msg, len, k->data) == 0 ? 0 : FLARE_ERR_BAD_SIGNATURE;
}

int flare_pubkey_verify(const flare_pubkey *k, const uint8_t *msg, size_t len, const uint8_t *sig,
                        size_t siglen)
{
    if (!k || (!msg && len) || (!sig && siglen))
        return FLARE_ERR_INVALID_ARG;
    if (siglen == 0 || siglen > FLARE_SIG_MAX)
        return FLARE_ERR_BAD_SIGNATURE;
    switch (k->type) {
    case FLARE_KEY_ED25519:
        return ed25519_verify(k, msg, len, sig, siglen);
    case FLARE_KEY_SECP256K1:
        return flare__secp256k1_verify(k, msg, len, sig, siglen);
    case FLARE_KEY_RSA:
        return flare__rsa_verify(k, msg, len, sig, siglen);
    case FLARE_KEY_ECDSA:
        return flare__ecdsa_verify(k, msg, len, sig, siglen);
    }
    return FLARE_ERR_UNKNOWN_CODE;
}

int flare_pubkey_equal(const flare_pubkey *a, const flare_pubkey *b)
{
    return a->type == b->type && a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}

/* Deterministic { Type = 1; Data = 2 } encoding: both fields, in order, with
 * the type written even when it is 0 (RSA), as go and rust do. */
static int key_proto_encode(flare_key_type type, const uint8_t *data, size_t len, uint8_t *out,
                            size_t cap)
{
    uint8_t lenbuf[10];
    size_t ln = 0;
    size_t v = len;
    do {
        lenbuf[ln] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v)
            lenbuf[ln] |= 0x80;
        ln++;
    } while (v);
    size_t total = 2 + 1 + ln + len;
    if (!out || total > cap)
        return FLARE_ERR_BUFFER_TOO_SMALL;
    out[0] = 0x08;
    out[1] = (uint8_t)type;
    out[2] = 0x12;
    memcpy(out + 3, lenbuf, ln);
    memcpy(out + 3 + ln, data, len);
    return (int)total;
}

typedef struct key_proto {
    uint64_t type;
    const uint8_t *data;
    size_t len;
} key_proto;

/* Parses { Type = 1; Data = 2 }. Unknown fields are skipped as protobuf
 * requires (go does the same); the last occurrence of a field wins. */
static int key_proto_decode(const uint8_t *in, size_t len, key_proto *kp)
{
    if (!in && len)
        return FLARE_ERR_INVALID_ARG;
    flare__pb_reader r;
    flare__pb_field f;
    int have_type = 0, have_data = 0, rv;
    flare__pb_reader_init(&r, in, len);
    while ((rv = flare__pb_next(&r, &f)) > 0) {
        if (f.num == 1) {
            if (f.wire != FLARE__PB_VARINT)
                return FLARE_ERR_MALFORMED;
            kp->type = f.v;
            have_type = 1;
        } else if (f.num == 2) {
            if (f.wire != FLARE__PB_LEN)
                return FLARE_ERR_MALFORMED;
            kp->data = f.data;
            kp->len = f.len;
            have_data = 1;
        }
    }
    if (rv < 0)
        return rv;
    if (!have_type || !have_data)
        return FLARE_ERR_MALFORMED;
    if (!key_type_known(kp->type))
        return FLARE_ERR_UNKNOWN_CODE;
    return 0;
}

int flare_pubkey_encode(const flare_pubkey *k, uint8_t *out, size_t cap)
{
    if (!k || !key_type_known((uint64_t)k->type) || k->len == 0 || k->len > FLARE_PUBKEY_DATA_MAX)
        return FLARE_ERR_INVALID_ARG;
    return key_proto_encode(k->type, k->data, k->len, out, cap);
}

static int pubkey_check(flare_key_type type, const uint8_t *data, size_t len)
{
    switch (type) {
    case FLARE_KEY_ED25519:
        return len == ED25519_PK_LEN ? 0 : FLARE_ERR_MALFORMED;
    case FLARE_KEY_SECP256K1:
        return flare__secp256k1_check(data, len);
    case FLARE_KEY_RSA:
        return flare__rsa_check(data, len);
    case FLARE_KEY_ECDSA:
        return flare__ecdsa_check(data, len);
    }
    return FLARE_ERR_UNKNOWN_CODE;
}

int flare_pubkey_decode(flare_pubkey *k, const uint8_t *in, size_t len)
{
    if (!k)
        return FLARE_ERR_INVALID_ARG;
    /* The canonical form of an Ed25519 key (type 1, then 32 bytes), what
     * every peer ID of a DHT answer holds: the bytes the general decoder
     * accepts for it, without its field walk. */
    static const uint8_t ed25519_head[4] = {0x08, FLARE_KEY_ED25519, 0x12, ED25519_PK_LEN};
    if (len == sizeof(ed25519_head) + ED25519_PK_LEN && in &&
        memcmp(in, ed25519_head, sizeof(ed25519_head)) == 0) {
        k->type = FLARE_KEY_ED25519;
        k->len = ED25519_PK_LEN;
        memcpy(k->data, in + sizeof(ed25519_head), ED25519_PK_LEN);
        return 0;
    }
    key_proto kp;
    int rv = key_proto_decode(in, len, &kp);
    if (rv)
        return rv;
    if (kp.len > FLARE_PUBKEY_DATA_MAX)
        return FLARE_ERR_TOO_LARGE;
    rv = pubkey_check((flare_key_type)kp.type, kp.data, kp.len);
    if (rv)
        return rv;
    k->type = (flare_key_type)kp.type;
    k->len = kp.len;
    memcpy(k->data, kp.data, kp.len);
    return 0;
}

int flare_privkey_encode(const flare_privkey *k, uint8_t *out, size_t cap)
{
    if (!k || k->type != FLARE_KEY_ED25519)
        return FLARE_ERR_INVALID_ARG;
    return key_proto_encode(k->type, k->sk, ED25519_SK_LEN, out, cap);
}

int flare_privkey_decode(flare_privkey *k, const uint8_t *in, size_t len)
{
    if (!k)
        return FLARE_ERR_INVALID_ARG;
    key_proto kp;
    int rv = key_proto_decode(in, len, &kp);
    if (rv)
        return rv;
    if (kp.type != FLARE_KEY_ED25519)
        return FLARE_ERR_UNSUPPORTED;
    /* 64 bytes: seed || public. 96: legacy, with the public key repeated. */
    if (kp.len != ED25519_SK_LEN && kp.len != ED25519_SK_LEN + ED25519_PK_LEN)
        return FLARE_ERR_MALFORMED;
    if (kp.len == ED25519_SK_LEN + ED25519_PK_LEN &&
        memcmp(kp.data + ED25519_SEED_LEN, kp.data + ED25519_SK_LEN, ED25519_PK_LEN) != 0)
        return FLARE_ERR_MALFORMED;
    flare_privkey tmp;
    rv = flare_privkey_from_seed(&tmp, kp.data);
    if (rv)
        return rv;
    /* The stored public half must be the one the seed derives. */
    if (memcmp(tmp.pub.data, kp.data + ED25519_SEED_LEN, ED25519_PK_LEN) != 0) {
        flare_privkey_clear(&tmp);
        return FLARE_ERR_MALFORMED;
    }
    *k = tmp;
    flare_privkey_clear(&tmp);
    return 0;
}

/* ---- keys held at their length (keys_held.h) ---------------------------------------- */

void flare__pubkey_held_free(flare__pubkey_held *h, const flare_mem *mem)
{
    flare__free(mem, h->big);
    memset(h, 0, sizeof(*h));
}

int flare__pubkey_hold(flare__pubkey_held *h, const flare_pubkey *k, const flare_mem *mem)
{
    flare__pubkey_held_free(h, mem);
    if (k->len == 0 || k->len > FLARE_PUBKEY_DATA_MAX)
        return k->len ? FLARE_ERR_INVALID_ARG : 0;
    uint8_t *dst = h->small;
    if (k->len > sizeof(h->small)) {
        if (!(h->big = flare__malloc(mem, k->len)))
            return FLARE_ERR_NOMEM;
        dst = h->big;
    }
    memcpy(dst, k->data, k->len);
    h->type = k->type;
    h->len = (uint16_t)k->len;
    return 0;
}

int flare__pubkey_held_get(const flare__pubkey_held *h, flare_pubkey *out)
{
    if (h->len == 0)
        return FLARE_ERR_STATE;
    out->type = h->type;
    out->len = h->len;
    memcpy(out->data, h->big ? h->big : h->small, h->len);
    return 0;
}
