/*
 * flare/hardpunch.h - hole punching through NATs that map per destination
 * ("symmetric", address-and-port-dependent mapping), a flare extension of
 * DCUtR that other implementations never see: its own protocol ID, used
 * only when the peer announced it in identify.
 *
 * Over TCP it predicts ports: a NAT that allocates outside ports in
 * sequence gave our connections to two observers ports a step apart, so
 * the next connections will get the highest observed port plus one step,
 * two steps, ... The hard side (our mapping is endpoint-dependent) dials
 * the easy side's address from fresh sockets; the easy side dials the
 * predicted ports of the hard side from its listen port, which opens its
 * own filter for them; a TCP simultaneous open joins the pair whose ports
 * match.
 *
 * Over UDP (QUIC) it probes, birthday-style: the hard side opens many
 * sockets and sends one datagram from each to the easy side's mapped QUIC
 * address (each gets its own mapping, at a port the easy side cannot
 * know); the easy side sends datagrams from its QUIC listen socket to
 * random ports of the hard side's IP, a bounded number at a bounded rate.
 * With 256 mappings among ~64,000 ports a probe hits with p ~ 1/250, so
 * 2048 probes find one with ~99.97 % probability (in ~2.5 s on average at
 * 100 per second). The hard side's socket that received a probe then
 * dials QUIC to the easy side from that very socket.
 *
 * The exchange runs on a stream of the relayed connection, framed as
 * uvarint(len) || HardPunch (protobuf):
 *   1 type     (varint: 1 INFO, 2 SYNC)
 *   2 nat      (varint: 0 unknown, 1 endpoint-independent, 2 dependent)
 *   3 tcp_addr (bytes: multiaddr /ip4|ip6/../tcp/PORT, the predicted base)
 *   4 tcp_step (varint: 0 = ports are not predictable)
 *   5 udp_addr (bytes: multiaddr /ip4|ip6/../udp/PORT/quic-v1)
 *   6 udp_nat  (varint, as nat, for the UDP mapping)
 * B (the side the relayed connection came in on) sends INFO, A answers
 * INFO, B sends SYNC and starts after half the measured round trip, A
 * when SYNC arrives (as DCUtR times its dials).
 *
 * The core is sans-I/O: bytes, time and settings in; frames and a plan out.
 */
#ifndef FLARE_HARDPUNCH_H
#define FLARE_HARDPUNCH_H

#include "flare/buf.h"
#include "flare/common.h"
#include "flare/ipaddr.h"
#include "flare/multiaddr.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FLARE_HARDPUNCH_PROTOCOL_ID "/flare/holepunch-hard/1.0.0"
#define FLARE_HARDPUNCH_MAX_MSG     512   /* a larger frame ends the exchange */
#define FLARE_HARDPUNCH_MAX_STEP    64    /* a larger step is not a sequence */
#define FLARE_HARDPUNCH_MAX_SOCKETS 64    /* bound on the TCP counts below */
#define FLARE_HARDPUNCH_MAX_UDP     1024  /* bound on udp_sockets */
#define FLARE_HARDPUNCH_MAX_PROBES  16384 /* bound on udp_probes */

/* Bounds on what one hard punch may do, so that it stays polite. Start from
 * flare_hardpunch_settings_default(), which sets struct_size and every
 * field; zero is never "the default". */
typedef struct flare_hardpunch_settings {
    size_t struct_size;        /* set by flare_hardpunch_settings_default */
    unsigned tcp_sockets;      /* hard side: fresh sockets dialing the peer; default 4 */
    unsigned tcp_window;       /* easy side: predicted ports dialed; default 6 */
    unsigned udp_sockets;      /* hard side: UDP sockets, one datagram each; default 256 */
    unsigned udp_probes;       /* easy side: datagrams to random ports; default 2048 */
    flare_tstamp udp_interval; /* easy side: between two probes; default 10 ms (100/s) */
    flare_tstamp timeout;      /* the whole exchange and punch; default 30 s */
    flare_tstamp exchange;     /* INFO/SYNC round on the relay; default 5 s */
} flare_hardpunch_settings;

/* Fills s with the defaults documented on each field. */
void flare_hardpunch_settings_default(flare_hardpunch_settings *s);
/* Returns 0, or FLARE_ERR_INVALID_ARG (struct_size, a count of 0 or above
 * its FLARE_HARDPUNCH_MAX_*, a zero time). */
int flare_hardpunch_settings_check(const flare_hardpunch_settings *s);

typedef enum flare_hardpunch_nat {
    FLARE_HARDPUNCH_NAT_UNKNOWN = 0,
    FLARE_HARDPUNCH_NAT_EASY = 1, /* endpoint-independent mapping */
    FLARE_HARDPUNCH_NAT_HARD = 2, /* endpoint-dependent mapping */
} flare_hardpunch_nat;

typedef enum flare_hardpunch_type {
    FLARE_HARDPUNCH_INFO = 1,
    FLARE_HARDPUNCH_SYNC = 2,
} flare_hardpunch_type;

/* What one side tells the other. */
typedef struct flare_hardpunch_info {
    flare_hardpunch_nat nat;
    int has_tcp;
    flare_ipaddr tcp;  /* easy: the mapped listen address; hard: the highest observed port */
    uint32_t tcp_step; /* hard side's port step; 0 = not predictable */
    flare_hardpunch_nat udp_nat;
    int has_udp;
    flare_ipaddr udp; /* easy: the mapped QUIC listen address; hard: an observed one (its IP) */
} flare_hardpunch_info;

typedef struct flare_hardpunch_msg {
    flare_hardpunch_type type;
    flare_hardpunch_info info;
} flare_hardpunch_msg;

/* Codec. Encode appends one framed message. Decode takes one unframed
 * message: 0, FLARE_ERR_TOO_LARGE, FLARE_ERR_MALFORMED (no type, a wrong
 * wire type, an address that is not ip/tcp), FLARE_ERR_UNKNOWN_CODE (type
 * or nat). A step above FLARE_HARDPUNCH_MAX_STEP is read as 0. */
int flare_hardpunch_msg_encode(const flare_hardpunch_msg *m, flare_buf *out);
int flare_hardpunch_msg_decode(flare_hardpunch_msg *m, const uint8_t *in, size_t len);

/* The TCP part of the punch for one side. */
typedef enum flare_hardpunch_role {
    FLARE_HARDPUNCH_ROLE_NONE = 0, /* nothing to try (DCUtR's job, or hopeless) */
    FLARE_HARDPUNCH_ROLE_HARD,     /* dial `to` from n fresh sockets */
    FLARE_HARDPUNCH_ROLE_EASY,     /* dial each of ports[0..n) of `to` from the listen port */
} flare_hardpunch_role;

typedef struct flare_hardpunch_plan {
    flare_hardpunch_role role;
    flare_ipaddr to;
    uint16_t ports[FLARE_HARDPUNCH_MAX_SOCKETS];
    unsigned n;
} flare_hardpunch_plan;

/* Decides our TCP role from both sides' INFO: the hard side (with a step)
 * against an easy (or unknown) one whose address it has, the easy side
 * against a hard one with a step. Both hard, both easy/unknown, a missing address or family
 * mismatch: NONE. Predicted ports wrap within 1024..65535. */
void flare_hardpunch_plan_tcp(const flare_hardpunch_info *mine, const flare_hardpunch_info *peer,
                              const flare_hardpunch_settings *s, flare_hardpunch_plan *out);

/* Host integration (src/services/hardpunch.c): offers the protocol (so
 * identify announces it) and runs a punch on each relayed connection whose
 * peer announced it too. cfg NULL: the defaults. Returns 0,
 * FLARE_ERR_EXISTS (already on), FLARE_ERR_INVALID_ARG (bad settings) or
 * FLARE_ERR_UNSUPPORTED (a host without the service). */
typedef struct flare_host flare_host;
int flare_host_enable_hardpunch(flare_host *h, const flare_hardpunch_settings *cfg);

/* Decides our UDP role the same way: HARD (send from udp_sockets sockets to
 * to), EASY (probe random ports of to's IP), or NONE. plan.ports is unused. */
void flare_hardpunch_plan_udp(const flare_hardpunch_info *mine, const flare_hardpunch_info *peer,
                              const flare_hardpunch_settings *s, flare_hardpunch_plan *out);
/* Returns a random port in 1024..65535 made from two random bytes. */
uint16_t flare_hardpunch_probe_port(const uint8_t rnd[2]);

/* The exchange on the stream, for either side. */
typedef enum {
    FLARE_HARDPUNCH_S_IDLE = 0,
    FLARE_HARDPUNCH_S_WAIT_INFO, /* B: INFO sent; A: stream open */
    FLARE_HARDPUNCH_S_WAIT_SYNC, /* A: INFO answered */
    FLARE_HARDPUNCH_S_WAIT_GO,   /* B: SYNC sent, start after RTT/2 */
    FLARE_HARDPUNCH_S_GO,        /* punch now (flare_hardpunch_plan_tcp) */
    FLARE_HARDPUNCH_S_FAILED,
} flare_hardpunch_state;

typedef struct flare_hardpunch {
    int initiator; /* 1: B */
    flare_hardpunch_state state;
    flare_hardpunch_info mine, peer;
    flare_tstamp sent_at, go_at, deadline;
    flare_tstamp rtt;
    uint8_t rx[FLARE_HARDPUNCH_MAX_MSG + 8];
    size_t rxlen;
} flare_hardpunch;

/* Starts the exchange with our INFO. B: writes INFO to out. A: writes
 * nothing until B's INFO arrives. Returns 0, FLARE_ERR_INVALID_ARG (bad
 * settings) or FLARE_ERR_NOMEM. */
int flare_hardpunch_init(flare_hardpunch *hp, int initiator, const flare_hardpunch_info *mine,
                         const flare_hardpunch_settings *s, flare_tstamp now, flare_buf *out);
/* Bytes from the peer. Returns 0, or a negative error (state FAILED):
 * FLARE_ERR_PROTO for a message out of turn, or the decoder's error. */
int flare_hardpunch_recv(flare_hardpunch *hp, const uint8_t *in, size_t len, flare_tstamp now,
                         flare_buf *out);
/* Returns the time of the next step (go_at while WAIT_GO, the deadline
 * while waiting on the peer), or FLARE_TSTAMP_NEVER when done. */
flare_tstamp flare_hardpunch_expiry(const flare_hardpunch *hp);
/* Moves WAIT_GO to GO when its time came, and waits past the deadline to
 * FAILED. */
void flare_hardpunch_handle_expiry(flare_hardpunch *hp, flare_tstamp now);

#ifdef __cplusplus
}
#endif
#endif
