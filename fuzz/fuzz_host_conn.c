/* Fuzzes the host's connection and stream glue behind a real handshake: a
 * scripted peer completes multistream + Noise with a flare host on the
 * simulator, then sends input-chosen plaintext (yamux frames, multistream,
 * protocol messages) on the encrypted channel, while the host's stream
 * callbacks write, close, reset and drop the connection as the input says.
 * Input format: fuzz/host_harness.h. */
#include "host_harness.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fz_maybe_record();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_input(data, size, 1);
    return 0;
}
