/* The whole Flare flow on a simulated internet, as `flare sim` and
 * bench_kad_sim run it and as the churn test builds on it: N nodes, a share
 * of them public (DHT servers, every other one a Circuit Relay v2 relay),
 * the rest private behind NATs drawn from a mix of mapping and filtering
 * behaviours. Every node bootstraps from three peers drawn from the
 * three fixed bootstrap nodes and the public nodes that joined before it;
 * private nodes run AutoNAT, join the DHT as clients, find relays through
 * it (AutoRelay, no relay configured) and reserve. Then disjoint random
 * pairs of private nodes with a reservation dial each other by peer ID (DHT
 * lookup, relayed connection, DCUtR). Everything is seeded: the same
 * configuration gives the same run. docs/cli.md (`flare sim`) documents the
 * flags and the summary's fields. */
#ifndef FLARE_SIMNET_H
#define FLARE_SIMNET_H

#include <stdatomic.h>
#include <stdio.h>

#include "flare/host.h"
#include "flare/sim.h"

#define SIMNET_MAX_MIX 32

/* One kind of NAT of the private nodes and its share (any scale). */
typedef struct simnet_mix {
    flare_sim_nat_behavior mapping, filtering;
    double weight;
} simnet_mix;

typedef struct simnet_config {
    int nodes;               /* 10..100000; default 200 */
    uint64_t seed;           /* default 1 */
    int pairs;               /* pairs of private nodes that dial by ID; default 20 */
    double public_pct;       /* share of public nodes (at least 4); default 30 */
    double join_s;           /* joins over the first half, settling at most the rest; 60 */
    double dial_s;           /* how long the pairs get at most; default 60 */
    int conn_low, conn_high; /* the hosts' connection manager marks; 0: defaults */
    int plaintext;           /* /plaintext/2.0.0 instead of Noise (CPU: no key agreements) */
    int threads;             /* threads of the simulator; default 1; more: 8 partitions, or
                                one per thread if more (flare_sim_set_partitions) */
    simnet_mix mix[SIMNET_MAX_MIX];
    int nmix;       /* default: simnet_default_mix */
    int keep_world; /* simnet_run leaves a successful run's world to the process's exit */
} simnet_config;

/* The default NAT mix (docs/benchmarks.md says where it comes from). */
extern const simnet_mix simnet_default_mix[];
extern const int simnet_default_nmix;

void simnet_config_default(simnet_config *c);
/* Reads a NAT mix: lines "MAPPING FILTERING WEIGHT", each behaviour ei, ad
 * or apd, '#' starts a comment. Returns 0, or -1 (reported on stderr). */
int simnet_load_mix(simnet_config *c, const char *file);
/* Parses the scenario's flags (--nodes, --seed, --pairs, --public,
 * --nat-mix, --join-s, --dial-s, --conn-low, --conn-high,
 * --security noise|plaintext, --threads, --json) from argv[1..]; *json set by
 * --json. Returns 0, or -1 after naming the bad flag on stderr (prefixed with prog). */
int simnet_parse_args(simnet_config *c, int argc, char **argv, const char *prog, int *json);

typedef struct simnet_node {
    flare_sim_host *sh;
    flare_host *h; /* NULL once the node left */
    char ip[32];
    int priv, relay, mix;
    int rsv_ok;
    unsigned conns_opened;     /* connections opened, counted at this end */
    int pair;                  /* index of its pair, -1 */
    flare_tstamp punched;      /* first successful hole punch (0: none) */
    flare_tstamp punch_over;   /* first hole punch that ended, either way (0: none) */
    flare_tstamp added, ready; /* joined; its DHT table first held a peer (0: not yet) */
} simnet_node;

typedef struct simnet_pair {
    int a, b;
    flare_tstamp start;
    int found, connected, failed;
    int over; /* the dial by peer ID failed, or connected without a relay */
} simnet_pair;

#define SIMNET_SLOTS      16
#define SIMNET_PARTITIONS 8 /* with threads > 1 (at least one per thread) */

/* Live bytes. One thread: exact, peak at every allocation. Several: each
 * thread adds to a slot of its own, and the peak is sampled after every
 * window of the parallel run (the live sum is then the same in every run). */
typedef struct simnet_counting {
    struct simnet_slab *slab; /* where w->mem's blocks come from (slab.h) */
    size_t live, peak;
    int threaded;
    struct {
        _Alignas(64) atomic_llong live;
    } slot[SIMNET_SLOTS];
} simnet_counting;

typedef struct simnet {
    simnet_config cfg;
    flare_sim *sim;
    flare_prng rng;
    simnet_counting count;
    flare_mem mem; /* counts every byte the simulation and the hosts hold */
    /* One signature cache for every host: they all run in this thread, and
     * a node's signed record is then verified once, not by each peer. */
    flare_sig_cache *sigc;
    simnet_node *n;
    int nn, cap, npub;
    simnet_pair *p;
    int np;
    void *fc;       /* the pairs' lookup contexts */
    FILE *progress; /* progress lines, or NULL */
    double t0;      /* wall clock at init */
    int diag;       /* SIMNET_DIAG set: a line per failed lookup by ID */
    int diag_failed, diag_none_near, diag_near_not_asked;
} simnet;

/* Builds an empty world (no node yet). Returns 0 or FLARE_ERR_NOMEM.
 * Call simnet_free after either outcome. */
int simnet_init(simnet *w, const simnet_config *c, FILE *progress);
/* Adds cfg.nodes nodes over join_s / 2, then lets the network settle for
 * join_s / 2 at most: the settling ends early once every private node holds
 * a reservation (checked every 100 ms) and 2 s have passed since, but not
 * before 5 s after the last join. Returns 0 or the first error (reported
 * on progress). */
int simnet_join(simnet *w);
/* A node joins now: public (a DHT server, a relay every other one) or
 * private behind a NAT from the mix. Returns its index or an error. */
int simnet_add_node(simnet *w, int priv);
/* Node i leaves: its host is freed (its connections just end). */
void simnet_leave(simnet *w, int i);
void simnet_run_s(simnet *w, double s);
/* Picks disjoint random pairs of private nodes holding a reservation; each
 * looks the other up by peer ID and connects; runs until every pair has its
 * outcome (a hole punch ended, or the lookup or the dial failed) and 2 s
 * more, dial_s at most (checked every 100 ms). */
int simnet_dial_pairs(simnet *w);

typedef struct simnet_summary {
    int nodes, public_nodes, private_nodes, private_with_relay, private_reachable;
    int pairs, found, direct;
    double wall_s, sim_s, direct_rate;
    double ms_to_direct_p50, ms_to_direct_p90;
    size_t relay_reservations_max, relays;
    double relay_reservations_mean;
    double lookup_hops_p50;
    size_t bytes_per_node;
    char per_pairing[16384]; /* a JSON object */
} simnet_summary;

void simnet_summarize(simnet *w, simnet_summary *s);
/* The summary as one JSON line (with "event":"sim_summary", no newline);
 * ts >= 0 adds "ts" (the CLI's events carry the wall-clock time). */
int simnet_summary_json(const simnet_summary *s, uint64_t seed, double ts, char *out, size_t cap);
void simnet_free(simnet *w);

/* init + join + dial_pairs + summarize + free (no free after a successful
 * run with keep_world: the caller is about to exit). */
int simnet_run(const simnet_config *c, FILE *progress, simnet_summary *s);

#endif
