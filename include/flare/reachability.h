/*
 * flare/reachability.h - the reachability state machine fed by AutoNAT.
 *
 * Tracks, per address we could be dialed on and aggregated per IP version,
 * whether we are publicly reachable (PUBLIC), not (PRIVATE), or UNKNOWN. It
 * is sans-I/O: the glue reports probe outcomes (v2 per address, v1 per IP
 * version) with the time, and asks when to probe next and whom.
 *
 * Confidence (default 3, as go-libp2p): an observation that agrees with the
 * current state raises confidence up to the maximum; one that disagrees
 * lowers it, and only at confidence 0 does the state flip. So from a settled
 * state (confidence 3) it takes 4 consecutive contrary results to flip; from
 * UNKNOWN the first result decides. Unlike go, a flip to PUBLIC needs the
 * same evidence as a flip to PRIVATE (avoids churn, go-libp2p #2046).
 * NO_INFO results are ignored for addresses (v2: a refusal says nothing about
 * the address) and, for v1, decay confidence and finally reset to UNKNOWN
 * (go's rule, so stale v1 verdicts age out).
 *
 * Per IP version: PUBLIC if any address of that version is PUBLIC, else
 * PRIVATE if any is PRIVATE (v2 evidence wins), else the v1 verdict for that
 * version (v1 is weaker: a js-libp2p server may report success after
 * reusing our connection; see flare_autonat1_client_response).
 *
 * Schedule: first probe boot_delay after init; then every retry_interval
 * while anything is UNKNOWN or below full confidence, every
 * refresh_interval once settled; flare_reachability_poke() (new addresses,
 * new servers) brings the next probe to within force_delay when something is
 * UNKNOWN.
 */
#ifndef FLARE_REACHABILITY_H
#define FLARE_REACHABILITY_H

#include "flare/autonat.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FLARE_REACH_MAX_ADDRS   32
#define FLARE_REACH_MAX_SERVERS 64
#define FLARE_REACH_MAX_EVENTS  32

typedef enum flare_reach_state {
    FLARE_REACH_UNKNOWN = 0,
    FLARE_REACH_PUBLIC,
    FLARE_REACH_PRIVATE,
} flare_reach_state;

/* Start from flare_reachability_settings_default(), which sets struct_size
 * and every field. Zero is never "the default": a boot or force delay of 0
 * probes at once; confidence and the two intervals must not be 0. */
typedef struct flare_reachability_settings {
    size_t struct_size;            /* set by flare_reachability_settings_default */
    unsigned confidence;           /* agreeing results to settle; default 3 */
    flare_tstamp boot_delay;       /* first probe; default 15 s */
    flare_tstamp retry_interval;   /* between probes while unsure; default 90 s */
    flare_tstamp refresh_interval; /* between probes once settled; default 15 min */
    flare_tstamp force_delay;      /* first probe of a new address; default 2 s */
} flare_reachability_settings;

typedef struct flare__reach_track {
    flare_reach_state state;
    unsigned confidence;
} flare__reach_track;

typedef struct flare__reach_addr {
    flare_multiaddr addr; /* without a trailing /p2p/ */
    flare__reach_track t;
} flare__reach_addr;

typedef struct flare__reach_server {
    flare_peerid peer;
    flare_tstamp last_asked;
} flare__reach_server;

typedef enum flare_reach_event_kind {
    FLARE_REACH_EV_ADDR,   /* addr changed state */
    FLARE_REACH_EV_FAMILY, /* the aggregate of IP version `family` changed */
} flare_reach_event_kind;

typedef struct flare_reach_event {
    flare_reach_event_kind kind;
    int family;           /* 4 or 6 */
    flare_multiaddr addr; /* EV_ADDR only */
    flare_reach_state old_state, new_state;
} flare_reach_event;

/* The tables live on the heap at their use (a host has a few addresses and
 * rarely a pending event; full-size arrays cost every node 32 KB). */
typedef struct flare_reachability {
    flare_reachability_settings s;
    const flare_mem *mem;
    size_t naddrs;
    flare__reach_addr *addrs; /* naddrs of them */
    flare__reach_track v1[2]; /* [0] IPv4, [1] IPv6 */
    flare_reach_state family[2];
    flare_tstamp last_probe, next_probe;
    size_t nservers, servers_cap;
    flare__reach_server *servers;
    size_t ev_head, ev_count, ev_cap;
    flare_reach_event *ev; /* ring of ev_cap, freed when drained */
} flare_reachability;

/* Fills s with the defaults documented on each field and sets
 * s->struct_size. */
void flare_reachability_settings_default(flare_reachability_settings *s);

/* s may be NULL (defaults); mem (NULL: default) holds the tables. The
 * first probe is due at now + boot_delay.
 * Returns 0, or FLARE_ERR_INVALID_ARG (s->struct_size is not
 * sizeof(flare_reachability_settings), or confidence, retry_interval or
 * refresh_interval 0); r is then left zeroed. */
int flare_reachability_init(flare_reachability *r, const flare_reachability_settings *s,
                            const flare_mem *mem, flare_tstamp now);
void flare_reachability_free(flare_reachability *r);

/* Sets the addresses we want verified (our public candidates). Known ones
 * keep their state, dropped ones are forgotten, new ones start UNKNOWN (and
 * poke the schedule). A trailing /p2p/ is ignored. Errors:
 * FLARE_ERR_TOO_LARGE (over FLARE_REACH_MAX_ADDRS; nothing changes),
 * FLARE_ERR_NOMEM (nothing changes), FLARE_ERR_INVALID_ARG. */
int flare_reachability_set_addrs(flare_reachability *r, const flare_multiaddr *addrs, size_t n,
                                 flare_tstamp now);

/* A v2 result for addr. FLARE_ERR_NOT_FOUND if addr is not tracked. */
int flare_reachability_observe_v2(flare_reachability *r, const flare_multiaddr *addr,
                                  flare_autonat_outcome o, flare_tstamp now);
/* A v1 result over a connection of IP version family (4 or 6).
 * FLARE_ERR_INVALID_ARG for another family. */
int flare_reachability_observe_v1(flare_reachability *r, int family, flare_autonat_outcome o,
                                  flare_tstamp now);

/* Current state of a tracked address (UNKNOWN if not tracked), and of an IP
 * version (4 or 6). */
/* Returns the verdict for addr. */
flare_reach_state flare_reachability_addr_state(const flare_reachability *r,
                                                const flare_multiaddr *addr);
/* Returns the verdict for family (4 or 6). */
flare_reach_state flare_reachability_family_state(const flare_reachability *r, int family);
/* Static name ("unknown", "public", "private"). */
/* Returns a static name. */
const char *flare_reach_state_name(flare_reach_state s);

/* Pops the oldest change event: 1 with *ev filled, 0 if none. The queue
 * keeps the newest FLARE_REACH_MAX_EVENTS (fewer if memory runs out). */
/* Returns 1 with *ev filled, or 0 if none. */
int flare_reachability_poll_event(flare_reachability *r, flare_reach_event *ev);

/* When the next probe is due. */
/* Returns when flare_reachability_handle_expiry is next due (FLARE_TSTAMP_NEVER if never). */
flare_tstamp flare_reachability_expiry(const flare_reachability *r);
/* Returns 1 if a probe round is due at now (the glue then picks servers and
 * addresses and runs probes) and schedules the following one; else 0. */
int flare_reachability_handle_expiry(flare_reachability *r, flare_tstamp now);
/* Something changed (new addresses, new candidate servers): if anything is
 * UNKNOWN, bring the next probe to within force_delay. */
void flare_reachability_poke(flare_reachability *r, flare_tstamp now);

/* Picks up to want distinct servers among cands[0..n) (connected peers that
 * support the protocol), least recently asked first (ties: candidate
 * order), writes their indexes to idx[] and records them as asked at now
 * (as memory allows). Returns the count. */
size_t flare_reachability_pick_servers(flare_reachability *r, flare_tstamp now,
                                       const flare_peerid *cands, size_t n, size_t want,
                                       size_t *idx);

/* Writes the tracked addresses in probe priority order (UNKNOWN first, then
 * by rising confidence) to out[0..cap); returns the count. A v2 server dials
 * only the first it accepts, so the neediest goes first. */
size_t flare_reachability_addrs_to_probe(const flare_reachability *r, flare_multiaddr *out,
                                         size_t cap);

#ifdef __cplusplus
}
#endif
#endif
