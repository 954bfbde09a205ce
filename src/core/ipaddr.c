#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flare/ipaddr.h"

int flare_ipaddr_to_string(const flare_ipaddr *a, char *out, size_t cap)
{
    char ip[INET6_ADDRSTRLEN];
    int n;
    if (a->family == 4) {
        inet_ntop(AF_INET, a->ip, ip, sizeof(ip));
        n = snprintf(out, cap, "%s:%u", ip, a->port);
    } else if (a->family == 6) {
        inet_ntop(AF_INET6, a->ip, ip, sizeof(ip));
        n = snprintf(out, cap, "[%s]:%u", ip, a->port);
    } else {
        return FLARE_ERR_INVALID_ARG;
    }
    if (n < 0 || (size_t)n >= cap)
        return FLARE_ERR_BUFFER_TOO_SMALL;
    return n;
}

static int parse_port(const char *s, uint16_t *port)
{
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (*s == 0 || *end != 0 || v > 65535)
        return FLARE_ERR_MALFORMED;
    *port = (uint16_t)v;
    return 0;
}

int flare_ipaddr_parse(flare_ipaddr *a, const char *s)
{
    char tmp[FLARE_IPADDR_STR_MAX];
    memset(a, 0, sizeof(*a));
    if (strlen(s) >= sizeof(tmp))
        return FLARE_ERR_TOO_LARGE;
    strcpy(tmp, s);
    if (tmp[0] == '[') {
        char *close = strchr(tmp, ']');
        if (!close)
            return FLARE_ERR_MALFORMED;
        *close = 0;
        if (inet_pton(AF_INET6, tmp + 1, a->ip) != 1)
            return FLARE_ERR_MALFORMED;
        a->family = 6;
        if (close[1] == ':')
            return parse_port(close + 2, &a->port);
        return close[1] ? FLARE_ERR_MALFORMED : 0;
    }
    if (inet_pton(AF_INET6, tmp, a->ip) == 1) {
        a->family = 6;
        return 0;
    }
    char *colon = strchr(tmp, ':');
    if (colon)
        *colon = 0;
    if (inet_pton(AF_INET, tmp, a->ip) != 1)
        return FLARE_ERR_MALFORMED;
    a->family = 4;
    return colon ? parse_port(colon + 1, &a->port) : 0;
}

void flare_ipaddr_v4(flare_ipaddr *a, uint8_t a0, uint8_t a1, uint8_t a2, uint8_t a3, uint16_t port)
{
    memset(a, 0, sizeof(*a));
    a->family = 4;
    a->ip[0] = a0;
    a->ip[1] = a1;
    a->ip[2] = a2;
    a->ip[3] = a3;
    a->port = port;
}

int flare_ipaddr_same_ip(const flare_ipaddr *a, const flare_ipaddr *b)
{
    size_t n = a->family == 4 ? 4 : 16;
    return a->family == b->family && memcmp(a->ip, b->ip, n) == 0;
}

int flare_ipaddr_equal(const flare_ipaddr *a, const flare_ipaddr *b)
{
    return flare_ipaddr_same_ip(a, b) && a->port == b->port;
}
