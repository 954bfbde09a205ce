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

/* XORs the concatenation of the pieces with the ChaCha20 (IETF) key stream
 * from block 1 on into out. Whole blocks go straight from a piece to out;
 * a block that straddles pieces is gathered in out and XORed there. */
static void xor_gather(uint8_t *out, const flare__noise_piece *pc, size_t npc,
                       const uint8_t nonce[12], const uint8_t *k)
{
    size_t pos = 0, done = 0; /* out[done..pos): gathered, not yet XORed */
    for (size_t i = 0; i < npc; i++) {
        const uint8_t *p = pc[i].p;
        size_t len = pc[i].len;
        while (len > 0) {
            if (pos % 64 == 0 && len >= 64) {
                size_t m = len & ~(size_t)63;
                crypto_stream_chacha20_ietf_xor_ic(out + pos, p, m, nonce, (uint32_t)(1 + pos / 64),
                                                   k);
                pos += m;
                done = pos;
                p += m;
                len -= m;
                continue;
            }
            size_t m = 64 - pos % 64 < len ? 64 - pos % 64 : len;
            memcpy(out + pos, p, m);
            pos += m;
            p += m;
            len -= m;
            if (pos % 64 == 0) {
                crypto_stream_chacha20_ietf_xor_ic(out + done, out + done, pos - done, nonce,
                                                   (uint32_t)(1 + done / 64), k);
                done = pos;
            }
        }
    }
    if (done < pos)
        crypto_stream_chacha20_ietf_xor_ic(out + done, out + done, pos - done, nonce,
                                           (uint32_t)(1 + done / 64), k);
}

int flare__noise_cipher_encrypt_gather(flare__noise_cipher *c, const flare__noise_piece *pc,
                                       size_t npc, uint8_t *out)
{
    size_t len = 0;
    for (size_t i = 0; i < npc; i++)
        len += pc[i].len;
    if (!c->has_key) {
        for (size_t i = 0, off = 0; i < npc; off += pc[i].len, i++)
            if (pc[i].len)
                memcpy(out + off, pc[i].p, pc[i].len);
        return 0;
    }
    if (c->n == UINT64_MAX)
        return FLARE_ERR_NONCE_EXHAUSTED;
    /* ChaCha20-Poly1305 as RFC 8439 builds it (and libsodium's _ietf
     * AEAD), without associated data: the Poly1305 key is block 0 of the
     * key stream, the text is XORed from block 1, the tag covers the
     * ciphertext, its padding and the two lengths. */
    uint8_t nonce[12], block0[64], lens[16] = {0};
    static const uint8_t zeros[16];
    nonce_bytes(c->n, nonce);
    crypto_stream_chacha20_ietf(block0, sizeof(block0), nonce, c->k);
    xor_gather(out, pc, npc, nonce, c->k);
    crypto_onetimeauth_poly1305_state ps;
    crypto_onetimeauth_poly1305_init(&ps, block0);
    crypto_onetimeauth_poly1305_update(&ps, out, len);
    crypto_onetimeauth_poly1305_update(&ps, zeros, (0x10 - len) & 0xf);
    for (int i = 0; i < 8; i++)
        lens[8 + i] = (uint8_t)((uint64_t)len >> (8 * i)); /* adlen 0, then len */
    crypto_onetimeauth_poly1305_update(&ps, lens, sizeof(lens));
    crypto_onetimeauth_poly1305_final(&ps, out + len);
    sodium_memzero(block0, sizeof(block0));
    sodium_memzero(&ps, sizeof(ps));
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
