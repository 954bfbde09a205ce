/* Feeds fuzz input to the AutoNAT v1 decoder, server and client. Byte 0
 * picks options; the rest is the peer's stream. */
#include "flare/autonat.h"

#include <stdlib.h>
#include <string.h>

#include "input_head.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t mode;
    if (!flare_fuzz_mode_input(&data, &size, &mode))
        return 0;
    flare_autonat1_msg m;
    (void)flare_autonat1_decode(&m, data, size);

    flare_autonat1_server_settings s;
    flare_autonat1_server_settings_default(&s);
    s.doc_is_public = mode & 1;
    flare_autonat1_server srv;
    if (flare_autonat1_server_init(&srv, &s, NULL))
        abort();
    uint8_t idb[34] = {0x12, 0x20};
    flare_peerid peer;
    if (flare_peerid_from_bytes(&peer, idb, sizeof(idb)))
        abort();
    flare_multiaddr obs;
    if (flare_multiaddr_parse(&obs, (mode & 2) ? "/ip4/8.8.4.4/tcp/1" : "/ip4/203.0.113.1/tcp/1"))
        abort();
    flare_autonat1_dial dial;
    flare_buf out;
    flare_buf_init(&out, NULL);
    size_t used = 0;
    int rv = flare_autonat1_server_handle(&srv, data, size, &used, &peer, &obs, mode & 4, 0, &dial,
                                          &out);
    if (used > size || (rv == 1 && (dial.naddrs == 0 || out.len)) || (rv == 0 && !out.len))
        abort();
    flare_autonat_outcome o;
    uint16_t port = 4001;
    rv = flare_autonat1_client_response(data, size, &used, &obs, 1, &port, 1, &o, NULL);
    if (used > size || (rv < 0 && o != FLARE_AUTONAT_NO_INFO))
        abort();
    flare_autonat1_server_free(&srv);
    flare_buf_free(&out);
    return 0;
}
