/*
 * flare/relay.h - Circuit Relay v2 (libp2p/specs relay/circuit-v2.md):
 * message codecs, reservation vouchers, the hop client (reserve, connect)
 * and the stop side (accepting a relayed connection). The relay server is in
 * flare/relay_server.h.
 *
 * Sans-I/O. Protocols "/libp2p/circuit/relay/0.2.0/hop" and ".../stop"
 * carry uvarint-length-prefixed protobufs of at most FLARE_RELAY_MSG_MAX
 * bytes. Functions here take ONE message body (the glue splits frames with
 * flare_lpframe_parse(..., FLARE_RELAY_MSG_MAX, ...)) and append whole
 * frames (prefix included) to a caller-owned flare_buf.
 *
 * Times: "now" is the caller's monotonic flare_tstamp (ns); reservation
 * expirations are UTC Unix seconds ("now_unix"), which the caller reads from
 * its wall clock, because that is what the wire carries.
 *
 * Limits: a flare_relay_limit field of 0 means "no limit" (as on the wire,
 * where an absent Limit or an absent field means the same). A connection
 * made through a relay is LIMITED: the host must mark it so and only run
 * protocols allowed on limited connections over it.
 */
#ifndef FLARE_RELAY_H
#define FLARE_RELAY_H

#include "flare/buf.h"
#include "flare/common.h"
#include "flare/keys.h"
#include "flare/multiaddr.h"
#include "flare/peerid.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FLARE_RELAY_HOP_PROTOCOL  "/libp2p/circuit/relay/0.2.0/hop"
#define FLARE_RELAY_STOP_PROTOCOL "/libp2p/circuit/relay/0.2.0/stop"
/* Largest message body (spec and go/rust: 4096). */
#define FLARE_RELAY_MSG_MAX 4096
/* Addresses kept per Peer or Reservation; further ones are counted in
 * *_addrs_skipped and dropped (as are unparsable ones, like go does). */
#define FLARE_RELAY_MAX_ADDRS 16
/* Voucher envelope domain and payload type (0x0302). */
#define FLARE_RELAY_VOUCHER_DOMAIN "libp2p-relay-rsvp"
extern const uint8_t FLARE_RELAY_VOUCHER_TYPE[2];

typedef enum flare_relay_status {
    FLARE_RELAY_STATUS_UNUSED = 0,
    FLARE_RELAY_STATUS_OK = 100,
    FLARE_RELAY_STATUS_RESERVATION_REFUSED = 200,
    FLARE_RELAY_STATUS_RESOURCE_LIMIT_EXCEEDED = 201,
    FLARE_RELAY_STATUS_PERMISSION_DENIED = 202,
    FLARE_RELAY_STATUS_CONNECTION_FAILED = 203,
    FLARE_RELAY_STATUS_NO_RESERVATION = 204,
    FLARE_RELAY_STATUS_MALFORMED_MESSAGE = 400,
    FLARE_RELAY_STATUS_UNEXPECTED_MESSAGE = 401,
} flare_relay_status;

/* HopMessage.Type and StopMessage.Type values. */
enum {
    FLARE_RELAY_HOP_RESERVE = 0,
    FLARE_RELAY_HOP_CONNECT = 1,
    FLARE_RELAY_HOP_STATUS = 2,
};
enum {
    FLARE_RELAY_STOP_CONNECT = 0,
    FLARE_RELAY_STOP_STATUS = 1,
};

/* Static name of a status ("OK", "NO_RESERVATION", ...; "?" if unknown). */
/* Returns a static name ("?" for an unknown status). */
const char *flare_relay_status_name(uint32_t status);
/* 1 if status is one of the values above except UNUSED, else 0. */
/* Returns 1 for a status code of the spec, else 0. */
int flare_relay_status_valid(uint32_t status);

typedef struct flare_relay_limit {
    uint32_t duration; /* seconds; 0 = none */
    uint64_t data;     /* bytes in each direction; 0 = none */
} flare_relay_limit;

/* A view of bytes (into a decoded input, or owned by the caller). */
typedef struct flare_relay_bytes {
    const uint8_t *p;
    size_t len;
} flare_relay_bytes;

/* A HopMessage or StopMessage (StopMessage has no reservation). Decoding
 * fills views into the input, which must outlive the struct; every kept
 * address is a valid binary multiaddr. Encoding reads the same fields. */
typedef struct flare_relay_msg {
    uint32_t type; /* FLARE_RELAY_HOP_* or FLARE_RELAY_STOP_* */
    uint8_t has_peer, has_reservation, has_limit, has_status, has_expire;
    /* Peer */
    flare_peerid peer; /* required when has_peer */
    size_t npeer_addrs, peer_addrs_skipped;
    flare_relay_bytes peer_addrs[FLARE_RELAY_MAX_ADDRS];
    /* Reservation */
    uint64_t expire; /* UTC Unix seconds */
    size_t nrsvp_addrs, rsvp_addrs_skipped;
    flare_relay_bytes rsvp_addrs[FLARE_RELAY_MAX_ADDRS];
    flare_relay_bytes voucher; /* len 0: none */
    /* Limit and Status */
    flare_relay_limit limit;
    uint32_t status; /* flare_relay_status */
} flare_relay_msg;

/* --- codecs --- */

/* Decodes a HopMessage / StopMessage body. Unknown fields are skipped; a
 * repeated embedded message merges as in protobuf. Errors:
 * FLARE_ERR_TOO_LARGE (len > FLARE_RELAY_MSG_MAX), FLARE_ERR_TRUNCATED,
 * FLARE_ERR_OVERLONG, FLARE_ERR_MALFORMED (bad protobuf, wrong wire type, no
 * type, a Peer without id), FLARE_ERR_UNKNOWN_CODE (unknown type or status
 * value), FLARE_ERR_OUT_OF_RANGE (Limit.duration over 32 bits), and the
 * errors of flare_peerid_from_bytes for a bad Peer.id. */
int flare_relay_hop_decode(const uint8_t *in, size_t len, flare_relay_msg *m);
int flare_relay_stop_decode(const uint8_t *in, size_t len, flare_relay_msg *m);

/* Encodes m as one length-prefixed frame appended to out. A Limit with both
 * fields 0 is omitted (same meaning). Errors: FLARE_ERR_INVALID_ARG (bad
 * type, more than FLARE_RELAY_MAX_ADDRS addresses), FLARE_ERR_TOO_LARGE
 * (body over FLARE_RELAY_MSG_MAX), FLARE_ERR_NOMEM; out unchanged on error. */
int flare_relay_hop_encode(const flare_relay_msg *m, flare_buf *out);
int flare_relay_stop_encode(const flare_relay_msg *m, flare_buf *out);

/* An empty message of the given type (all has_* 0). */
void flare_relay_msg_init(flare_relay_msg *m, uint32_t type);

/* --- vouchers --- */

typedef struct flare_relay_voucher {
    flare_peerid relay;
    flare_peerid peer;
    uint64_t expiration; /* UTC Unix seconds */
} flare_relay_voucher;

/* Seals Voucher{relay = peer ID of key, peer, expiration} in a signed
 * envelope and appends it to out. Errors: those of flare_envelope_seal. */
/* Returns 0, or a negative FLARE_ERR_* code. */
int flare_relay_voucher_seal(const flare_privkey *key, const flare_peerid *peer,
                             uint64_t expiration, flare_buf *out);
/* Opens a voucher envelope and decodes its Voucher (without judging it).
 * Errors: those of flare_envelope_open (FLARE_ERR_BAD_SIGNATURE, ...),
 * FLARE_ERR_MALFORMED (a field missing or of the wrong wire type),
 * FLARE_ERR_PEER_ID_MISMATCH (the signer is not Voucher.relay), peer ID
 * errors. */
int flare_relay_voucher_open(const uint8_t *in, size_t len, flare_relay_voucher *v);
/* Opens and checks a voucher for a reservation: signed by relay,
 * Voucher.relay == relay, Voucher.peer == self, Voucher.expiration ==
 * expire, and not expired (expiration > now_unix). Errors: those of
 * flare_relay_voucher_open, FLARE_ERR_PEER_ID_MISMATCH (wrong relay or
 * peer), FLARE_ERR_OUT_OF_RANGE (expiration != expire), FLARE_ERR_TIMEOUT
 * (expired). */
int flare_relay_voucher_verify(const uint8_t *in, size_t len, const flare_peerid *relay,
                               const flare_peerid *self, uint64_t expire, uint64_t now_unix);

/* --- hop client: reserving a slot and connecting through a relay --- */

/* A reservation we hold on a relay. */
typedef struct flare_relay_reservation {
    flare_peerid relay;
    uint64_t expire; /* UTC Unix seconds */
    flare_relay_limit limit;
    int has_voucher; /* a voucher came and verified */
    size_t naddrs;   /* the relay's public addresses (never /p2p-circuit) */
    flare_multiaddr addrs[FLARE_RELAY_MAX_ADDRS];
} flare_relay_reservation;

/* Appends a HopMessage RESERVE frame to out. */
/* Returns 0, or a negative FLARE_ERR_* code (FLARE_ERR_NOMEM). */
int flare_relay_client_reserve(flare_buf *out);

/* Parses the relay's reply to RESERVE. relay is the peer we asked, self our
 * own ID. On success fills *r (addresses that carry /p2p-circuit or a /p2p/
 * other than relay are dropped). *status (may be NULL) gets the status the
 * relay sent (UNUSED if none). A voucher, when present, must verify
 * (flare_relay_voucher_verify); an absent one is accepted (has_voucher 0).
 * Errors: decode errors; FLARE_ERR_PROTO (not a STATUS, no status, OK
 * without a reservation or expire); FLARE_ERR_REFUSED (status not OK);
 * FLARE_ERR_TIMEOUT (expire <= now_unix); voucher errors. */
int flare_relay_client_reserve_reply(const uint8_t *in, size_t len, const flare_peerid *relay,
                                     const flare_peerid *self, uint64_t now_unix,
                                     flare_relay_reservation *r, uint32_t *status);

/* When to renew r (monotonic): REFRESH_MARGIN (2 min) before expiry when at
 * least twice that remains, else half-way; never sooner than
 * FLARE_RELAY_REFRESH_FLOOR (30 s), and never later than 3/4 of the way
 * to expiry (short TTLs; renewing at expiry would race the relay's own).
 * Already expired: now. */
#define FLARE_RELAY_REFRESH_MARGIN 120
#define FLARE_RELAY_REFRESH_FLOOR  30
/* Returns when to refresh. */
flare_tstamp flare_relay_reservation_refresh_at(const flare_relay_reservation *r, uint64_t now_unix,
                                                flare_tstamp now);

/* Our relayed addresses from r: for each relay address,
 * <addr>/p2p/RELAY/p2p-circuit, followed by /p2p/SELF when self is not NULL.
 * Writes up to cap addresses to out and returns how many were written
 * (addresses that would not fit FLARE_MULTIADDR_MAX are skipped). */
int flare_relay_reservation_addrs(const flare_relay_reservation *r, const flare_peerid *self,
                                  flare_multiaddr *out, size_t cap);

/* Appends a HopMessage CONNECT{peer = target} frame to out. */
/* Returns 0, FLARE_ERR_INVALID_ARG, or FLARE_ERR_NOMEM. */
int flare_relay_client_connect(const flare_peerid *target, flare_buf *out);

/* Parses the relay's reply to CONNECT. On STATUS OK returns 0 and fills
 * *limit (zeros if none). *status (may be NULL) gets the status sent.
 * Errors: decode errors; FLARE_ERR_PROTO (not a STATUS, or no status);
 * FLARE_ERR_REFUSED (status not OK: NO_RESERVATION, ...). */
int flare_relay_client_connect_reply(const uint8_t *in, size_t len, flare_relay_limit *limit,
                                     uint32_t *status);

/* --- stop side: a relay tells us someone connects through it --- */

typedef struct flare_relay_stop_request {
    flare_peerid remote;     /* the peer that dialed us through the relay */
    flare_relay_limit limit; /* the relay's limits for this circuit */
} flare_relay_stop_request;

/* Parses a StopMessage from the relay. On success fills *req and writes
 * nothing: the glue decides (accept only if we hold a reservation on that
 * relay) and answers with flare_relay_stop_reply. On bad input appends the
 * StopMessage STATUS reply (MALFORMED_MESSAGE, or UNEXPECTED_MESSAGE for a
 * type other than CONNECT) to out and returns the decode error, or
 * FLARE_ERR_PROTO for an unexpected type; the glue then closes the stream.
 * Errors: decode errors, FLARE_ERR_MALFORMED (no peer), FLARE_ERR_PROTO. */
int flare_relay_stop_handle(const uint8_t *in, size_t len, flare_relay_stop_request *req,
                            flare_buf *out);

/* Appends a StopMessage STATUS frame (OK to accept; PERMISSION_DENIED or
 * CONNECTION_FAILED to refuse). FLARE_ERR_INVALID_ARG for an unknown
 * status. After OK the stream carries the relayed connection (limited by
 * req->limit); the remote's identity is req->remote, to be confirmed by the
 * security handshake on top. */
int flare_relay_stop_reply(uint32_t status, flare_buf *out);

#ifdef __cplusplus
}
#endif
#endif
