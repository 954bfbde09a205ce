/*
 * flare/autonat.h - AutoNAT v1 (/libp2p/autonat/1.0.0) and v2
 * (/libp2p/autonat/2/dial-request, /libp2p/autonat/2/dial-back): codecs and
 * sans-I/O client and server cores (libp2p/specs autonat/autonat-v1.md,
 * autonat-v2.md). Reachability bookkeeping is in flare/reachability.h.
 *
 * Stream handlers take the bytes that arrived on a stream (in, len) and say
 * how many they used (*used); FLARE_ERR_AGAIN means "no complete message yet,
 * call again with more bytes". Messages are uvarint-length-prefixed
 * protobufs. Replies are appended to the caller's flare_buf.
 *
 * Rule for all servers: when a handler returns an error, out may still hold a
 * final response; the caller writes it, then closes (or resets) the stream.
 *
 * The cores never dial: they tell the caller what to dial, and the caller
 * reports the outcome.
 */
#ifndef FLARE_AUTONAT_H
#define FLARE_AUTONAT_H

#include "flare/buf.h"
#include "flare/multiaddr.h"
#include "flare/peerid.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FLARE_AUTONAT_V1_PROTOCOL_ID     "/libp2p/autonat/1.0.0"
#define FLARE_AUTONAT_V2_DIAL_REQUEST_ID "/libp2p/autonat/2/dial-request"
#define FLARE_AUTONAT_V2_DIAL_BACK_ID    "/libp2p/autonat/2/dial-back"

#define FLARE_AUTONAT_V1_MSG_MAX      4096 /* bytes of one v1 message */
#define FLARE_AUTONAT_V2_MSG_MAX      8192 /* v2 message (a data chunk + framing) */
#define FLARE_AUTONAT_V2_CHUNK_MAX    4096 /* DialDataResponse.data */
#define FLARE_AUTONAT_MAX_ADDRS       32   /* addresses accepted in one request */
#define FLARE_AUTONAT_STATUS_TEXT_MAX 128

/* Dial timeout the glue should apply to dial-backs (go's default). */
#define FLARE_AUTONAT_DIAL_TIMEOUT (15 * FLARE_NS_PER_S)

/* What a probe taught us about one address (or, for v1, the node). */
typedef enum flare_autonat_outcome {
    FLARE_AUTONAT_NO_INFO = 0, /* refused, rejected, error, unverifiable */
    FLARE_AUTONAT_REACHABLE,   /* a dial-back succeeded */
    FLARE_AUTONAT_UNREACHABLE, /* the server tried and failed */
} flare_autonat_outcome;

/* ======================================================================
 * v1 codec
 * ==================================================================== */

typedef enum flare_autonat1_type {
    FLARE_AUTONAT1_DIAL = 0,
    FLARE_AUTONAT1_DIAL_RESPONSE = 1,
} flare_autonat1_type;

typedef enum flare_autonat1_status {
    FLARE_AUTONAT1_OK = 0,
    FLARE_AUTONAT1_E_DIAL_ERROR = 100,
    FLARE_AUTONAT1_E_DIAL_REFUSED = 101,
    FLARE_AUTONAT1_E_BAD_REQUEST = 200,
    FLARE_AUTONAT1_E_INTERNAL_ERROR = 300,
} flare_autonat1_status;

/* A decoded v1 message. Addresses that are not valid multiaddrs decode as
 * empty (len 0) entries so that the count stays the peer's. */
typedef struct flare_autonat1_msg {
    flare_autonat1_type type;
    /* DIAL */
    int has_peer; /* Dial.peer present */
    uint8_t peer_id[FLARE_PEERID_MAX];
    size_t peer_id_len; /* raw bytes of PeerInfo.id (0 if absent) */
    size_t naddrs;
    flare_multiaddr addrs[FLARE_AUTONAT_MAX_ADDRS];
    /* DIAL_RESPONSE */
    flare_autonat1_status status;
    char status_text[FLARE_AUTONAT_STATUS_TEXT_MAX]; /* NUL-terminated, cut */
    flare_multiaddr addr;                            /* len 0 if absent or invalid */
} flare_autonat1_msg;

/* Decodes one v1 protobuf (without its length prefix). Errors:
 * FLARE_ERR_TRUNCATED, _OVERLONG, _MALFORMED (bad wire types, missing type,
 * missing dial / dialResponse for the type, missing status),
 * _UNKNOWN_CODE (unknown type or status), _TOO_LARGE (more than
 * FLARE_AUTONAT_MAX_ADDRS addresses, a peer id over FLARE_PEERID_MAX). */
int flare_autonat1_decode(flare_autonat1_msg *m, const uint8_t *in, size_t len);

/* Appends a framed DIAL{peer{id, addrs}}. Errors: FLARE_ERR_NOMEM,
 * _INVALID_ARG, _TOO_LARGE (over FLARE_AUTONAT_V1_MSG_MAX). */
int flare_autonat1_encode_dial(flare_buf *out, const flare_peerid *self,
                               const flare_multiaddr *addrs, size_t naddrs);
/* Appends a framed DIAL_RESPONSE. text may be NULL; addr may be NULL. */
/* Returns 0, or a negative FLARE_ERR_* code (FLARE_ERR_INVALID_ARG, FLARE_ERR_NOMEM, ...). */
int flare_autonat1_encode_response(flare_buf *out, flare_autonat1_status status, const char *text,
                                   const flare_multiaddr *addr);

/* ======================================================================
 * v1 server
 * ==================================================================== */

/* Start from flare_autonat1_server_settings_default(), which sets
 * struct_size and every field. Zero is never "the default": a limit of 0
 * refuses every request (E_DIAL_REFUSED); period and max_dial_addrs must
 * not be 0. */
typedef struct flare_autonat1_server_settings {
    size_t struct_size;      /* set by flare_autonat1_server_settings_default */
    unsigned global_limit;   /* requests served per period; default 30 */
    unsigned per_peer_limit; /* per peer per period; default 3 */
    flare_tstamp period;     /* default 60 s */
    size_t max_dial_addrs;   /* dialed per request (at most FLARE_AUTONAT_MAX_ADDRS); 16 */
    int doc_is_public;       /* TEST-NET counts as public (lab, simulator); default 0 */
} flare_autonat1_server_settings;

/* Fills s with the defaults documented on each field and sets
 * s->struct_size. */
void flare_autonat1_server_settings_default(flare_autonat1_server_settings *s);

typedef struct flare__autonat_peer_count {
    flare_peerid peer;
    unsigned count;
} flare__autonat_peer_count;

/* A fixed-window rate limiter (global + per peer), shared by v1 and v2. */
typedef struct flare__autonat_limiter {
    unsigned global_limit, per_peer_limit;
    flare_tstamp period, window_start;
    unsigned global_count;
    size_t npeers, cap;
    flare__autonat_peer_count *peers; /* grown on use, up to global_limit entries */
    const flare_mem *mem;
} flare__autonat_limiter;

typedef struct flare_autonat1_server {
    flare_autonat1_server_settings settings;
    flare__autonat_limiter limiter;
} flare_autonat1_server;

/* The addresses a v1 server must dial (all of them, any one success is OK). */
typedef struct flare_autonat1_dial {
    size_t naddrs;
    flare_multiaddr addrs[FLARE_AUTONAT_MAX_ADDRS];
} flare_autonat1_dial;

/* s may be NULL (defaults). Returns 0, FLARE_ERR_NOMEM, or
 * FLARE_ERR_INVALID_ARG (s->struct_size is not
 * sizeof(flare_autonat1_server_settings), period 0, max_dial_addrs 0 or
 * above FLARE_AUTONAT_MAX_ADDRS). */
int flare_autonat1_server_init(flare_autonat1_server *srv, const flare_autonat1_server_settings *s,
                               const flare_mem *mem);
void flare_autonat1_server_free(flare_autonat1_server *srv);

/* Handles the DIAL request at the start of in[0..len) from the authenticated
 * peer requester, whose connection's remote address is observed (relayed:
 * that connection goes through a relay).
 *
 * Returns 1: dial every address of *dial (all share the observed IP, are
 * public and deduplicated), then call flare_autonat1_server_dial_result.
 * Returns 0: a refusal response is in out (E_DIAL_REFUSED: relayed, rate
 * limited or a non-public observed address; E_BAD_REQUEST: no peer info or a
 * peer id other than requester's; E_DIAL_ERROR: no acceptable address;
 * E_INTERNAL_ERROR: observed address without IP). Close the stream.
 * Errors (reset the stream): FLARE_ERR_AGAIN (incomplete), _TOO_LARGE
 * (frame), decoder errors, FLARE_ERR_PROTO (not a DIAL). */
int flare_autonat1_server_handle(flare_autonat1_server *srv, const uint8_t *in, size_t len,
                                 size_t *used, const flare_peerid *requester,
                                 const flare_multiaddr *observed, int relayed, flare_tstamp now,
                                 flare_autonat1_dial *dial, flare_buf *out);

/* Appends the DIAL_RESPONSE after the dials: OK with the address that
 * connected, or E_DIAL_ERROR when connected is NULL. */
/* Returns 0, or a negative FLARE_ERR_* code (FLARE_ERR_NOMEM, ...). */
int flare_autonat1_server_dial_result(const flare_multiaddr *connected, flare_buf *out);

/* ======================================================================
 * v1 client
 * ==================================================================== */

/* Appends a DIAL for our candidate addresses (== flare_autonat1_encode_dial). */
/* Returns as flare_autonat1_encode_dial. */
int flare_autonat1_client_request(flare_buf *out, const flare_peerid *self,
                                  const flare_multiaddr *addrs, size_t naddrs);

/* Parses the DIAL_RESPONSE at the start of in[0..len) and judges it.
 *
 * The rule (js-libp2p servers may answer OK after reusing the connection we
 * opened to them, which proves nothing): an OK counts as REACHABLE only if
 * the returned address is one of asked[] (ignoring a trailing /p2p/) AND its
 * tcp/udp port is one of listen_ports[]. Any other OK is NO_INFO.
 * E_DIAL_ERROR is UNREACHABLE; other statuses are NO_INFO. v1 results are
 * also weaker than v2 in flare_reachability (used only while a family has no
 * v2 evidence).
 *
 * *outcome gets the judgement; addr (may be NULL) the returned address.
 * Errors: FLARE_ERR_AGAIN, _TOO_LARGE, decoder errors, FLARE_ERR_PROTO (not
 * a DIAL_RESPONSE). */
int flare_autonat1_client_response(const uint8_t *in, size_t len, size_t *used,
                                   const flare_multiaddr *asked, size_t nasked,
                                   const uint16_t *listen_ports, size_t nports,
                                   flare_autonat_outcome *outcome, flare_multiaddr *addr);

/* ======================================================================
 * v2 codec
 * ==================================================================== */

typedef enum flare_autonat2_type {
    FLARE_AUTONAT2_DIAL_REQUEST = 1,
    FLARE_AUTONAT2_DIAL_RESPONSE = 2,
    FLARE_AUTONAT2_DIAL_DATA_REQUEST = 3,
    FLARE_AUTONAT2_DIAL_DATA_RESPONSE = 4,
} flare_autonat2_type;

typedef enum flare_autonat2_dial_status {
    FLARE_AUTONAT2_DIAL_UNUSED = 0,
    FLARE_AUTONAT2_DIAL_E_DIAL_ERROR = 100,
    FLARE_AUTONAT2_DIAL_E_DIAL_BACK_ERROR = 101,
    FLARE_AUTONAT2_DIAL_OK = 200,
} flare_autonat2_dial_status;

typedef enum flare_autonat2_status {
    FLARE_AUTONAT2_E_INTERNAL_ERROR = 0,
    FLARE_AUTONAT2_E_REQUEST_REJECTED = 100,
    FLARE_AUTONAT2_E_DIAL_REFUSED = 101,
    FLARE_AUTONAT2_OK = 200,
} flare_autonat2_status;

/* A decoded v2 Message. Absent proto3 fields read as zero. Invalid
 * multiaddrs decode as empty entries so that indexes stay the peer's. */
typedef struct flare_autonat2_msg {
    flare_autonat2_type type;
    /* DialRequest */
    size_t naddrs;
    flare_multiaddr addrs[FLARE_AUTONAT_MAX_ADDRS];
    uint64_t nonce;
    /* DialResponse, DialDataRequest */
    flare_autonat2_status status;
    uint32_t addr_idx;
    flare_autonat2_dial_status dial_status;
    uint64_t num_bytes;
    /* DialDataResponse: a view into the input */
    const uint8_t *data;
    size_t data_len;
} flare_autonat2_msg;

/* Decodes one Message (no length prefix). Errors: FLARE_ERR_TRUNCATED,
 * _OVERLONG, _MALFORMED (wire types, no or several oneof members),
 * _UNKNOWN_CODE (status / dialStatus values), _OUT_OF_RANGE (addrIdx over
 * 32 bits), _TOO_LARGE (too many addresses, data over 4096 bytes). */
int flare_autonat2_decode(flare_autonat2_msg *m, const uint8_t *in, size_t len);

/* Framed encoders. Errors: FLARE_ERR_NOMEM, _INVALID_ARG, _TOO_LARGE. */
int flare_autonat2_encode_dial_request(flare_buf *out, const flare_multiaddr *addrs, size_t naddrs,
                                       uint64_t nonce);
int flare_autonat2_encode_dial_response(flare_buf *out, flare_autonat2_status status,
                                        uint32_t addr_idx, flare_autonat2_dial_status ds);
int flare_autonat2_encode_dial_data_request(flare_buf *out, uint32_t addr_idx, uint64_t num_bytes);
int flare_autonat2_encode_dial_data_response(flare_buf *out, const uint8_t *data, size_t len);
int flare_autonat2_encode_dial_back(flare_buf *out, uint64_t nonce);
int flare_autonat2_encode_dial_back_response(flare_buf *out);

/* Dial-back stream messages (not wrapped in Message). Each parses one framed
 * message at the start of in[0..len). Errors: FLARE_ERR_AGAIN, _TOO_LARGE,
 * _TRUNCATED, _MALFORMED, _UNKNOWN_CODE (DialBackResponse status != OK). */
int flare_autonat2_parse_dial_back(const uint8_t *in, size_t len, size_t *used, uint64_t *nonce);
int flare_autonat2_parse_dial_back_response(const uint8_t *in, size_t len, size_t *used);

/* ======================================================================
 * v2 server
 * ==================================================================== */

/* Start from flare_autonat2_server_settings_default(), which sets
 * struct_size and every field. Zero is never "the default": a limit of 0
 * refuses every request of its kind (E_REQUEST_REJECTED); period and
 * max_dial_data must not be 0. */
typedef struct flare_autonat2_server_settings {
    size_t struct_size;       /* set by flare_autonat2_server_settings_default */
    unsigned global_limit;    /* requests per period; default 60 (go) */
    unsigned per_peer_limit;  /* default 12 */
    unsigned dial_data_limit; /* requests needing dial data per period; default 12 */
    flare_tstamp period;      /* default 60 s */
    uint64_t min_dial_data;   /* bytes asked at least; default 30000 */
    uint64_t max_dial_data;   /* at most (>= min_dial_data); default 100000 */
    int no_ipv4, no_ipv6;     /* we cannot dial that family; default 0 */
    int allow_quic;           /* /udp/../quic-v1 addresses are dialable; default 0 */
    int allow_ws;             /* /tcp/../ws, /tls/ws, /wss are dialable; default 0 */
    int doc_is_public;        /* TEST-NET counts as public; default 0 */
} flare_autonat2_server_settings;

/* Fills s with the defaults documented on each field and sets
 * s->struct_size. */
void flare_autonat2_server_settings_default(flare_autonat2_server_settings *s);

typedef struct flare_autonat2_server {
    flare_autonat2_server_settings settings;
    flare__autonat_limiter limiter;
    flare__autonat_limiter data_limiter;
    flare_rng rng;
} flare_autonat2_server;

/* s may be NULL (defaults). rng draws the dial-data amounts. Returns 0,
 * FLARE_ERR_NOMEM, or FLARE_ERR_INVALID_ARG (no rng, s->struct_size is not
 * sizeof(flare_autonat2_server_settings), period or max_dial_data 0,
 * max_dial_data below min_dial_data). */
int flare_autonat2_server_init(flare_autonat2_server *srv, const flare_autonat2_server_settings *s,
                               const flare_mem *mem, flare_rng rng);
void flare_autonat2_server_free(flare_autonat2_server *srv);

typedef enum flare_autonat2_sreq_state {
    FLARE_AUTONAT2_SREQ_WAIT_REQUEST,
    FLARE_AUTONAT2_SREQ_WAIT_DATA,
    FLARE_AUTONAT2_SREQ_DIAL, /* the caller dials back */
    FLARE_AUTONAT2_SREQ_DONE,
} flare_autonat2_sreq_state;

/* One dial-request stream on the server. */
typedef struct flare_autonat2_server_req {
    flare_autonat2_server *srv;
    flare_peerid requester;
    flare_multiaddr observed;
    int relayed;
    flare_autonat2_sreq_state state;
    uint32_t addr_idx;
    flare_multiaddr target;
    uint64_t nonce;
    uint64_t want_bytes, got_bytes;
} flare_autonat2_server_req;

/* Starts handling a dial-request stream from the authenticated peer
 * requester over a connection whose remote address is observed. */
void flare_autonat2_server_req_init(flare_autonat2_server_req *r, flare_autonat2_server *srv,
                                    const flare_peerid *requester, const flare_multiaddr *observed,
                                    int relayed);

/* Feeds stream bytes. Returns:
 *  0: need more bytes (a DialDataRequest may have been appended to out);
 *  1: dial back r->target (from a port other than our listen port), send
 *     DialBack{r->nonce} on a dial-back stream, read the DialBackResponse,
 *     then call flare_autonat2_server_req_dial_result;
 *  2: done, a DialResponse is in out (E_REQUEST_REJECTED: rate limits or
 *     relayed; E_DIAL_REFUSED: no acceptable address); close the stream.
 * Errors (reset the stream after flushing out): FLARE_ERR_AGAIN is never
 * returned (0 instead); decoder errors (out gets E_REQUEST_REJECTED for a
 * bad DialRequest); FLARE_ERR_PROTO: an unexpected message, or bytes after
 * the dial data was complete; FLARE_ERR_TOO_LARGE: a frame over the limit;
 * FLARE_ERR_STATE: called after 1 or 2. */
int flare_autonat2_server_req_recv(flare_autonat2_server_req *r, const uint8_t *in, size_t len,
                                   size_t *used, flare_tstamp now, flare_buf *out);

/* Reports the dial-back outcome: FLARE_AUTONAT2_DIAL_OK (connected and the
 * DialBackResponse arrived), _E_DIAL_ERROR (could not connect), or
 * _E_DIAL_BACK_ERROR (connected, the dial-back stream failed). Appends
 * DialResponse{OK, addrIdx, status}. FLARE_ERR_STATE if not dialing,
 * FLARE_ERR_INVALID_ARG for another status. */
int flare_autonat2_server_req_dial_result(flare_autonat2_server_req *r,
                                          flare_autonat2_dial_status ds, flare_buf *out);

/* ======================================================================
 * v2 client
 * ==================================================================== */

typedef enum flare_autonat2_creq_state {
    FLARE_AUTONAT2_CREQ_WAIT,
    FLARE_AUTONAT2_CREQ_DONE,
} flare_autonat2_creq_state;

/* One dial-request stream on the client. */
typedef struct flare_autonat2_client_req {
    size_t naddrs;
    flare_multiaddr addrs[FLARE_AUTONAT_MAX_ADDRS];
    uint64_t nonce;
    uint64_t max_dial_data;
    int dial_back_seen;
    flare_multiaddr dial_back_local; /* len 0 if unknown */
    int data_sent;
    flare_autonat2_creq_state state;
    /* result */
    flare_autonat_outcome outcome;
    int addr_idx; /* -1 if none */
} flare_autonat2_client_req;

#define FLARE_AUTONAT2_DEFAULT_MAX_DIAL_DATA 100000

/* Starts a request for addrs (priority order, 1..FLARE_AUTONAT_MAX_ADDRS)
 * with a nonce drawn from rng, appending the DialRequest to out.
 * max_dial_data: the most dial data we pay (0: none; a server asking for
 * any fails the request; FLARE_AUTONAT2_DEFAULT_MAX_DIAL_DATA is go's). Errors:
 * FLARE_ERR_INVALID_ARG, _NOMEM, _TOO_LARGE. */
int flare_autonat2_client_req_init(flare_autonat2_client_req *c, const flare_multiaddr *addrs,
                                   size_t naddrs, uint64_t max_dial_data, flare_rng rng,
                                   flare_buf *out);

/* Feeds dial-request stream bytes. Returns 0 (need more; dial data may have
 * been appended to out) or 1 (the DialResponse arrived: see outcome and
 * addr_idx; close the stream). Errors (reset the stream):
 * FLARE_ERR_REFUSED: a DialDataRequest over max_dial_data or for an index we
 * did not ask about; FLARE_ERR_PROTO: an unexpected message or a response
 * index out of range; decoder errors; FLARE_ERR_STATE after 1.
 *
 * Outcome: DialResponse OK + dialStatus OK + our nonce seen on a dial-back
 * stream -> REACHABLE; OK + E_DIAL_ERROR -> UNREACHABLE; anything else
 * (refused, rejected, dial-back error, OK without the nonce) -> NO_INFO. */
int flare_autonat2_client_req_recv(flare_autonat2_client_req *c, const uint8_t *in, size_t len,
                                   size_t *used, flare_buf *out);

/* A DialBack carrying nonce arrived on a dial-back stream (the glue parses
 * it with flare_autonat2_parse_dial_back, then offers it to each pending
 * request). local (may be NULL) is our local address of the connection it
 * came on: when given, a REACHABLE verdict also needs its transport and port
 * to match the address the server claims to have dialed (spec: "check the
 * local address of the connection"). on_request_conn: it came on the very
 * connection that carries the dial request, i.e. the server did not dial
 * anything new; such a dial-back proves nothing and is refused.
 *
 * On a match, records it and appends the DialBackResponse{OK} to out (then
 * close that stream). FLARE_ERR_NOT_FOUND if the nonce is not ours or
 * on_request_conn (reset the stream), FLARE_ERR_STATE if already done. */
int flare_autonat2_client_req_dial_back(flare_autonat2_client_req *c, uint64_t nonce,
                                        const flare_multiaddr *local, int on_request_conn,
                                        flare_buf *out);

#ifdef __cplusplus
}
#endif
#endif
