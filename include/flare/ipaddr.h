/*
 * flare/ipaddr.h - a driver-neutral IP address and port.
 *
 * The I/O drivers (real sockets and the simulator) and the multiaddr module
 * meet at this type, so no core needs struct sockaddr.
 */
#ifndef FLARE_IPADDR_H
#define FLARE_IPADDR_H

#include "flare/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct flare_ipaddr {
    uint8_t family; /* 4 or 6; 0 = unset */
    uint8_t ip[16]; /* IPv4 in ip[0..4) */
    uint16_t port;  /* host byte order */
} flare_ipaddr;

#define FLARE_IPADDR_STR_MAX 64

/* "1.2.3.4:5" or "[::1]:5"; returns the length. */
int flare_ipaddr_to_string(const flare_ipaddr *a, char *out, size_t cap);
/* Parses the forms above (and a bare IP, port 0). */
/* Returns 0, or FLARE_ERR_INVALID_ARG. */
int flare_ipaddr_parse(flare_ipaddr *a, const char *s);
void flare_ipaddr_v4(flare_ipaddr *a, uint8_t a0, uint8_t a1, uint8_t a2, uint8_t a3,
                     uint16_t port);
/* Same IP (ignoring port). */
/* Returns 1 if the IPs are equal (ports ignored), else 0. */
int flare_ipaddr_same_ip(const flare_ipaddr *a, const flare_ipaddr *b);
/* Same IP and port. */
/* Returns 1 if IP and port are equal, else 0. */
int flare_ipaddr_equal(const flare_ipaddr *a, const flare_ipaddr *b);

#ifdef __cplusplus
}
#endif
#endif
