/*
 * flare/addrmgr.h - the address manager: observed addresses, external
 * addresses and the NAT mapping type.
 *
 * A sans-I/O module (no host dependency; time is an argument). The host
 * feeds it what identify reports ("peer P, on a connection whose local end
 * is L, inbound or outbound, sees us at O") and connection closes; it gives
 * back the external addresses to advertise (confirmed) and to try in DCUtR
 * (confirmed + candidates), and the NAT mapping behaviour (RFC 4787).
 *
 * Which observations count (flare_addrmgr_observe):
 *  - dropped: relayed connections or observed addresses, observed addresses
 *    that are not public (private, loopback, link-local, CGNAT, unspecified;
 *    TEST-NET/documentation ranges count as public when doc_is_public), not
 *    /ip4|ip6/.../tcp|udp/..., of another IP version or transport than the
 *    connection, or of a transport/IP version we do not listen on;
 *  - inbound connection: the observed address is an external address of the
 *    listen address the peer dialed;
 *  - outbound with port reuse (the local port is one of our listen ports,
 *    found by matching L against the listen addresses): the observed port is
 *    the NAT mapping of the listen port, so it is a candidate for it too;
 *  - outbound from an ephemeral port: NOT an address of any listen address
 *    (nobody can dial that mapping; rust-libp2p #4496/#5820 advertised it).
 *    Kept only for NAT classification.
 *
 * Confirmation. Observers are counted by IP group (the observer's IP masked
 * to /16 for IPv4 and /56 for IPv6 by default), so many peers on one
 * network vouch once. An external address is confirmed when
 *     groups(addr) >= min(activation_threshold, max(1, G))
 * where G is the number of distinct observer groups with a live observation
 * that could have vouched for it: inbound or port-reuse observations of the
 * same IP version and transport. Ephemeral-port observers are left out of G
 * because they can never vouch for a listen address; counting them would
 * recreate go-libp2p #2941 (a fixed threshold of 4 never activates in a
 * network of 3 peers). Consequences: a lone observer confirms what it sees
 * (a tiny network is not stuck); two observers that disagree confirm
 * nothing; once G reaches the threshold the configured value applies. When
 * the NAT of that IP version and transport is classified
 * endpoint-dependent, the configured threshold applies regardless of G
 * (port-reuse observations then name per-destination mappings).
 *
 * Lifetime. An observation lives while its connection is open and for ttl
 * after flare_addrmgr_conn_closed (or after its last report); an address
 * nobody reports any more disappears ttl later. Memory is bounded by
 * max_observations: when full, the observation that supports the fewest
 * observer groups (then the oldest) is evicted, so a flood of distinct
 * addresses from many observers cannot push out a confirmed address.
 *
 * NAT mapping classification (flare_addrmgr_nat_type): per local socket
 * (local IP, port, transport), if every observer group reports the local
 * address itself, the socket votes "no NAT"; with >= 2 groups, if they all
 * see the same external IP:port (or, with >= 3 groups, a strict majority
 * does) it votes endpoint-independent, otherwise endpoint-dependent. Votes
 * of the sockets of one IP version (and transport, if asked) decide by
 * strict majority; anything else is unknown. Evidence needs several
 * observers on ONE local socket: port reuse (listen port) or a shared UDP
 * socket; one-connection ephemeral TCP sockets only tell "NAT or not".
 */
#ifndef FLARE_ADDRMGR_H
#define FLARE_ADDRMGR_H

#include "flare/common.h"
#include "flare/ipaddr.h"
#include "flare/multiaddr.h"
#include "flare/peerid.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FLARE_ADDRMGR_MAX_LISTEN 16

typedef enum flare_nat_type {
    FLARE_NAT_UNKNOWN = 0,          /* not enough (or conflicting) evidence */
    FLARE_NAT_NONE,                 /* observers see our local address: no NAT */
    FLARE_NAT_ENDPOINT_INDEPENDENT, /* one mapping for all destinations (cone) */
    FLARE_NAT_ENDPOINT_DEPENDENT,   /* a mapping per destination (symmetric) */
} flare_nat_type;

/* The manager's settings. Start from flare_addrmgr_settings_default(),
 * which sets struct_size and every field. Zero is never "the default": a
 * group prefix of 0 bits puts every observer of that family in one group;
 * activation_threshold, ttl and max_observations must not be 0. */
typedef struct flare_addrmgr_settings {
    size_t struct_size;            /* set by flare_addrmgr_settings_default */
    unsigned activation_threshold; /* observer groups to confirm; default 2 */
    flare_tstamp ttl;              /* lifetime after close/last report; default 10 min */
    size_t max_observations;       /* memory bound; default 256 (max 65534) */
    uint8_t v4_group_bits;         /* observer grouping prefix; default 16 (max 32) */
    uint8_t v6_group_bits;         /* default 56 (max 128) */
    int doc_is_public;             /* treat TEST-NET / 2001:db8:: as public (lab, sim) */
} flare_addrmgr_settings;

/* One external address, as returned by flare_addrmgr_entries. */
typedef struct flare_addrmgr_entry {
    flare_multiaddr addr; /* observed IP:port + the listen address's suffix */
    unsigned observers;   /* distinct observer groups reporting it */
    int confirmed;        /* 1 confirmed, 0 candidate */
    flare_tstamp last_seen;
} flare_addrmgr_entry;

typedef struct flare_addrmgr flare_addrmgr;

/* Fills s with the defaults documented on each field and sets
 * s->struct_size. */
void flare_addrmgr_settings_default(flare_addrmgr_settings *s);

/* Creates a manager. s may be NULL (defaults); mem may be NULL (libc).
 * Returns 0 with *out set, or FLARE_ERR_NOMEM, FLARE_ERR_INVALID_ARG
 * (s->struct_size is not sizeof(flare_addrmgr_settings), group bits out of
 * range, activation_threshold, ttl or max_observations 0, max_observations
 * above 65534). */
int flare_addrmgr_new(flare_addrmgr **out, const flare_addrmgr_settings *s, const flare_mem *mem);
void flare_addrmgr_del(flare_addrmgr *m);

/* Registers a listen address (after resolving port 0; the IP may be the
 * unspecified address, which matches any local IP of its version). Only
 * /ip4|ip6/.../tcp|udp/... addresses take part. Returns 0, or
 * FLARE_ERR_EXISTS, FLARE_ERR_LIMIT (FLARE_ADDRMGR_MAX_LISTEN),
 * FLARE_ERR_UNSUPPORTED (not IP + TCP/UDP, or relayed),
 * FLARE_ERR_INVALID_ARG, FLARE_ERR_NOMEM. */
int flare_addrmgr_add_listen_addr(flare_addrmgr *m, const flare_multiaddr *ma);
/* Removes one. 0 or FLARE_ERR_NOT_FOUND. */
int flare_addrmgr_remove_listen_addr(flare_addrmgr *m, const flare_multiaddr *ma);

/* Records what observer (reached at observer_ip; the port is ignored) says
 * it sees us at, on a connection whose local end is local. outbound: we
 * dialed (port reuse is detected from local). A repeated report on the same
 * (observer, local) replaces the previous one. Returns 0 if recorded, or
 * FLARE_ERR_REFUSED (dropped by the rules above: relayed, not public, not a
 * transport we listen on, inbound on no listen address, IP version or
 * transport mismatch), FLARE_ERR_UNSUPPORTED (local or observed is not
 * /ip4|ip6/.../tcp|udp/...), FLARE_ERR_INVALID_ARG. */
int flare_addrmgr_observe(flare_addrmgr *m, const flare_peerid *observer,
                          const flare_ipaddr *observer_ip, const flare_multiaddr *local,
                          int outbound, const flare_multiaddr *observed, flare_tstamp now);

/* The connection to observer whose local end is local closed (local NULL:
 * all of observer's connections). Its observations expire ttl from now.
 * Returns the number of observations affected. */
int flare_addrmgr_conn_closed(flare_addrmgr *m, const flare_peerid *observer,
                              const flare_multiaddr *local, flare_tstamp now);

/* External addresses: confirmed ones first, each group ordered by number of
 * observer groups (then most recent). Candidates only if include_candidates.
 * Writes at most cap and returns how many were written. */
int flare_addrmgr_external(flare_addrmgr *m, flare_tstamp now, flare_multiaddr *out, size_t cap,
                           int include_candidates);
/* Same, with details (always includes candidates). */
/* Returns the number of entries written (at most cap), or FLARE_ERR_INVALID_ARG. */
int flare_addrmgr_entries(flare_addrmgr *m, flare_tstamp now, flare_addrmgr_entry *out, size_t cap);

/* NAT mapping type for IP version family (4 or 6) and transport proto
 * (FLARE_MA_TCP, FLARE_MA_UDP, or 0 for both). */
/* Returns the NAT type seen for family/proto (FLARE_NAT_UNKNOWN until enough observations). */
flare_nat_type flare_addrmgr_nat_type(flare_addrmgr *m, flare_tstamp now, int family, int proto);
/* Static name, e.g. "endpoint-independent". */
/* Returns a static name. */
const char *flare_nat_type_name(flare_nat_type t);

/* Port prediction for a NAT that maps per destination: from the live
 * observations over proto (FLARE_MA_TCP or FLARE_MA_UDP) of the given
 * family, one per observer, at the IP most of them saw. *last gets that IP
 * and the highest port seen (the latest allocation of a sequential NAT);
 * *step the smallest gap between two observers' ports when it is at most
 * max_step (the NAT allocates in sequence), else 0; *observers how many
 * observers were counted. Returns 0, or FLARE_ERR_NOT_FOUND (no
 * observation). */
int flare_addrmgr_port_prediction(flare_addrmgr *m, flare_tstamp now, int family, int proto,
                                  unsigned max_step, flare_ipaddr *last, unsigned *step,
                                  unsigned *observers);

/* Bumped whenever the set of confirmed addresses (in order) or a NAT type
 * changes: when it differs from the value last seen, push identify. */
/* Returns a counter that changes whenever the external address set changes. */
uint64_t flare_addrmgr_version(const flare_addrmgr *m);

/* When the next observation expires (FLARE_TSTAMP_NEVER if none), and the
 * call that drops expired ones (and updates the version). */
/* Returns when flare_addrmgr_handle_expiry is next due (FLARE_TSTAMP_NEVER if never). */
flare_tstamp flare_addrmgr_expiry(const flare_addrmgr *m);
void flare_addrmgr_handle_expiry(flare_addrmgr *m, flare_tstamp now);

/* Number of live observations held (for tests and metrics). */
/* Returns the number of observations held. */
size_t flare_addrmgr_num_observations(const flare_addrmgr *m);

#ifdef __cplusplus
}
#endif
#endif
