/* yamux internals: session and stream structures, the stream table and the
 * event queue (stream.c), shared with yamux.c. */
#ifndef FLARE_MUXER_YAMUX_INT_H
#define FLARE_MUXER_YAMUX_INT_H

#include "flare/yamux.h"

typedef struct flare__ystream {
    uint32_t id;
    unsigned inbound : 1;
    unsigned acked : 1;         /* outbound: peer ACKed; inbound: we sent ACK */
    unsigned local_fin : 1;     /* we sent FIN */
    unsigned remote_fin : 1;    /* the peer sent FIN */
    unsigned reset : 1;         /* RST sent or received: everything dropped */
    unsigned closing : 1;       /* CLOSED event queued: no more events */
    unsigned ev_readable : 1;   /* a READABLE event is pending */
    unsigned ev_writable : 1;   /* a WRITABLE event is pending */
    unsigned want_writable : 1; /* a write came up short */
    unsigned ack_owed : 1;      /* inbound, read (lazy_ack): the next frame carries ACK */
    uint32_t send_window;       /* bytes we may still send */
    uint32_t recv_avail;        /* bytes the peer may still send */
    uint32_t recv_target;       /* current receive window (auto-tuned) */
    flare_tstamp epoch;         /* last window update, for auto-tuning */
    uint8_t *buf;               /* received, unread: buf[off..off+len) */
    size_t off, len, cap;
    uint32_t batch; /* bytes received since buf was last empty */
    void *user;
} flare__ystream;

/* Queued events are 12 bytes: a PING_RTT event's time is the session's rtt
 * (one ping is out at a time), GOAWAY's code and the others' error share val. */
typedef struct flare__yevent {
    uint32_t stream_id;
    int32_t val; /* GOAWAY: the code; otherwise the error */
    uint8_t type;
} flare__yevent;

/* Events a session queues in itself before it allocates a larger queue. */
#define FLARE__YEV_INLINE 4

/* Streams a session holds in itself before it allocates a table: a
 * connection mostly carries 0-2 at once (identify both ways, a request),
 * and a table made and freed for each was an allocation per stream. */
#define FLARE__YST_INLINE 2

/* The settings a session reads after flare_yamux_new, without the public
 * struct's size field and wide types: a DHT node holds a session per
 * connection. */
typedef struct flare__ysettings {
    flare_tstamp keepalive_interval;
    flare_tstamp ping_timeout;
    uint32_t initial_window;
    uint32_t max_streams;
    uint32_t max_unacked_inbound;
    uint32_t recv_cap; /* min(max_window, max_recv_buffer) */
} flare__ysettings;

/* Ordered to leave no holes: a DHT node holds a session per connection. */
struct flare_yamux {
    flare__ysettings s;
    const flare_mem *mem;
    flare_tstamp now; /* latest time seen; read/write have no now argument */
    /* stream table, pointers sorted by id: in st_in, or in streams
     * (cap_streams entries) once more were open at once; streams goes
     * back when the session holds none */
    flare__ystream **streams;
    flare__ystream *st_in[FLARE__YST_INLINE];
    uint32_t nstreams, cap_streams; /* at most s.max_streams (a uint32_t) */
    uint64_t next_id;               /* 64-bit so running out is detectable */
    uint32_t unacked_in, unacked_out;
    uint32_t acks_owed;
    int dead; /* fatal error code, 0 while alive */
    /* Reads leave an inbound stream's ACK to its first frame (a data
     * frame, the FIN) or to flare__yamux_flush_acks at the end of the
     * host's turn, instead of a window update of its own. */
    uint8_t lazy_ack;
    uint8_t local_goaway, remote_goaway;
    uint8_t is_client;
    /* frame parser */
    uint8_t hdr_len;
    uint8_t hdr[FLARE_YAMUX_HEADER_LEN];
    uint16_t payload_flags;
    uint32_t payload_left; /* Data payload bytes still to come */
    uint32_t payload_sid;  /* its stream, 0: discard */
    /* event queue: a ring in ev_in, or in ev (ev_cap entries) once more
     * were pending at once; ev goes back when the queue drains */
    uint32_t ev_head, ev_len, ev_cap;
    flare__yevent ev_in[FLARE__YEV_INLINE];
    flare__yevent *ev;
    /* pings */
    flare_rng rng; /* ping opaque values */
    unsigned ping_out : 1;
    unsigned data_since_ping : 1; /* stream data sent after the last ping */
    uint32_t ping_opaque;         /* random value of the ping in flight */
    flare_tstamp ping_sent;
    flare_tstamp next_keepalive; /* keepalive_interval after the last input */
    flare_tstamp unproven_since; /* first data sent the peer has not shown it
                                  * read (NEVER: none) */
    flare_tstamp rtt;
};

/* Sends the ACKs reads left owed (lazy_ack), as window updates. */
int flare__yamux_flush_acks(flare_yamux *y, flare_buf *out);

/* Stream table. */
/* The nstreams streams, sorted by id. */
static inline flare__ystream **flare__ystream_table(flare_yamux *y)
{
    return y->streams ? y->streams : y->st_in;
}
flare__ystream *flare__ystream_find(const flare_yamux *y, uint32_t id);
/* Allocates and inserts a stream with the protocol default windows. */
int flare__ystream_add(flare_yamux *y, uint32_t id, int inbound, flare__ystream **out);
/* Removes and frees the stream with this id, if any. */
void flare__ystream_remove(flare_yamux *y, uint32_t id);
void flare__ystream_free_all(flare_yamux *y);

/* Receive buffer. */
/* Appends n bytes; frame_left (>= n) is what remains of the Data frame, so
 * that a frame needs one allocation. */
int flare__ystream_buf_append(flare_yamux *y, flare__ystream *st, const uint8_t *p, size_t n,
                              size_t frame_left);
/* Takes up to cap bytes. A drained buffer is freed unless the stream is
 * streaming (the last batch was large) and the buffer is moderate. */
size_t flare__ystream_buf_take(flare_yamux *y, flare__ystream *st, uint8_t *dst, size_t cap);
void flare__ystream_buf_drop(flare_yamux *y, flare__ystream *st);

/* Event queue. */
int flare__yevent_push(flare_yamux *y, const flare__yevent *e);
int flare__yevent_pop(flare_yamux *y, flare__yevent *e);
void flare__yevent_free(flare_yamux *y);

#endif
