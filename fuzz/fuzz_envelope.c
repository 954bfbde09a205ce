/* libFuzzer: opening envelopes (any payload type, one fixed domain). */
#include "flare/envelope.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    flare_envelope e;
    if (flare_envelope_open(data, size, "libp2p-relay-rsvp", NULL, 0, &e) == 0) {
        /* Views must stay inside the input. */
        if (e.payload < data || e.payload + e.payload_len > data + size)
            __builtin_trap();
    }
    return 0;
}
