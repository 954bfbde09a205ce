/*
 * flare/sim_world.h - a ready-made hole-punching scenario on the simulated
 * network (libflare-sim), as `flare demo` runs it and as tests and
 * benchmarks start from:
 *
 *   - R, a public relay server at FLARE_SIM_WORLD_RELAY_IP on the internet;
 *   - B, a private listener at 10.0.2.2 behind NAT-B (203.0.113.2);
 *   - A, a private dialer at 10.0.1.2 behind NAT-A (203.0.113.1).
 *
 * Every host listens on port 4001 and counts the host events it sees in
 * its flare_sim_world_node. flare_sim_world_setup makes B reserve a slot on
 * R and A dial B through R; DCUtR then tries to connect them directly.
 *
 * The world and its nodes are plain structs: read their fields, and use
 * w->sim, w->nat_a, w->nat_b and each node's h with the rest of the API.
 * Not thread-safe; everything is freed by flare_sim_world_free.
 */
#ifndef FLARE_SIM_WORLD_H
#define FLARE_SIM_WORLD_H

#include <stdio.h>

#include "flare/host.h"
#include "flare/relay_server.h"
#include "flare/sim.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The relay's address (port 4001). */
#define FLARE_SIM_WORLD_RELAY_IP "198.51.100.10"

/* One host of the world and what its event callback has counted. */
typedef struct flare_sim_world_node {
    flare_sim_host *sh;
    flare_host *h;
    const char *name; /* "R", "A" or "B" */
    FILE *log;        /* timeline, or NULL */
    /* Counts of FLARE_HOST_EV_* events seen. */
    int rsv_ok, rsv_failed, rsv_lost;             /* RESERVATION_OK, _FAILED, _LOST */
    int relay_reserved, circ_opened, circ_closed; /* RELAY_RESERVED, RELAY_CIRCUIT_* */
    int identified, opened, closed, pings;        /* IDENTIFIED, CONN_*, PING */
    int punch_done;                               /* HOLEPUNCH */
    int last_close_err;                           /* the last CONN_CLOSED's error */
    flare_multiaddr relayed;                      /* the last reservation's address */
    /* The last HOLEPUNCH event: its error (0: success), reason, attempt,
     * relay round trip, time, and the direct address on success. */
    int punch_err;
    const char *punch_reason;
    unsigned attempt;
    flare_tstamp relay_rtt, done_at;
    flare_multiaddr direct_addr;
    flare_tstamp first_step_at; /* the first HOLEPUNCH_STEP's time */
} flare_sim_world_node;

typedef struct flare_sim_world {
    flare_sim *sim;
    flare_sim_nat *nat_a, *nat_b;
    flare_sim_world_node r, a, b;
    const flare_mem *mem;
    /* A's dial of B through R (flare_sim_world_dial_relayed). */
    int dial_accepted, dial_calls, dial_status;
    flare_tstamp dial_started, relayed_up;
} flare_sim_world;

/* The world's settings. Start from flare_sim_world_settings_default(),
 * which sets struct_size and every field; zero is never "the default". */
typedef struct flare_sim_world_settings {
    size_t struct_size;                /* set by flare_sim_world_settings_default */
    flare_sim_nat_config nat_a, nat_b; /* default: flare_sim_nat_config_default */
    /* One-way delays of the links of NAT-A, NAT-B and R (default 25 ms
     * each), and of A's and B's own links inside their LANs (default 0). */
    flare_tstamp delay_a, delay_b, delay_r, delay_ab;
    double loss;   /* packet loss of the NATs' links, 0..1; default 0 */
    uint64_t seed; /* the simulation's; default 1 */
    FILE *log;     /* a timeline of reservations and hole punches; default NULL */
    /* Every host's settings (copied); NULL: flare_host_settings_default()
     * with doc_addrs_public set (the simulator's addresses are TEST-NET). */
    const flare_host_settings *host;
    const flare_relay_server_settings *relay; /* R's; NULL: the defaults */
    const flare_mem *mem;                     /* the simulation's and every host's; NULL: libc */
} flare_sim_world_settings;

/* Fills s with the defaults documented on each field. */
void flare_sim_world_settings_default(flare_sim_world_settings *s);

/* Builds the world into *w: the NATs, and R (a relay server), A and B,
 * each listening on port 4001. s NULL: the defaults.
 * Returns 0, or a negative FLARE_ERR_* code: FLARE_ERR_INVALID_ARG
 * (s->struct_size is not sizeof(flare_sim_world_settings)),
 * FLARE_ERR_NOMEM, or what flare_host_new, flare_host_listen or
 * flare_host_enable_relay_server gave. Call flare_sim_world_free after
 * either outcome. */
int flare_sim_world_build(flare_sim_world *w, const flare_sim_world_settings *s);

/* Builds the world, makes B reserve a slot on R (A connects to R too, to
 * learn its own address), then dials B from A through R and runs until
 * that dial ends. Returns 0 when the relayed connection is up (the hole
 * punch then runs by itself as the simulation runs), or a negative
 * FLARE_ERR_* code: what flare_sim_world_build gave, FLARE_ERR_TIMEOUT (no
 * reservation, or the dial did not end within 10 s), or the dial's error.
 * Call flare_sim_world_free after either outcome. */
int flare_sim_world_setup(flare_sim_world *w, const flare_sim_world_settings *s);

/* Dials B's relayed address (b.relayed) from A, recording the outcome in
 * w->dial_calls, dial_status and relayed_up.
 * Returns 0 if the dial started, or flare_host_dial's error. */
int flare_sim_world_dial_relayed(flare_sim_world *w);

/* Writes R's address with its peer ID to *ma. Returns 0 or the multiaddr
 * error. */
int flare_sim_world_relay_addr(const flare_sim_world *w, flare_multiaddr *ma);

/* Runs the simulation until B reports the end of the hole punch or limit
 * ns have passed, then 3 s more (the relayed connection's grace). */
void flare_sim_world_run_punch(flare_sim_world *w, flare_tstamp limit);

/* Returns 1 if A has a direct (not limited) connection to B, else 0. */
int flare_sim_world_direct(const flare_sim_world *w);

/* The event callback of every node (user: the flare_sim_world_node): counts
 * the event into the node and writes the timeline. A caller that installs
 * its own callback on a node's host may call it to keep the counts. */
void flare_sim_world_on_event(flare_host *h, const flare_host_event *ev, void *node);

/* Frees the hosts and the simulation (w itself is the caller's). */
void flare_sim_world_free(flare_sim_world *w);

#ifdef __cplusplus
}
#endif

#endif
