/* libFuzzer: PrivateKey protobuf decode; a decoded key round-trips. */
#include "flare/keys.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    flare_privkey k, k2;
    if (flare_privkey_decode(&k, data, size) != 0)
        return 0;
    uint8_t enc[128];
    int n = flare_privkey_encode(&k, enc, sizeof(enc));
    if (n < 0 || flare_privkey_decode(&k2, enc, (size_t)n) != 0 ||
        !flare_pubkey_equal(&k.pub, &k2.pub))
        __builtin_trap();
    return 0;
}
