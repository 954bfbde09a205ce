/*
 * QUIC v1 as a host transport (quic.c): what other parts of the host use.
 */
#ifndef FLARE_TRANSPORT_QUIC_TR_H
#define FLARE_TRANSPORT_QUIC_TR_H

#include "host/host_int.h"

extern const flare__transport flare__tr_quic;

/* Sends one UDP datagram to `to` from the QUIC listen socket of its family
 * (DCUtR's hole punching: the NAT mapping must be the listen address's).
 * Returns 0, FLARE_ERR_NOT_FOUND (no QUIC listener of that family) or the
 * driver's error. */
int flare__quic_punch(flare_host *h, const flare_ipaddr *to, const uint8_t *data, size_t len);

#endif
