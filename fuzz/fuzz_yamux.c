/* Fuzzes a yamux session with peer bytes, in either role, interleaved with
 * application calls chosen by the input.
 *
 * Input: byte 0 = config (bit 0 client, bit 1 tiny limits), then records of
 * [action byte][length byte][length bytes of peer input]. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "flare/yamux.h"

static void app_step(flare_yamux *y, uint8_t act, flare_tstamp now, flare_buf *out)
{
    flare_yamux_event ev;
    static uint8_t buf[8192]; /* >= the largest write below */
    while (flare_yamux_poll_event(y, &ev)) {
        uint32_t id = ev.stream_id;
        if (!id)
            continue;
        if (act & 1)
            (void)flare_yamux_read(y, id, buf, sizeof(buf), out);
        if (act & 2)
            (void)flare_yamux_write(y, id, buf, (size_t)(act & 0x70) << 6, out);
        if ((act & 0x0c) == 0x04)
            (void)flare_yamux_close_stream(y, id, out);
        if ((act & 0x0c) == 0x08)
            (void)flare_yamux_reset_stream(y, id, out);
        if ((act & 0x0c) == 0x0c)
            (void)flare_yamux_accept_stream(y, id, out);
    }
    if (act & 0x80) {
        uint32_t id;
        (void)flare_yamux_open_stream(y, &id, out);
        (void)flare_yamux_ping(y, now, out);
    }
    if ((act & 0xf0) == 0xf0)
        (void)flare_yamux_goaway(y, 0, out);
    if (flare_yamux_expiry(y) <= now)
        (void)flare_yamux_handle_expiry(y, now, out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    flare_yamux_settings s;
    flare_yamux_settings_default(&s);
    s.is_client = data[0] & 1;
    if (data[0] & 2) {
        s.max_streams = 8;
        s.max_unacked_inbound = 4;
        s.max_window = s.initial_window;
        s.max_recv_buffer = s.initial_window;
    }
    s.keepalive_interval = FLARE_NS_PER_S;
    s.ping_timeout = FLARE_NS_PER_S / 2;
    flare_yamux *y;
    flare_prng prng; /* reproducible ping values */
    flare_prng_seed(&prng, 1);
    if (flare_yamux_new(&y, &s, NULL, flare_prng_rng(&prng), 0) != 0)
        return 0;
    flare_buf out;
    flare_buf_init(&out, NULL);
    flare_tstamp now = 0;
    size_t off = 1;
    while (off + 2 <= size) {
        uint8_t act = data[off], n = data[off + 1];
        off += 2;
        if (n > size - off)
            n = (uint8_t)(size - off);
        now += (flare_tstamp)(act & 0x0f) * 100 * FLARE_NS_PER_MS;
        int rv = flare_yamux_recv(y, data + off, n, now, &out);
        off += n;
        app_step(y, act, now, &out);
        flare_buf_reset(&out);
        if (rv < 0 && rv != FLARE_ERR_STATE)
            break;
    }
    flare_yamux_del(y);
    flare_buf_free(&out);
    return 0;
}
