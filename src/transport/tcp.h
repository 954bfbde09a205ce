/* TCP through the io driver's sockets (tcp.c). */
#ifndef FLARE_TRANSPORT_TCP_H
#define FLARE_TRANSPORT_TCP_H

#include "transport/transport.h"

/* An accepted or connected socket carries c. */
void flare__tcp_attach(flare_conn *c, flare_io_sock *s);
/* Its registry entry (builtin.c). */
extern const flare__transport flare__tr_tcp;
/* The socket of a TCP connection (NULL otherwise, or once it is gone). */
flare_io_sock *flare__tcp_sock(const flare_conn *c);

#endif
