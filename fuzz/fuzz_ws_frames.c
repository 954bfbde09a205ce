/* Feeds fuzz input as WebSocket frames to an open endpoint: byte 0 picks
 * the side (server: frames must be masked; client: they must not) and byte
 * 1 a split point. The stream's bytes that come out can never exceed what
 * went in. */
#include <stdlib.h>
#include <string.h>

#include "transport/ws_core.h"

#include "input_head.h"

static void fixed_rand(uint8_t *dst, size_t len, void *user)
{
    (void)user;
    memset(dst, 0x3c, len);
}

static void open_pair(flare__ws *cl, flare__ws *sv)
{
    flare__ws_settings cs = {.client = 1, .rng = {fixed_rand, NULL}, .frame_max = 4096};
    flare__ws_settings ss = {.frame_max = 4096};
    flare_buf a, w1, w2;
    flare_buf_init(&a, NULL);
    flare_buf_init(&w1, NULL);
    flare_buf_init(&w2, NULL);
    unsigned ev;
    if (flare__ws_init(cl, &cs, 0, NULL) || flare__ws_init(sv, &ss, 0, NULL) ||
        flare__ws_start(cl, &w1, "h", NULL) || flare__ws_input(sv, w1.base, w1.len, &a, &w2, &ev) ||
        flare__ws_input(cl, w2.base, w2.len, &a, &w1, &ev) || cl->state != FLARE__WS_OPEN)
        abort();
    flare_buf_free(&a);
    flare_buf_free(&w1);
    flare_buf_free(&w2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t mode;
    size_t split;
    if (!flare_fuzz_split_input(&data, &size, &mode, &split))
        return 0;
    int to_client = mode & 1;
    flare__ws cl, sv;
    open_pair(&cl, &sv);
    flare__ws *ws = to_client ? &cl : &sv;
    flare_buf app, wire;
    flare_buf_init(&app, NULL);
    flare_buf_init(&wire, NULL);
    unsigned ev = 0;
    int rv = flare__ws_input(ws, data, split, &app, &wire, &ev);
    if (rv == 0)
        rv = flare__ws_input(ws, data + split, size - split, &app, &wire, &ev);
    if (app.len > size)
        abort();
    if (rv == 0 && ws->state == FLARE__WS_OPEN) {
        if (flare__ws_write(ws, (const uint8_t *)"x", 1, &wire))
            abort();
    }
    flare__ws_free(&cl);
    flare__ws_free(&sv);
    flare_buf_free(&app);
    flare_buf_free(&wire);
    return 0;
}
