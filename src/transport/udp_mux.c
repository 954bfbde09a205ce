/*
 * Sharing the host's UDP sockets by first byte (udp_mux.h). Fixed tables in
 * the host: a handful of consumers (STUN server, ICE, DTLS) and the sockets
 * of the owning transport; a socket beyond the table still has its
 * datagrams demultiplexed, it is only not listed.
 */
#include <string.h>

#include "transport/udp_mux.h"

int flare__udp_mux_add(flare_host *h, uint8_t lo, uint8_t hi, flare__udp_mux_fn fn, void *user)
{
    if (!h || !fn || lo > hi || hi >= FLARE__UDP_FIRST_QUIC_LO)
        return FLARE_ERR_INVALID_ARG;
    for (size_t i = 0; i < FLARE__UDP_MUX_MAX; i++) {
        if (!h->udp_mux[i].fn) {
            h->udp_mux[i].lo = lo;
            h->udp_mux[i].hi = hi;
            h->udp_mux[i].fn = fn;
            h->udp_mux[i].user = user;
            return 0;
        }
    }
    return FLARE_ERR_LIMIT;
}

void flare__udp_mux_remove(flare_host *h, flare__udp_mux_fn fn, void *user)
{
    for (size_t i = 0; i < FLARE__UDP_MUX_MAX; i++)
        if (h->udp_mux[i].fn == fn && h->udp_mux[i].user == user)
            memset(&h->udp_mux[i], 0, sizeof(h->udp_mux[i]));
}

void flare__udp_mux_sock_add(flare_host *h, flare_io_udp *u, const flare_ipaddr *local,
                             int listening)
{
    for (size_t i = 0; i < FLARE__UDP_SOCKS_MAX; i++) {
        if (h->udp_socks[i].u == u) { /* known: its role changed */
            h->udp_socks[i].listening = listening;
            return;
        }
    }
    for (size_t i = 0; i < FLARE__UDP_SOCKS_MAX; i++) {
        if (!h->udp_socks[i].u) {
            h->udp_socks[i].u = u;
            h->udp_socks[i].local = *local;
            h->udp_socks[i].listening = listening;
            return;
        }
    }
}

void flare__udp_mux_sock_remove(flare_host *h, flare_io_udp *u)
{
    for (size_t i = 0; i < FLARE__UDP_SOCKS_MAX; i++)
        if (h->udp_socks[i].u == u)
            memset(&h->udp_socks[i], 0, sizeof(h->udp_socks[i]));
}

int flare__udp_mux_input(flare_host *h, flare_io_udp *u, const flare_ipaddr *local,
                         const flare_ipaddr *from, const uint8_t *data, size_t len)
{
    if (!len || data[0] >= FLARE__UDP_FIRST_QUIC_LO)
        return 0;
    for (size_t i = 0; i < FLARE__UDP_MUX_MAX; i++) {
        if (h->udp_mux[i].fn && data[0] >= h->udp_mux[i].lo && data[0] <= h->udp_mux[i].hi &&
            h->udp_mux[i].fn(h, h->udp_mux[i].user, u, local, from, data, len))
            return 1;
    }
    return 0;
}

size_t flare__udp_mux_socks(flare_host *h, flare__udp_sock_info *out, size_t cap)
{
    size_t n = 0;
    for (int pass = 1; pass >= 0; pass--)
        for (size_t i = 0; i < FLARE__UDP_SOCKS_MAX && n < cap; i++)
            if (h->udp_socks[i].u && (h->udp_socks[i].listening != 0) == pass)
                out[n++] = (flare__udp_sock_info){h->udp_socks[i].u, h->udp_socks[i].local,
                                                  h->udp_socks[i].listening};
    return n;
}
