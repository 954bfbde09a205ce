/* Noise CipherState / SymmetricState / HKDF over libsodium. */
#include <sodium.h>
#include <string.h>

#include "security/noise/noise_sym.h"

static void nonce_bytes(uint64_t n, uint8_t out[12])
{
    /* ChaChaPoly: 32 bits of zeros, then the counter little-endian. */
    memset(out, 0, 4);
    for (int i = 0; i < 8; i++)
        out[4 + i] = (uint8_t)(n >> (8 * i));
}

int flare__noise_cipher_encrypt(flare__noise_cipher *c, const uint8_t *ad, size_t adlen,
                                const uint8_t *pt, size_t ptlen, uint8_t *out)
{
    if (!c->has_key) {
        if (ptlen)
            memmove(out, pt, ptlen);
        return 0;
    }
    if (c->n == UINT64_MAX)
        return FLARE_ERR_NONCE_EXHAUSTED;
    uint8_t nonce[12];
    nonce_bytes(c->n, nonce);
    crypto_aead_chacha20poly1305_ietf_encrypt(out, NULL, pt, ptlen, ad, adlen, NULL, nonce, c->k);
    c->n++;
    return 0;
}

int flare__noise_cipher_decrypt(flare__noise_cipher *c, const uint8_t *ad, size_t adlen,
                                const uint8_t *ct, size_t ctlen, uint8_t *out)
{
    if (!c->has_key) {
        if (ctlen)
            memmove(out, ct, ctlen);
        return 0;
    }
    if (ctlen < FLARE__NOISE_TAGLEN)
        return FLARE_ERR_TRUNCATED;
    if (c->n == UINT64_MAX)
        return FLARE_ERR_NONCE_EXHAUSTED;
    uint8_t nonce[12];
    nonce_bytes(c->n, nonce);
    if (crypto_aead_chacha20poly1305_ietf_decrypt(out, NULL, NULL, ct, ctlen, ad, adlen, nonce,
                                                  c->k) != 0)
        return FLARE_ERR_CRYPTO;
    c->n++;
    return 0;
}

void flare__noise_cipher_clear(flare__noise_cipher *c)
{
    sodium_memzero(c, sizeof(*c));
}

static void hmac(const uint8_t key[32], const uint8_t *a, size_t alen, const uint8_t *b,
                 size_t blen, uint8_t out[32])
{
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, key, 32);
    if (alen)
        crypto_auth_hmacsha256_update(&st, a, alen);
    if (blen)
        crypto_auth_hmacsha256_update(&st, b, blen);
    crypto_auth_hmacsha256_final(&st, out);
    sodium_memzero(&st, sizeof(st));
}

/* HKDF(ck, ikm) with two outputs, as Noise section 4.3 defines it. */
static void hkdf2(const uint8_t ck[32], const uint8_t *ikm, size_t len, uint8_t o1[32],
                  uint8_t o2[32])
{
    uint8_t temp[32];
    const uint8_t one = 1, two = 2;
    hmac(ck, ikm, len, NULL, 0, temp);
    hmac(temp, &one, 1, NULL, 0, o1);
    hmac(temp, o1, 32, &two, 1, o2);
    sodium_memzero(temp, sizeof(temp));
}

void flare__noise_sym_init(flare__noise_symmetric *s, const char *protocol_name,
                           const uint8_t *prologue, size_t prologue_len)
{
    size_t n = strlen(protocol_name);
    memset(s, 0, sizeof(*s));
    if (n <= FLARE__NOISE_HASHLEN)
        memcpy(s->h, protocol_name, n);
    else
        crypto_hash_sha256(s->h, (const uint8_t *)protocol_name, n);
    memcpy(s->ck, s->h, sizeof(s->ck));
    flare__noise_sym_mix_hash(s, prologue, prologue_len);
}

void flare__noise_sym_mix_hash(flare__noise_symmetric *s, const uint8_t *data, size_t len)
{
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, s->h, sizeof(s->h));
    if (len)
        crypto_hash_sha256_update(&st, data, len);
    crypto_hash_sha256_final(&st, s->h);
}

void flare__noise_sym_mix_key(flare__noise_symmetric *s, const uint8_t *ikm, size_t len)
{
    uint8_t k[32];
    hkdf2(s->ck, ikm, len, s->ck, k);
    memcpy(s->c.k, k, sizeof(k));
    s->c.has_key = 1;
    s->c.n = 0;
    sodium_memzero(k, sizeof(k));
}

int flare__noise_sym_encrypt_hash(flare__noise_symmetric *s, const uint8_t *pt, size_t len,
                                  uint8_t *out, size_t *outlen)
{
    int rv = flare__noise_cipher_encrypt(&s->c, s->h, sizeof(s->h), pt, len, out);
    if (rv)
        return rv;
    *outlen = len + (s->c.has_key ? FLARE__NOISE_TAGLEN : 0);
    flare__noise_sym_mix_hash(s, out, *outlen);
    return 0;
}

int flare__noise_sym_decrypt_hash(flare__noise_symmetric *s, const uint8_t *ct, size_t len,
                                  uint8_t *out, size_t *outlen)
{
    /* h must absorb the ciphertext, which out may overwrite; hash it after. */
    uint8_t h[FLARE__NOISE_HASHLEN];
    memcpy(h, s->h, sizeof(h));
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, s->h, sizeof(s->h));
    if (len)
        crypto_hash_sha256_update(&st, ct, len);
    int rv = flare__noise_cipher_decrypt(&s->c, h, sizeof(h), ct, len, out);
    if (rv)
        return rv;
    *outlen = len - (s->c.has_key ? FLARE__NOISE_TAGLEN : 0);
    crypto_hash_sha256_final(&st, s->h);
    return 0;
}

void flare__noise_sym_split(const flare__noise_symmetric *s, flare__noise_cipher *c1,
                            flare__noise_cipher *c2)
{
    memset(c1, 0, sizeof(*c1));
    memset(c2, 0, sizeof(*c2));
    hkdf2(s->ck, NULL, 0, c1->k, c2->k);
    c1->has_key = c2->has_key = 1;
}

void flare__noise_sym_clear(flare__noise_symmetric *s)
{
    sodium_memzero(s, sizeof(*s));
}
