/*
 * flare/ice.h - an ICE agent (RFC 8445) as a sans-I/O core, full or lite,
 * one component, with consent freshness (RFC 7675).
 *
 * The caller owns the sockets: it adds local candidates (host: the
 * addresses of its UDP sockets; server-reflexive: what STUN servers saw,
 * e.g. from flare_stun_txn against connected public peers), hands the
 * remote candidates it got by signalling, feeds every datagram that
 * arrived on those sockets to flare_ice_input, and sends what
 * flare_ice_poll_send gives (from the socket bound to *from). Datagrams
 * that are not ICE's STUN (flare_ice_input returns 0) and come from the
 * selected pair's remote are the layer above's (DTLS).
 *
 * Checklist: every local base paired with every remote candidate of its
 * family, by RFC 8445 pair priority; one check every Ta (triggered checks
 * first); each check retransmitted with a doubling RTO, bounded. The
 * controlling agent nominates (regular nomination) the best valid pair once
 * no better pair is still pending, or nominate_wait after the first valid
 * one; the controlled agent selects the pair nominated by USE-CANDIDATE.
 * Role conflicts are resolved by the tie-breakers (487). An ICE-lite agent
 * sends no checks: it answers them and selects what is nominated.
 *
 * Remote candidates are hostile input: their number is bounded
 * (max_remote, also counting peer-reflexive ones learnt from checks), and
 * non-public addresses (private, loopback, link-local, ...) are refused
 * unless allow_private is set (the scope rule DCUtR applies to a public
 * peer's addresses). Checks with a wrong USERNAME or MESSAGE-INTEGRITY are
 * dropped unanswered.
 */
#ifndef FLARE_ICE_H
#define FLARE_ICE_H

#include "flare/common.h"
#include "flare/ipaddr.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FLARE_ICE_MAX_LOCAL  8
#define FLARE_ICE_MAX_REMOTE 32
#define FLARE_ICE_MAX_CRED   256 /* ufrag and password bytes */
/* The ufrag (= password) prefix of /webrtc-direct (libp2p/specs). */
#define FLARE_ICE_DIRECT_PREFIX "libp2p+webrtc+v1/"

typedef enum flare_ice_cand_type {
    FLARE_ICE_HOST = 0,
    FLARE_ICE_SRFLX,
    FLARE_ICE_PRFLX,
    FLARE_ICE_RELAY,
} flare_ice_cand_type;

typedef struct flare_ice_candidate {
    flare_ice_cand_type type;
    flare_ipaddr addr;
    flare_ipaddr base; /* local candidates: the socket address it leaves from */
    uint32_t priority; /* remote: as signalled; local: computed when 0 */
} flare_ice_candidate;

typedef enum flare_ice_state {
    FLARE_ICE_NEW = 0,
    FLARE_ICE_CHECKING,
    FLARE_ICE_CONNECTED, /* a pair is selected */
    FLARE_ICE_FAILED,    /* every pair failed, or consent was lost */
} flare_ice_state;

typedef struct flare_ice_settings {
    size_t struct_size;            /* set by flare_ice_settings_default */
    int controlling;               /* initial role; default 0 */
    int lite;                      /* ICE-lite (always controlled, no checks); default 0 */
    flare_tstamp ta;               /* pacing of new checks; default 50 ms */
    flare_tstamp rto;              /* first retransmission of a check; doubles; default 250 ms */
    unsigned max_sends;            /* transmissions per check (1..16); default 6 */
    flare_tstamp nominate_wait;    /* controlling: nominate at most this after the first
                                      valid pair; default 1 s */
    flare_tstamp consent_interval; /* consent checks on the selected pair, randomized
                                      +-20%; default 5 s */
    flare_tstamp consent_timeout;  /* no consent for this long: failed; default 30 s */
    size_t max_remote; /* remote candidates kept (1..FLARE_ICE_MAX_REMOTE); default 16 */
    int allow_private; /* accept non-public remote candidates; default 0 */
    int doc_is_public; /* documentation ranges count as public (simulator); default 0 */
} flare_ice_settings;

/* Fills every field of s with its documented default, and s->struct_size. */
void flare_ice_settings_default(flare_ice_settings *s);

typedef struct flare_ice_agent flare_ice_agent;

/* Creates an agent with our credentials (ufrag at least 4, password at
 * least 22 characters per RFC 8445, each at most FLARE_ICE_MAX_CRED; the
 * /webrtc-direct convention uses one string for both). cfg NULL: defaults.
 * Returns 0, FLARE_ERR_INVALID_ARG or FLARE_ERR_NOMEM. */
int flare_ice_agent_new(flare_ice_agent **out, const flare_ice_settings *cfg, const char *ufrag,
                        const char *pwd, flare_rng rng, const flare_mem *mem);
/* Frees a (NULL: no-op). */
void flare_ice_agent_del(flare_ice_agent *a);

/* The peer's credentials (from signalling). Returns 0 or
 * FLARE_ERR_INVALID_ARG. */
int flare_ice_set_remote_credentials(flare_ice_agent *a, const char *ufrag, const char *pwd);
/* Adds a local candidate (base: the socket's address; for a host candidate
 * the same as addr). Its priority is computed (RFC 8445 section 5.1.2).
 * Returns 0, FLARE_ERR_EXISTS, FLARE_ERR_LIMIT or FLARE_ERR_INVALID_ARG. */
int flare_ice_add_local(flare_ice_agent *a, flare_ice_cand_type type, const flare_ipaddr *addr,
                        const flare_ipaddr *base);
/* Our local candidates (to signal), up to cap. Returns the count. */
size_t flare_ice_local_candidates(const flare_ice_agent *a, flare_ice_candidate *out, size_t cap);
/* Adds a remote candidate. Returns 0, FLARE_ERR_EXISTS, FLARE_ERR_LIMIT (too
 * many), FLARE_ERR_REFUSED (a non-public address without allow_private, or
 * unspecified, multicast, port 0) or FLARE_ERR_INVALID_ARG. */
int flare_ice_add_remote(flare_ice_agent *a, const flare_ice_candidate *c);

/* Starts the checks at now (a lite agent only waits for them). Returns 0 or
 * FLARE_ERR_STATE (no remote credentials yet). */
int flare_ice_start(flare_ice_agent *a, flare_tstamp now);

/* A datagram that arrived on the socket bound to local from `from`.
 * Returns 1 if it was an ICE STUN message (consumed, possibly answered by
 * the next poll_send), 0 if it is not STUN (the caller's: application data
 * when from is the selected remote). */
int flare_ice_input(flare_ice_agent *a, const flare_ipaddr *local, const flare_ipaddr *from,
                    const uint8_t *data, size_t len, flare_tstamp now);
/* The next datagram to send at now: written to out, *from is the local
 * socket address to send it from, *to the destination. Returns its length,
 * 0 when nothing is due, or FLARE_ERR_BUFFER_TOO_SMALL (cap under 256). */
int flare_ice_poll_send(flare_ice_agent *a, flare_tstamp now, uint8_t *out, size_t cap,
                        flare_ipaddr *from, flare_ipaddr *to);
/* Returns when poll_send has something next (FLARE_TSTAMP_NEVER: nothing
 * until input). */
flare_tstamp flare_ice_expiry(const flare_ice_agent *a);

/* Returns the agent's state. */
flare_ice_state flare_ice_get_state(const flare_ice_agent *a);
/* Returns 1 if we are the controlling agent now (role conflicts may change
 * it), else 0. */
int flare_ice_is_controlling(const flare_ice_agent *a);
/* The selected pair: our socket address and the peer's. Returns 0 or
 * FLARE_ERR_NOT_FOUND (none selected, or consent lost). */
int flare_ice_selected(const flare_ice_agent *a, flare_ipaddr *local, flare_ipaddr *remote);

/* /webrtc-direct: the ufrag of a Binding request from a browser (the part
 * of USERNAME before ':', which must start with FLARE_ICE_DIRECT_PREFIX), so
 * the server can make an agent whose ufrag and password are that string.
 * Returns its length (copied with a terminating 0), 0 if data is not such a
 * request, or FLARE_ERR_BUFFER_TOO_SMALL. */
int flare_ice_direct_ufrag(const uint8_t *data, size_t len, char *out, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
