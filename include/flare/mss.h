/*
 * flare/mss.h - multistream-select 1.0.0 (sans-I/O core).
 *
 * Wire format (libp2p/specs connections/README.md, multiformats/
 * multistream-select): every message is uvarint(len) || text || '\n', the
 * length counting the newline. Both sides send the header
 * "/multistream/1.0.0"; the dialer proposes protocols one at a time; the
 * listener echoes a supported one or answers "na". A listener also answers
 * "ls" with one frame holding, per supported protocol, uvarint(len+1) ||
 * protocol || '\n', then a final '\n' (the layout go- and rust-libp2p use).
 *
 * The role is a setting, not the socket direction: the host decides who
 * dials (TCP simultaneous open is resolved outside mss).
 *
 * Optimistic ("lazy", 0-RTT) dialing: a dialer with exactly one protocol and
 * `optimistic` set sends header + proposal and treats the protocol as
 * selected at once, so its application data may follow on the wire. It must
 * keep feeding received bytes to flare_mss_recv() until it returns 1 (the
 * listener's header and echo precede the listener's data); an "na" then is
 * FLARE_ERR_NEGOTIATION.
 *
 * flare_mss_recv() never consumes a byte past the end of negotiation; partial
 * messages are buffered inside the object, so the caller may pass any split
 * of the stream.
 */
#ifndef FLARE_MSS_H
#define FLARE_MSS_H

#include "flare/buf.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FLARE_MSS_PROTOCOL_ID "/multistream/1.0.0"
/* Longest protocol id accepted or sent (go-multistream's limit). */
#define FLARE_MSS_MAX_PROTO_LEN 1024
/* Longest received message: a protocol id plus its newline. */
#define FLARE_MSS_MAX_MSG (FLARE_MSS_MAX_PROTO_LEN + 1)
/* Most proposals ("ls" included) a listener answers before one is selected;
 * the next one is FLARE_ERR_LIMIT. Bounds what a peer can make us write
 * before any protocol runs (an honest dialer needs a few). */
#define FLARE_MSS_MAX_REPLIES 16

typedef enum { FLARE_MSS_DIALER, FLARE_MSS_LISTENER } flare_mss_role;

typedef struct flare_mss_settings {
    /* Set by the caller, not by socket direction (TCP simultaneous open). */
    flare_mss_role role;
    /* Dialer: proposals in order (at least one). Listener: supported
     * protocols, answered to "ls". NUL-terminated, 1..FLARE_MSS_MAX_PROTO_LEN
     * bytes, no '\n'. The array and strings must outlive the flare_mss. */
    const char *const *protocols;
    size_t nprotocols;
    /* Listener: optional matcher for protocols not in the list (e.g. a
     * handler registry). proto is NUL-terminated, len bytes. 1 = supported. */
    int (*supports)(const char *proto, size_t len, void *user);
    void *user;
    /* Dialer with ONE protocol: send header+proposal and treat it as
     * selected at once (0-RTT). Ignored otherwise. */
    int optimistic;
} flare_mss_settings;

typedef struct flare_mss {
    flare_mss_settings s;
    const flare_mem *mem;
    int state;     /* internal state machine (see mss.c) */
    int done;      /* a protocol is selected (possibly optimistically) */
    int confirmed; /* the remote agreed */
    /* A listener's selection is the proposal left in pend (NUL-terminated
     * there; pend is not written once done), at this offset: no copy. */
    uint32_t sel_off;
    size_t next;          /* dialer: index of the proposal in flight */
    size_t replies;       /* listener: proposals answered so far */
    const char *selected; /* dialer: its entry of s.protocols; NULL: in pend */
    size_t plen;          /* bytes of a partial message in pend */
    uint8_t pend[16 + FLARE_MSS_MAX_MSG];
} flare_mss;

/* Initializes m from s (copied; the protocol strings are referenced).
 * Returns 0, or FLARE_ERR_INVALID_ARG (unknown role, dialer without
 * protocols, listener with neither protocols nor matcher, an empty, too long
 * or newline-containing protocol id). */
int flare_mss_init(flare_mss *m, const flare_mss_settings *s, const flare_mem *mem);

/* Writes our header (and, as dialer, the first proposal) to out. An
 * optimistic dialer is done() after this. Returns 0, FLARE_ERR_NOMEM, or
 * FLARE_ERR_STATE if already started. recv() starts the object itself if
 * needed (e.g. a dialer that hears the listener's header first). */
int flare_mss_start(flare_mss *m, flare_buf *out);

/* Consumes negotiation bytes from in[0..len) and appends replies to out.
 * Stops exactly where negotiation ends: *consumed tells how many bytes were
 * used; the rest is application data for the caller. Returns 0 (in
 * progress, all of in consumed), 1 (done: a protocol is selected and, for an
 * optimistic dialer, confirmed), or a negative error, after which the object
 * is dead (later calls return FLARE_ERR_STATE):
 *   FLARE_ERR_NEGOTIATION  all proposals refused ("na")
 *   FLARE_ERR_PROTO        wrong header, or an answer we did not propose
 *   FLARE_ERR_MALFORMED    empty message or one not ending in '\n'
 *   FLARE_ERR_LIMIT        listener: more than FLARE_MSS_MAX_REPLIES proposals
 *   FLARE_ERR_TOO_LARGE    a message longer than FLARE_MSS_MAX_MSG
 *   FLARE_ERR_OVERLONG     a bad length varint
 *   FLARE_ERR_NOMEM */
int flare_mss_recv(flare_mss *m, const uint8_t *in, size_t len, size_t *consumed, flare_buf *out);

/* 1 if a protocol is selected (possibly optimistically), else 0. */
/* Returns 1 if a protocol is selected (possibly optimistically), else 0. */
int flare_mss_done(const flare_mss *m);
/* 1 if the remote confirmed the selection (an optimistic dialer saw the
 * echo), else 0. */
/* Returns 1 once the selection is confirmed by the listener, else 0. */
int flare_mss_confirmed(const flare_mss *m);
/* Returns the selected protocol (NUL-terminated; valid while m is, not
 * moved, and its protocol strings live), or NULL. */
const char *flare_mss_selected(const flare_mss *m);
void flare_mss_free(flare_mss *m);

#ifdef __cplusplus
}
#endif
#endif
