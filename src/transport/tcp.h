/* TCP through the io driver's sockets (tcp.c). */
#ifndef FLARE_TRANSPORT_TCP_H
#define FLARE_TRANSPORT_TCP_H

#include "transport/transport.h"

/* An accepted or connected socket carries c. */
void flare__tcp_attach(flare_conn *c, flare_io_sock *s);
/* Dials remote from local (NULL: any) with FLARE_IO_* flags; the upgrade
 * starts when the socket connects. */
int flare__tcp_dial(flare_conn *c, const flare_ipaddr *local, const flare_ipaddr *remote,
                    unsigned flags);
/* The socket of a TCP connection (NULL otherwise, or once it is gone). */
flare_io_sock *flare__tcp_sock(const flare_conn *c);

#endif
