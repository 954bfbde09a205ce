/* Fuzz multiaddr from bytes: a valid address prints, and its text parses
 * back to identical bytes; the helpers never misbehave on it. */
#include <stdlib.h>
#include <string.h>

#include "flare/multiaddr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void exercise(const flare_multiaddr *ma)
{
    size_t off = 0;
    flare_ma_component c;
    char v[FLARE_MULTIADDR_STR_MAX];
    int rv;
    while ((rv = flare_multiaddr_next(ma, &off, &c)) == 1)
        if (flare_multiaddr_component_to_string(&c, v, sizeof(v)) < 0)
            abort();
    if (rv != 0 || off != ma->len)
        abort();
    flare_ipaddr ip;
    flare_peerid a, b;
    flare_multiaddr r;
    int proto;
    (void)flare_multiaddr_classify(ma);
    (void)flare_multiaddr_to_ipaddr(ma, &ip, &proto);
    (void)flare_multiaddr_get_peerid(ma, &a);
    if (flare_multiaddr_relay_split(ma, &r, &a, &b) == 0 && r.len >= ma->len)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    flare_multiaddr ma, back;
    static char s[FLARE_MULTIADDR_STR_MAX];
    if (flare_multiaddr_from_bytes(&ma, data, size) != 0)
        return 0;
    if (ma.len != size || memcmp(ma.bytes, data, size) != 0)
        abort();
    int n = flare_multiaddr_to_string(&ma, s, sizeof(s));
    if (n < 0 || (size_t)n != strlen(s))
        abort();
    if (flare_multiaddr_parse(&back, s) != 0 || !flare_multiaddr_equal(&ma, &back))
        abort();
    exercise(&ma);
    return 0;
}
