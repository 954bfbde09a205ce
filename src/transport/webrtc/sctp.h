/*
 * SCTP over DTLS and WebRTC data channels on it (RFC 8831, RFC 8832), over
 * usrsctp in its userspace-transport mode (AF_CONN). No I/O: SCTP packets
 * from the peer (what DTLS decrypted) go in through flare__sctp_input,
 * packets for DTLS come out of flare__sctp_pop_out; channel events and
 * messages come out of flare__sctp_poll.
 *
 * usrsctp is one stack per process: it is started with
 * usrsctp_init_nothreads (no threads of its own) and its timers advance
 * only through flare__sctp_handle_expiry, by the time the callers' clock
 * moved since the last call (all associations share it; a clock that goes
 * back counts as no time). Two limits of usrsctp remain: it starts an
 * "iterator" thread that only waits (AF_CONN associations never give it
 * work), and it stamps sent chunks and RTT samples with the real clock, so
 * a timeout retransmission resends only chunks older than the RTO in real
 * time: on the simulator's virtual clock lost packets are recovered by fast
 * retransmit (SACKs of later packets) but a lost tail waits for real time.
 * Like GnuTLS it draws its randomness (tags, initial TSNs) internally and
 * allocates with libc.
 *
 * Both sides connect from port 5000 to port 5000 (SCTP's simultaneous open,
 * as browsers do). Channel ids: the DTLS client opens even ids, the server
 * odd ones; id 0 is left for a negotiated channel (webrtc-direct's Noise
 * handshake) unless use_ch0. Bounds: channels per association (also the SCTP stream
 * count offered), message size, bytes of received messages held until
 * polled (beyond them SCTP's receive window pushes back on the peer), bytes
 * in SCTP's send buffer.
 */
#ifndef FLARE_WEBRTC_SCTP_H
#define FLARE_WEBRTC_SCTP_H

#include "flare/common.h"

#define FLARE__SCTP_PORT              5000
#define FLARE__SCTP_MAX_CHANNELS      256
#define FLARE__SCTP_MAX_MESSAGE       16384
#define FLARE__SCTP_MAX_RECV_BUFFERED (256 * 1024)
#define FLARE__SCTP_SEND_BUFFER       (256 * 1024)

#define FLARE__SCTP_PPID_DCEP         50
#define FLARE__SCTP_PPID_STRING       51
#define FLARE__SCTP_PPID_BINARY       53
#define FLARE__SCTP_PPID_STRING_EMPTY 56
#define FLARE__SCTP_PPID_BINARY_EMPTY 57

typedef enum {
    FLARE__SCTP_EV_UP,             /* the association is established */
    FLARE__SCTP_EV_CHANNEL_OPEN,   /* the peer opened channel id (DCEP); its label in buf */
    FLARE__SCTP_EV_MESSAGE,        /* a message on id (data, len) */
    FLARE__SCTP_EV_CHANNEL_CLOSED, /* channel id is gone both ways */
    FLARE__SCTP_EV_WRITABLE,       /* room in the send buffer again */
    FLARE__SCTP_EV_DOWN,           /* the association ended (error set) */
} flare__sctp_event_type;

typedef struct flare__sctp_event {
    flare__sctp_event_type type;
    uint16_t id;
    int error;
    size_t len; /* MESSAGE, CHANNEL_OPEN: bytes copied into the caller's buffer */
} flare__sctp_event;

typedef struct flare__sctp_cfg {
    int is_dtls_client;
    uint16_t max_channels; /* 0: FLARE__SCTP_MAX_CHANNELS */
    size_t max_message;    /* 0: FLARE__SCTP_MAX_MESSAGE */
    size_t mtu;            /* SCTP packet size (DTLS's data MTU); 0: 1150 */
    int use_ch0;           /* the DTLS client may open channel 0 (not negotiated) */
    const flare_mem *mem;
} flare__sctp_cfg;

typedef struct flare__sctp flare__sctp;

/* A new association; it starts connecting at once (packets to pop). */
int flare__sctp_new(flare__sctp **s, const flare__sctp_cfg *cfg, flare_tstamp now);
/* Aborts the association if it is still up and frees it. */
void flare__sctp_del(flare__sctp *s);
/* One SCTP packet from the peer. */
void flare__sctp_input(flare__sctp *s, const uint8_t *pkt, size_t len, flare_tstamp now);
/* The next packet for DTLS into dst: its length or FLARE_ERR_AGAIN. */
long flare__sctp_pop_out(flare__sctp *s, uint8_t *dst, size_t cap);
/* The next event; a MESSAGE's bytes go to buf (cap at least max_message).
 * 1 with *ev filled, 0: nothing. */
int flare__sctp_poll(flare__sctp *s, flare__sctp_event *ev, uint8_t *buf, size_t cap);
/* Takes a pending WRITABLE ahead of the queued events (poll reports it
 * first too): 1 if there was one. For a reader that stops polling while it
 * holds too much received data but must still learn of room to write. */
int flare__sctp_take_writable(flare__sctp *s);
flare_tstamp flare__sctp_expiry(const flare__sctp *s);
void flare__sctp_handle_expiry(flare__sctp *s, flare_tstamp now);
int flare__sctp_is_up(const flare__sctp *s);
/* Ends the association on our side: abort sends an ABORT at once; else a
 * SHUTDOWN once SCTP has the data acknowledged. The packets are popped as
 * usual; DOWN follows. */
void flare__sctp_shutdown(flare__sctp *s, int abort);

/* Opens a channel with DCEP (reliable, ordered): 0 with *id,
 * FLARE_ERR_STATE (not up), FLARE_ERR_LIMIT (no free id). */
int flare__sctp_open_channel(flare__sctp *s, uint16_t *id, const char *label, const char *protocol);
/* Declares a negotiated channel (no DCEP) on id, e.g. 0. */
int flare__sctp_open_negotiated(flare__sctp *s, uint16_t id);
/* One binary message on channel id: 0, FLARE_ERR_AGAIN (send buffer full:
 * a WRITABLE event follows), FLARE_ERR_TOO_LARGE, FLARE_ERR_NOT_FOUND,
 * FLARE_ERR_STATE. */
int flare__sctp_send(flare__sctp *s, uint16_t id, const uint8_t *data, size_t len);
/* Closes channel id (resets our outgoing stream; the peer resets its own
 * and CHANNEL_CLOSED follows). */
int flare__sctp_close_channel(flare__sctp *s, uint16_t id);
size_t flare__sctp_num_channels(const flare__sctp *s);

#endif
