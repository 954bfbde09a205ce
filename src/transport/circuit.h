/* Relayed connections over a stream of a relay connection (circuit.c). */
#ifndef FLARE_TRANSPORT_CIRCUIT_H
#define FLARE_TRANSPORT_CIRCUIT_H

#include "flare/relay.h"
#include "transport/transport.h"

/* Its registry entry (builtin.c): dials /p2p-circuit addresses. */
extern const flare__transport flare__tr_circuit;

/* An inbound connection carried by a stop stream of a connection to relay;
 * limit is the circuit's (NULL: none announced). NULL if refused (the
 * resource manager) or out of memory. The caller then calls
 * flare__conn_accepted and feeds any bytes already read. */
flare_conn *flare__circuit_accept(flare_host *h, flare_stream *carrier, const flare_peerid *relay,
                                  const flare_peerid *remote, const flare_multiaddr *remote_ma,
                                  const flare_relay_limit *limit);
/* The relay carrying c (NULL if c is not a relayed connection). */
const flare_peerid *flare__circuit_relay(const flare_conn *c);

#endif
