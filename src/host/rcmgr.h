/*
 * The host's resource manager (rcmgr.c): the one place that counts and
 * limits what the network makes a host hold, per scope: the system, the
 * remote IP and its subnet, the peer, the protocol (and protocol x peer),
 * and the connection. The host calls in at fixed points:
 *
 *   accept / dial / relayed    flare__rc_can_accept, flare__rc_can_open
 *   connection object exists   flare__rc_conn_add (counted from here on)
 *   Noise names the peer       flare__rc_conn_identified (per-peer limit)
 *   upgrade done               flare__rc_conn_ready (handshake slot freed)
 *   connection memory freed    flare__rc_conn_remove
 *   stream linked / unlinked   flare__rc_stream_check, _add, _remove
 *   stream protocol known      flare__rc_stream_protocol
 *
 * Memory: each connection allocates through its own counting flare_mem
 * (c->rc.mem), which charges the connection, its peer and the system and
 * refuses an allocation beyond a limit; the code that asked sees a plain
 * allocation failure, and the connection closes with FLARE_ERR_LIMIT.
 */
#ifndef FLARE_HOST_RCMGR_H
#define FLARE_HOST_RCMGR_H

#include "flare/host.h"

struct flare__rcmgr;
struct flare__rc_peer;
struct flare__rc_pp;

/* Per-connection state, embedded in flare_conn. */
typedef struct flare__rc_conn {
    flare_mem mem;               /* the connection's counting allocator */
    size_t used;                 /* bytes allocated through mem, now */
    struct flare__rc_peer *peer; /* set once identified */
    uint8_t subnet[16];          /* inbound direct: the /24 or /56 key */
    unsigned counted : 1;        /* in the system's connection counts */
    unsigned in_ip : 1;          /* in its IP and subnet counts */
    unsigned handshake : 1;      /* holds a handshake slot */
    unsigned refused : 1;        /* an allocation was refused: close as LIMIT */
} flare__rc_conn;

int flare__rc_new(flare_host *h);
void flare__rc_del(flare_host *h);

/* May an inbound connection from remote be taken now? 0 or FLARE_ERR_LIMIT
 * (counted as refused). remote NULL: a relayed connection (no IP limits). */
int flare__rc_can_accept(flare_host *h, const flare_ipaddr *remote);
/* May we open an outbound connection now? 0 or FLARE_ERR_LIMIT. */
int flare__rc_can_open(flare_host *h);
/* Sets up c's allocator (before anything is allocated for c). */
void flare__rc_conn_init(flare_conn *c);
/* Counts c (direction from c->outbound; c->remote_ip for an inbound direct
 * one, which also takes a handshake slot). */
void flare__rc_conn_add(flare_conn *c);
/* Noise authenticated c->peer: FLARE_ERR_LIMIT if the peer already has
 * max_connections_per_peer connections, else c joins the peer's scope. */
int flare__rc_conn_identified(flare_conn *c);
void flare__rc_conn_ready(flare_conn *c);
/* Releases every count of c; its memory must already be freed. */
void flare__rc_conn_remove(flare_conn *c);
/* err, or FLARE_ERR_LIMIT for an allocation failure caused by a limit. */
int flare__rc_conn_error(const flare_conn *c, int err);
/* 1 when c (with its socket queue) or its peer holds more than half its
 * memory budget: stream writers are told to wait (flare_stream_write returns
 * 1), so a bulk sender slows down before an allocation is refused. */
int flare__rc_conn_tight(const flare_conn *c);

/* May c carry one more stream (inbound or not)? 0 or FLARE_ERR_LIMIT. */
int flare__rc_stream_check(flare_conn *c, int inbound);
void flare__rc_stream_add(flare_stream *s);
void flare__rc_stream_remove(flare_stream *s);
/* s->protocol is set: counts it; FLARE_ERR_LIMIT when an inbound stream is
 * over its protocol's limits, FLARE_ERR_NOMEM. */
int flare__rc_stream_protocol(flare_stream *s);

/* A block allocated through from's allocator is charged to to instead (a
 * stream moving between connections); to may go over its limits. */
void flare__rc_mem_adopt(flare_conn *from, flare_conn *to, void *ptr);

#endif
