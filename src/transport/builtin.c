/* The built-in transports: the one place that lists them. A new transport
 * is a file in src/transport/ and one line here. Dialing and listening take
 * the first one whose match accepts the address: circuit comes before TCP
 * because a relayed address starts with the relay's TCP address, and webrtc
 * (.../p2p-circuit/webrtc/p2p/PEER) before circuit. */
#include "transport/transport.h"

extern const flare__transport flare__tr_webrtc;
extern const flare__transport flare__tr_circuit;
extern const flare__transport flare__tr_tcp;
extern const flare__transport flare__tr_quic;
extern const flare__transport flare__tr_webrtc_direct;
extern const flare__transport flare__tr_ws;
extern const flare__transport flare__tr_wss;

static const flare__transport *const builtin[] = {
    &flare__tr_webrtc, &flare__tr_circuit,       &flare__tr_ws, &flare__tr_wss, &flare__tr_tcp,
    &flare__tr_quic,   &flare__tr_webrtc_direct,
};

size_t flare__transports_builtin(const flare__transport *const **list)
{
    *list = builtin;
    return sizeof(builtin) / sizeof(builtin[0]);
}
