/* WebSocket transports (ws.c): /ws and, through TLS, /tls/ws (/wss). */
#ifndef FLARE_TRANSPORT_WS_H
#define FLARE_TRANSPORT_WS_H

#include "transport/transport.h"

/* Registry entries (builtin.c). */
extern const flare__transport flare__tr_ws;
extern const flare__transport flare__tr_wss;

/* What a WebSocket multiaddr says: /ip4|ip6/A/tcp/P or
 * /dns|dns4|dns6/NAME/tcp/P, then /ws, /wss, /tls/ws or /tls/sni/NAME/ws,
 * then nothing or /p2p/ID. */
typedef struct flare__ws_addr {
    flare_ipaddr ip; /* the port only, for a name */
    int secure;
    char sni[256];  /* /sni/NAME ("" if none) */
    char dns[256];  /* the name to resolve ("" for an IP address) */
    int dns_family; /* 4, 6, or 0 (/dns: either) */
} flare__ws_addr;

/* 0 if ma is a WebSocket address (filled into a), else an error. */
int flare__ws_addr_parse(const flare_multiaddr *ma, flare__ws_addr *a);

#endif
