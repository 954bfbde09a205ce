/* Helpers shared by tests, fuzz harnesses and benchmarks (the
 * flare_testhelpers library: no cmocka, so programs outside the unit tests
 * link it too). A helper that cannot go on (a parse of a literal failed)
 * aborts the program. The hole-punching world with a relay and two NATs is
 * in libflare-sim: flare/sim_world.h. */
#ifndef FLARE_TEST_HELPERS_H
#define FLARE_TEST_HELPERS_H

#include <stddef.h>
#include <stdint.h>

#include "flare/host.h"
#include "flare/sim.h"
#include "flare/sim_world.h"

/* ---- values -------------------------------------------------------------- */

/* The multiaddr s (a literal; aborts if it does not parse). */
flare_multiaddr flare_test_ma(const char *s);
/* A well-formed peer ID (sha256 multihash) told apart by n. */
flare_peerid flare_test_pid(unsigned n);

/* ---- allocator ----------------------------------------------------------- */

/* What allocates through flare_test_heap_mem(): live and peak bytes, live
 * blocks and allocation calls; fail_at makes one call fail. */
typedef struct flare_test_heap {
    long bytes, peak; /* live and peak bytes */
    long blocks;      /* live blocks */
    long calls;       /* malloc, calloc and realloc calls */
    long fail_at;     /* the 1-based call that returns NULL; 0: none */
} flare_test_heap;
/* Allocator hooks counting into heap (which must outlive them). */
flare_mem flare_test_heap_mem(flare_test_heap *heap);

/* ---- hosts on the simulator ---------------------------------------------- */

/* The library's host defaults, with the simulator's TEST-NET addresses
 * counted as public. */
void flare_test_settings_default(flare_host_settings *cfg);

/* ma = /ip4/IP/tcp/PORT, then /p2p/PEER unless peer is NULL. Returns 0 or
 * the multiaddr error. */
int flare_test_tcp_addr(flare_multiaddr *ma, const char *ip, int port, const flare_peerid *peer);

/* What flare_test_host_make builds: a simulated host on lan at ip and a
 * flare host on it. */
typedef struct flare_test_host_spec {
    const char *name;
    flare_sim_lan *lan;
    const char *ip;
    flare_sim_link link;
    uint8_t seed[32];               /* the host key's */
    const flare_host_settings *cfg; /* NULL: flare_test_settings_default */
    flare_host_event_cb on_event;
    void *user;
    int listen_port;      /* 0: does not listen */
    const flare_mem *mem; /* the host's (NULL: libc) */
} flare_test_host_spec;

/* Makes the hosts of sp into *sh and *h. Returns 0 or the first error
 * (FLARE_ERR_NOMEM when the simulated host could not be made); what was
 * made is freed by flare_host_del(*h) and flare_sim_del. */
int flare_test_host_make(flare_sim *sim, const flare_test_host_spec *sp, flare_sim_host **sh,
                         flare_host **h);

/* A host on the simulator and what its events counted (the transport sim
 * tests' nodes). */
typedef struct flare_test_node {
    flare_sim_host *sh;
    flare_host *h;
    const char *ip;
    int opened, closed, identified, pings, observed; /* CONN_OPENED, ... events */
    int closed_err;                                  /* the last CONN_CLOSED's error */
    flare_tstamp rtt;                                /* the last PING's */
    flare_multiaddr observed_addr;                   /* the last OBSERVED_ADDR's */
} flare_test_node;
/* The nodes' event callback (user: the flare_test_node). */
void flare_test_node_event(flare_host *h, const flare_host_event *ev, void *node);
/* Zeroes n and makes its host at ip on lan (link delay, key seed; cfg NULL:
 * flare_test_settings_default) counting into n. Returns 0 or the
 * flare_test_host_make error. */
int flare_test_node_make(flare_sim *sim, flare_sim_lan *lan, flare_test_node *n, const char *name,
                         const char *ip, uint8_t seed, flare_tstamp delay,
                         const flare_host_settings *cfg);

/* Runs the simulation for ms milliseconds. */
void flare_test_run_ms(flare_sim *sim, long ms);

/* Two hosts on the simulated internet: A at 198.51.100.1 (key seed {1};
 * events to on_event with user) and B at 198.51.100.2 listening on 4001
 * (key seed {2}); bma is B's address with its peer ID. */
typedef struct flare_test_pair {
    flare_sim_host *sha, *shb;
    flare_host *a, *b;
    flare_multiaddr bma;
} flare_test_pair;
/* Returns 0 or the first error (hosts made are freed as flare_test_host_make's). */
int flare_test_pair_make(flare_sim *sim, flare_test_pair *p, flare_host_event_cb on_event,
                         void *user);

/* The hole-punching world of flare/sim_world.h (R public, A and B behind
 * NAT-A and NAT-B, 25 ms on the NATs' and R's links, simulation seed 5)
 * with every host listening on one transport only: /ip4/IP/<transport>,
 * e.g. "udp/4001/quic-v1". */
typedef struct flare_test_world_spec {
    const char *transport;
    const flare_sim_nat_config *nat_a, *nat_b; /* NULL: flare_sim_nat_config_default */
    const flare_mem *mem_b;                    /* B's host allocator (NULL: libc) */
} flare_test_world_spec;

/* Builds the world into *w (zeroed first), makes B reserve a slot on R over
 * the transport (A connects to R too), then dials B from A through R and
 * runs until the dial ends, as flare_sim_world_setup. Returns 0 when the
 * relayed connection is up, else the first error (FLARE_ERR_TIMEOUT: no
 * reservation or no dial outcome within 10 s). Free with
 * flare_sim_world_free after either outcome. */
int flare_test_world_setup(flare_sim_world *w, const flare_test_world_spec *spec);

/* A dial's outcome, filled by flare_test_dial_cb (user = the flare_test_dial). */
typedef struct flare_test_dial {
    int calls, status;
    flare_conn *conn;
} flare_test_dial;
void flare_test_dial_cb(flare_host *h, flare_conn *c, int status, void *user);

/* A bare socket speaking no libp2p (an attacker, a broken peer): it sends
 * payload once connected and records what happened. */
typedef struct flare_test_raw {
    flare_io *io;
    flare_io_sock *s; /* NULL once closed */
    const uint8_t *payload;
    size_t len;
    int connected, closed, eof;
} flare_test_raw;
/* Dials target from io and sends len bytes of payload (borrowed until
 * connected) once connected. Returns io->ops->dial's result. */
int flare_test_raw_dial(flare_test_raw *r, flare_io *io, const flare_ipaddr *target,
                        const void *payload, size_t len);
/* Closes (aborts) r's socket if it is still open. */
void flare_test_raw_close(flare_test_raw *r);

/* An echo stream's client: writes len bytes of a fixed pattern (chunk bytes
 * a write), half-closes and compares what comes back. Open the stream with
 * &flare_test_bulk_cbs, user = the flare_test_bulk, and store it in s. */
typedef struct flare_test_bulk {
    uint8_t *data;
    size_t len, chunk, off, got;
    int match;  /* every byte back so far is the one sent */
    int eof;    /* the peer half-closed */
    int opened; /* the stream opened (open_status 0) */
    int open_status;
    int write_err; /* a write failed (its error) */
    flare_stream *s;
} flare_test_bulk;
/* Fills b for len bytes written chunk at a time. Returns 0 or FLARE_ERR_NOMEM. */
int flare_test_bulk_init(flare_test_bulk *b, size_t len, size_t chunk);
void flare_test_bulk_free(flare_test_bulk *b);
extern const flare_stream_cbs flare_test_bulk_cbs;

/* An echo service: flare_host_set_handler(h, proto, &flare_test_echo_cbs,
 * errs, ..) with errs an int counting failed writes, or NULL. */
extern const flare_stream_cbs flare_test_echo_cbs;

#endif
