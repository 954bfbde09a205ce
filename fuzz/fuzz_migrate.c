/* Feeds fuzz input to the /flare/migrate/1.0.0 message parser, as a stream
 * of messages; every message parsed must encode back to the same bytes. */
#include <stdlib.h>
#include <string.h>

#include "protocols/migrate/migrate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    while (size) {
        flare__mig_msg m;
        int rv = flare__mig_parse(data, size, &m);
        if (rv <= 0)
            return 0;
        if ((size_t)rv > size || rv > FLARE__MIG_MSG_MAX)
            abort();
        uint8_t out[FLARE__MIG_MSG_MAX];
        if (flare__mig_encode(&m, out) != (size_t)rv || memcmp(out, data, (size_t)rv) != 0)
            abort();
        data += rv;
        size -= (size_t)rv;
    }
    return 0;
}
