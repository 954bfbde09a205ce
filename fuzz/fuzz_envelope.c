/* libFuzzer: opening envelopes (any payload type, one fixed domain), also
 * through a signature cache, which must give the same answer every time. */
#include "flare/envelope.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static flare_sig_cache *cache;
    if (!cache && flare_sig_cache_new(&cache, 64, NULL) != 0)
        __builtin_trap();
    flare_envelope e;
    int rv = flare_envelope_open(data, size, "libp2p-relay-rsvp", NULL, 0, &e);
    if (rv == 0) {
        /* Views must stay inside the input. */
        if (e.payload < data || e.payload + e.payload_len > data + size)
            __builtin_trap();
    }
    for (int i = 0; i < 2; i++)
        if (flare_envelope_open_cached(data, size, "libp2p-relay-rsvp", NULL, 0, cache, &e) != rv)
            __builtin_trap();
    return 0;
}
