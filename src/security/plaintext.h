/*
 * libp2p /plaintext/2.0.0 (libp2p/specs plaintext/plaintext.md): each side
 * sends uvarint(len) || Exchange { bytes id = 1; PublicKey pubkey = 2; } and
 * checks that the peer's ID is the one of its key. Nothing is encrypted or
 * signed afterwards, so it authenticates nothing against an active attacker:
 * it exists for simulations, where Noise's key agreements would dominate the
 * CPU. Never offered unless flare_host_settings.security names it.
 */
#ifndef FLARE_SECURITY_PLAINTEXT_H
#define FLARE_SECURITY_PLAINTEXT_H

#include "flare/buf.h"
#include "flare/keys.h"
#include "flare/peerid.h"

#define FLARE__PLAINTEXT_ID "/plaintext/2.0.0"
/* Largest Exchange body accepted: an RSA key's PublicKey, a sha2-256 peer
 * ID and the field headers. */
#define FLARE__PLAINTEXT_MAX_MSG (FLARE_PUBKEY_PROTO_MAX + FLARE_PEERID_MAX + 16)

/* Appends uvarint(len) || Exchange for key to out. 0, FLARE_ERR_NOMEM or the
 * key's encoding error. */
int flare__plaintext_encode(const flare_pubkey *key, flare_buf *out);

/* Decodes an Exchange body (no length prefix) into *key and *id, checking
 * that id is key's peer ID. Unknown fields are skipped; a repeated field's
 * last value counts. FLARE_ERR_MALFORMED (a field missing or of the wrong
 * wire type), the pb reader's, peer ID and key decoders' errors, or
 * FLARE_ERR_PEER_ID_MISMATCH (id is not key's). */
int flare__plaintext_decode(const uint8_t *msg, size_t len, flare_pubkey *key, flare_peerid *id);

#endif
