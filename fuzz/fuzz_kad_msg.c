/* Feeds fuzz input to the Kademlia message decoder; whatever decodes must
 * re-encode and decode to the same counts, within the bounds. The input also
 * drives a lookup with the decoded closer peers, and the provider and record
 * stores with the decoded keys. */
#include <stdlib.h>
#include <string.h>

#include "protocols/kad/kad.h"

static flare__kad_msg m, m2;

static void check_bounds(const flare__kad_msg *x)
{
    if (x->ncloser > FLARE__KAD_MAX_PEERS || x->nproviders > FLARE__KAD_MAX_PEERS ||
        x->key.len > FLARE__KAD_MAX_KEY || x->rec_value.len > FLARE__KAD_MAX_VALUE)
        abort();
    for (size_t i = 0; i < x->ncloser; i++)
        if (x->closer[i].naddrs > FLARE__KAD_MAX_ADDRS)
            abort();
}

static void drive(const flare__kad_msg *x)
{
    flare_peerid self = {.len = 2, .bytes = {0, 0}}, from = {.len = 2, .bytes = {0, 1}}, q;
    flare_peerid closer[FLARE__KAD_MAX_PEERS];
    size_t n = 0;
    for (size_t i = 0; i < x->ncloser; i++)
        if (flare_peerid_from_bytes(&closer[n], x->closer[i].id.p, x->closer[i].id.len) == 0)
            n++;
    if (n != x->ncloser)
        abort(); /* the decoder promised valid IDs */
    flare__kad_key t;
    flare__kad_key_of(&t, x->key.p, x->key.len);
    flare__kad_lookup l;
    if (flare__kad_lookup_init(&l, &t, &self, 3, 2, 4, 2, NULL))
        return;
    flare__kad_lookup_seed(&l, &from);
    if (flare__kad_lookup_next(&l, &q) != FLARE__KAD_L_QUERY)
        abort();
    flare__kad_lookup_ok(&l, &from, closer, n);
    for (int i = 0; i < 64 && flare__kad_lookup_next(&l, &q) == FLARE__KAD_L_QUERY; i++)
        flare__kad_lookup_fail(&l, &q);
    if (l.n > l.cap)
        abort();
    flare__kad_lookup_free(&l);

    flare__kad_providers ps;
    flare__kad_providers_init(&ps, 4, 2, 0, NULL);
    for (size_t i = 0; i < n; i++)
        flare__kad_providers_add(&ps, x->key.p, x->key.len, &closer[i], 1);
    flare__kad_providers_free(&ps);

    flare__kad_records rs;
    flare__kad_records_init(&rs, 4, 0, NULL);
    flare__kad_records_add_validator(&rs, &flare__kad_pk_validator);
    if (x->has_record)
        flare__kad_records_put(&rs, x->rec_key.p, x->rec_key.len, x->rec_value.p, x->rec_value.len,
                               1);
    flare__kad_records_free(&rs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (flare__kad_msg_decode(&m, data, size) != 0)
        return 0;
    check_bounds(&m);
    flare_buf out;
    flare_buf_init(&out, NULL);
    int rv = flare__kad_msg_encode(&out, &m);
    if (rv == 0) {
        size_t pre = 0;
        while (out.base[pre] & 0x80)
            pre++;
        pre++;
        if (flare__kad_msg_decode(&m2, out.base + pre, out.len - pre) != 0 ||
            m2.ncloser != m.ncloser || m2.nproviders != m.nproviders || m2.type != m.type ||
            m2.key.len != m.key.len || m2.has_record != m.has_record || m2.ndropped != 0)
            abort();
    } else if (rv != FLARE_ERR_TOO_LARGE) {
        abort();
    }
    flare_buf_free(&out);
    drive(&m);
    return 0;
}
