/* Feeds fuzz input to the AutoNAT v2 decoder, a server request and a client
 * request. Byte 0 picks options; the rest is the peer's stream. */
#include "flare/autonat.h"

#include <stdlib.h>
#include <string.h>

#include "input_head.h"

static void srv_side(uint8_t mode, const uint8_t *data, size_t size)
{
    flare_prng prng;
    flare_prng_seed(&prng, 1);
    flare_autonat2_server_settings s;
    flare_autonat2_server_settings_default(&s);
    s.allow_quic = mode & 1;
    s.min_dial_data = 10;
    s.max_dial_data = 200;
    flare_autonat2_server srv;
    if (flare_autonat2_server_init(&srv, &s, NULL, flare_prng_rng(&prng)))
        abort();
    uint8_t idb[34] = {0x12, 0x20};
    flare_peerid peer;
    flare_multiaddr obs;
    if (flare_peerid_from_bytes(&peer, idb, sizeof(idb)) ||
        flare_multiaddr_parse(&obs, "/ip4/8.8.4.4/tcp/1"))
        abort();
    flare_autonat2_server_req r;
    flare_autonat2_server_req_init(&r, &srv, &peer, &obs, mode & 2);
    flare_buf out;
    flare_buf_init(&out, NULL);
    size_t off = 0, used;
    for (;;) {
        int rv = flare_autonat2_server_req_recv(&r, data + off, size - off, &used, 0, &out);
        if (used > size - off)
            abort();
        off += used;
        if (rv == 1) {
            if (r.state != FLARE_AUTONAT2_SREQ_DIAL || !r.target.len)
                abort();
            if (flare_autonat2_server_req_dial_result(&r, FLARE_AUTONAT2_DIAL_OK, &out))
                abort();
            break;
        }
        if (rv != 0 || used == 0)
            break;
    }
    flare_buf_free(&out);
    flare_autonat2_server_free(&srv);
}

static void client_side(const uint8_t *data, size_t size)
{
    flare_prng prng;
    flare_prng_seed(&prng, 2);
    flare_multiaddr a[2];
    if (flare_multiaddr_parse(&a[0], "/ip4/8.8.4.4/tcp/4001") ||
        flare_multiaddr_parse(&a[1], "/ip4/9.9.9.9/tcp/4001"))
        abort();
    flare_autonat2_client_req c;
    flare_buf out;
    flare_buf_init(&out, NULL);
    if (flare_autonat2_client_req_init(&c, a, 2, FLARE_AUTONAT2_DEFAULT_MAX_DIAL_DATA,
                                       flare_prng_rng(&prng), &out))
        abort();
    size_t used;
    int rv = flare_autonat2_client_req_recv(&c, data, size, &used, &out);
    if (used > size || (rv == 1 && c.outcome == FLARE_AUTONAT_REACHABLE))
        abort(); /* no dial-back was seen */
    uint64_t nonce;
    (void)flare_autonat2_parse_dial_back(data, size, &used, &nonce);
    (void)flare_autonat2_parse_dial_back_response(data, size, &used);
    flare_buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t mode;
    if (!flare_fuzz_mode_input(&data, &size, &mode))
        return 0;
    flare_autonat2_msg m;
    (void)flare_autonat2_decode(&m, data, size);
    srv_side(mode, data, size);
    client_side(data, size);
    return 0;
}
