/*
 * flare/keys.h - libp2p identity keys.
 *
 * Private keys: Ed25519 (libsodium), the libp2p default. Public keys: all four
 * libp2p types can be decoded and verified (Ed25519 via libsodium, RSA and
 * ECDSA P-256 via GnuTLS, secp256k1 via libsecp256k1).
 *
 * Encodings are the libp2p protobufs: PublicKey/PrivateKey { Type = 1; Data = 2 }.
 * The Data field is: Ed25519 public 32 bytes, private 64 bytes (seed || public);
 * secp256k1 33-byte compressed point; RSA and ECDSA a DER SubjectPublicKeyInfo.
 */
#ifndef FLARE_KEYS_H
#define FLARE_KEYS_H

#include "flare/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum flare_key_type {
    FLARE_KEY_RSA = 0,
    FLARE_KEY_ED25519 = 1,
    FLARE_KEY_SECP256K1 = 2,
    FLARE_KEY_ECDSA = 3,
} flare_key_type;

/* Largest public key Data accepted (RSA 8192-bit SPKI fits). */
#define FLARE_PUBKEY_DATA_MAX 1100
/* Largest encoded PublicKey protobuf. */
#define FLARE_PUBKEY_PROTO_MAX (FLARE_PUBKEY_DATA_MAX + 16)
/* Largest signature flare produces or accepts. */
#define FLARE_SIG_MAX         1024
#define FLARE_ED25519_SIG_LEN 64

typedef struct flare_pubkey {
    flare_key_type type;
    size_t len;
    uint8_t data[FLARE_PUBKEY_DATA_MAX];
} flare_pubkey;

typedef struct flare_privkey {
    flare_key_type type; /* FLARE_KEY_ED25519 */
    uint8_t sk[64];      /* libsodium secret key: seed || public */
    flare_pubkey pub;
} flare_privkey;

/* Ed25519 key from 32 random bytes of rng. */
/* Returns 0, or a negative FLARE_ERR_* code if rng or the crypto library fails. */
int flare_privkey_generate(flare_privkey *k, flare_rng rng);
/* Ed25519 key deterministically from a 32-byte seed. */
/* Returns 0, or a negative FLARE_ERR_* code. */
int flare_privkey_from_seed(flare_privkey *k, const uint8_t seed[32]);
/* Signs msg; sig must have FLARE_SIG_MAX bytes; *siglen receives the length. */
/* Returns 0, or a negative FLARE_ERR_* code. */
int flare_privkey_sign(const flare_privkey *k, const uint8_t *msg, size_t len, uint8_t *sig,
                       size_t *siglen);
/* Wipes the secret. */
void flare_privkey_clear(flare_privkey *k);

/* 0 if sig is a valid signature of msg by k, FLARE_ERR_BAD_SIGNATURE if not,
 * other negative codes for keys that cannot be used. */
int flare_pubkey_verify(const flare_pubkey *k, const uint8_t *msg, size_t len, const uint8_t *sig,
                        size_t siglen);
int flare_pubkey_equal(const flare_pubkey *a, const flare_pubkey *b);

/* Protobuf PublicKey. encode returns the length written to out. decode
 * validates the key material (point on curve, parsable DER) and rejects
 * unknown types with FLARE_ERR_UNKNOWN_CODE. */
int flare_pubkey_encode(const flare_pubkey *k, uint8_t *out, size_t cap);
int flare_pubkey_decode(flare_pubkey *k, const uint8_t *in, size_t len);

/* Protobuf PrivateKey (Ed25519 only). */
/* Returns the bytes written, or a negative FLARE_ERR_* code (FLARE_ERR_INVALID_ARG,
 * FLARE_ERR_BUFFER_TOO_SMALL). */
int flare_privkey_encode(const flare_privkey *k, uint8_t *out, size_t cap);
/* Returns 0, or a negative FLARE_ERR_* code (FLARE_ERR_MALFORMED, FLARE_ERR_UNSUPPORTED). */
int flare_privkey_decode(flare_privkey *k, const uint8_t *in, size_t len);

/* Key files hold the PrivateKey protobuf, mode 0600. load returns
 * FLARE_ERR_NOT_FOUND if the file does not exist. */
int flare_privkey_save(const flare_privkey *k, const char *path);
int flare_privkey_load(flare_privkey *k, const char *path);
/* As flare_privkey_load; *mode (may be NULL) gets the file's permission
 * bits (st_mode & 07777) read from the opened file, so that the caller can
 * warn when group or others may read the key (mode & 077). */
/* Returns as flare_privkey_load. */
int flare_privkey_load_mode(flare_privkey *k, const char *path, unsigned *mode);

#ifdef __cplusplus
}
#endif
#endif
