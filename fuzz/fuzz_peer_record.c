/* libFuzzer: PeerRecord decode (unsigned payloads, so the fuzzer reaches the
 * record parser) and signed-record open. */
#include "flare/peer_record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    flare_peer_record r;
    if (flare_peer_record_decode(data, size, &r) == 0) {
        if (r.naddrs > FLARE_PEER_RECORD_MAX_ADDRS)
            __builtin_trap();
        for (size_t i = 0; i < r.naddrs; i++)
            if (r.addrs[i].len == 0 || r.addrs[i].len > FLARE_PEER_RECORD_ADDR_MAX ||
                r.addrs[i].data < data || r.addrs[i].data + r.addrs[i].len > data + size)
                __builtin_trap();
    }
    (void)flare_peer_record_open(data, size, &r, NULL);
    return 0;
}
