/* Internal state of the AutoNAT service (autonat.c: servers,
 * autonat_client.c: probes and reachability). */
#ifndef FLARE_SVC_AUTONAT_H
#define FLARE_SVC_AUTONAT_H

#include "flare/autonat.h"
#include "flare/reachability.h"
#include "services/services.h"

/* Whole probe round (client) deadline: dial-back timeout plus slack. */
#define FLARE__AUTONAT_PROBE_TIMEOUT (25 * FLARE_NS_PER_S)

struct flare__an_sreq;
struct flare__an_probe;
struct flare__an_round;

/* Recent inbound TCP connections (local port, time): evidence that a v1
 * server really dialed us back (see v1_recv). */
#define FLARE__AUTONAT_INBOUND_LOG 8

typedef struct flare__autonat {
    flare_host *h;
    int server, client;
    flare_autonat1_server s1;
    flare_autonat2_server s2;
    int s1_ok, s2_ok;
    struct flare__an_sreq *sreqs; /* server requests in progress */
    /* client */
    flare_reachability reach;
    flare_io_timer *timer;
    flare_tstamp boot_at; /* no probes (nor pokes) before: go's boot delay */
    struct flare__an_probe *probes;
    struct flare__an_round *rounds;
    uint16_t inbound_port[FLARE__AUTONAT_INBOUND_LOG];
    flare_tstamp inbound_at[FLARE__AUTONAT_INBOUND_LOG];
    unsigned inbound_next;
} flare__autonat;

/* autonat.c */
flare__autonat *flare__autonat_of(flare_host *h);

/* autonat_client.c; the hooks of the service (flare__svc_autonat): an
 * accepted TCP connection (v1 dial-back evidence), a peer's protocols are
 * known, our addresses changed. */
int flare__autonat_client_init(flare__autonat *an);
void flare__autonat_client_free(flare__autonat *an);
void flare__autonat_inbound(flare_host *h, void *state, flare_conn *c);
void flare__autonat_peer_identified(flare_host *h, void *state, flare_conn *c);
void flare__autonat_addrs_changed(flare_host *h, void *state, flare__addrs_change why);

/* Shared: a stream we no longer listen to (its owner is gone). */
extern const flare_stream_cbs flare__autonat_drain_cbs;
/* Detaches s from its owner and half-closes it (a reply may be queued). */
void flare__autonat_detach(flare_stream *s);

#endif
