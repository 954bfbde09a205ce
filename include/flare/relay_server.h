/*
 * flare/relay_server.h - Circuit Relay v2 relay (hop server) core, sans-I/O.
 *
 * The server keeps reservations and circuits and takes decisions; the host
 * glue owns the streams. For each inbound hop stream the glue reads one
 * message body and calls flare_relay_server_handle_hop, which either writes
 * the reply (the glue flushes it and closes the stream) or asks the glue to
 * open a stop stream to the target. The glue writes
 * flare_relay_circuit_stop_request there and reports the target's answer
 * (flare_relay_server_stop_reply) or the failure to get one
 * (flare_relay_server_stop_failed); on success the circuit is active and the
 * glue splices the two streams, feeding each chunk through
 * flare_relay_circuit_account so the relay's limits hold.
 *
 * Limits (flare_relay_server_settings): start from
 * flare_relay_server_settings_default(); zero is never "the default" (see
 * the struct). Reservations: one per peer (a refresh
 * replaces it), a cap per IP and in total; per-ASN limits are not
 * implemented. Circuits: a cap per peer (counted on both ends, as go does)
 * and in total, including circuits still waiting for the target. Circuits
 * between two allow-listed peers are unlimited and not counted per peer;
 * allow-listed peers also bypass the per-IP reservation cap.
 *
 * Refusals: RESERVE or CONNECT over a relayed connection and ACL refusals
 * give PERMISSION_DENIED; the per-IP reservation cap RESERVATION_REFUSED (as
 * go); the total reservation cap and circuit caps RESOURCE_LIMIT_EXCEEDED
 * (as rust); a target without a reservation NO_RESERVATION; a message that
 * does not decode (an unknown type value included) or a CONNECT without a
 * peer MALFORMED_MESSAGE; a STATUS UNEXPECTED_MESSAGE.
 */
#ifndef FLARE_RELAY_SERVER_H
#define FLARE_RELAY_SERVER_H

#include "flare/ipaddr.h"
#include "flare/relay.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Defaults (go-libp2p's, per-ASN aside). */
#define FLARE_RELAY_DEFAULT_TTL               3600 /* s */
#define FLARE_RELAY_DEFAULT_MAX_RESERVATIONS  128
#define FLARE_RELAY_DEFAULT_MAX_PER_IP        8
#define FLARE_RELAY_DEFAULT_MAX_CIRCUITS      1024 /* total; go leaves it to its rcmgr */
#define FLARE_RELAY_DEFAULT_CIRCUITS_PER_PEER 16
#define FLARE_RELAY_DEFAULT_DURATION          120 /* s */
#define FLARE_RELAY_DEFAULT_DATA              (128 * 1024)
#define FLARE_RELAY_DEFAULT_BUFFER            2048
#define FLARE_RELAY_DEFAULT_STREAM_TIMEOUT    (60 * FLARE_NS_PER_S)
#define FLARE_RELAY_DEFAULT_CONNECT_TIMEOUT   (30 * FLARE_NS_PER_S)

/* The server's settings. Start from flare_relay_server_settings_default(),
 * which sets struct_size and every field, then change what you need. Zero
 * is a real value: 0 reservations or circuits refuses every request of that
 * kind; limit_duration and limit_data 0 mean no limit (as on the wire);
 * reservation_ttl, buffer_size and the timeouts must not be 0. */
typedef struct flare_relay_server_settings {
    size_t struct_size; /* set by flare_relay_server_settings_default */
    /* Required: the relay's identity; signs vouchers. Copied. */
    const flare_privkey *key;
    /* The relay's public addresses, sent in reservations with /p2p/RELAY
     * appended. /p2p-circuit ones are dropped; at most
     * FLARE_RELAY_MAX_ADDRS are kept. Copied. */
    const flare_multiaddr *addrs;
    size_t naddrs;
    uint32_t reservation_ttl;         /* s; default FLARE_RELAY_DEFAULT_TTL */
    uint32_t max_reservations;        /* total; default 128 */
    uint32_t max_reservations_per_ip; /* same IP, any port; default 8 */
    uint32_t max_circuits;            /* total, pending ones included; default 1024 */
    uint32_t max_circuits_per_peer;   /* default 16 */
    uint32_t limit_duration;          /* s, per circuit; default 120, 0 = none */
    uint64_t limit_data;              /* bytes per circuit, each direction; 128 KiB, 0 = none */
    uint32_t buffer_size;             /* bytes in flight per direction; default 2048 */
    /* For the glue: reading a hop/stop message (default 60 s), and the
     * whole stop exchange (the pending circuit's expiry; default 30 s). */
    flare_tstamp stream_timeout;
    flare_tstamp connect_timeout;
    /* Trusted peers (copied). */
    const flare_peerid *allow;
    size_t nallow;
    /* Optional ACL; return nonzero to allow. */
    int (*allow_reserve)(void *user, const flare_peerid *peer, const flare_ipaddr *ip);
    int (*allow_connect)(void *user, const flare_peerid *src, const flare_ipaddr *ip,
                         const flare_peerid *dst);
    void *acl_user;
} flare_relay_server_settings;

typedef struct flare_relay_server flare_relay_server;
typedef struct flare_relay_circuit flare_relay_circuit;

/* Fills c with the defaults documented on each field (key and addrs NULL)
 * and sets c->struct_size. */
void flare_relay_server_settings_default(flare_relay_server_settings *c);

/* Creates a server. rng seeds the hash tables (so peers cannot aim
 * collisions).
 * Returns 0 with *out set, or FLARE_ERR_INVALID_ARG (cfg->struct_size is
 * not sizeof(flare_relay_server_settings), no key, no rng, allow NULL with
 * nallow > 0, or reservation_ttl, buffer_size, stream_timeout or
 * connect_timeout 0), FLARE_ERR_NOMEM. */
int flare_relay_server_new(flare_relay_server **out, const flare_relay_server_settings *cfg,
                           const flare_mem *mem, flare_rng rng);
/* Frees the server and every circuit it still holds. */
void flare_relay_server_del(flare_relay_server *s);
/* Returns the settings in use (owned by s; key, addrs and allow are NULL). */
const flare_relay_server_settings *flare_relay_server_get_settings(const flare_relay_server *s);

typedef enum flare_relay_hop_action {
    FLARE_RELAY_HOP_REPLIED = 0, /* reply in out: flush it, close the stream */
    FLARE_RELAY_HOP_OPEN_STOP,   /* open a stop stream to target for circuit */
} flare_relay_hop_action;

typedef struct flare_relay_hop_result {
    flare_relay_hop_action action;
    uint32_t status;              /* REPLIED: the status sent */
    flare_peerid target;          /* OPEN_STOP */
    flare_relay_circuit *circuit; /* OPEN_STOP: pending, owned by the server */
} flare_relay_hop_result;

/* Handles one HopMessage body from peer `from` (IP `ip`, over a relayed
 * connection when `relayed`). now is monotonic, now_unix UTC seconds.
 * Returns 0 with *res filled: the request was handled (refusals too; see
 * the header comment for which status goes with which refusal).
 * Errors (nothing usable written; reset the stream): FLARE_ERR_NOMEM,
 * FLARE_ERR_INVALID_ARG, and signing errors. */
int flare_relay_server_handle_hop(flare_relay_server *s, const uint8_t *in, size_t len,
                                  const flare_peerid *from, const flare_ipaddr *ip, int relayed,
                                  flare_tstamp now, uint64_t now_unix, flare_buf *out,
                                  flare_relay_hop_result *res);

/* Appends the StopMessage CONNECT{peer = source, limit} frame for the
 * target to stop_out. */
/* Returns 0, or a negative FLARE_ERR_* code (FLARE_ERR_NOMEM). */
int flare_relay_circuit_stop_request(const flare_relay_circuit *c, flare_buf *stop_out);

/* Reports the target's StopMessage reply body for pending circuit c and
 * appends the HopMessage STATUS for the source to hop_out: OK with the
 * circuit's Limit (returns 0; the circuit is active from now), or
 * CONNECTION_FAILED (returns nonzero and frees c: FLARE_ERR_REFUSED for a
 * non-OK status, FLARE_ERR_PROTO for a non-STATUS message, or a decode
 * error). FLARE_ERR_STATE (nothing done) if c is not pending. */
int flare_relay_server_stop_reply(flare_relay_server *s, flare_relay_circuit *c, const uint8_t *in,
                                  size_t len, flare_tstamp now, flare_buf *hop_out);
/* The stop stream could not be opened or answered (dial error, reset,
 * connect timeout): appends STATUS CONNECTION_FAILED to hop_out and frees
 * the pending circuit c. */
/* Returns 0, or a negative FLARE_ERR_* code (FLARE_ERR_NOMEM). */
int flare_relay_server_stop_failed(flare_relay_server *s, flare_relay_circuit *c,
                                   flare_buf *hop_out);
/* Releases circuit c (either stream closed, or a limit hit and the glue
 * reset both). */
void flare_relay_server_circuit_close(flare_relay_server *s, flare_relay_circuit *c);

/* The peer's connection to the relay is gone: drops its reservation.
 * Returns 1 if it had one, else 0. */
int flare_relay_server_peer_disconnected(flare_relay_server *s, const flare_peerid *peer);

/* Earliest reservation expiry (monotonic), or FLARE_TSTAMP_NEVER. */
/* Returns when flare_relay_server_handle_expiry is next due (FLARE_TSTAMP_NEVER if never). */
flare_tstamp flare_relay_server_expiry(const flare_relay_server *s);
/* Drops the reservations expired at now; returns how many. */
int flare_relay_server_handle_expiry(flare_relay_server *s, flare_tstamp now);

/* Introspection. */
/* Returns the number of reservations held. */
size_t flare_relay_server_num_reservations(const flare_relay_server *s);
/* Returns the number of circuits. */
size_t flare_relay_server_num_circuits(const flare_relay_server *s);
/* 1 if peer holds an unexpired reservation at now, else 0. */
/* Returns 1 if peer holds an unexpired reservation at now, else 0. */
int flare_relay_server_has_reservation(const flare_relay_server *s, const flare_peerid *peer,
                                       flare_tstamp now);

/* --- circuits: splicing accounting --- */

typedef enum flare_relay_dir {
    FLARE_RELAY_SRC_TO_DST = 0, /* from the peer that sent CONNECT */
    FLARE_RELAY_DST_TO_SRC = 1,
} flare_relay_dir;

/* Returns the source peer (owned by c). */
const flare_peerid *flare_relay_circuit_src(const flare_relay_circuit *c);
/* Returns the target peer (owned by c). */
const flare_peerid *flare_relay_circuit_dst(const flare_relay_circuit *c);
/* The circuit's limit (zeros: unlimited, between allow-listed peers). */
/* Returns the circuit's limit. */
flare_relay_limit flare_relay_circuit_limit(const flare_relay_circuit *c);
/* 1 once the target accepted. */
/* Returns 1 once the target accepted the circuit, else 0. */
int flare_relay_circuit_active(const flare_relay_circuit *c);

/* Pending: the connect deadline. Active: when the duration limit ends the
 * circuit (FLARE_TSTAMP_NEVER if none). */
/* Returns when the circuit's duration limit ends (FLARE_TSTAMP_NEVER if none). */
flare_tstamp flare_relay_circuit_expiry(const flare_relay_circuit *c);
/* 0, or FLARE_ERR_TIMEOUT once expiry has passed (pending: call
 * flare_relay_server_stop_failed; active: reset both streams). */
int flare_relay_circuit_check(const flare_relay_circuit *c, flare_tstamp now);

/* How many more bytes the glue may read from dir's source now: the buffer
 * size less what is read but not yet written (flare_relay_circuit_sent).
 * 0 means: wait for writes to drain. */
/* Returns the bytes dir may still carry under the data limit. */
size_t flare_relay_circuit_window(const flare_relay_circuit *c, flare_relay_dir dir);
/* Accounts len bytes read from dir's source at now. Returns:
 *  0: forward all len bytes (*allowed = len);
 *  1: forward all len bytes, and that reached the data limit exactly: dir
 *     is exhausted (go half-closes it; resetting both is also fine);
 *  FLARE_ERR_LIMIT: the data limit was already reached or this chunk
 *     crosses it: forward only *allowed bytes, then as for 1;
 *  FLARE_ERR_TIMEOUT: the duration limit has passed (*allowed = 0): reset
 *     both streams;
 *  FLARE_ERR_FLOW_CONTROL: len exceeds the buffer space the glue was
 *     given (flare_relay_circuit_window), a glue bug (*allowed = 0);
 *  FLARE_ERR_STATE: the circuit is not active.
 * allowed may be NULL. */
int flare_relay_circuit_account(flare_relay_circuit *c, flare_relay_dir dir, size_t len,
                                flare_tstamp now, size_t *allowed);
/* len bytes of dir were written to the other side: frees buffer space. */
void flare_relay_circuit_sent(flare_relay_circuit *c, flare_relay_dir dir, size_t len);
/* Bytes accounted in dir so far. */
/* Returns the bytes relayed in dir so far. */
uint64_t flare_relay_circuit_bytes(const flare_relay_circuit *c, flare_relay_dir dir);

#ifdef __cplusplus
}
#endif
#endif
