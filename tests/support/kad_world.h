/* Shared pieces of the Kademlia simulator tests: DHT nodes on the simulated
 * internet (public ones, private ones behind NATs), bootstrap addresses,
 * query results and the loop that waits for them. */
#ifndef FLARE_TEST_KAD_WORLD_H
#define FLARE_TEST_KAD_WORLD_H

#include "flare/host.h"
#include "flare/kad.h"
#include "flare/sim.h"
#include "support/helpers.h"

/* A DHT node: its hosts and the address it was made at (port 4001). */
typedef struct flare_test_kad_node {
    flare_sim_host *sh;
    flare_host *h;
    char ip[32];
} flare_test_kad_node;

/* flare_test_settings_default with AutoNAT starting after 2 s. */
void flare_test_kad_host_settings(flare_host_settings *c);

/* Makes n's hosts from sp at sp->ip, listening on 4001 with 10 ms links
 * (sp's link and listen_port are set here), and keeps the ip. */
void flare_test_kad_node_make(flare_sim *sim, flare_test_kad_node *n, flare_test_host_spec *sp);

/* ma = n's address with its peer ID (a bootstrap address). */
void flare_test_kad_addr(flare_multiaddr *ma, const flare_test_kad_node *n);

/* flare_kad_settings_default in mode, with 5 s request timeouts. */
void flare_test_kad_settings(flare_kad_settings *ks, flare_kad_mode mode);

/* Enables the DHT on h with ks, bootstrapping from the nboot nodes of boot
 * (at most 8); ks's bootstrap list is left empty. */
void flare_test_kad_enable(flare_host *h, flare_kad_settings *ks,
                           const flare_test_kad_node *const *boot, size_t nboot);

/* Makes node i of world w at ip on lan. */
typedef void (*flare_test_kad_make_fn)(void *w, int i, flare_sim_lan *lan, const char *ip);

/* Nodes from..to-1 on the internet at 11.NET.(i+1).1, 0.2 s apart (joins
 * spread in time, as on a real network). */
void flare_test_kad_add_public(flare_sim *sim, int net, int from, int to,
                               flare_test_kad_make_fn make, void *w);
/* Nodes from..to-1 at 10.0.0.2, each on a LAN "lanI" of its own behind a
 * NAT at 12.NET.I.1. */
void flare_test_kad_add_private(flare_sim *sim, int net, int from, int to,
                                flare_test_kad_make_fn make, void *w);

/* Runs the simulation for s seconds. */
void flare_test_kad_run_s(flare_sim *sim, double s);

#define FLARE_TEST_KAD_PEERS 20

/* What a DHT query answered (user of the callbacks below). */
typedef struct flare_test_kad_res {
    int calls, status;
    size_t n;                                   /* peers (at most 20 kept), stores */
    flare_kad_peer peers[FLARE_TEST_KAD_PEERS]; /* the first n of them */
    int relayed;                                /* relayed addresses of peers[0] */
    uint8_t value[256];
    size_t vlen; /* of value, at most 256 kept */
} flare_test_kad_res;

void flare_test_kad_peers_cb(flare_host *h, int status, const flare_kad_peer *p, size_t n,
                             void *user);
void flare_test_kad_done_cb(flare_host *h, int status, size_t n, void *user);
void flare_test_kad_value_cb(flare_host *h, int status, const uint8_t *v, size_t len, void *user);

/* Runs the simulation until r's query answered (60 s at most); asserts it
 * answered once. */
void flare_test_kad_wait(flare_sim *sim, const flare_test_kad_res *r);

/* h connects to id by its peer ID (addresses from the peerstore or the
 * DHT); runs the simulation until the dial ended (30 s at most) and asserts
 * that it succeeded. */
void flare_test_kad_connect_ok(flare_sim *sim, flare_host *h, const flare_peerid *id);

struct simnet;
struct simnet_config;
/* The whole-flow scenario (tools/simnet) with `nodes` DHT servers only, all
 * public: joins over 10 s, 10 s more, then 10 s in which every server had
 * its first full refresh. Free with flare_test_servers_free. */
struct simnet *flare_test_servers_joined(int nodes, uint64_t seed);
/* c = the scenario's defaults with nodes, seed, pairs and plaintext
 * security (the sim tests' usual world). */
void flare_test_world_config(struct simnet_config *c, int nodes, uint64_t seed, int pairs);
/* A simnet world made from c and run through its join phase. Free with
 * flare_test_servers_free. */
struct simnet *flare_test_world_joined(const struct simnet_config *c);
void flare_test_servers_free(struct simnet *w);

/* How good the DHT servers' tables of w are now, read from the tables
 * themselves with no traffic. fill: the entries the servers' buckets hold,
 * over what they could hold (k, or fewer servers in the bucket's range; the
 * first 200 servers). For nkeys random keys, a lookup run over the tables
 * from a client's closest peers (alpha 3; a server's answer is its table's
 * 20 closest): found is the share of the true 20 closest servers among the
 * 20 closest it ended with once all of those were asked (the lookup with
 * the follow-up), found_beta the same once the 3 closest were asked (the
 * lookup without it), queries_beta the servers asked until then. */
typedef struct flare_test_tables {
    double fill, found, found_beta, queries_beta;
} flare_test_tables;
void flare_test_tables_measure(struct simnet *w, int nkeys, uint64_t seed, flare_test_tables *t);

#endif
