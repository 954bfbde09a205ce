/* libFuzzer: StopMessage parsing on both sides: the target's
 * flare_relay_stop_handle and the relay's reading of the target's answer. */
#include <stdlib.h>
#include <string.h>

#include "flare/relay.h"
#include "flare/relay_server.h"
#include "relay_server_fixture.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    flare_buf out;
    flare_buf_init(&out, NULL);
    flare_relay_stop_request req;
    flare_relay_stop_handle(data, size, &req, &out);

    /* The relay side: a reservation, a CONNECT, then the fuzzed answer. */
    flare_relay_server *s = fuzz_relay_server(2);
    flare_peerid a, b;
    uint8_t mh[34] = {0x12, 0x20};
    flare_peerid_from_bytes(&a, mh, sizeof(mh));
    mh[2] = 1;
    flare_peerid_from_bytes(&b, mh, sizeof(mh));
    flare_ipaddr ip;
    flare_ipaddr_v4(&ip, 10, 0, 0, 1, 1);
    flare_relay_hop_result res;
    flare_buf_reset(&out);
    flare_relay_client_reserve(&out);
    flare_relay_server_handle_hop(s, out.base + 1, out.len - 1, &b, &ip, 0, 1, 1000, &out, &res);
    flare_buf_reset(&out);
    flare_relay_client_connect(&b, &out);
    if (flare_relay_server_handle_hop(s, out.base + 1, out.len - 1, &a, &ip, 0, 1, 1000, &out,
                                      &res) == 0 &&
        res.action == FLARE_RELAY_HOP_OPEN_STOP) {
        flare_buf_reset(&out);
        if (flare_relay_server_stop_reply(s, res.circuit, data, size, 2, &out) == 0)
            flare_relay_server_circuit_close(s, res.circuit);
    }
    flare_buf_free(&out);
    return 0;
}
