/*
 * flare/peerid.h - libp2p peer IDs.
 *
 * A peer ID is a multihash of the encoded PublicKey: identity when the
 * encoding is at most 42 bytes (Ed25519, secp256k1), sha2-256 otherwise.
 * Text forms: base58btc of the multihash ("12D3Koo...", "Qm..."), and CIDv1
 * with the libp2p-key codec (0x72) in any multibase, printed in base32.
 */
#ifndef FLARE_PEERID_H
#define FLARE_PEERID_H

#include "flare/common.h"
#include "flare/keys.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FLARE_PEERID_MAX     64
#define FLARE_PEERID_STR_MAX 128
#define FLARE_CID_LIBP2P_KEY 0x72

typedef struct flare_peerid {
    uint8_t len; /* 0 means "no peer id" */
    uint8_t bytes[FLARE_PEERID_MAX];
} flare_peerid;

/* The peer ID of k. Returns 0, or a negative FLARE_ERR_* code (FLARE_ERR_UNSUPPORTED key type). */
int flare_peerid_from_pubkey(flare_peerid *id, const flare_pubkey *k);
/* Validates a binary peer ID (a multihash: identity <= 42 bytes holding a
 * decodable PublicKey, or sha2-256). */
/* Returns 0, or a negative FLARE_ERR_* code (FLARE_ERR_MALFORMED, FLARE_ERR_UNSUPPORTED). */
int flare_peerid_from_bytes(flare_peerid *id, const uint8_t *in, size_t len);
/* Parses base58btc ("Qm...", "12D3...", "1...") or a CIDv1 multibase string. */
/* Returns 0, or a negative FLARE_ERR_* code (FLARE_ERR_MALFORMED, ...). */
int flare_peerid_parse(flare_peerid *id, const char *s, size_t len);
/* base58btc, NUL-terminated; returns the length. */
int flare_peerid_to_string(const flare_peerid *id, char *out, size_t cap);
/* CIDv1 libp2p-key in base32 ("bafz..."); returns the length. */
int flare_peerid_to_cid(const flare_peerid *id, char *out, size_t cap);
int flare_peerid_equal(const flare_peerid *a, const flare_peerid *b);
/* The public key inlined in an identity peer ID, or FLARE_ERR_NOT_FOUND. */
int flare_peerid_extract_pubkey(const flare_peerid *id, flare_pubkey *k);
/* 1 if id is the peer ID of k, else 0. */
/* Returns 1 if id is the peer ID of k, else 0. */
int flare_peerid_matches_pubkey(const flare_peerid *id, const flare_pubkey *k);

#ifdef __cplusplus
}
#endif
#endif
