/*
 * Noise Protocol Framework (rev 34) CipherState and SymmetricState for
 * 25519_ChaChaPoly_SHA256, on libsodium. Internal to the Noise module.
 */
#ifndef FLARE_SECURITY_NOISE_SYM_H
#define FLARE_SECURITY_NOISE_SYM_H

#include "flare/common.h"

#define FLARE__NOISE_DHLEN   32
#define FLARE__NOISE_HASHLEN 32
#define FLARE__NOISE_KEYLEN  32
#define FLARE__NOISE_TAGLEN  16

typedef struct flare__noise_cipher {
    uint8_t k[FLARE__NOISE_KEYLEN];
    int has_key;
    uint64_t n; /* next nonce; 2^64-1 is reserved, so reaching it exhausts the key */
} flare__noise_cipher;

/* Encrypts pt (ptlen bytes) with ad into out (ptlen + TAGLEN bytes; out may
 * not overlap pt). Without a key, copies pt. Returns 0 or
 * FLARE_ERR_NONCE_EXHAUSTED. */
int flare__noise_cipher_encrypt(flare__noise_cipher *c, const uint8_t *ad, size_t adlen,
                                const uint8_t *pt, size_t ptlen, uint8_t *out);
/* A piece of plaintext for the gathering encrypt. */
typedef struct flare__noise_piece {
    const uint8_t *p;
    size_t len;
} flare__noise_piece;

/* Encrypts the concatenation of the pieces (no ad) into out (their total
 * length + TAGLEN bytes; out may not overlap them): the same bytes as
 * flare__noise_cipher_encrypt of the concatenated text, without copying
 * the pieces together first. Returns 0 or FLARE_ERR_NONCE_EXHAUSTED. */
int flare__noise_cipher_encrypt_gather(flare__noise_cipher *c, const flare__noise_piece *pc,
                                       size_t npc, uint8_t *out);
/* Decrypts ct into out (ctlen - TAGLEN bytes). Returns 0, FLARE_ERR_TRUNCATED
 * (ct shorter than a tag), FLARE_ERR_CRYPTO (authentication failed) or
 * FLARE_ERR_NONCE_EXHAUSTED. Without a key, copies ct. */
int flare__noise_cipher_decrypt(flare__noise_cipher *c, const uint8_t *ad, size_t adlen,
                                const uint8_t *ct, size_t ctlen, uint8_t *out);
void flare__noise_cipher_clear(flare__noise_cipher *c);

typedef struct flare__noise_symmetric {
    flare__noise_cipher c;
    uint8_t ck[FLARE__NOISE_HASHLEN];
    uint8_t h[FLARE__NOISE_HASHLEN];
} flare__noise_symmetric;

/* InitializeSymmetric(protocol_name) followed by MixHash(prologue). */
void flare__noise_sym_init(flare__noise_symmetric *s, const char *protocol_name,
                           const uint8_t *prologue, size_t prologue_len);
void flare__noise_sym_mix_hash(flare__noise_symmetric *s, const uint8_t *data, size_t len);
void flare__noise_sym_mix_key(flare__noise_symmetric *s, const uint8_t *ikm, size_t len);
/* EncryptAndHash: out receives len (+ TAGLEN once a key is set) bytes. */
int flare__noise_sym_encrypt_hash(flare__noise_symmetric *s, const uint8_t *pt, size_t len,
                                  uint8_t *out, size_t *outlen);
/* DecryptAndHash: out receives len (- TAGLEN once a key is set) bytes. */
int flare__noise_sym_decrypt_hash(flare__noise_symmetric *s, const uint8_t *ct, size_t len,
                                  uint8_t *out, size_t *outlen);
/* Split(): c1 encrypts initiator -> responder, c2 the other way. */
void flare__noise_sym_split(const flare__noise_symmetric *s, flare__noise_cipher *c1,
                            flare__noise_cipher *c2);
void flare__noise_sym_clear(flare__noise_symmetric *s);

#endif
