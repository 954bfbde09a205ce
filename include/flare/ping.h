/*
 * flare/ping.h - libp2p ping /ipfs/ping/1.0.0 (libp2p/specs ping/ping.md),
 * sans-I/O cores for both sides.
 *
 * The client writes 32 random bytes (from the caller's flare_rng) and
 * measures the time until the same 32 bytes come back; one ping is in flight
 * at a time on a stream. The server echoes every complete 32-byte block.
 * Time is the caller's (flare_tstamp, ns).
 */
#ifndef FLARE_PING_H
#define FLARE_PING_H

#include "flare/buf.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FLARE_PING_PROTOCOL_ID     "/ipfs/ping/1.0.0"
#define FLARE_PING_SIZE            32
#define FLARE_PING_DEFAULT_TIMEOUT (20 * FLARE_NS_PER_S)

typedef struct flare_ping_client {
    flare_rng rng;
    flare_tstamp timeout;
    flare_tstamp sent_at;
    int outstanding; /* a ping is in flight */
    size_t got;      /* echoed bytes received so far */
    uint8_t payload[FLARE_PING_SIZE];
} flare_ping_client;

/* timeout: how long to wait for an echo (ns), e.g.
 * FLARE_PING_DEFAULT_TIMEOUT. Returns 0 or FLARE_ERR_INVALID_ARG (rng.fn
 * NULL, or timeout 0: an echo cannot arrive in no time). */
int flare_ping_client_init(flare_ping_client *c, flare_tstamp timeout, flare_rng rng);

/* Appends a fresh 32-byte random payload to out and starts its timer at now.
 * Returns 0, FLARE_ERR_NOMEM, or FLARE_ERR_STATE if a ping is in flight. */
int flare_ping_client_send(flare_ping_client *c, flare_tstamp now, flare_buf *out);

/* Consumes echoed bytes. Returns 1 when the whole payload came back (then
 * *rtt_ns = now - send time), 0 when more bytes are needed, or
 * FLARE_ERR_PROTO: bytes differ from the payload, or arrive when no ping is
 * in flight or beyond the payload. */
int flare_ping_client_recv(flare_ping_client *c, const uint8_t *in, size_t len, flare_tstamp now,
                           flare_tstamp *rtt_ns);

/* Deadline of the ping in flight, or FLARE_TSTAMP_NEVER. */
/* Returns when flare_ping_client_handle_expiry is next due (FLARE_TSTAMP_NEVER if never). */
flare_tstamp flare_ping_client_expiry(const flare_ping_client *c);

/* Returns FLARE_ERR_TIMEOUT (and abandons the ping) if now has reached the
 * expiry, else 0. */
int flare_ping_client_handle_expiry(flare_ping_client *c, flare_tstamp now);

typedef struct flare_ping_server {
    size_t have; /* bytes of a partial block */
    uint8_t block[FLARE_PING_SIZE];
} flare_ping_server;

/* A server with no buffered input. */
void flare_ping_server_init(flare_ping_server *s);

/* Echoes every complete 32-byte block of the stream to out, keeping a
 * partial block for the next call. Returns 0 or FLARE_ERR_NOMEM. */
int flare_ping_server_recv(flare_ping_server *s, const uint8_t *in, size_t len, flare_buf *out);

#ifdef __cplusplus
}
#endif
#endif
