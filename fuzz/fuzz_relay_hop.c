/* libFuzzer: HopMessage parsing on both sides: the relay server's
 * handle_hop (the requester's message) and the client's reply parsers. */
#include <stdlib.h>
#include <string.h>

#include "flare/relay.h"
#include "flare/relay_server.h"
#include "relay_server_fixture.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    flare_relay_server *s = fuzz_relay_server(1);
    flare_peerid from, relay;
    uint8_t mh[34] = {0x12, 0x20};
    memcpy(mh + 2, data, size < 32 ? size : 32);
    flare_peerid_from_bytes(&from, mh, sizeof(mh));
    mh[2] ^= 0xff;
    flare_peerid_from_bytes(&relay, mh, sizeof(mh));
    flare_ipaddr ip;
    flare_ipaddr_v4(&ip, 10, 0, 0, size & 0xff, 1);
    flare_buf out;
    flare_buf_init(&out, NULL);
    flare_relay_hop_result res;
    if (flare_relay_server_handle_hop(s, data, size, &from, &ip, 0, 1, 1000, &out, &res) == 0 &&
        res.action == FLARE_RELAY_HOP_OPEN_STOP) {
        flare_buf_reset(&out);
        flare_relay_server_stop_failed(s, res.circuit, &out);
    }
    flare_relay_server_peer_disconnected(s, &from); /* keep the state bounded */
    flare_relay_msg m;
    if (flare_relay_hop_decode(data, size, &m) == 0) {
        for (size_t i = 0; i < m.nrsvp_addrs; i++)
            if (m.rsvp_addrs[i].p < data || m.rsvp_addrs[i].p + m.rsvp_addrs[i].len > data + size)
                __builtin_trap();
        /* What decodes re-encodes, and decodes to the same type. */
        flare_buf_reset(&out);
        flare_relay_msg m2;
        if (flare_relay_hop_encode(&m, &out) != 0 ||
            flare_relay_hop_decode(out.base + (out.len > 128 ? 2 : 1),
                                   out.len - (out.len > 128 ? 2 : 1), &m2) != 0 ||
            m2.type != m.type)
            __builtin_trap();
    }
    flare_relay_reservation r;
    flare_relay_client_reserve_reply(data, size, &relay, &from, 1000, &r, NULL);
    flare_relay_limit l;
    flare_relay_client_connect_reply(data, size, &l, NULL);
    flare_relay_voucher v;
    flare_relay_voucher_open(data, size, &v);
    flare_buf_free(&out);
    return 0;
}
