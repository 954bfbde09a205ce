/* Fuzz the unsigned-varint decoder: a decoded value re-encodes to the same
 * (minimal) bytes. */
#include <stdlib.h>
#include <string.h>

#include "flare/varint.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t v;
    int n = flare_uvarint_decode(data, size, &v);
    if (n < 0)
        return 0;
    uint8_t out[FLARE_UVARINT_MAX_LEN];
    if (n > FLARE_UVARINT_MAX_LEN || (size_t)n > size)
        abort();
    if (flare_uvarint_encode(v, out) != n || memcmp(out, data, (size_t)n) != 0)
        abort();
    if (flare_uvarint_len(v) != (size_t)n)
        abort();
    return 0;
}
