/*
 * flare/kad.h - the libp2p Kademlia DHT (/ipfs/kad/1.0.0) on a host.
 *
 * flare_kad_enable starts the DHT on a host: it bootstraps from the
 * configured peers (dials them; a peer enters the routing table only after
 * it answered one of our requests), looks itself up, and refreshes the
 * table every refresh_interval (a server also 10 s after its table first
 * holds a peer, or after it turned server). Peers that identify announces
 * as DHT servers are asked once (a FIND_NODE for our own key) and admitted
 * when they answer.
 *
 * Mode: a server answers requests and announces the protocol through
 * identify; a client only asks. FLARE_KAD_MODE_AUTO follows AutoNAT, as
 * go-libp2p does: a client until some IP version is found public, a client
 * again once none is. Changes are reported as FLARE_HOST_EV_DHT.
 *
 * Queries run iterative lookups (alpha parallel requests, over
 * disjoint_paths disjoint paths, ending by the beta rule below) and report
 * through their callback, always from the loop, exactly once (unless the
 * host is destroyed first).
 */
#ifndef FLARE_KAD_H
#define FLARE_KAD_H

#include "flare/host.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FLARE_KAD_PROTOCOL  "/ipfs/kad/1.0.0"
#define FLARE_KAD_MAX_ADDRS 8 /* addresses per peer in results */

typedef enum flare_kad_mode {
    FLARE_KAD_MODE_AUTO = 0, /* by reachability (AutoNAT) */
    FLARE_KAD_MODE_CLIENT = 1,
    FLARE_KAD_MODE_SERVER = 2,
} flare_kad_mode;

/* DHT settings. Start from flare_kad_settings_default() (it sets
 * struct_size and every field); flare_kad_enable refuses a struct whose
 * struct_size differs from the library's. */
typedef struct flare_kad_settings {
    size_t struct_size;
    flare_kad_mode mode; /* default FLARE_KAD_MODE_AUTO */
    size_t k;            /* bucket size and replication; default 20 */
    size_t alpha;        /* parallel requests per lookup; default 3 */
    /* Resiliency, as go-libp2p-kad-dht's: a lookup stops following the
     * peers answers name once the beta closest peers it knows (failed ones
     * left out) have answered; then the rest of the k closest are asked
     * once, without following what they name. beta >= k is the strict
     * rule (until the k closest peers seen have all answered). Default 3. */
    size_t beta;
    size_t disjoint_paths;           /* S/Kademlia disjoint paths; default 1 */
    flare_tstamp request_timeout;    /* one request, dial included; default 10 s */
    flare_tstamp refresh_interval;   /* routing table refresh; default 10 min */
    flare_tstamp provider_ttl;       /* provider records we hold; default 48 h */
    flare_tstamp republish_interval; /* our own provider records; default 22 h */
    flare_tstamp record_ttl;         /* value records we hold; default 36 h */
    size_t max_records;              /* value records held; default 1024 */
    size_t max_provider_keys;        /* keys with provider records held; default 4096 */
    /* flare_kad_get_value: valid records (ours included) that end the
     * lookup early; 0 runs the whole lookup, as go's default. Default 0. */
    size_t get_quorum;
    /* Bootstrap peers (/.../p2p/ID), copied; at most 64 are kept. */
    const flare_multiaddr *bootstrap;
    size_t nbootstrap;
} flare_kad_settings;

/* Fills every field of s with its default, and s->struct_size. */
void flare_kad_settings_default(flare_kad_settings *s);

/* Starts the DHT on h with s (copied; NULL: the defaults). Returns 0, or
 * FLARE_ERR_EXISTS (already enabled), FLARE_ERR_INVALID_ARG (struct_size,
 * k, alpha, beta or request_timeout of 0, a bootstrap address without /p2p/),
 * FLARE_ERR_STATE (h was built without the DHT service), FLARE_ERR_NOMEM. */
int flare_kad_enable(flare_host *h, const flare_kad_settings *s);

/* Returns 1 if the DHT runs as a server now, 0 as a client or when it is
 * not enabled. */
int flare_kad_is_server(flare_host *h);
/* Returns the number of peers in the routing table (0 when not enabled). */
size_t flare_kad_routing_table_size(flare_host *h);
/* Copies up to cap peers of the routing table into out. Returns the count. */
size_t flare_kad_routing_table(flare_host *h, flare_peerid *out, size_t cap);
/* Sets the mode (AUTO follows reachability again). Returns 0, or
 * FLARE_ERR_STATE when the DHT is not enabled, FLARE_ERR_INVALID_ARG. */
int flare_kad_set_mode(flare_host *h, flare_kad_mode mode);

/* A record namespace's rules (keys "/ns/..."). validate returns 0 if value
 * may be stored under key, else a negative FLARE_ERR_* code; select
 * returns 1 if value b is better than a (anything else keeps a). Both run
 * from the loop, on our own PUT and GET, on records peers send us and on
 * those lookups meet; they must not call back into the DHT. */
typedef int (*flare_kad_validate_cb)(const uint8_t *key, size_t klen, const uint8_t *value,
                                     size_t vlen, void *user);
typedef int (*flare_kad_select_cb)(const uint8_t *key, size_t klen, const uint8_t *a, size_t alen,
                                   const uint8_t *b, size_t blen, void *user);
/* Registers (or replaces, "pk" included) the validator of namespace ns
 * (copied; at most 31 bytes, no '/') for flare_kad_put_value,
 * flare_kad_get_value and the records peers store on us. user is passed to
 * both callbacks and must outlive the host. A remote server only accepts a
 * namespace it has a validator for. Returns 0, or FLARE_ERR_STATE (the DHT
 * is not enabled), FLARE_ERR_INVALID_ARG (ns NULL, empty, too long or with
 * '/', a NULL callback), FLARE_ERR_LIMIT (8 namespaces registered). */
int flare_kad_add_validator(flare_host *h, const char *ns, flare_kad_validate_cb validate,
                            flare_kad_select_cb select, void *user);

/* A peer found by a query, with the addresses we learnt for it. */
typedef struct flare_kad_peer {
    flare_peerid id;
    size_t naddrs;
    flare_multiaddr addrs[FLARE_KAD_MAX_ADDRS];
} flare_kad_peer;

/* status 0 with n peers (valid during the call), or the error:
 * FLARE_ERR_NOT_FOUND (nothing found), FLARE_ERR_UNREACHABLE (no peer to
 * ask: the routing table is empty). */
typedef void (*flare_kad_peers_cb)(flare_host *h, int status, const flare_kad_peer *peers, size_t n,
                                   void *user);
/* status 0 with the best valid value found, or the error. */
typedef void (*flare_kad_value_cb)(flare_host *h, int status, const uint8_t *value, size_t len,
                                   void *user);
/* status 0 once stored on n peers (n > 0), or the error. */
typedef void (*flare_kad_done_cb)(flare_host *h, int status, size_t n, void *user);

/* The k peers closest to key (any bytes; a peer ID for peers) that answered
 * a lookup, closest first. Returns 0 (cb follows), or FLARE_ERR_STATE (not
 * enabled), FLARE_ERR_INVALID_ARG (key empty or over 256 bytes),
 * FLARE_ERR_NOMEM. */
int flare_kad_closest_peers(flare_host *h, const uint8_t *key, size_t klen, flare_kad_peers_cb cb,
                            void *user);
/* The addresses of peer: at once (from the peerstore) when we hold a
 * direct connection to it, else by a lookup that ends as soon as the peer
 * itself or a server that knows its addresses names it (relayed addresses
 * included). cb gets one peer; the addresses also go to the peerstore, so
 * flare_host_connect can dial them. Returns as flare_kad_closest_peers. */
int flare_kad_find_peer(flare_host *h, const flare_peerid *peer, flare_kad_peers_cb cb, void *user);
/* Up to max (0: 20) providers of key (a multihash, e.g. a CID's), local
 * ones included. Returns as flare_kad_closest_peers. */
int flare_kad_find_providers(flare_host *h, const uint8_t *key, size_t klen, size_t max,
                             flare_kad_peers_cb cb, void *user);
/* Announces us as a provider of key (a multihash of at most 64 bytes) to
 * the k closest peers, and again every republish_interval until
 * flare_kad_stop_providing. Returns as flare_kad_closest_peers
 * (FLARE_ERR_LIMIT: 64 keys are provided already). */
int flare_kad_provide(flare_host *h, const uint8_t *key, size_t klen, flare_kad_done_cb cb,
                      void *user);
/* Stops republishing key. Returns 0 or FLARE_ERR_NOT_FOUND. */
int flare_kad_stop_providing(flare_host *h, const uint8_t *key, size_t klen);
/* Stores key = value on the k closest peers (and locally when a server).
 * The value must pass its namespace's validator (the "pk" one is built
 * in). Returns as flare_kad_closest_peers, or the validator's error
 * (FLARE_ERR_UNSUPPORTED: no validator for the namespace). */
int flare_kad_put_value(flare_host *h, const uint8_t *key, size_t klen, const uint8_t *value,
                        size_t vlen, flare_kad_done_cb cb, void *user);
/* The value of key: the best valid record (by its namespace's select) of
 * our own and those the lookup met, as go's GetValue. The lookup ends
 * early once settings.get_quorum valid records came in (0: it runs to the
 * end). After the answer, the closest peers that did not hold the best
 * record get it by a PUT_VALUE (outdated copies are corrected). Returns as
 * flare_kad_closest_peers. */
int flare_kad_get_value(flare_host *h, const uint8_t *key, size_t klen, flare_kad_value_cb cb,
                        void *user);
/* The same with an explicit quorum (0: the whole lookup). Returns as
 * flare_kad_get_value. */
int flare_kad_get_value_quorum(flare_host *h, const uint8_t *key, size_t klen, size_t quorum,
                               flare_kad_value_cb cb, void *user);

/* Our pk record: key "/pk/" + our binary peer ID, value our encoded public
 * key. Returns 0 with the lengths set, or FLARE_ERR_BUFFER_TOO_SMALL. */
int flare_kad_pk_record(flare_host *h, uint8_t *key, size_t *klen, uint8_t *value, size_t *vlen);

#ifdef __cplusplus
}
#endif
#endif
