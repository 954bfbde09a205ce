/*
 * flare/portmap.h - port mapping on the home router: the settings of the
 * host's port mapping service, and the sans-I/O cores of NAT-PMP (RFC 6886)
 * and PCP (RFC 6887) it drives.
 *
 * A private node asks its default gateway to forward an external port to its
 * listen port. The mapped address is only a candidate: AutoNAT dials it back
 * before it is advertised (a gateway may lie, or sit behind another NAT).
 *
 * The codecs take and give datagrams; the client core
 * (flare_portmap_client) runs one mapping: it tries PCP, falls back to
 * NAT-PMP when the gateway does not speak PCP (or never answers), renews at
 * half the granted lifetime, notices a gateway that lost its state (the
 * epoch rule of both RFCs) and deletes the mapping when stopped. It takes the
 * time and randomness from its caller and never touches a socket. Every
 * datagram a gateway sends is hostile input: anything not from the gateway's
 * port 5351, of the wrong size, version, opcode, nonce, port or protocol is
 * ignored, and granted lifetimes are clamped.
 */
#ifndef FLARE_PORTMAP_H
#define FLARE_PORTMAP_H

#include "flare/common.h"
#include "flare/ipaddr.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FLARE_PORTMAP_SERVER_PORT 5351 /* NAT-PMP and PCP */
#define FLARE_PCP_MAX_MSG         1100 /* RFC 6887 section 7 */
#define FLARE_PCP_MAP_LEN         60   /* header (24) + MAP opcode (36) */
#define FLARE_NATPMP_MAP_LEN      12
#define FLARE_NATPMP_ADDR_REQ_LEN 2

typedef enum flare_portmap_proto {
    FLARE_PORTMAP_NONE = 0,
    FLARE_PORTMAP_PCP,
    FLARE_PORTMAP_NATPMP,
    FLARE_PORTMAP_UPNP,
} flare_portmap_proto;

/* Returns the static name of p: "pcp", "nat-pmp", "upnp" or "none". */
const char *flare_portmap_proto_name(flare_portmap_proto p);

/* Settings of the host's port mapping service (flare_host_enable_portmap).
 * Always start from flare_portmap_settings_default(); zero is never "use
 * the default". */
typedef struct flare_portmap_settings {
    size_t struct_size;          /* set by flare_portmap_settings_default */
    int enable_pcp;              /* default 1 */
    int enable_natpmp;           /* default 1 */
    int enable_upnp;             /* UPnP IGD where the driver has it; default 1 */
    uint32_t lifetime;           /* seconds asked for (>= 120); default 7200 */
    flare_tstamp retry_initial;  /* first retransmission; doubles; default 250 ms */
    unsigned attempts;           /* datagrams per protocol before the next; default 4 */
    flare_tstamp retry_interval; /* after every protocol failed; default 5 min */
    flare_tstamp min_renew;      /* renew no more often than this; default 30 s */
    int advertise_unconfirmed;   /* advertise mapped addresses before AutoNAT confirms
                                    them (needed without an AutoNAT client); default 0 */
} flare_portmap_settings;

/* Fills every field of s with its documented default, and s->struct_size. */
void flare_portmap_settings_default(flare_portmap_settings *s);

/* ---- NAT-PMP (RFC 6886) --------------------------------------------------- */

typedef struct flare_natpmp_resp {
    uint8_t op;             /* 128 + the request's opcode */
    uint16_t result;        /* 0 success */
    uint32_t epoch;         /* seconds since the gateway's start */
    uint8_t external_ip[4]; /* op 128 */
    uint16_t internal_port; /* op 129 (UDP), 130 (TCP) */
    uint16_t external_port; /* ditto */
    uint32_t lifetime;      /* ditto, seconds */
} flare_natpmp_resp;

/* The external address request (2 bytes). Returns the length written, or 0
 * if cap is too small. */
size_t flare_natpmp_encode_addr_req(uint8_t *out, size_t cap);
/* A mapping request (12 bytes): tcp 1 for TCP, 0 for UDP; lifetime 0 with
 * external_port 0 deletes. Returns the length written, or 0 if cap is too
 * small. */
size_t flare_natpmp_encode_map(uint8_t *out, size_t cap, int tcp, uint16_t internal_port,
                               uint16_t external_port, uint32_t lifetime);
/* Parses a response. Returns 0, FLARE_ERR_TRUNCATED (shorter than its
 * opcode needs), FLARE_ERR_MALFORMED (not version 0, not a response, an
 * unknown opcode) or FLARE_ERR_INVALID_ARG. A response with a non-zero
 * result may be short (only the 8-byte header is then read). */
int flare_natpmp_parse(flare_natpmp_resp *r, const uint8_t *data, size_t len);

/* The gateway's side (the simulator's NAT boxes, tests). A request: op 0
 * (external address), 1 (map UDP) or 2 (map TCP). */
typedef struct flare_natpmp_req {
    uint8_t version;
    uint8_t op;
    uint16_t internal_port, external_port;
    uint32_t lifetime;
} flare_natpmp_req;
/* Parses a request. Returns 0 (also for a version other than 0 or an
 * unknown op, which the gateway answers with result 1 or 5),
 * FLARE_ERR_TRUNCATED, FLARE_ERR_MALFORMED (a response) or
 * FLARE_ERR_INVALID_ARG. */
int flare_natpmp_parse_req(flare_natpmp_req *r, const uint8_t *data, size_t len);
/* Encodes the response r (op 128..130; error answers are 8 bytes for an
 * unsupported version, else full size). Returns the length, 0 if cap is too
 * small. */
size_t flare_natpmp_encode_resp(uint8_t *out, size_t cap, const flare_natpmp_resp *r);

/* ---- PCP (RFC 6887) -------------------------------------------------------- */

#define FLARE_PCP_OP_ANNOUNCE 0
#define FLARE_PCP_OP_MAP      1

/* PCP result codes used by the client. */
#define FLARE_PCP_SUCCESS        0
#define FLARE_PCP_UNSUPP_VERSION 1
#define FLARE_PCP_NO_RESOURCES   8

typedef struct flare_pcp_map {
    uint8_t nonce[12];
    uint8_t protocol; /* IANA: 6 TCP, 17 UDP */
    uint16_t internal_port;
    uint16_t external_port; /* suggested (request) or assigned (response) */
    flare_ipaddr external;  /* ditto; an IPv4-mapped address is returned as family 4 */
} flare_pcp_map;

typedef struct flare_pcp_resp {
    uint8_t version; /* 2; a NAT-PMP gateway answers version 0 (see parse) */
    uint8_t opcode;  /* without the response bit */
    uint8_t result;
    uint32_t lifetime;
    uint32_t epoch;
    flare_pcp_map map; /* opcode MAP only */
} flare_pcp_resp;

/* A MAP request (60 bytes) from client (our address on the gateway's
 * network; the gateway checks it against the datagram's source). lifetime 0
 * deletes. Returns the length written, or 0 if cap is too small or client
 * is not IPv4/IPv6. */
size_t flare_pcp_encode_map(uint8_t *out, size_t cap, uint32_t lifetime, const flare_ipaddr *client,
                            const flare_pcp_map *m);
/* Parses a PCP response. Returns 0; FLARE_ERR_UNSUPPORTED for a version
 * other than 2 (r->version says which; a NAT-PMP gateway answers a PCP
 * request with version 0 and result 1); FLARE_ERR_TRUNCATED (shorter than
 * 24 bytes, or a successful MAP shorter than 60); FLARE_ERR_TOO_LARGE
 * (over 1100 bytes); FLARE_ERR_MALFORMED (a request, length not a multiple
 * of 4, an option header running past the end); FLARE_ERR_INVALID_ARG.
 * Options after the MAP payload are skipped. */
int flare_pcp_parse(flare_pcp_resp *r, const uint8_t *data, size_t len);

/* The gateway's side: parses a MAP request. Returns 0 (version 2, opcode
 * MAP; options skipped), FLARE_ERR_UNSUPPORTED (another version or
 * opcode), FLARE_ERR_TRUNCATED, FLARE_ERR_TOO_LARGE, FLARE_ERR_MALFORMED
 * (a response, bad length or options) or FLARE_ERR_INVALID_ARG. */
int flare_pcp_parse_map_req(const uint8_t *data, size_t len, uint32_t *lifetime,
                            flare_ipaddr *client, flare_pcp_map *m);
/* Encodes a MAP response (60 bytes) with result, lifetime and epoch.
 * Returns the length, 0 if cap is too small. */
size_t flare_pcp_encode_map_resp(uint8_t *out, size_t cap, uint8_t result, uint32_t lifetime,
                                 uint32_t epoch, const flare_pcp_map *m);

/* ---- the client core ---------------------------------------------------------- */

typedef enum flare_portmap_ev_kind {
    FLARE_PORTMAP_EV_MAPPED,  /* a mapping was granted (first time or after a loss) */
    FLARE_PORTMAP_EV_RENEWED, /* renewed (external address or port may have changed) */
    FLARE_PORTMAP_EV_LOST,    /* the mapping is gone (not renewed in time, gateway reset) */
    FLARE_PORTMAP_EV_FAILED,  /* no protocol got a mapping; retried after retry_interval */
} flare_portmap_ev_kind;

typedef struct flare_portmap_ev {
    flare_portmap_ev_kind kind;
    flare_portmap_proto proto;
    flare_ipaddr external; /* MAPPED, RENEWED */
    uint32_t lifetime;     /* seconds granted (clamped) */
    int error;             /* LOST, FAILED: why (FLARE_ERR_TIMEOUT, _REFUSED, _STATE, ...) */
} flare_portmap_ev;

#define FLARE_PORTMAP_MAX_EVENTS 4

typedef enum {
    FLARE__PM_IDLE,
    FLARE__PM_PCP,         /* PCP MAP sent, waiting */
    FLARE__PM_NATPMP_ADDR, /* NAT-PMP external address request sent */
    FLARE__PM_NATPMP_MAP,  /* NAT-PMP mapping request sent */
    FLARE__PM_MAPPED,      /* waiting for the renewal time */
    FLARE__PM_BACKOFF,     /* every protocol failed: waiting to start again */
    FLARE__PM_STOPPED,
} flare__pm_state;

/* One mapping of one internal port. Treat as opaque. */
typedef struct flare_portmap_client {
    flare_portmap_settings cfg;
    flare_rng rng;
    int tcp;
    flare_ipaddr internal; /* our address and port on the gateway's network */
    flare_ipaddr gateway;  /* its port is ignored: replies come from 5351 */
    flare__pm_state state;
    int renewing; /* the request is a renewal of a live mapping */
    flare_portmap_proto proto;
    unsigned tries;
    flare_tstamp deadline;
    flare_tstamp retry_wait;
    uint8_t nonce[12];
    uint8_t natpmp_ext_ip[4];
    flare_ipaddr external; /* the current mapping (family 0: none) */
    uint32_t lifetime;
    flare_tstamp expires;
    int have_epoch;
    uint32_t epoch;
    flare_tstamp epoch_at;
    uint8_t out[FLARE_PCP_MAP_LEN];
    size_t out_len;
    flare_portmap_ev evs[FLARE_PORTMAP_MAX_EVENTS];
    size_t nevs;
} flare_portmap_client;

/* Sets c up to map internal (our address on the gateway's network and the
 * port to map; tcp 1 for TCP, 0 for UDP) on the gateway at gateway. cfg is
 * copied (NULL: defaults); rng supplies the PCP nonce. Returns 0, or
 * FLARE_ERR_INVALID_ARG (no port, families differ, PCP and NAT-PMP both
 * disabled, a struct_size other than sizeof(flare_portmap_settings),
 * lifetime < 120, attempts, retry_initial or retry_interval 0). min_renew
 * 0 renews at exactly half the lifetime. */
int flare_portmap_client_init(flare_portmap_client *c, const flare_portmap_settings *cfg, int tcp,
                              const flare_ipaddr *internal, const flare_ipaddr *gateway,
                              flare_rng rng);
/* Starts (or restarts) mapping: a datagram is ready to poll. */
void flare_portmap_client_start(flare_portmap_client *c, flare_tstamp now);
/* A datagram from `from`. Returns 0 when it was an answer we used,
 * FLARE_ERR_REFUSED when it was not from the gateway's port 5351 or not
 * expected now, or the codec's error; ignored datagrams change nothing. */
int flare_portmap_client_input(flare_portmap_client *c, const flare_ipaddr *from,
                               const uint8_t *data, size_t len, flare_tstamp now);
/* When flare_portmap_client_timeout is next due (FLARE_TSTAMP_NEVER: never). */
/* Returns the deadline of the next timeout. */
flare_tstamp flare_portmap_client_deadline(const flare_portmap_client *c);
/* Retransmits, falls back, renews or expires, as due at now. */
void flare_portmap_client_timeout(flare_portmap_client *c, flare_tstamp now);
/* The datagram to send to the gateway's port 5351, if one is due.
 * Returns its length (copied to out), 0 if none (or cap too small). */
size_t flare_portmap_client_poll_send(flare_portmap_client *c, uint8_t *out, size_t cap);
/* Returns 1 with the oldest pending event in *ev, 0 if none. */
int flare_portmap_client_poll_event(flare_portmap_client *c, flare_portmap_ev *ev);
/* Stops: if a PCP or NAT-PMP mapping is held, a delete request (lifetime 0)
 * is ready to poll. No timeout is due afterwards. */
void flare_portmap_client_stop(flare_portmap_client *c, flare_tstamp now);
/* Returns 1 while a mapping is held (c->external is valid), else 0. */
int flare_portmap_client_mapped(const flare_portmap_client *c);

#ifdef __cplusplus
}
#endif
#endif
