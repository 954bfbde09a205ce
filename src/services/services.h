/* Shared declarations of the services (src/services/): each service's table
 * and what the services offer each other. Services build on the host core
 * (host/host_int.h); the core never includes this header. */
#ifndef FLARE_SERVICES_H
#define FLARE_SERVICES_H

#include "flare/relay.h"
#include "host/host_int.h"

/* Connection manager tags of the services' protections. */
#define FLARE__TAG_RELAY_RSVP "relay-reservation"
#define FLARE__TAG_HOLEPUNCH  "holepunch"

/* The built-in services, in registration order (builtin.c). */
extern const flare__service flare__svc_relay_client;
extern const flare__service flare__svc_dcutr;
extern const flare__service flare__svc_relay_server;
extern const flare__service flare__svc_ping;
extern const flare__service flare__svc_identify;
extern const flare__service flare__svc_autonat;
extern const flare__service flare__svc_autorelay;
extern const flare__service flare__svc_kad;
extern const flare__service flare__svc_portmap;
extern const flare__service flare__svc_families;
extern const flare__service flare__svc_stun_server;
extern const flare__service flare__svc_hardpunch;
extern const flare__service flare__svc_migrate;

/* migrate.c: streams moved, refused (by either side), failed moves, and
 * the bytes sent again after moves. */
void flare__migrate_stats(flare_host *h, unsigned long *moved, unsigned long *refused,
                          unsigned long *failed, uint64_t *resent);

/* portmap.c: our mapped addresses, candidates for AutoNAT. Returns the
 * count written. */
size_t flare__portmap_candidates(flare_host *h, flare_multiaddr *out, size_t cap);
/* 1 if ext is our mapped address for the listen port of local (same
 * transport), else 0. */
int flare__portmap_maps_to(flare_host *h, const flare_multiaddr *ext, const flare_multiaddr *local);

/* The built-in list (builtin.c): for hosts built with other transports
 * (flare__host_new), e.g. in tests. */
size_t flare__services_builtin(const flare__service *const **list);

/* The wall clock in seconds (0 without one): reservation expiry. */
uint64_t flare__unix_now(flare_host *h);

/* relay_client.c. Reservations owned by AutoRelay: FLARE_ERR_EXISTS when the
 * relay already has one (of either kind; flare_host_relay_reserve takes an
 * AutoRelay one over instead); unreserve forgets an AutoRelay one (and
 * pushes identify when it was active); FLARE_ERR_NOT_FOUND otherwise. */
int flare__relay_reserve_auto(flare_host *h, const flare_multiaddr *relay_ma);
int flare__relay_unreserve_auto(flare_host *h, const flare_peerid *relay);
int flare__relay_has_manual(flare_host *h, const flare_peerid *relay);

/* The outcome of each AutoRelay reservation, reported by the relay client
 * to the observer AutoRelay sets (FLARE_ERR_STATE without a relay client). */
typedef enum {
    FLARE__RSVP_GRANTED,
    FLARE__RSVP_REFUSED, /* the relay answered no, or with something unusable */
    FLARE__RSVP_FAILED,  /* dial, connection or stream failure: no answer */
    FLARE__RSVP_LOST,    /* a granted reservation's connection dropped */
    FLARE__RSVP_TAKEN,   /* the application reserved there itself: no longer ours */
} flare__rsvp_outcome;
typedef void (*flare__rsvp_observer)(flare_host *h, const flare_peerid *relay,
                                     flare__rsvp_outcome what, int err);
int flare__relay_set_rsvp_observer(flare_host *h, flare__rsvp_observer fn);

/* autorelay.c. The DHT's random walks (kad.c) name the relays they return,
 * a uniform sample of the network's relays, which AutoRelay prefers over the
 * relays it merely met (such as a bootstrap node, met by every node).
 * walk_started: a walk began, so wait a little for its relays before taking
 * any met relay; walk_relays: one walk's relays (n 0: it found none). */
void flare__autorelay_walk_started(flare_host *h);
void flare__autorelay_walk_relays(flare_host *h, const flare_peerid *relays, size_t n);
/* met_relays: relays that answered the DHT's own lookups for random keys
 * (the table refresh, the self lookup): the same kind of sample as a walk's,
 * already connected, at no cost. sampled: how many of the sample are
 * connected and free to pick now; a walk is needed only when they are few. */
void flare__autorelay_met_relays(flare_host *h, const flare_peerid *relays, size_t n);
size_t flare__autorelay_sampled(flare_host *h);

#endif
