/* Feeds fuzz input to the STUN parser, its attribute decoders and
 * integrity checks, the Binding server's answer (which must stay within
 * its amplification bound) and a client transaction's matcher. */
#include "flare/stun.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    flare_stun_msg m;
    if (flare_stun_parse(&m, data, size) == 0) {
        flare_ipaddr a;
        int code;
        const char *r;
        size_t rl;
        uint32_t u32;
        uint64_t u64;
        flare_stun_get_addr(&m, FLARE_STUN_ATTR_XOR_MAPPED_ADDRESS, &a);
        flare_stun_get_addr(&m, FLARE_STUN_ATTR_MAPPED_ADDRESS, &a);
        if (flare_stun_get_error(&m, &code, &r, &rl) == 0 && (r + rl > (const char *)data + size))
            abort();
        flare_stun_get_u32(&m, FLARE_STUN_ATTR_PRIORITY, &u32);
        flare_stun_get_u64(&m, FLARE_STUN_ATTR_ICE_CONTROLLING, &u64);
        flare_stun_check_integrity(&m, (const uint8_t *)"pwd", 3);
        flare_stun_check_integrity_sha256(&m, (const uint8_t *)"pwd", 3);
        for (size_t i = 0; i < m.nattrs; i++)
            if ((size_t)m.attrs[i].off + m.attrs[i].len > size)
                abort();
    }
    flare_ipaddr from;
    flare_ipaddr_parse(&from, "[2001:db8::1]:9");
    uint8_t out[FLARE_STUN_MAX_MSG];
    int n = flare_stun_server_answer(data, size, &from, out, sizeof(out));
    if (n < 0 || n > FLARE_STUN_SERVER_MAX_RESP || (n > 0 && (size_t)n > size + 32))
        abort();

    /* A pending transaction sees the input as a response. */
    uint8_t req[32];
    uint8_t txid[12] = {0};
    if (size >= 20)
        memcpy(txid, data + 8, 12);
    flare_stun_builder b;
    flare_stun_build_init(&b, req, sizeof(req), FLARE_STUN_BINDING, FLARE_STUN_REQUEST, txid);
    int rn = flare_stun_build_finish(&b);
    flare_stun_txn t;
    if (flare_stun_txn_start(&t, NULL, req, (size_t)rn, 0) == 0 &&
        flare_stun_txn_poll_send(&t, 0, out, sizeof(out)) > 0 &&
        flare_stun_parse(&m, data, size) == 0)
        flare_stun_txn_match(&t, &m);
    return 0;
}
