/*
 * flare/stun.h - STUN (RFC 8489, compatible with RFC 5389) as a sans-I/O
 * core: message parsing and building, short-term credential integrity
 * (MESSAGE-INTEGRITY, MESSAGE-INTEGRITY-SHA256), FINGERPRINT, the ICE
 * attributes (RFC 8445), a client transaction with bounded retransmissions,
 * the answer of a Binding server and a per-source rate limiter for it.
 *
 * Nothing here touches a socket or a clock: datagrams, time (ns) and
 * randomness come from the caller. Every datagram is hostile input: the
 * parser bounds the attribute count and lengths, and a message whose
 * FINGERPRINT is wrong is refused as a whole.
 */
#ifndef FLARE_STUN_H
#define FLARE_STUN_H

#include "flare/common.h"
#include "flare/ipaddr.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FLARE_STUN_HEADER_LEN   20
#define FLARE_STUN_MAGIC        0x2112A442u
#define FLARE_STUN_TXID_LEN     12
#define FLARE_STUN_MAX_MSG      1500 /* larger datagrams are not parsed */
#define FLARE_STUN_MAX_ATTRS    32   /* attributes kept per message; more: refused */
#define FLARE_STUN_DEFAULT_PORT 3478

/* Methods and classes. */
#define FLARE_STUN_BINDING 0x001
typedef enum flare_stun_class {
    FLARE_STUN_REQUEST = 0,
    FLARE_STUN_INDICATION = 1,
    FLARE_STUN_SUCCESS = 2,
    FLARE_STUN_ERROR = 3,
} flare_stun_class;

/* Attribute types. */
#define FLARE_STUN_ATTR_MAPPED_ADDRESS     0x0001
#define FLARE_STUN_ATTR_USERNAME           0x0006
#define FLARE_STUN_ATTR_MESSAGE_INTEGRITY  0x0008
#define FLARE_STUN_ATTR_ERROR_CODE         0x0009
#define FLARE_STUN_ATTR_UNKNOWN_ATTRIBUTES 0x000A
#define FLARE_STUN_ATTR_REALM              0x0014
#define FLARE_STUN_ATTR_NONCE              0x0015
#define FLARE_STUN_ATTR_MI_SHA256          0x001C
#define FLARE_STUN_ATTR_XOR_MAPPED_ADDRESS 0x0020
#define FLARE_STUN_ATTR_PRIORITY           0x0024
#define FLARE_STUN_ATTR_USE_CANDIDATE      0x0025
#define FLARE_STUN_ATTR_SOFTWARE           0x8022
#define FLARE_STUN_ATTR_ALTERNATE_SERVER   0x8023
#define FLARE_STUN_ATTR_FINGERPRINT        0x8028
#define FLARE_STUN_ATTR_ICE_CONTROLLED     0x8029
#define FLARE_STUN_ATTR_ICE_CONTROLLING    0x802A

/* Error codes (ERROR-CODE). */
#define FLARE_STUN_ERR_BAD_REQUEST   400
#define FLARE_STUN_ERR_UNAUTHORIZED  401
#define FLARE_STUN_ERR_UNKNOWN_ATTR  420
#define FLARE_STUN_ERR_ROLE_CONFLICT 487

#define FLARE_STUN_FINGERPRINT_XOR 0x5354554eu

/* One attribute of a parsed message: its value is raw[off .. off+len). */
typedef struct flare_stun_attr {
    uint16_t type;
    uint16_t len;
    uint16_t off;
} flare_stun_attr;

/* A parsed message. It points into the datagram given to flare_stun_parse,
 * which must outlive it. */
typedef struct flare_stun_msg {
    uint16_t method;
    flare_stun_class cls;
    uint8_t txid[FLARE_STUN_TXID_LEN];
    const uint8_t *raw;
    size_t len;
    size_t nattrs;
    flare_stun_attr attrs[FLARE_STUN_MAX_ATTRS];
    /* Offsets of the attribute headers (0: absent). Attributes after
     * MESSAGE-INTEGRITY other than MESSAGE-INTEGRITY-SHA256 and FINGERPRINT
     * are ignored (RFC 8489 section 14.5), so they are not in attrs. */
    size_t integrity_off, integrity256_off, fingerprint_off;
    /* Comprehension-required attributes this parser does not know (the
     * first FLARE_STUN_MAX_ATTRS are counted). */
    unsigned unknown_required;
    uint16_t unknown_types[4];
} flare_stun_msg;

/* Returns 1 if data looks like a STUN message (RFC 7983: first byte 0..3,
 * the magic cookie at offset 4, length a multiple of 4 matching the
 * datagram), else 0. A cheap check for demultiplexing a shared UDP port. */
int flare_stun_is_stun(const uint8_t *data, size_t len);

/* Parses a datagram. Returns 0; FLARE_ERR_TRUNCATED (shorter than a header
 * or than its length field says); FLARE_ERR_TOO_LARGE (over
 * FLARE_STUN_MAX_MSG); FLARE_ERR_MALFORMED (top bits set, no magic cookie,
 * a length not a multiple of 4 or not matching the datagram, an attribute
 * running past the end, FINGERPRINT not last, a bad integrity attribute
 * length); FLARE_ERR_LIMIT (more than FLARE_STUN_MAX_ATTRS attributes);
 * FLARE_ERR_BAD_SIGNATURE (FINGERPRINT present and wrong);
 * FLARE_ERR_INVALID_ARG. A message without the magic cookie (RFC 3489) is
 * FLARE_ERR_MALFORMED. */
int flare_stun_parse(flare_stun_msg *m, const uint8_t *data, size_t len);

/* Returns the first attribute of type in m, or NULL. */
const flare_stun_attr *flare_stun_find(const flare_stun_msg *m, uint16_t type);
/* Decodes XOR-MAPPED-ADDRESS (or MAPPED-ADDRESS for type
 * FLARE_STUN_ATTR_MAPPED_ADDRESS). Returns 0, FLARE_ERR_NOT_FOUND or
 * FLARE_ERR_MALFORMED. */
int flare_stun_get_addr(const flare_stun_msg *m, uint16_t type, flare_ipaddr *out);
/* ERROR-CODE: *code 300..699, *reason points into the message (not
 * terminated). Returns 0, FLARE_ERR_NOT_FOUND or FLARE_ERR_MALFORMED. */
int flare_stun_get_error(const flare_stun_msg *m, int *code, const char **reason,
                         size_t *reason_len);
/* A 32-bit (PRIORITY) or 64-bit (ICE-CONTROLLING/CONTROLLED) attribute.
 * Returns 0, FLARE_ERR_NOT_FOUND or FLARE_ERR_MALFORMED (wrong length). */
int flare_stun_get_u32(const flare_stun_msg *m, uint16_t type, uint32_t *out);
int flare_stun_get_u64(const flare_stun_msg *m, uint16_t type, uint64_t *out);

/* Checks MESSAGE-INTEGRITY (HMAC-SHA1) with the short-term credential key
 * (the password). Returns 0, FLARE_ERR_NOT_FOUND (no such attribute) or
 * FLARE_ERR_BAD_SIGNATURE. */
int flare_stun_check_integrity(const flare_stun_msg *m, const uint8_t *key, size_t key_len);
/* The same for MESSAGE-INTEGRITY-SHA256 (a truncated HMAC of 16..32 bytes
 * is accepted, RFC 8489 section 14.6); returns the same codes. */
int flare_stun_check_integrity_sha256(const flare_stun_msg *m, const uint8_t *key, size_t key_len);

/* Returns the CRC-32 (ISO-HDLC, as in zlib) of data. */
uint32_t flare_stun_crc32(const uint8_t *data, size_t len);

/* ---- building ------------------------------------------------------------------------- */

/* A message under construction in a caller's buffer. The first error
 * sticks (err) and every later call does nothing. Integrity and
 * FINGERPRINT are added last, in the order MESSAGE-INTEGRITY,
 * MESSAGE-INTEGRITY-SHA256, FINGERPRINT. */
typedef struct flare_stun_builder {
    uint8_t *buf;
    size_t cap, len;
    int err;
} flare_stun_builder;

/* Starts a message of method and class in buf (cap bytes). */
void flare_stun_build_init(flare_stun_builder *b, uint8_t *buf, size_t cap, uint16_t method,
                           flare_stun_class cls, const uint8_t txid[FLARE_STUN_TXID_LEN]);
/* Appends an attribute (value copied, zero padding). */
void flare_stun_add_attr(flare_stun_builder *b, uint16_t type, const void *value, size_t len);
/* XOR-MAPPED-ADDRESS (or MAPPED-ADDRESS: not xored) of a, IPv4 or IPv6. */
void flare_stun_add_addr(flare_stun_builder *b, uint16_t type, const flare_ipaddr *a);
void flare_stun_add_u32(flare_stun_builder *b, uint16_t type, uint32_t v);
void flare_stun_add_u64(flare_stun_builder *b, uint16_t type, uint64_t v);
/* ERROR-CODE: code 300..699, reason a short UTF-8 phrase (may be NULL). */
void flare_stun_add_error(flare_stun_builder *b, int code, const char *reason);
void flare_stun_add_integrity(flare_stun_builder *b, const uint8_t *key, size_t key_len);
void flare_stun_add_integrity_sha256(flare_stun_builder *b, const uint8_t *key, size_t key_len);
void flare_stun_add_fingerprint(flare_stun_builder *b);
/* Returns the message length, or the first error (FLARE_ERR_BUFFER_TOO_SMALL,
 * FLARE_ERR_INVALID_ARG, FLARE_ERR_CRYPTO). */
int flare_stun_build_finish(flare_stun_builder *b);

/* ---- client transaction (RFC 8489 section 6.2.1) ------------------------------------- */

typedef struct flare_stun_txn_settings {
    flare_tstamp rto;   /* first retransmission timeout; doubles; default 500 ms */
    unsigned max_sends; /* Rc: transmissions in all; default 7 (1..16) */
    unsigned rm;        /* wait Rm * RTO after the last one; default 16 */
} flare_stun_txn_settings;

/* Fills s with the defaults above. */
void flare_stun_txn_settings_default(flare_stun_txn_settings *s);

typedef enum flare_stun_txn_state {
    FLARE_STUN_TXN_IDLE = 0,
    FLARE_STUN_TXN_PENDING,
    FLARE_STUN_TXN_DONE,    /* a response (success or error) matched */
    FLARE_STUN_TXN_TIMEOUT, /* no response after the last wait */
} flare_stun_txn_state;

#define FLARE_STUN_TXN_MAX_REQ 576 /* requests kept for retransmission (RFC 8489 section 6.1) */

typedef struct flare_stun_txn {
    flare_stun_txn_settings cfg;
    flare_stun_txn_state state;
    uint8_t req[FLARE_STUN_TXN_MAX_REQ];
    size_t req_len;
    uint8_t txid[FLARE_STUN_TXID_LEN];
    unsigned sends;
    flare_tstamp rto, next, first_sent, last_sent;
} flare_stun_txn;

/* Starts a transaction for the request req (copied; its transaction id is
 * the one matched). The first transmission is due at now. Returns 0,
 * FLARE_ERR_TOO_LARGE or FLARE_ERR_INVALID_ARG (not a request, bad
 * settings). */
int flare_stun_txn_start(flare_stun_txn *t, const flare_stun_txn_settings *cfg, const uint8_t *req,
                         size_t len, flare_tstamp now);
/* A transmission due at now: copies the request to out and returns its
 * length; 0 if none is due; FLARE_ERR_TIMEOUT once the transaction failed
 * (then always); FLARE_ERR_BUFFER_TOO_SMALL. */
int flare_stun_txn_poll_send(flare_stun_txn *t, flare_tstamp now, uint8_t *out, size_t cap);
/* Returns when to call poll_send next (FLARE_TSTAMP_NEVER when finished). */
flare_tstamp flare_stun_txn_expiry(const flare_stun_txn *t);
/* Returns 1 if m (a parsed response) answers the pending transaction,
 * which is then DONE; else 0 (another transaction's, a request, or already finished). */
int flare_stun_txn_match(flare_stun_txn *t, const flare_stun_msg *m);

/* ---- server --------------------------------------------------------------------------- */

/* Answers a Binding request req from `from` with a success response
 * carrying XOR-MAPPED-ADDRESS (and FINGERPRINT if the request had one), or
 * a 420 error naming the comprehension-required attributes we do not know
 * (e.g. RFC 5780's CHANGE-REQUEST). Returns the response length; 0 for
 * anything not to be answered (not a valid Binding request, or one with
 * integrity we hold no credential for: silence is the answer to the
 * malformed); or FLARE_ERR_BUFFER_TOO_SMALL. A response is at most
 * FLARE_STUN_SERVER_MAX_RESP bytes and never longer than the request plus
 * FLARE_STUN_SERVER_GROWTH: answering cannot amplify. */
#define FLARE_STUN_SERVER_MAX_RESP 52
#define FLARE_STUN_SERVER_GROWTH   32
int flare_stun_server_answer(const uint8_t *req, size_t len, const flare_ipaddr *from, uint8_t *out,
                             size_t cap);

/* Token buckets per source IP in a fixed table: a source that floods only
 * uses its own bucket, and the table never grows (a full table recycles the
 * least recently used entry). */
#define FLARE_STUN_LIMITER_SLOTS 256
typedef struct flare_stun_limiter_slot {
    uint8_t family; /* 0: free */
    uint8_t ip[16];
    uint32_t tokens_milli; /* tokens * 1000 */
    flare_tstamp last;
} flare_stun_limiter_slot;
typedef struct flare_stun_limiter {
    uint32_t rate;  /* tokens per second per source (at most 1,000,000) */
    uint32_t burst; /* bucket size */
    flare_stun_limiter_slot slot[FLARE_STUN_LIMITER_SLOTS];
} flare_stun_limiter;

/* Empties l; rate answers per second per source, burst at once. */
void flare_stun_limiter_init(flare_stun_limiter *l, uint32_t rate, uint32_t burst);
/* Returns 1 if a datagram from the IP of `from` may be answered at now (and
 * takes a token), else 0. */
int flare_stun_limiter_allow(flare_stun_limiter *l, const flare_ipaddr *from, flare_tstamp now);

#ifdef __cplusplus
}
#endif
#endif
