/* Fuzzes a listening flare host with raw bytes from a peer socket on the
 * simulator: multistream-select, the Noise handshake and whatever follows,
 * with the host's stream callbacks acting as the input says. Input format:
 * fuzz/host_harness.h. */
#include "host_harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_input(data, size, 0);
    return 0;
}
