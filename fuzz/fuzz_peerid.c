/* libFuzzer: peer IDs from bytes and from text; valid IDs survive both text
 * forms. */
#include "flare/peerid.h"

static void roundtrip(const flare_peerid *id)
{
    char s[FLARE_PEERID_STR_MAX];
    flare_peerid back;
    int n = flare_peerid_to_string(id, s, sizeof(s));
    if (n < 0 || flare_peerid_parse(&back, s, (size_t)n) != 0 || !flare_peerid_equal(id, &back))
        __builtin_trap();
    n = flare_peerid_to_cid(id, s, sizeof(s));
    if (n < 0 || flare_peerid_parse(&back, s, (size_t)n) != 0 || !flare_peerid_equal(id, &back))
        __builtin_trap();
    flare_pubkey k;
    if (flare_peerid_extract_pubkey(id, &k) == 0)
        (void)flare_peerid_matches_pubkey(id, &k);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    flare_peerid id;
    if (flare_peerid_from_bytes(&id, data, size) == 0)
        roundtrip(&id);
    if (flare_peerid_parse(&id, (const char *)data, size) == 0)
        roundtrip(&id);
    return 0;
}
