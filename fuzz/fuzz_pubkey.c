/* libFuzzer: PublicKey protobuf decode; a decoded key must re-encode and
 * decode to itself, and verifying garbage must not crash. */
#include <string.h>

#include "flare/keys.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    flare_pubkey k, k2;
    if (flare_pubkey_decode(&k, data, size) != 0)
        return 0;
    uint8_t enc[FLARE_PUBKEY_PROTO_MAX];
    int n = flare_pubkey_encode(&k, enc, sizeof(enc));
    if (n < 0 || flare_pubkey_decode(&k2, enc, (size_t)n) != 0 || !flare_pubkey_equal(&k, &k2))
        __builtin_trap();
    size_t half = size / 2;
    (void)flare_pubkey_verify(&k, data, half, data + half, size - half);
    return 0;
}
