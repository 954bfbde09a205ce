/*
 * Transports: what a connection's bytes run over. The host core
 * (src/host/conn.c) runs the upgrade (multistream -> Noise -> yamux) over any
 * byte-stream transport through these operations and never learns which one
 * it is; each transport keeps its own state behind c->tr and reports back
 * through the flare__conn_* calls below.
 *
 * Byte-stream transports (this interface): TCP through the io driver's
 * sockets (tcp.c) and a relayed circuit over a stream of a relay connection
 * (circuit.c); WebSocket would be a third. A transport chooses the
 * connection's addresses (c->local_ip/remote_ip, local_ma/remote_ma) when it
 * attaches, and sets c->limited if the connection may only carry protocols
 * allowed on limited connections.
 *
 * Transports that bring their own security and streams (QUIC, WebRTC) are
 * the second kind, not built yet: they would skip the upgrade and hand
 * conn.c an already secured, multiplexed session (the peer's identity and a
 * stream-open/accept/read/write/reset interface in place of yamux), so the
 * stream layer (stream.c) would talk to a muxer interface rather than to
 * flare_yamux directly.
 */
#ifndef FLARE_TRANSPORT_H
#define FLARE_TRANSPORT_H

#include "host/host_int.h"

/* The remote IP is not the peer's own (it is a relay's): no per-IP limits. */
#define FLARE__TR_SHARED_IP 1u

struct flare__transport_ops {
    const char *name;
    unsigned flags; /* FLARE__TR_* */
    /* Queues bytes toward the peer: 0, 1 if the transport's queue is now
     * above its high-water mark (the streams hold their data until
     * flare__conn_drained), or an error (the connection fails). */
    int (*write)(flare_conn *c, const uint8_t *data, size_t len);
    /* Optional: the end of our direction after the queued bytes (graceful). */
    void (*shutdown)(flare_conn *c);
    /* Releases the transport (tr was c->tr; c no longer refers to it):
     * graceful (queued bytes still go out) or abort. */
    void (*close)(flare_conn *c, void *tr, int abort);
    /* Optional: bytes queued toward the peer (the write-queue marks of
     * flare_host_settings apply to them; reading pauses above twice the high
     * mark). A transport without it reports fullness from write. */
    size_t (*pending)(const flare_conn *c);
    /* Optional with pending: stop (1) or resume (0) delivering input. */
    void (*read_pause)(flare_conn *c, int pause);
};

/* ---- transport -> connection (conn.c) ---------------------------------------------- */

/* c runs over ops/tr from now on. */
void flare__conn_attach(flare_conn *c, const flare__transport_ops *ops, void *tr);
/* flare__conn_input (host_int.h): bytes from the peer; len 0 is its EOF. */
/* The queue fell to the low-water mark: resume reading, move held data on. */
void flare__conn_drained(flare_conn *c);
/* The transport ended by itself and released its state: c fails with err. */
void flare__conn_transport_lost(flare_conn *c, int err);

#endif
