/* Internal structures of the simulated network (src/io/sim*.c). */
#ifndef FLARE_IO_SIM_INTERNAL_H
#define FLARE_IO_SIM_INTERNAL_H

#include "flare/buf.h"
#include "flare/sim.h"
#include "io/sim_htab.h"
#include "io/sim_queue.h"

#define SIM_TCP 6
#define SIM_UDP 17

/* --- event queue (sim.c) ------------------------------------------------- */

enum sim_ev_kind {
    SIM_EV_PKT,         /* a packet reaches a LAN or an interface */
    SIM_EV_TIMER,       /* a flare_io_timer fires */
    SIM_EV_SOCK_TIMER,  /* SYN retransmit / connect timeout */
    SIM_EV_SOCK_PUMP,   /* a socket may put its next segment on the link */
    SIM_EV_SOCK_NOTIFY, /* a deferred on_connect failure */
    SIM_EV_SOCK_RESUME, /* reading resumed: deliver what waited */
    SIM_EV_SOCK_DRAIN   /* report on_drain */
};

/* A node's or LAN's name, hashed once for the replay hash. */
typedef struct sim_name {
    char *s;
    uint64_t hash;
} sim_name;

typedef struct sim_link_dir {
    flare_tstamp free_at;      /* when the transmitter is idle again */
    flare_tstamp last_arrival; /* keeps order when there is no jitter */
} sim_link_dir;

typedef struct sim_node sim_node;
typedef struct sim_iface {
    flare_sim_lan *lan;
    sim_node *node;
    flare_ipaddr ip; /* port 0 */
    uint32_t shard;  /* node->shard: read on every hop without touching the node */
    flare_sim_link link;
    sim_link_dir dir[2]; /* 0: node -> LAN, 1: LAN -> node */
    uint8_t la_pending;  /* new: its link not yet counted in the lookahead */
} sim_iface;

struct flare_sim_lan {
    uint32_t id;
    sim_name name;
    sim_iface *gateway; /* the NAT's inside interface, or NULL */
};

typedef struct sim_pkt {
    sim_ev ev;
    uint8_t proto, flags;
    uint8_t at_node; /* 1: arriving at iface->node; 0: arriving on lan */
    flare_sim_lan *lan;
    sim_iface *iface;
    flare_ipaddr src, dst;
    uint64_t seq;         /* TCP byte offset of data / FIN */
    uint64_t ack;         /* pure ACK: the receiver consumed up to here (window update) */
    struct sim_pkt *next; /* a socket's out-of-order list */
    size_t len;
    uint8_t data[];
} sim_pkt;

/* A route: address ip on LAN lan_id is reached through iface. */
typedef struct sim_route {
    uint32_t lan_id;
    flare_ipaddr ip;
    sim_iface *iface;
} sim_route;

struct sim_node {
    int is_nat;
    unsigned shard; /* the partition whose thread runs its events (sim_par.c) */
    sim_name name;
    sim_iface **ifaces;
    size_t n_ifaces;
};

typedef struct sim_tcp_sock sim_tcp_sock;
struct flare_sim_host {
    sim_node node; /* first: a sim_node * is a host when !is_nat */
    flare_io io;
    flare_sim *sim;
    sim_htab conns; /* live (not failed) TCP sockets by 4-tuple; near node: every segment */
    sim_htab ports; /* sim_port_use by (family, port): the TCP ports dials hold */
    struct flare_io_sock *socks;
    struct flare_io_listener *listeners;
    struct flare_io_udp *udps;
    struct flare_io_timer *timers;
    flare_prng prng;
    uint16_t next_port;
};

/* The dialing TCP sockets bound to one local address (any or one IP). */
typedef struct sim_port_use {
    sim_hnode hn;
    flare_ipaddr local;
    uint32_t n;      /* sockets */
    uint32_t n_excl; /* of which without REUSE */
} sim_port_use;

/* An endpoint a mapping sent to: the filter lets it (or its address) in. */
typedef struct sim_remote {
    sim_hnode hn; /* in the NAT's remotes, by (mapping, address) */
    struct sim_mapping *m;
    flare_ipaddr ep;
    struct sim_remote *next; /* the mapping's remotes */
} sim_remote;

typedef struct sim_mapping {
    struct sim_mapping *next, *prev;
    int64_t order;   /* position in the NAT's list: ascending from its head */
    sim_hnode h_in;  /* by (proto, outside port) */
    sim_hnode h_out; /* by (proto, inside endpoint, destination as the mapping mode keys it) */
    sim_hnode h_pin; /* pinned ones, by (proto, inside endpoint) */
    uint8_t proto;
    uint8_t tcp_est;
    flare_ipaddr in;   /* inside endpoint */
    flare_ipaddr dest; /* remote the mapping is keyed on (AD/APD mapping) */
    flare_ipaddr ext;  /* outside endpoint */
    flare_tstamp last;
    flare_tstamp pinned_until; /* a NAT-PMP/PCP mapping: lives until then; 0 = dynamic */
    sim_remote *remotes;       /* endpoints sent to, for filtering */
} sim_mapping;

struct flare_sim_nat {
    sim_node node;
    flare_sim *sim;
    flare_sim_nat_config cfg;
    sim_iface *out, *in;
    flare_prng prng;
    sim_mapping *maps;
    int64_t head_order, tail_order; /* order keys of the list's ends */
    sim_htab by_in, by_out, pins, remotes;
    int out_mode;          /* the mapping behaviour by_out is keyed for */
    flare_tstamp purge_at; /* no mapping expires before this */
    flare_sim_nat_stats st;
    flare_tstamp booted;            /* the port mapping epoch starts here */
    flare_sim_portmap_hook pm_hook; /* a test's server, or NULL */
    void *pm_user;
    uint16_t next_port; /* sequential allocation: the next port to try (0: not yet) */
};

typedef struct sim_par sim_par;

/* A simulation is one or more partitions ("shards", sim_par.c). Each shard
 * is a flare_sim of its own for the per-thread state (clock, event heap,
 * sequence, counters, hash, link PRNG); the first shard is the root, which
 * alone holds the topology (LANs, nodes, routes): shards reach it through
 * root, and it is only changed between windows, while no thread runs. */
struct flare_sim {
    const flare_mem *mem;
    uint64_t seed;
    flare_tstamp now;
    uint64_t seq;
    uint64_t events;
    uint64_t hash;
    flare_tstamp syn_timeout;
    flare_prng prng; /* links: loss and jitter */
    sim_queue q;     /* the events of this shard */
    flare_sim_trace_cb trace;
    void *trace_user;
    flare_sim *root;      /* the shard holding the topology (itself for the root) */
    unsigned shard;       /* this shard's index */
    flare_tstamp win_end; /* in a parallel window: its end (exclusive); else 0 */
    sim_par *par;         /* the root's shards, threads and outboxes; NULL: one shard */
    flare_sim_lan *internet;
    flare_sim_lan **lans;
    size_t n_lans;
    sim_node **nodes;
    size_t n_nodes;
    sim_route *routes; /* open addressing, lan_id 0 = empty slot */
    size_t routes_cap, routes_len;
};

/* sim.c */
/* Sets up sim->q (sim->mem set). */
void flare__sim_queue_init(flare_sim *sim);
/* Runs the next event of this one shard. */
void flare__sim_step_one(flare_sim *sim);
void flare__sim_ev_init(sim_ev *ev, int kind);
void flare__sim_ev_schedule(flare_sim *sim, sim_ev *ev, flare_tstamp t);
/* Schedules ev with a sequence number taken earlier (sim->seq++): it then
 * runs among the events at t as if scheduled back then. */
void flare__sim_ev_schedule_seq(flare_sim *sim, sim_ev *ev, flare_tstamp t, uint64_t seq);
void flare__sim_ev_cancel(flare_sim *sim, sim_ev *ev);
void flare__sim_trace(flare_sim *sim, const sim_name *node, flare_sim_verdict v, const sim_pkt *p);
/* Copies s into name; 0 or FLARE_ERR_NOMEM. */
int flare__sim_name_set(const flare_mem *mem, sim_name *name, const char *s);
/* Uniform double in [0, 1). */
double flare__sim_uniform(flare_prng *p);
char *flare__sim_strdup(const flare_mem *mem, const char *s);

/* sim_net.c */
/* Appends p to the pointer array *arr of *n entries; 0 or FLARE_ERR_NOMEM. */
int flare__sim_push_ptr(flare_sim *sim, void ***arr, size_t *n, void *p);
sim_pkt *flare__sim_pkt_new(flare_sim *sim, uint8_t proto, uint8_t flags, const flare_ipaddr *src,
                            const flare_ipaddr *dst, const uint8_t *data, size_t len);
/* Puts p on the link of iface in direction dir (0 up, 1 down); takes p. */
void flare__sim_link_send(flare_sim *sim, sim_iface *ifc, int dir, sim_pkt *p);
void flare__sim_pkt_event(flare_sim *sim, sim_pkt *p);
/* The interface of h to use for dst (source address selection), or NULL. */
sim_iface *flare__sim_host_route(flare_sim_host *h, const flare_ipaddr *dst);
/* The interface of h owning ip, or NULL. */
sim_iface *flare__sim_host_iface(flare_sim_host *h, const flare_ipaddr *ip);
/* A host sends p from its interface (or loops it back locally). */
void flare__sim_host_send(flare_sim_host *h, sim_iface *ifc, sim_pkt *p);
int flare__sim_route_add(flare_sim *sim, flare_sim_lan *lan, const flare_ipaddr *ip,
                         sim_iface *ifc);
sim_iface *flare__sim_iface_new(flare_sim *sim, sim_node *node, flare_sim_lan *lan,
                                const flare_ipaddr *ip);
void flare__sim_host_free(flare_sim *sim, flare_sim_host *h);

/* sim_par.c: partitions and the parallel run */
#define FLARE__SIM_MAX_SHARDS FLARE_SIM_MAX_PARTITIONS

typedef struct sim_msg {
    flare_tstamp time;
    sim_pkt *p;
} sim_msg;

typedef struct sim_outbox {
    sim_msg *m;
    size_t n, cap;
} sim_outbox;

struct sim_par {
    unsigned n;                          /* shards */
    unsigned threads;                    /* threads that run them (the caller's among them) */
    flare_sim **shards;                  /* [0] is the root */
    sim_outbox *out;                     /* out[from * n + to]: packets posted in the window */
    size_t hosts[FLARE__SIM_MAX_SHARDS]; /* hosts of each shard */
    flare_tstamp lookahead;
    int full;           /* lookahead to recompute from every interface */
    flare_tstamp *mind; /* [lan id * n + shard]: smallest link delay there */
    uint8_t *rated;     /* [lan id * n + shard]: a rate-limited link there */
    size_t mind_lans;   /* LAN ids the arrays cover */
    sim_iface **pend;   /* interfaces added since the lookahead was computed */
    size_t npend, pend_cap;
    flare_sim_window_cb window_cb;
    void *window_user;
    struct sim_pool *pool; /* worker threads, started on the first parallel window */
    int profile;           /* count the windows' thread CPU time */
    flare_sim_par_stats st;
    /* This window's partitions, by shard: events before it, events and CPU
     * time it ran, the thread that ran it. */
    uint64_t win_ev0[FLARE__SIM_MAX_SHARDS], win_ev[FLARE__SIM_MAX_SHARDS];
    uint64_t win_cpu[FLARE__SIM_MAX_SHARDS];
    unsigned win_thr[FLARE__SIM_MAX_SHARDS];
    unsigned order[FLARE__SIM_MAX_SHARDS]; /* the order the threads take the shards in */
};

/* The shard new host number i belongs to (the root when not partitioned). */
flare_sim *flare__sim_shard_for_host(flare_sim *root, size_t i);
/* A new interface: the lookahead counts its link at the next run. */
void flare__sim_par_iface_new(flare_sim *sim, sim_iface *ifc);
/* The links of node changed: the lookahead is recomputed. */
void flare__sim_par_link_changed(flare_sim *sim, const sim_node *node);
/* In a parallel window, a packet put on a link toward its LAN (arriving
 * there at t) whose next hop there, to, belongs to another shard goes to
 * that shard's inbox with to's delay added; takes p. */
void flare__sim_par_post(flare_sim *sim, sim_iface *to, sim_pkt *p, flare_tstamp t);
/* A packet on a LAN goes down to interface to of another shard's node. */
void flare__sim_par_lan_cross(flare_sim *sim, sim_iface *to, sim_pkt *p);
/* The run loop of a partitioned simulation; set_now as run_until. */
void flare__sim_par_run(flare_sim *root, flare_tstamp t, int set_now);
int flare__sim_par_step(flare_sim *root);
void flare__sim_par_free(flare_sim *root);

/* sim_nat.c */
void flare__sim_nat_input(flare_sim *sim, flare_sim_nat *n, sim_iface *from, sim_pkt *p);
void flare__sim_nat_free(flare_sim *sim, flare_sim_nat *n);
/* sim_natmap.c: a NAT's mapping table */
/* Puts a new mapping m at the head (at_tail 0) or the tail of n's list and
 * indexes it; 0 or FLARE_ERR_NOMEM (m is then freed). */
int flare__sim_mapping_add(flare_sim_nat *n, sim_mapping *m, int at_tail);
/* Unlinks m from n's list and indexes, then frees it. */
void flare__sim_mapping_del(flare_sim_nat *n, sim_mapping *m);
/* After m's timestamps or pinning changed. */
void flare__sim_mapping_touch(flare_sim_nat *n, sim_mapping *m);
/* Frees every mapping of n, and the indexes at the end (free_indexes). */
void flare__sim_nat_clear(flare_sim_nat *n, int free_indexes);
void flare__sim_nat_map_init(flare_sim_nat *n);
/* After a config change: re-keys the indexes, rechecks expiry. */
void flare__sim_nat_map_reconfig(flare_sim_nat *n);
/* Removes the expired mappings (counting them in the stats). */
void flare__sim_nat_purge(flare_sim_nat *n);
/* The mapping an inside packet (proto, src -> dst) leaves through, or NULL;
 * the first in list order when several match. */
sim_mapping *flare__sim_nat_find_out(flare_sim_nat *n, uint8_t proto, const flare_ipaddr *src,
                                     const flare_ipaddr *dst);
/* The mapping with outside endpoint ext, or NULL. */
sim_mapping *flare__sim_nat_find_in(flare_sim_nat *n, uint8_t proto, const flare_ipaddr *ext);
int flare__sim_nat_port_taken(const flare_sim_nat *n, uint8_t proto, uint16_t port);
/* Pins m (a NAT-PMP/PCP mapping) until t; 0 or FLARE_ERR_NOMEM. */
int flare__sim_mapping_pin(flare_sim_nat *n, sim_mapping *m, flare_tstamp until);
/* Remembers that m sent to dst; 0 or FLARE_ERR_NOMEM. */
int flare__sim_mapping_remember(flare_sim_nat *n, sim_mapping *m, const flare_ipaddr *dst);
/* m's filter lets packets from src in. */
int flare__sim_mapping_admits(const flare_sim_nat *n, const sim_mapping *m,
                              const flare_ipaddr *src);
int flare__sim_nat_pick_port(flare_sim_nat *n, uint8_t proto, uint16_t want, uint16_t *out);

/* sim_portmap.c: a datagram to the NAT's port 5351 (takes p). */
void flare__sim_portmap_input(flare_sim_nat *n, sim_pkt *p);

/* --- sockets and timers --------------------------------------------------- */

struct flare_io_timer {
    sim_ev ev;
    flare_tstamp deadline; /* may be later than the queued entry (lazy re-arm) */
    flare_tstamp queued;   /* the queued entry's time (read without the heap) */
    uint64_t seq;          /* the order of the last start among equal deadlines */
    flare_sim_host *h;
    struct flare_io_timer *next, *prev;
    flare_io_timer_cb cb;
    void *user;
};

struct flare_io_udp {
    flare_sim_host *h;
    struct flare_io_udp *next, *prev;
    flare_ipaddr local;
    int reuse, busy, closed;
    flare_io_udp_recv_cb cb;
    void *user;
};

struct flare_io_listener {
    flare_sim_host *h;
    struct flare_io_listener *next, *prev;
    flare_ipaddr local;
    int reuse;
    flare_io_accept_cb cb;
    void *user;
};

enum sim_tcp_state { SIM_TCP_SYN_SENT, SIM_TCP_SYN_RCVD, SIM_TCP_EST, SIM_TCP_FAILED };

/* Grouped by use, about a 64-byte line each (320 bytes on 64-bit): the
 * 4-tuple lookup of every segment, the receive path, the send path, the
 * callbacks, then what only setup and teardown touch. At scale sockets are
 * cold in cache, so each group a segment touches costs a memory access. */
struct flare_io_sock {
    sim_hnode hconn; /* in h->conns while live */
    flare_ipaddr local, remote;

    flare_sim_host *h;
    sim_iface *ifc;
    uint8_t state;
    uint8_t reuse, bound, accepted;
    uint8_t got_syn; /* simultaneous open: the peer's SYN arrived */
    uint8_t shut;    /* FIN queued after the data */
    uint8_t fin_sent, eof;
    uint8_t closed;      /* the host closed it: no more callbacks */
    uint8_t dead;        /* unlinked; freed when busy drops to 0 */
    uint8_t rpaused;     /* the host paused reading: segments wait in ooo */
    uint8_t above_lowat; /* pending exceeded lowat since the last on_drain */
    int busy;
    uint64_t rcv_next;
    uint64_t rcv_acked;  /* consumed offset we last announced */
    sim_pkt *ooo;        /* received segments not yet delivered, by seq */
    uint64_t peer_acked; /* the peer consumed our bytes up to here: window base */

    uint64_t snd_off;
    flare_buf tx;
    size_t tx_head;
    sim_ev ev_pump;

    flare_io_sock_cbs cbs;
    void *user;
    size_t lowat;
    sim_ev ev_drain, ev_resume;

    struct flare_io_sock *next, *prev;
    flare_io_listener *lst; /* while SYN_RCVD */
    sim_port_use *pu;       /* a dial's port record, or NULL */
    flare_tstamp syn_start;
    unsigned syn_tries;
    int notify_status;
    sim_ev ev_timer, ev_notify;
};

/* sim_tcp.c */
void flare__sim_tcp_input(flare_sim_host *h, sim_pkt *p);
void flare__sim_sock_event(flare_sim *sim, sim_ev *ev);
void flare__sim_tcp_free_all(flare_sim_host *h);
int flare__sim_tcp_port_used(flare_sim_host *h, const flare_ipaddr *local, int reuse);
int flare__sim_listen(flare_io *io, const flare_ipaddr *local, unsigned flags,
                      flare_io_accept_cb cb, void *user, flare_io_listener **out);
int flare__sim_listener_addr(flare_io_listener *l, flare_ipaddr *local);
void flare__sim_listener_close(flare_io_listener *l);
int flare__sim_dial(flare_io *io, const flare_ipaddr *local, const flare_ipaddr *remote,
                    unsigned flags, const flare_io_sock_cbs *cbs, void *user, flare_io_sock **out);
void flare__sim_sock_set_cbs(flare_io_sock *s, const flare_io_sock_cbs *cbs, void *user);
int flare__sim_sock_write(flare_io_sock *s, const uint8_t *data, size_t len);
size_t flare__sim_sock_pending(flare_io_sock *s);
void flare__sim_sock_read_pause(flare_io_sock *s, int paused);
void flare__sim_sock_set_lowat(flare_io_sock *s, size_t lowat);
int flare__sim_sock_addrs(flare_io_sock *s, flare_ipaddr *local, flare_ipaddr *remote);
void flare__sim_sock_shutdown(flare_io_sock *s);
void flare__sim_sock_close(flare_io_sock *s, int abort);
extern const flare_io_ops flare__sim_io_ops;

/* sim_host.c */
void flare__sim_udp_input(flare_sim_host *h, sim_pkt *p);
void flare__sim_timer_event(flare_sim *sim, sim_ev *ev);
/* The event queue's rekey hook (sim_queue.h): a timer pushed later than
 * its queued entry moves to its deadline before it reaches the heap. */
int flare__sim_timer_rekey(sim_ev *ev, flare_tstamp t, flare_tstamp *nt, uint64_t *nseq);
void flare__sim_udp_timers_free_all(flare_sim_host *h);
/* A free ephemeral port for ip (any address if NULL), 0 if none. */
uint16_t flare__sim_ephemeral_port(flare_sim_host *h, uint8_t proto, const flare_ipaddr *ip);
int flare__sim_ip_is_any(const flare_ipaddr *a);
/* Two local bindings overlap: same port and same or wildcard address. */
int flare__sim_bind_overlap(const flare_ipaddr *a, const flare_ipaddr *b);
/* Checks a local address given to listen/bind/dial: 0 or INVALID_ARG. */
int flare__sim_check_local(flare_sim_host *h, const flare_ipaddr *local);
/* The address a listen (SIM_TCP) or UDP bind on local gets: local with its
 * port, or an ephemeral one for port 0. Returns 0, INVALID_ARG (not an
 * address of h) or ADDR_IN_USE (taken, unless reuse meets reuse). */
int flare__sim_bind_addr(flare_sim_host *h, uint8_t proto, const flare_ipaddr *local, int reuse,
                         flare_ipaddr *bound);

/* Doubly linked host lists: insert at head, unlink in O(1). */
#define LIST_INSERT(head, e)                                                                       \
    do {                                                                                           \
        (e)->prev = NULL;                                                                          \
        (e)->next = (head);                                                                        \
        if (head)                                                                                  \
            (head)->prev = (e);                                                                    \
        (head) = (e);                                                                              \
    } while (0)
#define LIST_REMOVE(head, e)                                                                       \
    do {                                                                                           \
        if ((e)->prev)                                                                             \
            (e)->prev->next = (e)->next;                                                           \
        else                                                                                       \
            (head) = (e)->next;                                                                    \
        if ((e)->next)                                                                             \
            (e)->next->prev = (e)->prev;                                                           \
        (e)->next = (e)->prev = NULL;                                                              \
    } while (0)

#define SIM_CONTAINER(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

#endif
