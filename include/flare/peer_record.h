/*
 * flare/peer_record.h - libp2p peer records (libp2p/specs RFC 0003).
 *
 * PeerRecord { bytes peer_id = 1; uint64 seq = 2; repeated AddressInfo
 * addresses = 3; } with AddressInfo { bytes multiaddr = 1; }, carried in a
 * signed envelope with domain "libp2p-peer-record" and payload type 0x0301.
 * Addresses are opaque binary multiaddrs here: this module bounds their
 * size and count but does not parse them.
 */
#ifndef FLARE_PEER_RECORD_H
#define FLARE_PEER_RECORD_H

#include "flare/buf.h"
#include "flare/common.h"
#include "flare/envelope.h"
#include "flare/keys.h"
#include "flare/peerid.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FLARE_PEER_RECORD_DOMAIN "libp2p-peer-record"
/* The payload type: the multicodec 0x0301 as a uvarint. */
#define FLARE_PEER_RECORD_TYPE     ((const uint8_t *)"\x03\x01")
#define FLARE_PEER_RECORD_TYPE_LEN 2
/* Bounds on what a peer can make us hold. */
#define FLARE_PEER_RECORD_MAX_ADDRS 32
#define FLARE_PEER_RECORD_ADDR_MAX  256

/* A byte string; in a decoded record it points into the decoded input. */
typedef struct flare_bytes_view {
    const uint8_t *data;
    size_t len;
} flare_bytes_view;

typedef struct flare_peer_record {
    flare_peerid peer_id;
    uint64_t seq;
    size_t naddrs;
    flare_bytes_view addrs[FLARE_PEER_RECORD_MAX_ADDRS];
} flare_peer_record;

/* Appends the PeerRecord protobuf to out. Errors: FLARE_ERR_INVALID_ARG
 * (no peer ID, an empty address), FLARE_ERR_TOO_LARGE (more than
 * FLARE_PEER_RECORD_MAX_ADDRS addresses or one over
 * FLARE_PEER_RECORD_ADDR_MAX bytes), FLARE_ERR_NOMEM. */
int flare_peer_record_encode(const flare_peerid *id, uint64_t seq, const flare_bytes_view *addrs,
                             size_t naddrs, flare_buf *out);

/* Decodes a PeerRecord protobuf; addrs point into in. Errors:
 * FLARE_ERR_TRUNCATED, FLARE_ERR_OVERLONG, FLARE_ERR_MALFORMED (bad structure,
 * missing peer ID, empty address), peer ID errors (flare_peerid_from_bytes),
 * FLARE_ERR_TOO_LARGE (too many or too long addresses). */
int flare_peer_record_decode(const uint8_t *in, size_t len, flare_peer_record *rec);

/* Builds the record of k's peer ID and seals it in an envelope appended to
 * out. Errors: as flare_peer_record_encode and flare_envelope_seal. */
/* Returns 0, or a negative FLARE_ERR_* code. */
int flare_peer_record_seal(const flare_privkey *k, uint64_t seq, const flare_bytes_view *addrs,
                           size_t naddrs, flare_buf *out);

/* Opens a signed peer record: verifies the envelope (domain and payload
 * type), decodes the record and checks that the signer is the record's peer
 * ID. rec->addrs point into in. env may be NULL. Errors: as
 * flare_envelope_open and flare_peer_record_decode, and
 * FLARE_ERR_PEER_ID_MISMATCH (signed by another key). */
int flare_peer_record_open(const uint8_t *in, size_t len, flare_peer_record *rec,
                           flare_envelope *env);
/* As flare_peer_record_open, checking the signature through cache
 * (flare/sig_cache.h; NULL: none). Returns as flare_peer_record_open. */
int flare_peer_record_open_cached(const uint8_t *in, size_t len, flare_sig_cache *cache,
                                  flare_peer_record *rec, flare_envelope *env);

#ifdef __cplusplus
}
#endif
#endif
