/*
 * flare/dcutr.h - Direct Connection Upgrade through Relay (libp2p/specs
 * relay/DCUtR.md), protocol /libp2p/dcutr: sans-I/O cores for both sides,
 * address selection helpers and a hole-punch tracer with Prometheus output.
 *
 * Roles (the spec, rust-libp2p and go-libp2p >= 0.41; go had them reversed
 * before, go-libp2p #3171): A dialed B through a relay, B holds the
 * reservation, so B's side of the relayed connection is inbound.
 *
 *  - B is the INITIATOR: it opens the /libp2p/dcutr stream, sends CONNECT
 *    with its addresses and starts a timer; A answers CONNECT with its own;
 *    B takes RTT from that answer, sends SYNC and dials A after RTT/2.
 *  - A is the RESPONDER: it dials B's addresses as soon as SYNC arrives.
 *  - On the resulting direct connection A is the client of every protocol
 *    (Noise initiator, multistream dialer, yamux client) and B the server,
 *    whichever TCP socket connected (TCP simultaneous open).
 *
 * B retries the whole exchange on a new stream, up to max_attempts (3)
 * times, when a dial phase fails or times out or a stream times out or is
 * reset. A protocol violation by the peer ends the punch at once (retrying a
 * misbehaving peer is pointless). A gives up after the last attempt B may
 * make, or when B does not open its next stream within stream_timeout (plus
 * the backoff B waits), so both sides end with an outcome (an EV_FAILED
 * with final set). Before the first attempt the glue may try
 * a plain direct dial to A (connection reversal):
 * flare_dcutr_should_dial_direct().
 *
 * Framing: uvarint length prefix, messages at most FLARE_DCUTR_MAX_MSG bytes.
 * The cores are per relayed connection and independent of the host: the
 * glue opens/accepts streams, feeds their bytes, performs the dials the
 * cores ask for and reports the outcome. Events are polled
 * (flare_dcutr_*_poll_event); timers via _expiry()/_handle_expiry().
 */
#ifndef FLARE_DCUTR_H
#define FLARE_DCUTR_H

#include "flare/buf.h"
#include "flare/multiaddr.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FLARE_DCUTR_PROTOCOL_ID "/libp2p/dcutr"
#define FLARE_DCUTR_MAX_MSG     4096 /* bytes of one message (after the prefix) */
#define FLARE_DCUTR_MAX_ADDRS   32   /* addresses kept from one message */

#define FLARE_DCUTR_DEFAULT_STREAM_TIMEOUT (60 * FLARE_NS_PER_S)
#define FLARE_DCUTR_DEFAULT_DIAL_TIMEOUT   (5 * FLARE_NS_PER_S)
#define FLARE_DCUTR_DEFAULT_MAX_ATTEMPTS   3

/* ---- codec ------------------------------------------------------------------ */

typedef enum flare_dcutr_type {
    FLARE_DCUTR_CONNECT = 100,
    FLARE_DCUTR_SYNC = 300,
} flare_dcutr_type;

/* A decoded HolePunch message. addrs holds the usable ObsAddrs: valid
 * multiaddrs that are not relayed (/p2p-circuit), without duplicates, at most
 * FLARE_DCUTR_MAX_ADDRS; everything else is counted in ndropped (a peer's bad
 * address must not cost the others). */
typedef struct flare_dcutr_msg {
    flare_dcutr_type type;
    size_t naddrs;
    size_t ndropped;
    flare_multiaddr addrs[FLARE_DCUTR_MAX_ADDRS];
} flare_dcutr_msg;

/* Decodes one message body (without its length prefix). Unknown fields are
 * skipped. Errors: FLARE_ERR_TOO_LARGE (len > FLARE_DCUTR_MAX_MSG),
 * FLARE_ERR_MALFORMED (type missing, wrong wire type, bad protobuf framing),
 * FLARE_ERR_TRUNCATED, FLARE_ERR_OVERLONG (protobuf varints),
 * FLARE_ERR_UNKNOWN_CODE (type neither CONNECT nor SYNC). */
int flare_dcutr_msg_decode(flare_dcutr_msg *m, const uint8_t *in, size_t len);

/* Appends uvarint(len) || HolePunch{type, addrs} to out. Errors:
 * FLARE_ERR_INVALID_ARG (bad type, addrs NULL with n > 0),
 * FLARE_ERR_TOO_LARGE (body over FLARE_DCUTR_MAX_MSG; out unchanged),
 * FLARE_ERR_NOMEM. */
int flare_dcutr_msg_encode(flare_buf *out, flare_dcutr_type type, const flare_multiaddr *addrs,
                           size_t n);

/* ---- address selection ------------------------------------------------------ */

/* Which addresses hole punching offers and dials. Start from
 * flare_dcutr_addr_settings_default(), which sets struct_size and every
 * field; a maximum of 0 selects no address. */
typedef struct flare_dcutr_addr_settings {
    size_t struct_size; /* set by flare_dcutr_addr_settings_default */
    int doc_is_public;  /* TEST-NET / 2001:db8:: count as public (lab, simulator); default 0 */
    int allow_quic;     /* accept /udp/P/quic-v1 besides /tcp/P; default 0 */
    size_t max;         /* offered at most (select_addrs); default FLARE_DCUTR_MAX_ADDRS */
    size_t max_dials;   /* dialed at most (dial_addrs); default FLARE_DCUTR_MAX_DIALS */
    /* Also private, loopback, link-local and CGNAT addresses (tests on one
     * machine or LAN). Unspecified, multicast and reserved never pass. */
    int allow_private;
} flare_dcutr_addr_settings;

/* Addresses dialed per attempt from a peer's CONNECT: a peer cannot make us
 * knock on more ports than this. */
#define FLARE_DCUTR_MAX_DIALS 8

/* Fills s with the defaults documented on each field and sets
 * s->struct_size. */
void flare_dcutr_addr_settings_default(flare_dcutr_addr_settings *s);

/* 1 if ma is worth sending in CONNECT, or dialing when a peer sent it:
 * /ip4|ip6/PUBLIC/tcp/P (or /udp/P/quic-v1 with allow_quic), optionally
 * followed by /p2p/ID only; not relayed. opts may be NULL (defaults).
 * Returns 1 if usable, else 0 (also when opts->struct_size is wrong). */
int flare_dcutr_addr_usable(const flare_multiaddr *ma, const flare_dcutr_addr_settings *opts);

/* The addresses of a peer's CONNECT we will dial: usable ones (a peer must
 * not make us dial our own LAN or loopback), one per IP and port, at most
 * opts->max_dials. Returns the count, or
 * FLARE_ERR_INVALID_ARG (also for a wrong opts->struct_size). */
int flare_dcutr_dial_addrs(const flare_multiaddr *in, size_t n,
                           const flare_dcutr_addr_settings *opts, flare_multiaddr *out, size_t cap);

/* Fills out[0..cap) with the usable addresses: confirmed ones first, then
 * candidates, deduplicated, at most opts->max. Either list may be NULL when
 * its count is 0. Returns the count (0 means: nothing to offer, do not punch),
 * or FLARE_ERR_INVALID_ARG (also for a wrong opts->struct_size). */
int flare_dcutr_select_addrs(const flare_multiaddr *confirmed, size_t nconfirmed,
                             const flare_multiaddr *candidates, size_t ncandidates,
                             const flare_dcutr_addr_settings *opts, flare_multiaddr *out,
                             size_t cap);

/* 1 if B should first try a plain direct dial to A (A lists a public,
 * non-relayed address), else 0. */
/* Returns 1 or 0. */
int flare_dcutr_should_dial_direct(const flare_multiaddr *addrs, size_t n, int doc_is_public);

typedef enum flare_dcutr_nat {
    FLARE_DCUTR_NAT_UNKNOWN = 0,
    FLARE_DCUTR_NAT_EIM, /* endpoint-independent mapping ("cone"): punchable */
    FLARE_DCUTR_NAT_EDM, /* endpoint-dependent mapping ("symmetric") */
} flare_dcutr_nat;

typedef struct flare_dcutr_punch_hint {
    int have_direct_conn;    /* the glue already has a direct connection to the peer */
    size_t our_addrs;        /* usable addresses we would send (select_addrs) */
    int their_addrs_known;   /* their_addrs is meaningful (e.g. after CONNECT) */
    size_t their_addrs;      /* usable addresses of the peer */
    flare_dcutr_nat our_nat; /* hints, e.g. from AutoNAT / observed ports */
    flare_dcutr_nat their_nat;
} flare_dcutr_punch_hint;

typedef enum flare_dcutr_verdict {
    FLARE_DCUTR_PUNCH = 0,
    FLARE_DCUTR_SKIP_DIRECT_EXISTS,
    FLARE_DCUTR_SKIP_NO_ADDRS,
    FLARE_DCUTR_SKIP_BOTH_SYMMETRIC,
} flare_dcutr_verdict;

/* Decides whether a hole punch is worth trying (one symmetric side can still
 * succeed against a cone; two cannot). */
/* Returns the verdict (FLARE_DCUTR_PUNCH or why not). */
flare_dcutr_verdict flare_dcutr_should_punch(const flare_dcutr_punch_hint *h);
/* Static name of a verdict, e.g. "skip-no-addrs". */
/* Returns a static name. */
const char *flare_dcutr_verdict_name(flare_dcutr_verdict v);

/* ---- tracer ----------------------------------------------------------------- */

typedef enum flare_dcutr_step {
    FLARE_DCUTR_STEP_RELAY_UP = 0,     /* glue: relayed connection established */
    FLARE_DCUTR_STEP_DIRECT_DIAL,      /* glue: connection reversal dial started */
    FLARE_DCUTR_STEP_CONNECT_SENT,     /* value: number of addresses */
    FLARE_DCUTR_STEP_CONNECT_RECEIVED, /* value: number of usable addresses */
    FLARE_DCUTR_STEP_RTT,              /* value: RTT in ns */
    FLARE_DCUTR_STEP_SYNC_SENT,
    FLARE_DCUTR_STEP_SYNC_RECEIVED,
    FLARE_DCUTR_STEP_DIAL_START,     /* value: number of addresses */
    FLARE_DCUTR_STEP_DIRECT_UP,      /* a direct connection is up */
    FLARE_DCUTR_STEP_ATTEMPT_FAILED, /* value: a flare_dcutr_reason */
    FLARE_DCUTR_STEP_GAVE_UP,        /* value: a flare_dcutr_reason */
    FLARE_DCUTR_STEP_COUNT
} flare_dcutr_step;

typedef enum flare_dcutr_reason {
    FLARE_DCUTR_REASON_NONE = 0,
    FLARE_DCUTR_REASON_DIAL, /* the dial phase failed */
    FLARE_DCUTR_REASON_DIAL_TIMEOUT,
    FLARE_DCUTR_REASON_STREAM_TIMEOUT, /* no message within stream_timeout */
    FLARE_DCUTR_REASON_STREAM,         /* stream reset / could not be opened */
    FLARE_DCUTR_REASON_PROTOCOL,       /* the peer violated the protocol */
    FLARE_DCUTR_REASON_NO_ADDRS,       /* the peer offered no usable address */
    FLARE_DCUTR_REASON_UNSUPPORTED,    /* the peer does not speak /libp2p/dcutr */
    FLARE_DCUTR_REASON_COUNT
} flare_dcutr_reason;

/* Static names, e.g. "connect-sent", "dial-timeout". */
/* Returns a static name. */
const char *flare_dcutr_step_name(flare_dcutr_step s);
/* Returns a static name. */
const char *flare_dcutr_reason_name(flare_dcutr_reason r);

typedef struct flare_dcutr_trace_entry {
    uint64_t id;       /* the punch (e.g. a connection id) */
    flare_tstamp t;    /* caller's time */
    uint64_t value;    /* step-specific, see flare_dcutr_step */
    uint8_t step;      /* flare_dcutr_step */
    uint8_t attempt;   /* 1..; 0 outside an attempt */
    uint8_t initiator; /* 1: logged by B, 0: by A */
} flare_dcutr_trace_entry;

#define FLARE_DCUTR_TRACE_LOG      128 /* entries kept (a ring: the newest win) */
#define FLARE_DCUTR_TRACE_ATTEMPTS 3

enum { FLARE_DCUTR_TR_TCP = 0, FLARE_DCUTR_TR_QUIC, FLARE_DCUTR_TR_OTHER, FLARE_DCUTR_TR_N };
enum { FLARE_DCUTR_IPV4 = 0, FLARE_DCUTR_IPV6, FLARE_DCUTR_IPV_OTHER, FLARE_DCUTR_IPV_N };

/* Counters and a bounded step log. Plain data: the glue (or a core through
 * its settings) fills it; it allocates nothing. */
typedef struct flare_dcutr_tracer {
    uint64_t attempts; /* exchanges started (CONNECT sent or received) */
    uint64_t outcomes[2][FLARE_DCUTR_TR_N][FLARE_DCUTR_IPV_N]; /* [ok][transport][ipv] */
    uint64_t success_attempt[FLARE_DCUTR_TRACE_ATTEMPTS + 1];  /* [n-1]; last = later */
    uint64_t gave_up[FLARE_DCUTR_REASON_COUNT];
    uint64_t attempt_failed[FLARE_DCUTR_REASON_COUNT];
    uint64_t direct_dials[2]; /* connection reversal [ok] */
    flare_tstamp last_rtt;
    uint64_t logged; /* entries ever logged */
    flare_dcutr_trace_entry log[FLARE_DCUTR_TRACE_LOG];
} flare_dcutr_tracer;

/* Starts an empty trace. */
void flare_dcutr_tracer_init(flare_dcutr_tracer *t);
/* Appends a step to the log (and keeps last_rtt for FLARE_DCUTR_STEP_RTT). */
void flare_dcutr_tracer_step(flare_dcutr_tracer *t, uint64_t id, int initiator, unsigned attempt,
                             flare_dcutr_step step, flare_tstamp now, uint64_t value);
/* Counts one dial-phase outcome. addr: the direct connection's remote
 * address on success, the first dialed address on failure (NULL: other). */
void flare_dcutr_tracer_outcome(flare_dcutr_tracer *t, int ok, const flare_multiaddr *addr,
                                unsigned attempt);
/* Counts a connection-reversal direct dial. */
void flare_dcutr_tracer_direct_dial(flare_dcutr_tracer *t, int ok);
/* The i-th newest log entry (0 = newest), or NULL. */
/* Returns entry i (borrowed; valid until the next step is recorded), or NULL past the end. */
const flare_dcutr_trace_entry *flare_dcutr_tracer_entry(const flare_dcutr_tracer *t, size_t i);

/* Appends the Prometheus text exposition (format 0.0.4) of t to out:
 * flare_holepunch_attempts_total, flare_holepunch_outcomes_total{result=,
 * transport=,ipv=}, flare_holepunch_success_attempt{n=},
 * flare_holepunch_attempt_failures_total{reason=},
 * flare_holepunch_gave_up_total{reason=}, flare_holepunch_direct_dials_total
 * {result=}, flare_holepunch_last_rtt_seconds. Returns 0 or FLARE_ERR_NOMEM. */
int flare_dcutr_metrics_format(const flare_dcutr_tracer *t, flare_buf *out);

/* ---- the cores ------------------------------------------------------------- */

/* Start from flare_dcutr_settings_default(), which sets struct_size and
 * every field. Zero is never "the default": retry_backoff 0 retries at
 * once; the timeouts and max_attempts must not be 0. */
typedef struct flare_dcutr_settings {
    size_t struct_size;          /* set by flare_dcutr_settings_default */
    flare_tstamp stream_timeout; /* per awaited message; default 60 s */
    flare_tstamp dial_timeout;   /* one dial phase; default 5 s */
    flare_tstamp retry_backoff;  /* B waits attempt * this before retrying; default 0 */
    unsigned max_attempts;       /* B: attempts; A: streams accepted; default 3 (max 255) */
    flare_dcutr_tracer *tracer;  /* optional; steps and outcomes are logged here */
    uint64_t trace_id;           /* tags this core's log entries */
} flare_dcutr_settings;

typedef enum flare_dcutr_event_type {
    FLARE_DCUTR_EV_DIAL = 1, /* dial addrs now (B: RTT/2 after SYNC; A: at SYNC) */
    FLARE_DCUTR_EV_RETRY,    /* B: open a new stream, then call _initiator_start */
    FLARE_DCUTR_EV_SUCCESS,  /* the direct connection is up */
    FLARE_DCUTR_EV_FAILED,   /* an attempt failed; final: the punch is over */
} flare_dcutr_event_type;

typedef struct flare_dcutr_event {
    flare_dcutr_event_type type;
    unsigned attempt;
    flare_tstamp rtt;             /* DIAL: measured RTT */
    const flare_multiaddr *addrs; /* DIAL: valid until the next call on the core */
    size_t naddrs;
    flare_dcutr_reason reason; /* FAILED */
    /* FAILED: 1 when the punch is over (B: always, it retries without a
     * FAILED event; A: its last attempt failed, or B did not come back),
     * 0 when B may still retry. */
    int final;
} flare_dcutr_event;

#define FLARE_DCUTR__EVQ 8

/* ---- B: initiator ---- */

typedef struct flare_dcutr_initiator {
    flare_dcutr_settings s;
    const flare_mem *mem;
    int state;
    unsigned attempt;
    flare_tstamp sent_at, deadline, rtt;
    flare_dcutr_reason last_reason;
    size_t rxlen;
    uint8_t rx[FLARE_DCUTR_MAX_MSG + 10];
    flare_dcutr_msg peer; /* A's CONNECT */
    flare_dcutr_event evq[FLARE_DCUTR__EVQ];
    size_t evhead, evlen;
} flare_dcutr_initiator;

/* Fills s with the defaults documented on each field (no tracer) and sets
 * s->struct_size. */
void flare_dcutr_settings_default(flare_dcutr_settings *s);

/* s may be NULL (defaults). The core allocates nothing today; mem (NULL =
 * libc) is kept for the contract. Returns 0, or FLARE_ERR_INVALID_ARG
 * (s->struct_size is not sizeof(flare_dcutr_settings), a timeout or
 * max_attempts 0, or max_attempts above 255). */
int flare_dcutr_initiator_init(flare_dcutr_initiator *b, const flare_dcutr_settings *s,
                               const flare_mem *mem);
void flare_dcutr_initiator_free(flare_dcutr_initiator *b);

/* Starts an attempt on a freshly opened stream: appends CONNECT with
 * our_addrs (at most FLARE_DCUTR_MAX_ADDRS are sent) and starts the RTT
 * timer at now. Legal first and after EV_RETRY. Errors:
 * FLARE_ERR_INVALID_ARG (no address: do not punch), FLARE_ERR_STATE,
 * FLARE_ERR_TOO_LARGE (addresses exceed a message), FLARE_ERR_NOMEM. */
int flare_dcutr_initiator_start(flare_dcutr_initiator *b, flare_tstamp now,
                                const flare_multiaddr *our_addrs, size_t n, flare_buf *out);

/* Feeds bytes from the stream. On A's CONNECT: RTT = now - start time, SYNC
 * is appended to out (then flush and close the stream) and EV_DIAL is
 * scheduled for now + RTT/2 (see _expiry). Returns 0, or an error after
 * which the stream must be reset:
 *  - FLARE_ERR_PROTO (A sent SYNC or a CONNECT without usable address),
 *    FLARE_ERR_TOO_LARGE, FLARE_ERR_OVERLONG or a flare_dcutr_msg_decode
 *    error: the punch is given up (EV_FAILED, reason PROTOCOL / NO_ADDRS);
 *  - FLARE_ERR_PROTO for bytes after A's CONNECT: only the stream is bad,
 *    the punch goes on;
 *  - FLARE_ERR_NOMEM: the attempt fails (retry as for a reset stream);
 *  - FLARE_ERR_STATE when no exchange awaits bytes. */
int flare_dcutr_initiator_recv(flare_dcutr_initiator *b, const uint8_t *in, size_t len,
                               flare_tstamp now, flare_buf *out);

/* The glue reports the stream failed (err: FLARE_ERR_RESET, _CLOSED before
 * the reply, _NEGOTIATION when A does not support the protocol, ...). The
 * attempt fails; B retries unless err is FLARE_ERR_NEGOTIATION. Returns 0 or
 * FLARE_ERR_STATE. */
int flare_dcutr_initiator_stream_error(flare_dcutr_initiator *b, int err, flare_tstamp now);

/* Reports the dial phase: ok with conn_addr = the direct connection's remote
 * address (may be NULL), or failure. A success may be reported as soon as
 * SYNC is sent (A's dial may win). Returns 0 or FLARE_ERR_STATE. */
int flare_dcutr_initiator_dial_result(flare_dcutr_initiator *b, int ok,
                                      const flare_multiaddr *conn_addr, flare_tstamp now);

/* Next deadline or FLARE_TSTAMP_NEVER. */
/* Returns when flare_dcutr_initiator_handle_expiry is next due (FLARE_TSTAMP_NEVER if never). */
flare_tstamp flare_dcutr_initiator_expiry(const flare_dcutr_initiator *b);
/* Fires due timers: EV_DIAL, the dial timeout, EV_RETRY after backoff.
 * Returns 0, or FLARE_ERR_TIMEOUT when the stream timed out (reset it). */
int flare_dcutr_initiator_handle_expiry(flare_dcutr_initiator *b, flare_tstamp now);
/* 1 and *ev filled, or 0. */
/* Returns 1 with *ev filled, or 0 when no event is queued. */
int flare_dcutr_initiator_poll_event(flare_dcutr_initiator *b, flare_dcutr_event *ev);
/* 1 once the punch succeeded or was given up. */
/* Returns 1 once the punch succeeded or was given up, else 0. */
int flare_dcutr_initiator_done(const flare_dcutr_initiator *b);

/* ---- A: responder ---- */

typedef struct flare_dcutr_responder {
    flare_dcutr_settings s;
    const flare_mem *mem;
    int state;
    unsigned attempt;
    flare_tstamp replied_at, deadline, rtt;
    flare_dcutr_reason last_reason;
    int stream_done; /* no stream, or its exchange is over */
    size_t rxlen;
    uint8_t rx[FLARE_DCUTR_MAX_MSG + 10];
    flare_dcutr_msg peer; /* B's CONNECT */
    flare_dcutr_event evq[FLARE_DCUTR__EVQ];
    size_t evhead, evlen;
} flare_dcutr_responder;

/* As flare_dcutr_initiator_init. */
/* Returns 0, or FLARE_ERR_INVALID_ARG for bad settings. */
int flare_dcutr_responder_init(flare_dcutr_responder *a, const flare_dcutr_settings *s,
                               const flare_mem *mem);
void flare_dcutr_responder_free(flare_dcutr_responder *a);

/* B opened a new /libp2p/dcutr stream: a new attempt (an unfinished one is
 * abandoned, a dial still under way is counted as failed). The glue accepts
 * the protocol only on a relayed connection that we (A) dialed, as go-libp2p
 * does. Errors: FLARE_ERR_LIMIT after max_attempts streams (reset it: each
 * attempt makes us dial addresses the peer chose). */
int flare_dcutr_responder_stream_open(flare_dcutr_responder *a, flare_tstamp now);

/* Feeds bytes from the current stream. On CONNECT: appends our CONNECT with
 * our_addrs. On SYNC: queues EV_DIAL with B's addresses (then close the
 * stream). Returns 0, or (the attempt is over; reset the stream):
 * FLARE_ERR_PROTO (SYNC before CONNECT, duplicate CONNECT, bytes after SYNC,
 * a CONNECT without usable address), FLARE_ERR_REFUSED (n == 0: we have no
 * address to offer), FLARE_ERR_TOO_LARGE, any flare_dcutr_msg_decode
 * error; FLARE_ERR_STATE when no stream is open. */
int flare_dcutr_responder_recv(flare_dcutr_responder *a, const uint8_t *in, size_t len,
                               flare_tstamp now, const flare_multiaddr *our_addrs, size_t n,
                               flare_buf *out);

/* Reports the dial phase as for the initiator. Returns 0 or FLARE_ERR_STATE. */
int flare_dcutr_responder_dial_result(flare_dcutr_responder *a, int ok,
                                      const flare_multiaddr *conn_addr, flare_tstamp now);

/* The glue reports the current stream ended (reset, or closed by B) before
 * SYNC: the attempt fails with reason STREAM. Returns 0, or FLARE_ERR_STATE
 * when no exchange awaited a message. */
int flare_dcutr_responder_stream_error(flare_dcutr_responder *a, int err, flare_tstamp now);

/* The relayed connection is gone: B cannot come back, the punch is given up
 * now (EV_FAILED, final; the reason of the last failed attempt, else
 * STREAM). Returns 0, or FLARE_ERR_STATE when it already ended. */
int flare_dcutr_responder_abort(flare_dcutr_responder *a, flare_tstamp now);

/* Returns 1 once the punch succeeded or was given up, else 0. */
int flare_dcutr_responder_done(const flare_dcutr_responder *a);

/* Returns when flare_dcutr_responder_handle_expiry is next due (FLARE_TSTAMP_NEVER if never). */
flare_tstamp flare_dcutr_responder_expiry(const flare_dcutr_responder *a);
/* Returns 0, or FLARE_ERR_TIMEOUT when the stream timed out (reset it). A
 * dial phase that times out queues EV_FAILED; so does giving up when B did
 * not open its next stream in time after a failed attempt (final). */
int flare_dcutr_responder_handle_expiry(flare_dcutr_responder *a, flare_tstamp now);
int flare_dcutr_responder_poll_event(flare_dcutr_responder *a, flare_dcutr_event *ev);

#ifdef __cplusplus
}
#endif
#endif
