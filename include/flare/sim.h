/*
 * flare/sim.h - a deterministic, seeded, in-process simulated network that
 * implements the flare_io driver interface (include/flare/io.h).
 *
 * Model
 *  - One event queue (a heap ordered by (time, sequence number), so ties
 *    replay identically; one per partition with flare_sim_set_partitions). Virtual time in ns
 * starts at 0 and only moves when the caller runs the simulation (flare_sim_step / _run_*).
 *  - Networks (LANs): flare_sim_internet() is the root; more LANs come from
 *    flare_sim_lan_new(). Hosts get addresses on LANs; a NAT box joins an
 *    "outside" LAN (the internet, or another NAT's inside LAN for double NAT)
 *    and becomes the gateway of its "inside" LAN. Routing: a destination
 *    address present on the sender's LAN is delivered directly; anything else
 *    goes up through the LAN's gateway; on a LAN without a gateway an unknown
 *    destination is dropped (no ICMP: a TCP dial to it times out).
 *  - Links: every interface (host address, NAT outside side) has a link with
 *    one-way delay, jitter, loss, rate and queue, applied in each direction:
 *    a packet between two public hosts crosses the sender's link and the
 *    receiver's link (delay A + delay B). Rate counts payload plus a header
 *    (FLARE_SIM_TCP_HDR / FLARE_SIM_UDP_HDR bytes per packet). Without jitter
 *    a link delivers in order. A link with delay only (no rate, loss or
 *    jitter) is read when a packet enters the LAN before it: a change of
 *    its settings applies to packets entering that LAN afterwards.
 *  - TCP is modelled per segment for its control packets (SYN, SYN-ACK, ACK,
 *    FIN, RST travel and pass through NATs) and as ordered reliable chunks of
 *    at most FLARE_SIM_MSS bytes for data. Loss of a data/FIN/ACK segment is
 *    modelled as a retransmission delay (FLARE_SIM_RTO per loss) instead of a
 *    drop; SYN and SYN-ACK are really lost (the dialer retransmits its SYN
 *    after 1 s, 3 s, 7 s ... until the SYN timeout, default 5 s). UDP
 *    datagrams are dropped by loss and by a full link queue; TCP data is never
 *    tail-dropped (it waits in the socket buffer: sock_pending()). Flow
 *    control is a fixed receive window of FLARE_SIM_RCVBUF bytes: a sender
 *    stops with that much sent but not consumed by the receiving host, and
 *    the receiver announces its progress with a pure ACK every half window
 *    it consumed. A host that pauses reading (sock_read_pause) thus stops
 *    its peer, whose sock_pending() grows. No congestion control; a data
 *    segment that a NAT drops (e.g. its mapping expired) is lost and the
 *    connection stalls silently.
 *  - TCP simultaneous open yields one connection (both dialers see
 *    on_connect(0)); a SYN reaching a REUSE listener with no matching dialing
 *    socket is accepted, and a later dial on that 4-tuple fails with
 *    FLARE_ERR_ADDR_IN_USE (Linux's EADDRNOTAVAIL), reported via on_connect.
 *    A SYN to a port without listener is answered with RST (FLARE_ERR_REFUSED).
 *    Closing a socket while the peer still sends makes the peer see a RST.
 *  - Randomness: each host's io->random, each NAT's port choice and the links'
 *    loss/jitter use separate PRNG streams derived from the seed.
 *
 * Not thread-safe: one thread calls the API (flare_sim_set_partitions makes the
 * simulation run its partitions on threads of its own inside the run
 * calls). Everything is freed by flare_sim_del.
 */
#ifndef FLARE_SIM_H
#define FLARE_SIM_H

#include "flare/common.h"
#include "flare/io.h"
#include "flare/ipaddr.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct flare_sim flare_sim;
typedef struct flare_sim_lan flare_sim_lan;
typedef struct flare_sim_host flare_sim_host;
typedef struct flare_sim_nat flare_sim_nat;

#define FLARE_SIM_MSS           8192       /* bytes of TCP data per simulated segment */
#define FLARE_SIM_TCP_HDR       40         /* header bytes counted against the link rate */
#define FLARE_SIM_RCVBUF        (1u << 20) /* TCP receive window: bytes sent, not yet consumed */
#define FLARE_SIM_UDP_HDR       28
#define FLARE_SIM_RTO           (200 * FLARE_NS_PER_MS)
#define FLARE_SIM_DEFAULT_QUEUE (64 * 1024) /* a typical link queue (flare_sim_link.queue) */
/* The wall clock (io->unix_time) at virtual time 0: 2026-01-01T00:00:00Z. */
#define FLARE_SIM_EPOCH 1767225600ULL

/* Creates a simulation; mem NULL = libc. Returns NULL when out of memory. */
flare_sim *flare_sim_new(uint64_t seed, const flare_mem *mem);
/* Frees the simulation and every host, NAT, socket, timer and packet in it. */
void flare_sim_del(flare_sim *sim);

/* --- time and the event loop --------------------------------------------- */

/* Current virtual time (ns). */
/* Returns the simulated time. */
flare_tstamp flare_sim_now(const flare_sim *sim);
/* Runs one event. Returns 1 if one ran, 0 if the queue is empty. */
int flare_sim_step(flare_sim *sim);
/* Runs every event due at or before t, then sets the clock to t (if later). */
void flare_sim_run_until(flare_sim *sim, flare_tstamp t);
/* flare_sim_run_until(now + dt). */
void flare_sim_run_for(flare_sim *sim, flare_tstamp dt);
/* Runs until no event is left or the next one is after the absolute time
 * limit. Returns 0 when idle, FLARE_ERR_TIMEOUT when events remain. */
int flare_sim_run_until_idle(flare_sim *sim, flare_tstamp limit);
/* Time of the next event, or FLARE_TSTAMP_NEVER. */
/* Returns the time of the next event (FLARE_TSTAMP_NEVER if none). */
flare_tstamp flare_sim_next_event(const flare_sim *sim);
/* Number of events run so far. */
/* Returns the number of events run so far. */
uint64_t flare_sim_events(const flare_sim *sim);

/* Dials that get no answer fail with FLARE_ERR_TIMEOUT after this (default
 * 5 s); SYNs are retransmitted 1 s, 3 s, 7 s, ... after the first. */
void flare_sim_set_syn_timeout(flare_sim *sim, flare_tstamp timeout);

/* --- parallel runs (src/io/sim_par.c) ------------------------------------- */

/* Splits the simulation into n partitions (1..64; 1 is the default, a
 * single event queue), run by threads (1..n, 0 = n; the caller's thread is
 * one of them: threads - 1 are started). Call it right after
 * flare_sim_new, before any host or NAT exists. NAT boxes belong to the
 * first partition, a host to the least loaded one (a NAT counts as half a
 * host). Time advances in windows as long as the lookahead
 * (flare_sim_lookahead) is above 0; in each window the partitions run in
 * parallel, a thread taking the next partition until none is left, those
 * with the most events due in the window first (more partitions than
 * threads even out the windows' work), and
 * packets between partitions are handed over at the window's end in a
 * fixed order: a run depends on the seed and on n, never on the threads or
 * their timing, but differs from the run with another n (ties at equal
 * times break differently). With a lookahead of 0 or a trace callback the
 * partitions run one after the other. Everything a host's callbacks do
 * must stay on that host (its own flare_host and data): callbacks of hosts
 * of different partitions run at the same time; the flare_mem hooks must
 * be thread-safe. Between runs (flare_sim_run_*) nothing runs, and
 * topology changes (new hosts, NATs, addresses, links) are allowed as
 * before. Returns 0, FLARE_ERR_INVALID_ARG (n or threads out of range, or
 * nodes exist) or FLARE_ERR_NOMEM. */
int flare_sim_set_partitions(flare_sim *sim, unsigned n, unsigned threads);
/* Returns the number of partitions (1 unless flare_sim_set_partitions). */
unsigned flare_sim_partitions(const flare_sim *sim);
/* Returns the lookahead of a partitioned simulation: the shortest delay
 * (sender's link + receiver's link) of a packet between nodes of different
 * partitions on one LAN; 0 if such a link is rate-limited (the partitions
 * then run serially); FLARE_TSTAMP_NEVER when unpartitioned or no LAN joins
 * two partitions. */
flare_tstamp flare_sim_lookahead(flare_sim *sim);
/* Called on the caller's thread after every parallel window, while no
 * event runs (e.g. to sample counters the hooks keep per thread). */
typedef void (*flare_sim_window_cb)(void *user);
void flare_sim_set_window_cb(flare_sim *sim, flare_sim_window_cb cb, void *user);

/* How the work of a partitioned simulation's windows spread (all 0 when
 * unpartitioned). The event counts depend only on the seed and the
 * partitions; the CPU times (thread CPU time, counted only after
 * flare_sim_set_par_profile) vary from run to run. */
#define FLARE_SIM_MAX_PARTITIONS 64
typedef struct flare_sim_par_stats {
    uint64_t windows;      /* parallel windows run */
    uint64_t busy_windows; /* of them, with events in two partitions or more */
    uint64_t events;       /* events run in the windows */
    /* Sum over the windows of the most events one partition ran: the
     * critical path with a thread per partition. */
    uint64_t events_crit;
    /* Sum over the windows of the most events one thread ran when the
     * partitions are dealt to the threads as the run deals them (in the
     * order they are taken, each to the thread that is free first): the
     * critical path with the run's threads; events / events_crit_threads
     * is the speedup the threads can reach at best. */
    uint64_t events_crit_threads;
    uint64_t part_events[FLARE_SIM_MAX_PARTITIONS]; /* events each partition ran */
    uint64_t cpu_ns;      /* thread CPU time spent running the partitions */
    uint64_t cpu_crit_ns; /* sum over the windows of the busiest thread's part of it */
    /* Sum over the windows of the larger of the busiest partition's CPU time
     * and the window's CPU time over the threads: no way of dealing whole
     * partitions to the threads does better. */
    uint64_t cpu_floor_ns;
    /* The caller's thread in windows outside the partitions' work: waking
     * the threads, waiting for them, handing packets over. */
    uint64_t cpu_serial_ns;
    uint64_t part_cpu_ns[FLARE_SIM_MAX_PARTITIONS];
    /* Wall times of the windows run by several threads: from a window's
     * start to each other thread's, summed; the caller's thread waiting
     * for the others after its own part. */
    uint64_t lag_ns, wait_ns;
} flare_sim_par_stats;
void flare_sim_par_stats_get(const flare_sim *sim, flare_sim_par_stats *st);
/* Counts the thread CPU time of the windows' work (a clock read per
 * partition and window) from now on. */
void flare_sim_set_par_profile(flare_sim *sim, int on);

/* --- topology ------------------------------------------------------------ */

/* The root network ("the internet"); it has no gateway. */
/* Returns the public network (owned by sim). */
flare_sim_lan *flare_sim_internet(flare_sim *sim);
/* A new, empty LAN. Returns NULL when out of memory. */
flare_sim_lan *flare_sim_lan_new(flare_sim *sim, const char *name);

/* A new host with no address yet. Returns NULL when out of memory. */
flare_sim_host *flare_sim_host_new(flare_sim *sim, const char *name);
/* Gives h the address ip ("10.0.0.2" or "2001:db8::1") on lan. May be called
 * several times (IPv4 and IPv6, or several LANs). Returns 0,
 * FLARE_ERR_INVALID_ARG (bad address), FLARE_ERR_EXISTS (address taken on
 * that LAN) or FLARE_ERR_NOMEM. */
int flare_sim_host_add_addr(flare_sim_host *h, flare_sim_lan *lan, const char *ip);
/* The i-th address of h (port 0). Returns 0 or FLARE_ERR_NOT_FOUND. */
int flare_sim_host_addr(const flare_sim_host *h, size_t i, flare_ipaddr *out);
/* The flare_io driver of h, valid until flare_sim_del. */
/* Returns the host's driver (owned by the simulated host). */
flare_io *flare_sim_host_io(flare_sim_host *h);
/* Returns the host's name (owned by it). */
const char *flare_sim_host_name(const flare_sim_host *h);

/* Link parameters of an interface, each direction separately shaped. */
typedef struct flare_sim_link {
    flare_tstamp delay;  /* one-way propagation delay, ns */
    flare_tstamp jitter; /* extra delay, uniform in [0, jitter] ns */
    double loss;         /* probability a packet is lost, 0..1 */
    uint64_t rate;       /* bytes per second, 0 = unlimited */
    size_t queue;        /* bytes a rate-limited link may hold before it drops UDP
                            datagrams (tail-drop); 0: none wait, e.g.
                            FLARE_SIM_DEFAULT_QUEUE */
} flare_sim_link;

/* Sets the link of every interface of h; takes effect for packets sent from
 * now on. */
void flare_sim_link_set(flare_sim_host *h, const flare_sim_link *l);

/* --- NAT boxes (RFC 4787 / RFC 5382 terms) ------------------------------- */

typedef enum flare_sim_nat_behavior {
    FLARE_SIM_EI = 0, /* endpoint-independent */
    FLARE_SIM_AD = 1, /* address-dependent */
    FLARE_SIM_APD = 2 /* address-and-port-dependent */
} flare_sim_nat_behavior;

/* Port mapping protocols a NAT box answers on its inside address, UDP port
 * 5351 (src/io/sim_portmap.c). A mapping is endpoint-independent whatever
 * the NAT's own behaviour (RFC 6887 section 11): inbound packets from anyone
 * reach the internal port, and the internal port's new outbound flows
 * leave from it, until its lifetime ends or it is deleted. */
typedef enum flare_sim_portmap {
    FLARE_SIM_PORTMAP_NONE = 0, /* requests are dropped (most routers) */
    FLARE_SIM_PORTMAP_NATPMP,   /* NAT-PMP only: PCP gets "unsupported version" */
    FLARE_SIM_PORTMAP_PCP,      /* PCP only: NAT-PMP gets PCP "unsupported version" */
} flare_sim_portmap;

/* How a NAT picks the outside port of a new mapping when it does not keep
 * the inside port (port_preservation off, or the port is taken). */
typedef enum flare_sim_port_alloc {
    FLARE_SIM_ALLOC_RANDOM = 0,     /* a random free port (Linux's fully-random) */
    FLARE_SIM_ALLOC_SEQUENTIAL = 1, /* the next free port after the last one allocated */
} flare_sim_port_alloc;

typedef struct flare_sim_nat_config {
    flare_sim_nat_behavior mapping;   /* which remote endpoints share a mapping */
    flare_sim_nat_behavior filtering; /* which inbound packets a mapping lets in */
    int port_preservation;            /* keep the inside port when it is free */
    int hairpinning;                  /* inside -> own outside address loops back */
    int syn_rst;                      /* answer unsolicited SYNs with RST (else drop) */
    int firewall_only;                /* no translation: stateful filter only */
    flare_tstamp udp_timeout;         /* idle UDP mapping lifetime */
    flare_tstamp tcp_est_timeout;     /* idle established TCP mapping lifetime */
    flare_tstamp tcp_trans_timeout;   /* idle TCP mapping before SYN-ACK/after FIN */
    flare_sim_portmap portmap;        /* default none */
    flare_sim_port_alloc port_alloc;  /* default random */
} flare_sim_nat_config;

/* Defaults: EI mapping, APD filtering, port preservation, no hairpinning,
 * drop unsolicited SYNs, UDP 120 s, TCP established 7440 s, transitory 240 s. */
void flare_sim_nat_config_default(flare_sim_nat_config *c);

/* A NAT with address outside_ip on outside and inside_ip on inside; it becomes
 * inside's gateway. In firewall_only mode the inside hosts should have
 * addresses routable on the outside LAN; the firewall answers for them.
 * cfg NULL = defaults. Returns NULL on bad arguments (bad address, inside
 * already has a gateway, address taken) or out of memory. */
flare_sim_nat *flare_sim_nat_new(flare_sim *sim, const char *name, flare_sim_lan *outside,
                                 const char *outside_ip, flare_sim_lan *inside,
                                 const char *inside_ip, const flare_sim_nat_config *cfg);
/* Replaces the configuration; existing mappings stay. */
void flare_sim_nat_set_config(flare_sim_nat *n, const flare_sim_nat_config *cfg);
/* Link of the NAT's outside interface. */
void flare_sim_nat_link_set(flare_sim_nat *n, const flare_sim_link *l);

typedef struct flare_sim_nat_stats {
    uint64_t mappings_created;
    uint64_t mappings_expired;
    uint64_t mappings_active; /* after purging expired ones */
    uint64_t dropped_filter;  /* inbound refused by the filter or with no mapping */
    uint64_t dropped_other;   /* no route, hairpinning off, TCP without SYN mapping */
    uint64_t rst_sent;        /* RSTs answered to unsolicited SYNs */
    uint64_t hairpinned;
    uint64_t portmap_requests; /* NAT-PMP / PCP datagrams received */
    uint64_t portmap_active;   /* mappings made by them, live now */
    uint64_t portmap_deleted;  /* deleted by a request (lifetime 0) */
} flare_sim_nat_stats;
void flare_sim_nat_stats_get(flare_sim_nat *n, flare_sim_nat_stats *st);

/* A test's own port mapping server: called for every datagram to the NAT's
 * port 5351 instead of the built-in one (whatever cfg.portmap says), it
 * writes the answer to resp (at most cap bytes) and returns its length (0:
 * no answer). hook NULL restores the built-in server. */
typedef size_t (*flare_sim_portmap_hook)(flare_sim_nat *n, const uint8_t *req, size_t len,
                                         uint8_t *resp, size_t cap, void *user);
void flare_sim_nat_set_portmap_hook(flare_sim_nat *n, flare_sim_portmap_hook hook, void *user);
/* The NAT reboots: every mapping is forgotten and the port mapping epoch
 * starts again from 0. */
void flare_sim_nat_reboot(flare_sim_nat *n);

/* --- tracing and replay -------------------------------------------------- */

#define FLARE_SIM_SYN 0x1
#define FLARE_SIM_ACK 0x2
#define FLARE_SIM_FIN 0x4
#define FLARE_SIM_RST 0x8

typedef enum flare_sim_verdict {
    FLARE_SIM_SENT = 0,      /* a host emitted it */
    FLARE_SIM_DELIVERED,     /* it reached the destination host */
    FLARE_SIM_FORWARDED,     /* a NAT translated and forwarded it */
    FLARE_SIM_HAIRPINNED,    /* a NAT looped it back inside */
    FLARE_SIM_DROP_LOSS,     /* random link loss */
    FLARE_SIM_DROP_QUEUE,    /* link queue full */
    FLARE_SIM_DROP_NOROUTE,  /* no such address */
    FLARE_SIM_DROP_FILTER,   /* a NAT filtered it */
    FLARE_SIM_DROP_NOSOCKET, /* no socket at the destination (UDP) */
    FLARE_SIM_RETRANSMITTED, /* lost TCP segment, delivered late */
} flare_sim_verdict;

typedef struct flare_sim_trace_rec {
    flare_tstamp time;
    const char *node; /* host or NAT name where it happened */
    flare_sim_verdict verdict;
    uint8_t proto; /* 6 TCP, 17 UDP */
    uint8_t flags; /* FLARE_SIM_SYN | ... */
    flare_ipaddr src, dst;
    size_t len; /* payload bytes */
} flare_sim_trace_rec;

typedef void (*flare_sim_trace_cb)(const flare_sim_trace_rec *rec, void *user);
/* Calls cb for every packet event (cb NULL turns it off). */
void flare_sim_set_trace(flare_sim *sim, flare_sim_trace_cb cb, void *user);
/* Formats rec as one text line ("12.000100 alice SENT TCP S 1.2.3.4:5 ->
 * ..."); returns the length (truncated to cap - 1). */
int flare_sim_trace_format(const flare_sim_trace_rec *rec, char *out, size_t cap);
/* A trace callback writing lines to a FILE * (user). */
void flare_sim_trace_file(const flare_sim_trace_rec *rec, void *user);
/* A hash of every event run and every packet traced so far: equal seeds and
 * equal scenarios give equal hashes. */
/* Returns a hash of everything run so far (equal for equal seeds). */
uint64_t flare_sim_trace_hash(const flare_sim *sim);

#ifdef __cplusplus
}
#endif
#endif
