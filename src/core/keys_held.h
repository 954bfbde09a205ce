/* Internal: a public key held at its own length. flare_pubkey has room for
 * the largest RSA key (1.1 KB), but nearly every peer's key is a 32-byte
 * Ed25519 one; a session that keeps its peer's key for the connection's
 * life holds it here and copies it out into a flare_pubkey on demand. */
#ifndef FLARE_CORE_KEYS_HELD_H
#define FLARE_CORE_KEYS_HELD_H

#include "flare/keys.h"

#define FLARE__PUBKEY_HELD_INLINE 40 /* Ed25519 (32) and secp256k1 (33) fit */

typedef struct flare__pubkey_held {
    flare_key_type type;
    uint16_t len;
    uint8_t *big; /* heap copy of a larger key (ECDSA, RSA), or NULL */
    uint8_t small[FLARE__PUBKEY_HELD_INLINE];
} flare__pubkey_held;

/* Replaces h's key by a copy of k (a zeroed h is empty). 0 or FLARE_ERR_NOMEM
 * (then h is left empty). */
int flare__pubkey_hold(flare__pubkey_held *h, const flare_pubkey *k, const flare_mem *mem);
/* Copies the key out; FLARE_ERR_STATE if h holds none. */
int flare__pubkey_held_get(const flare__pubkey_held *h, flare_pubkey *out);
void flare__pubkey_held_free(flare__pubkey_held *h, const flare_mem *mem);

#endif
