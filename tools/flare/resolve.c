/* /dns, /dns4, /dns6 addresses for dialing over TCP: the system resolver
 * turns the name into an IP address before the host sees the address (the
 * TCP transport takes IP addresses only). WebSocket addresses are left to
 * the library, whose ws transport resolves names through the io driver and
 * keeps the name for TLS (SNI and the certificate check); resolved here
 * (only when the address is not a WebSocket one), TLS would get /sni/NAME
 * for the same effect. */
#include <arpa/inet.h>
#include <netdb.h>
#include <string.h>
#include <sys/socket.h>

#include "cli.h"

int cli_resolve_multiaddr(const flare_multiaddr *in, flare_multiaddr *out)
{
    size_t off = 0;
    flare_ma_component c;
    if (flare_multiaddr_next(in, &off, &c) != 1)
        return FLARE_ERR_INVALID_ARG;
    if ((c.code != FLARE_MA_DNS_ANY && c.code != FLARE_MA_DNS4 && c.code != FLARE_MA_DNS6) ||
        flare_multiaddr_has(in, FLARE_MA_WS) || flare_multiaddr_has(in, FLARE_MA_WSS)) {
        *out = *in;
        return 0;
    }
    char name[256];
    if (c.value_len == 0 || c.value_len >= sizeof(name))
        return FLARE_ERR_INVALID_ARG;
    memcpy(name, c.value, c.value_len);
    name[c.value_len] = 0;
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = c.code == FLARE_MA_DNS4   ? AF_INET
                      : c.code == FLARE_MA_DNS6 ? AF_INET6
                                                : AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(name, NULL, &hints, &res) || !res)
        return FLARE_ERR_UNREACHABLE;
    flare_multiaddr m = {0};
    int rv;
    if (res->ai_family == AF_INET)
        rv = flare_multiaddr_push(
            &m, FLARE_MA_IP4, (const uint8_t *)&((struct sockaddr_in *)res->ai_addr)->sin_addr, 4);
    else
        rv = flare_multiaddr_push(
            &m, FLARE_MA_IP6, (const uint8_t *)&((struct sockaddr_in6 *)res->ai_addr)->sin6_addr,
            16);
    freeaddrinfo(res);
    /* The rest, with the name as SNI where TLS comes without one. */
    int after_tls = 0, has_sni = flare_multiaddr_has(in, FLARE_MA_SNI);
    while (rv == 0 && flare_multiaddr_next(in, &off, &c) == 1) {
        if (after_tls && !has_sni && c.code != FLARE_MA_SNI)
            rv = flare_multiaddr_push(&m, FLARE_MA_SNI, (const uint8_t *)name, strlen(name));
        after_tls = 0;
        if (rv)
            break;
        if (c.code == FLARE_MA_WSS && !has_sni) {
            rv = flare_multiaddr_push(&m, FLARE_MA_TLS, NULL, 0);
            if (rv == 0)
                rv = flare_multiaddr_push(&m, FLARE_MA_SNI, (const uint8_t *)name, strlen(name));
            if (rv == 0)
                rv = flare_multiaddr_push(&m, FLARE_MA_WS, NULL, 0);
            continue;
        }
        rv = flare_multiaddr_push(&m, c.code, c.value, c.value_len);
        after_tls = c.code == FLARE_MA_TLS;
    }
    if (rv == 0)
        *out = m;
    return rv;
}

int cli_parse_dial_addr(flare_multiaddr *ma, const char *s)
{
    flare_multiaddr in;
    int rv = flare_multiaddr_parse(&in, s);
    return rv ? rv : cli_resolve_multiaddr(&in, ma);
}
