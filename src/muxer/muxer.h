/*
 * Stream multiplexers as the host core (src/host/conn.c, stream.c) sees
 * them: a table of operations over a session state. Two sources:
 *
 *  - byte-stream transports: the upgrade negotiates a flare__muxer (yamux,
 *    src/muxer/builtin.c lists them) and creates its session with new();
 *    bytes from the peer go in through recv, bytes to send come out in
 *    `out` (the host encrypts and writes them);
 *  - transports with their own streams (QUIC, WebRTC): the transport gives
 *    the connection its session and ops (flare__conn_session_ready,
 *    src/transport/transport.h); recv is NULL, `out` stays empty (the
 *    transport sends by itself, e.g. from flush), and the transport calls
 *    flare__conn_session_input when its session has news (events to poll).
 *
 * Sans-I/O like the cores: time comes in as `now`. Stream ids are the
 * muxer's own (32 bits). Every operation is called with the connection
 * busy: none of them may call back into the host.
 */
#ifndef FLARE_MUXER_H
#define FLARE_MUXER_H

#include "flare/buf.h"
#include "flare/common.h"

typedef enum {
    FLARE__MUX_EV_STREAM_OPENED,        /* the peer opened stream_id */
    FLARE__MUX_EV_STREAM_READABLE,      /* bytes to read on stream_id */
    FLARE__MUX_EV_STREAM_WRITABLE,      /* room again after a short write */
    FLARE__MUX_EV_STREAM_REMOTE_CLOSED, /* the peer ended its direction */
    FLARE__MUX_EV_STREAM_RESET,         /* the peer reset the stream */
    FLARE__MUX_EV_STREAM_CLOSED,        /* both directions done: the id is gone after */
    FLARE__MUX_EV_GOAWAY,               /* the peer is closing the session */
    FLARE__MUX_EV_SESSION_ERROR,        /* the session is dead; error set */
    FLARE__MUX_EV_OTHER,                /* nothing for the host (e.g. an RTT sample) */
} flare__mux_event_type;

typedef struct flare__mux_event {
    flare__mux_event_type type;
    uint32_t stream_id;
    int error;
} flare__mux_event;

/* Room for a frame header of write_frame. */
#define FLARE__MUX_HDR_MAX 16

typedef struct flare__muxer_ops {
    /* Byte-stream muxers: bytes from the peer (replies to out). 0 or a
     * fatal error. NULL for a transport's own session. */
    int (*recv)(void *m, const uint8_t *in, size_t len, flare_tstamp now, flare_buf *out);
    /* Opens an outbound stream: 0 with *id, FLARE_ERR_CLOSED (going away),
     * FLARE_ERR_LIMIT (too many streams). */
    int (*open_stream)(void *m, uint32_t *id, flare_buf *out);
    /* Bytes the stream accepted (0: no room, a WRITABLE event follows), or
     * FLARE_ERR_CLOSED / FLARE_ERR_RESET / FLARE_ERR_NOT_FOUND. */
    long (*write)(void *m, uint32_t id, const uint8_t *data, size_t len, flare_buf *out);
    /* Optional, byte-stream muxers: write without copying the data. Takes
     * up to len bytes for one data frame: its header goes to hdr (*hdr_len
     * bytes, at most FLARE__MUX_HDR_MAX), the caller sends header then data
     * right after anything the call appended to out. Returns the bytes the
     * frame carries, 0 or an error as write. */
    long (*write_frame)(void *m, uint32_t id, size_t len, uint8_t *hdr, size_t *hdr_len,
                        flare_buf *out);
    /* Bytes copied (0: end of stream), FLARE_ERR_AGAIN (nothing yet), or
     * FLARE_ERR_RESET / FLARE_ERR_NOT_FOUND. Reading grants the peer room. */
    long (*read)(void *m, uint32_t id, uint8_t *dst, size_t cap, flare_buf *out);
    /* Bytes waiting to be read on id (0 if unknown). */
    size_t (*readable)(const void *m, uint32_t id);
    /* Half-close (our FIN); idempotent. */
    int (*close_stream)(void *m, uint32_t id, flare_buf *out);
    /* Abrupt end of both directions; a CLOSED event follows. */
    int (*reset_stream)(void *m, uint32_t id, flare_buf *out);
    /* No more streams either way (error: 0 normal, 1 protocol error). */
    int (*goaway)(void *m, int error, flare_buf *out);
    /* 1 with *ev filled, 0: no event. */
    int (*poll_event)(void *m, flare__mux_event *ev);
    /* The next timer (keepalive, ...), FLARE_TSTAMP_NEVER if none; then
     * handle_expiry: 0 or a fatal error (FLARE_ERR_TIMEOUT). */
    flare_tstamp (*expiry)(const void *m);
    int (*handle_expiry)(void *m, flare_tstamp now, flare_buf *out);
    size_t (*num_streams)(const void *m);
    /* Optional: the host finished a batch of calls (a transport's own
     * session sends what they produced). */
    void (*flush)(void *m);
    /* Optional, byte-stream muxers: the host writes what the turn produced;
     * frames left for later within the turn (ACKs) go to out now. 0 or a
     * fatal error. */
    int (*end_turn)(void *m, flare_buf *out);
    void (*free)(void *m);
} flare__muxer_ops;

typedef struct flare__muxer_cfg {
    int is_client; /* the connection's initiator */
    uint32_t max_streams;
    flare_tstamp keepalive_interval; /* 0: off */
    const flare_mem *mem;
    flare_rng rng;
    flare_tstamp now;
} flare__muxer_cfg;

/* A muxer the upgrade of a byte-stream connection can negotiate. */
typedef struct flare__muxer {
    const char *id; /* multistream protocol ID, e.g. "/yamux/1.0.0" */
    const flare__muxer_ops *ops;
    int (*new_session)(void **m, const flare__muxer_cfg *cfg);
} flare__muxer;

/* The muxers of byte-stream connections, in preference order (builtin.c). */
size_t flare__muxers_builtin(const flare__muxer *const **list);

#endif
