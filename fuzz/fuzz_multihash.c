/* Fuzz the multihash parser: views stay inside the input and parse_exact
 * agrees with parse. */
#include <stdlib.h>

#include "flare/multihash.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    flare_multihash_view mh;
    int n = flare_multihash_parse(data, size, &mh);
    if (n >= 0) {
        if ((size_t)n > size || mh.digest < data || mh.digest + mh.digest_len != data + n)
            abort();
        if (mh.code == FLARE_MH_SHA2_256 && mh.digest_len != FLARE_MH_SHA2_256_LEN)
            abort();
    }
    int e = flare_multihash_parse_exact(data, size, &mh);
    if ((e >= 0) != (n >= 0 && (size_t)n == size))
        abort();
    return 0;
}
