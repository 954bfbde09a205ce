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

/* Probe sockets for the hard-NAT punch: extra UDP sockets on an ephemeral
 * port, each a QUIC endpoint of its own. cb (may be NULL) hears of every
 * datagram one receives (after the endpoint saw it). A pinned socket is
 * the one the next QUIC dial to `to` leaves from (the NAT mapping that let
 * the peer's probe in). Closing keeps a socket that carries a connection
 * (until the transport ends). open: 0, FLARE_ERR_NOT_FOUND (no QUIC), the
 * error of making our certificate (the first QUIC socket makes it) or the
 * driver's error. */
typedef void (*flare__quic_probe_cb)(void *user, void *sock, const flare_ipaddr *from);
int flare__quic_probe_open(flare_host *h, int family, flare__quic_probe_cb cb, void *user,
                           void **sock);
int flare__quic_probe_send(flare_host *h, void *sock, const flare_ipaddr *to, const uint8_t *data,
                           size_t len);
void flare__quic_probe_pin(void *sock, const flare_ipaddr *to);
void flare__quic_probe_close(flare_host *h, void *sock);

/* 1 once h's QUIC certificate exists (made by the first listen, dial or
 * probe socket; tests). */
int flare__quic_cred_made(flare_host *h);

#endif
