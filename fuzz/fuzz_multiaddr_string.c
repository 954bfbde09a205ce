/* Fuzz multiaddr text parsing: a parsed address is valid as bytes, prints,
 * and its printed form parses to the same bytes. */
#include <stdlib.h>
#include <string.h>

#include "flare/multiaddr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    flare_multiaddr ma, back;
    static char s[FLARE_MULTIADDR_STR_MAX];
    if (size > 8192)
        return 0;
    if (flare_multiaddr_parse_n(&ma, (const char *)data, size) != 0) {
        if (ma.len != 0)
            abort();
        return 0;
    }
    if (flare_multiaddr_from_bytes(&back, ma.bytes, ma.len) != 0)
        abort();
    int n = flare_multiaddr_to_string(&ma, s, sizeof(s));
    if (n < 0)
        abort();
    if (flare_multiaddr_parse(&back, s) != 0 || !flare_multiaddr_equal(&ma, &back))
        abort();
    return 0;
}
