/* Feeds fuzz input to the WebSocket upgrade: byte 0 picks the side (server
 * parsing a request, or client parsing an answer) and byte 1 a split
 * point; the rest is the peer's bytes. */
#include <stdlib.h>
#include <string.h>

#include "transport/ws_core.h"

#include "input_head.h"

static void fixed_rand(uint8_t *dst, size_t len, void *user)
{
    (void)user;
    memset(dst, 0x5a, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t mode;
    size_t split;
    if (!flare_fuzz_split_input(&data, &size, &mode, &split))
        return 0;
    int client = mode & 1;
    flare__ws ws;
    flare__ws_settings s = {.client = client, .rng = {fixed_rand, NULL}};
    if (flare__ws_init(&ws, &s, 0, NULL))
        abort();
    flare_buf app, wire;
    flare_buf_init(&app, NULL);
    flare_buf_init(&wire, NULL);
    if (client && flare__ws_start(&ws, &wire, "h:1", NULL))
        abort();
    flare_buf_reset(&wire);
    unsigned ev = 0;
    int rv = flare__ws_input(&ws, data, split, &app, &wire, &ev);
    if (rv == 0 && !(ev & FLARE__WS_EV_OPEN))
        rv = flare__ws_input(&ws, data + split, size - split, &app, &wire, &ev);
    /* A server that refused said so in HTTP; one that accepted answered 101. */
    if (!client && ws.refused && (wire.len < 12 || memcmp(wire.base, "HTTP/1.1 ", 9) != 0))
        abort();
    if (ws.hdr.len > FLARE__WS_HTTP_MAX)
        abort();
    flare__ws_free(&ws);
    flare_buf_free(&app);
    flare_buf_free(&wire);
    return 0;
}
