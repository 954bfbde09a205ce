/* Internal: per-type key validation and verification (keys_*.c). */
#ifndef FLARE_CORE_KEYS_INT_H
#define FLARE_CORE_KEYS_INT_H

#include "flare/keys.h"

/* Validate Data of a decoded PublicKey: 0 or a FLARE_ERR_* code. */
int flare__rsa_check(const uint8_t *der, size_t len);
int flare__ecdsa_check(const uint8_t *der, size_t len);
int flare__secp256k1_check(const uint8_t *data, size_t len);

/* 0, FLARE_ERR_BAD_SIGNATURE, or another code if the key is unusable. */
int flare__rsa_verify(const flare_pubkey *k, const uint8_t *msg, size_t len, const uint8_t *sig,
                      size_t siglen);
int flare__ecdsa_verify(const flare_pubkey *k, const uint8_t *msg, size_t len, const uint8_t *sig,
                        size_t siglen);
int flare__secp256k1_verify(const flare_pubkey *k, const uint8_t *msg, size_t len,
                            const uint8_t *sig, size_t siglen);

/* RSA modulus bounds, as go-libp2p (MinRsaKeyBits, maxRsaKeyBits). */
#define FLARE__RSA_MIN_BITS 2048
#define FLARE__RSA_MAX_BITS 8192

#endif
