/*
 * The host's UDP sockets shared between protocols (udp_mux.c). QUIC, STUN
 * and DTLS (WebRTC) share a UDP port and are told apart by the first byte
 * of each datagram (RFC 7983, RFC 9443): 0..3 STUN, 20..63 DTLS, 64..127
 * and 192..255 QUIC (128..191 is RTP/RTCP, also QUIC's long header with the
 * fixed bit greased; QUIC keeps it).
 *
 * The first byte alone is not proof: QUIC peers may grease the fixed bit
 * (RFC 9287; ngtcp2 always offers it), so a QUIC short-header packet can
 * start with any byte. Consumers therefore check their own framing
 * strongly (STUN: the magic cookie and the length; DTLS: the record
 * version) and leave everything else to QUIC.
 *
 * The transport that owns a UDP socket (QUIC) registers it here and offers
 * every datagram whose first byte is below 64 to flare__udp_mux_input
 * before its own parser; other parts of the host (the STUN server, ICE)
 * register consumers for byte ranges, and find the sockets to send from.
 */
#ifndef FLARE_TRANSPORT_UDP_MUX_H
#define FLARE_TRANSPORT_UDP_MUX_H

#include "host/host_int.h"

#define FLARE__UDP_FIRST_STUN_LO 0
#define FLARE__UDP_FIRST_STUN_HI 3
#define FLARE__UDP_FIRST_DTLS_LO 20
#define FLARE__UDP_FIRST_DTLS_HI 63
#define FLARE__UDP_FIRST_QUIC_LO 64 /* everything from here is QUIC's */

/* A consumer: returns 1 if it took the datagram (it is then not offered to
 * later consumers nor to QUIC), 0 otherwise. u is the socket it came in on
 * (reply with h->io->ops->udp_send(u, ...)); local its bound address. */
typedef int (*flare__udp_mux_fn)(flare_host *h, void *user, flare_io_udp *u,
                                 const flare_ipaddr *local, const flare_ipaddr *from,
                                 const uint8_t *data, size_t len);

/* Registers fn for datagrams whose first byte is in [lo, hi] (hi below
 * FLARE__UDP_FIRST_QUIC_LO). Returns 0, FLARE_ERR_INVALID_ARG or
 * FLARE_ERR_LIMIT (FLARE__UDP_MUX_MAX consumers). */
int flare__udp_mux_add(flare_host *h, uint8_t lo, uint8_t hi, flare__udp_mux_fn fn, void *user);
void flare__udp_mux_remove(flare_host *h, flare__udp_mux_fn fn, void *user);

/* The owning transport: a socket appears / goes away (listening: bound to a
 * listen address, not a dial-only socket; adding a known socket again
 * updates that). */
void flare__udp_mux_sock_add(flare_host *h, flare_io_udp *u, const flare_ipaddr *local,
                             int listening);
void flare__udp_mux_sock_remove(flare_host *h, flare_io_udp *u);
/* Offers a datagram to the consumers; returns 1 if one took it. */
int flare__udp_mux_input(flare_host *h, flare_io_udp *u, const flare_ipaddr *local,
                         const flare_ipaddr *from, const uint8_t *data, size_t len);

/* The registered sockets: up to cap, listening ones first. */
typedef struct flare__udp_sock_info {
    flare_io_udp *u;
    flare_ipaddr local;
    int listening;
} flare__udp_sock_info;
size_t flare__udp_mux_socks(flare_host *h, flare__udp_sock_info *out, size_t cap);

#endif
