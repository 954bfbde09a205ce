/* Relayed connections over a stream of a relay connection (circuit.c). */
#ifndef FLARE_TRANSPORT_CIRCUIT_H
#define FLARE_TRANSPORT_CIRCUIT_H

#include "flare/relay.h"
#include "transport/transport.h"

/* A connection carried by a hop (outbound) or stop (inbound) stream of a
 * connection to relay; limit is the circuit's (NULL: none announced). */
flare_conn *flare__circuit_conn_new(flare_host *h, flare_stream *carrier, int outbound,
                                    const flare_peerid *relay, const flare_peerid *remote,
                                    const flare_multiaddr *remote_ma,
                                    const flare_relay_limit *limit);
/* The relay carrying c (NULL if c is not a relayed connection). */
const flare_peerid *flare__circuit_relay(const flare_conn *c);

#endif
