/* Feeds fuzz input to the DCUtR codec and to either core. Byte 0 picks the
 * side, byte 1 a split point; the rest is what the peer sent on the stream. */
#include "flare/dcutr.h"

#include <stdlib.h>

#include "input_head.h"

static flare_dcutr_msg msg;

static void check_decode(const uint8_t *data, size_t size)
{
    if (flare_dcutr_msg_decode(&msg, data, size) != 0)
        return;
    if (msg.naddrs > FLARE_DCUTR_MAX_ADDRS)
        abort();
    for (size_t i = 0; i < msg.naddrs; i++)
        if (flare_multiaddr_is_relayed(&msg.addrs[i]))
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t mode;
    size_t split;
    if (!flare_fuzz_split_input(&data, &size, &mode, &split))
        return 0;
    check_decode(data, size);

    flare_multiaddr ours;
    if (flare_multiaddr_parse(&ours, "/ip4/198.51.100.1/tcp/4001"))
        abort();
    flare_buf out;
    flare_buf_init(&out, NULL);
    if (mode & 1) {
        static flare_dcutr_responder a;
        if (flare_dcutr_responder_init(&a, NULL, NULL) || flare_dcutr_responder_stream_open(&a, 0))
            abort();
        flare_dcutr_responder_recv(&a, data, split, 1, &ours, (mode & 2) ? 1 : 0, &out);
        flare_dcutr_responder_recv(&a, data + split, size - split, 2, &ours, 1, &out);
        flare_dcutr_responder_handle_expiry(&a, flare_dcutr_responder_expiry(&a));
        flare_dcutr_event ev;
        while (flare_dcutr_responder_poll_event(&a, &ev))
            if (ev.type == FLARE_DCUTR_EV_DIAL && (ev.naddrs == 0 || ev.naddrs > 32))
                abort();
        flare_dcutr_responder_free(&a);
    } else {
        static flare_dcutr_initiator b;
        if (flare_dcutr_initiator_init(&b, NULL, NULL) ||
            flare_dcutr_initiator_start(&b, 0, &ours, 1, &out))
            abort();
        flare_dcutr_initiator_recv(&b, data, split, 1, &out);
        flare_dcutr_initiator_recv(&b, data + split, size - split, 2, &out);
        for (int i = 0; i < 3; i++)
            flare_dcutr_initiator_handle_expiry(&b, flare_dcutr_initiator_expiry(&b));
        flare_dcutr_event ev;
        while (flare_dcutr_initiator_poll_event(&b, &ev))
            if (ev.type == FLARE_DCUTR_EV_DIAL && (ev.naddrs == 0 || ev.naddrs > 32))
                abort();
        flare_dcutr_initiator_free(&b);
    }
    flare_buf_free(&out);
    return 0;
}
