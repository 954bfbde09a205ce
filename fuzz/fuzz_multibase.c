/* Fuzz multibase decoding in every base: whatever decodes re-encodes in the
 * same base and decodes back to the same bytes. */
#include <stdlib.h>
#include <string.h>

#include "flare/multibase.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CAP 4096

static void round_trip(flare_multibase base, const uint8_t *dec, size_t n)
{
    static char enc[2 * CAP + 16];
    static uint8_t dec2[CAP];
    int e = flare_multibase_encode(base, dec, n, enc, sizeof(enc));
    if (e < 0 || (size_t)e != strlen(enc))
        abort();
    int d = flare_multibase_decode(enc, (size_t)e, dec2, sizeof(dec2), NULL);
    if (d < 0 || (size_t)d != n || memcmp(dec, dec2, n) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const flare_multibase bases[] = {FLARE_MULTIBASE_BASE16, FLARE_MULTIBASE_BASE32,
                                            FLARE_MULTIBASE_BASE36, FLARE_MULTIBASE_BASE58BTC,
                                            FLARE_MULTIBASE_BASE64, FLARE_MULTIBASE_BASE64URL};
    static uint8_t dec[CAP];
    flare_multibase base;
    if (size > 1024)
        return 0; /* base36/58 are quadratic */
    int n = flare_multibase_decode((const char *)data, size, dec, sizeof(dec), &base);
    if (n >= 0)
        round_trip(base, dec, (size_t)n);
    /* The same text without a prefix, in every base. */
    for (size_t i = 0; i < sizeof(bases) / sizeof(bases[0]); i++) {
        n = flare_base_decode(bases[i], (const char *)data, size, dec, sizeof(dec));
        if (n >= 0)
            round_trip(bases[i], dec, (size_t)n);
    }
    return 0;
}
