/*
 * flare/yamux.h - the yamux stream muxer (/yamux/1.0.0), a sans-I/O core.
 *
 * Wire format: hashicorp/yamux spec.md plus the libp2p notes (libp2p/specs
 * yamux/README.md). The session is modelled on nghttp2's mem_recv/mem_send:
 * the caller feeds received bytes to flare_yamux_recv() and every function
 * that has something to send appends it to a caller-owned flare_buf. Time is
 * an argument; the session never reads a clock.
 *
 * Events are polled (flare_yamux_poll_event). Each stream ends with exactly
 * one FLARE_YAMUX_EV_STREAM_CLOSED event, after which its id is invalid: the
 * host frees whatever it attached with flare_yamux_set_stream_user() there.
 * The CLOSED event comes when the stream was reset (either side) or when both
 * sides sent FIN and every received byte has been read.
 *
 * Errors: any negative return of flare_yamux_recv() or
 * flare_yamux_handle_expiry() is fatal to the session (a GoAway has been
 * appended when the protocol asks for one; every live stream gets RESET
 * (error = the session's error) and CLOSED events, then SESSION_ERROR comes
 * last); afterwards every call but poll_event/del returns FLARE_ERR_STATE.
 * flare_yamux_del() frees streams without events.
 * Stream calls return FLARE_ERR_NOT_FOUND for an unknown id.
 *
 * Flow control: each stream starts with the protocol's 256 KiB window in
 * each direction. The receive window grows (auto-tuning, as go-yamux does)
 * when the application drains it in less than 4 RTTs, up to
 * min(max_window, max_recv_buffer); RTT comes from pings (keepalive or
 * flare_yamux_ping; with keepalive on, the first stream that frees half its
 * window sends one if no RTT is known yet). Bytes the application has not
 * read keep the window closed, so buffered bytes per stream never exceed
 * that cap.
 *
 * Keepalive (as go-yamux): a ping goes out only once keepalive_interval has
 * passed with nothing received; every received byte defers it, so busy
 * sessions do not ping and an idle one pings from about one side per
 * interval (the other receives that ping). There is no ping at start.
 * Received traffic shows only that the peer writes, not that it reads, so
 * once we send stream data, the deferral stops 4 intervals later unless the
 * peer echoes a ping sent after that data: a peer that writes blindly but
 * never reads what we send is still dropped, within 4 intervals plus
 * ping_timeout (a peer that goes silent: within 1 interval plus
 * ping_timeout). A session where we send no data holds nothing for such a
 * peer and follows the go-yamux rule alone.
 *
 * ACK backlog (libp2p): inbound streams count as unacknowledged until the
 * application accepts them (flare_yamux_accept_stream, or any read, write,
 * close or reset on them); SYNs beyond max_unacked_inbound are refused with
 * RST. Likewise at most FLARE_YAMUX_ACK_BACKLOG of our own streams may wait
 * for the peer's ACK: open_stream returns FLARE_ERR_LIMIT until one is acked.
 */
#ifndef FLARE_YAMUX_H
#define FLARE_YAMUX_H

#include "flare/buf.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FLARE_YAMUX_PROTOCOL_ID    "/yamux/1.0.0"
#define FLARE_YAMUX_HEADER_LEN     12
#define FLARE_YAMUX_DEFAULT_WINDOW (256u * 1024u) /* fixed by the protocol */
#define FLARE_YAMUX_ACK_BACKLOG    256u           /* our unacked outbound streams */
/* Payload per Data frame we send: a frame with its header fills one Noise
 * message (65535 bytes with the tag). */
#define FLARE_YAMUX_MAX_FRAME (65535u - 16u - 12u)

/* Frame types and flags (spec.md). */
enum {
    FLARE_YAMUX_TYPE_DATA = 0,
    FLARE_YAMUX_TYPE_WINDOW_UPDATE = 1,
    FLARE_YAMUX_TYPE_PING = 2,
    FLARE_YAMUX_TYPE_GO_AWAY = 3,
};
enum {
    FLARE_YAMUX_FLAG_SYN = 1,
    FLARE_YAMUX_FLAG_ACK = 2,
    FLARE_YAMUX_FLAG_FIN = 4,
    FLARE_YAMUX_FLAG_RST = 8,
};
/* GoAway codes. */
enum {
    FLARE_YAMUX_GOAWAY_NORMAL = 0,
    FLARE_YAMUX_GOAWAY_PROTO_ERROR = 1,
    FLARE_YAMUX_GOAWAY_INTERNAL_ERROR = 2,
};

/* A session's settings. Start from flare_yamux_settings_default(), which
 * sets struct_size and every field. Zero is never "the default": 0 unacked
 * inbound streams resets every stream the peer opens; max_streams must not
 * be 0. */
typedef struct flare_yamux_settings {
    size_t struct_size;              /* set by flare_yamux_settings_default */
    int is_client;                   /* client opens odd ids, server even */
    uint32_t initial_window;         /* >= 256 KiB; the excess is granted on SYN/ACK */
    uint32_t max_window;             /* auto-tuning cap (16 MiB) */
    uint32_t max_streams;            /* streams in the table at once (512) */
    uint32_t max_unacked_inbound;    /* 256: RST inbound SYNs beyond this */
    size_t max_recv_buffer;          /* per stream, received but unread (16 MiB) */
    flare_tstamp keepalive_interval; /* 0: off; else ping after this long with no input */
    flare_tstamp ping_timeout;       /* 0: none; an unanswered ping kills the session */
} flare_yamux_settings;

typedef struct flare_yamux flare_yamux;

/* Fills s with defaults: client, 256 KiB initial, 16 MiB max window and
 * buffer, 512 streams, 256 unacked inbound, keepalive 30 s, ping timeout
 * 10 s; and sets s->struct_size. */
void flare_yamux_settings_default(flare_yamux_settings *s);

/* Creates a session. rng draws the opaque value of each ping (random, so a
 * peer cannot answer pings it never read); now is the creation time (no
 * ping then: the first keepalive is due keepalive_interval later). Returns 0, FLARE_ERR_INVALID_ARG
 * (s->struct_size is not sizeof(flare_yamux_settings), inconsistent
 * settings, max_streams 0, no rng) or FLARE_ERR_NOMEM. */
int flare_yamux_new(flare_yamux **y, const flare_yamux_settings *s, const flare_mem *mem,
                    flare_rng rng, flare_tstamp now);
/* Frees the session and every stream in it (no frames are sent). */
void flare_yamux_del(flare_yamux *y);

/* Consumes len bytes from the peer (any split: partial frames are kept).
 * Returns 0 or a fatal error: FLARE_ERR_UNSUPPORTED (version != 0),
 * FLARE_ERR_UNKNOWN_CODE (frame type), FLARE_ERR_TOO_LARGE (a Data length no
 * window could allow), FLARE_ERR_FLOW_CONTROL (data beyond the window or a
 * window update overflowing 2^32-1), FLARE_ERR_PROTO (bad SYN id, duplicate
 * SYN, data on stream 0 or after the peer's FIN, ping/goaway off stream 0),
 * FLARE_ERR_NOMEM; FLARE_ERR_STATE if the session is already dead. */
int flare_yamux_recv(flare_yamux *y, const uint8_t *in, size_t len, flare_tstamp now,
                     flare_buf *out);

/* Opens an outbound stream and appends its SYN (a window update). Returns 0
 * and sets *id; FLARE_ERR_CLOSED after a GoAway either way; FLARE_ERR_LIMIT
 * when max_streams are open, FLARE_YAMUX_ACK_BACKLOG streams await their ACK,
 * or the id space is used up. */
int flare_yamux_open_stream(flare_yamux *y, uint32_t *id, flare_buf *out);

/* Accepts an inbound stream: sends its ACK (with any extra window). Implied
 * by the first read, write, close or reset. Returns 0, or NOT_FOUND. */
int flare_yamux_accept_stream(flare_yamux *y, uint32_t id, flare_buf *out);

/* Sends up to the stream's send window as Data frames. Returns the bytes
 * accepted (0 when the window is closed: wait for WRITABLE), or
 * FLARE_ERR_CLOSED (we sent FIN), FLARE_ERR_RESET, FLARE_ERR_NOT_FOUND. */
long flare_yamux_write(flare_yamux *y, uint32_t id, const uint8_t *data, size_t len,
                       flare_buf *out);

/* Copies up to cap received bytes; grants window back to the peer as the
 * application consumes. Returns the bytes copied, 0 at end of stream (the
 * peer sent FIN and everything was read), FLARE_ERR_AGAIN (nothing yet),
 * FLARE_ERR_RESET or FLARE_ERR_NOT_FOUND. */
long flare_yamux_read(flare_yamux *y, uint32_t id, uint8_t *dst, size_t cap, flare_buf *out);

/* Like flare_yamux_write for one Data frame, without copying the payload:
 * takes up to len bytes (at most the send window and FLARE_YAMUX_MAX_FRAME)
 * and writes the frame's header to hdr. The caller sends whatever this
 * appended to out first, then hdr, then that many bytes of its data.
 * Returns the bytes taken or the errors of flare_yamux_write. */
long flare_yamux_write_frame(flare_yamux *y, uint32_t id, size_t len,
                             uint8_t hdr[FLARE_YAMUX_HEADER_LEN], flare_buf *out);

/* Received bytes waiting to be read (0 for an unknown id). */
/* Returns the bytes buffered for reading on stream id (0 if unknown). */
size_t flare_yamux_readable(const flare_yamux *y, uint32_t id);
/* Bytes flare_yamux_write() would accept now (0 for an unknown id). */
/* Returns the bytes stream id may send now (0 if unknown). */
size_t flare_yamux_writable(const flare_yamux *y, uint32_t id);

/* Half-closes our side (FIN). Idempotent. Returns 0, FLARE_ERR_RESET or
 * FLARE_ERR_NOT_FOUND. */
int flare_yamux_close_stream(flare_yamux *y, uint32_t id, flare_buf *out);
/* Resets the stream (RST) and drops its buffers; a CLOSED event follows.
 * Returns 0 (also if already reset) or FLARE_ERR_NOT_FOUND. */
int flare_yamux_reset_stream(flare_yamux *y, uint32_t id, flare_buf *out);

/* Sends GoAway(code): the peer may open no more streams; neither may we.
 * Existing streams carry on. Sent once; returns 0 or FLARE_ERR_STATE. */
int flare_yamux_goaway(flare_yamux *y, uint32_t code, flare_buf *out);

/* Sends a ping with a random opaque value to measure RTT (a PING_RTT event
 * follows; only an ACK echoing that value counts). At most one ping is
 * outstanding; if one is, nothing is sent. Returns 0 or FLARE_ERR_STATE. */
int flare_yamux_ping(flare_yamux *y, flare_tstamp now, flare_buf *out);

/* Attaches / reads back an opaque pointer reported in the stream's events. */
void flare_yamux_set_stream_user(flare_yamux *y, uint32_t id, void *user);
/* Returns the pointer set for stream id, or NULL. */
void *flare_yamux_get_stream_user(const flare_yamux *y, uint32_t id);

/* The next deadline (keepalive ping or ping timeout), FLARE_TSTAMP_NEVER if
 * none; call flare_yamux_handle_expiry() once now reaches it. */
/* Returns when flare_yamux_handle_expiry is next due (FLARE_TSTAMP_NEVER if never). */
flare_tstamp flare_yamux_expiry(const flare_yamux *y);
/* Sends a due keepalive ping (see Keepalive above). Returns 0, or FLARE_ERR_TIMEOUT (fatal: a ping
 * went unanswered for ping_timeout), FLARE_ERR_STATE. */
int flare_yamux_handle_expiry(flare_yamux *y, flare_tstamp now, flare_buf *out);

typedef enum {
    FLARE_YAMUX_EV_STREAM_OPENED,        /* inbound SYN accepted */
    FLARE_YAMUX_EV_STREAM_READABLE,      /* new bytes to read */
    FLARE_YAMUX_EV_STREAM_WRITABLE,      /* the send window opened after a short write */
    FLARE_YAMUX_EV_STREAM_REMOTE_CLOSED, /* the peer sent FIN */
    FLARE_YAMUX_EV_STREAM_RESET,         /* the peer reset the stream */
    FLARE_YAMUX_EV_STREAM_CLOSED,        /* both sides done: freed after this event */
    FLARE_YAMUX_EV_PING_RTT,             /* rtt set */
    FLARE_YAMUX_EV_GOAWAY,               /* the peer sent GoAway; code set */
    FLARE_YAMUX_EV_SESSION_ERROR,        /* the session is dead; error set */
} flare_yamux_event_type;

typedef struct flare_yamux_event {
    flare_yamux_event_type type;
    uint32_t stream_id; /* stream events */
    void *stream_user;  /* stream events */
    flare_tstamp rtt;   /* PING_RTT */
    uint32_t code;      /* GOAWAY */
    int error;          /* SESSION_ERROR, STREAM_RESET (FLARE_ERR_RESET) */
} flare_yamux_event;

/* Pops the oldest event. Returns 1 (event in *ev) or 0 (none). Popping a
 * STREAM_CLOSED event frees that stream. At most one READABLE and one
 * WRITABLE event per stream are pending at a time. */
int flare_yamux_poll_event(flare_yamux *y, flare_yamux_event *ev);

/* Streams in the table (including those whose CLOSED event is pending). */
/* Returns the number of open streams. */
size_t flare_yamux_num_streams(const flare_yamux *y);
/* The last measured RTT, 0 if none. */
/* Returns the last measured ping RTT (0 if none yet). */
flare_tstamp flare_yamux_rtt(const flare_yamux *y);

#ifdef __cplusplus
}
#endif
#endif
