/* Relay memory: heap bytes per reservation (1,000 and 10,000 distinct peers
 * and IPs, limits raised) and per idle circuit, with a counting allocator. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flare/lpframe.h"
#include "flare/relay.h"
#include "flare/relay_server.h"
#include "support/helpers.h"

static int run(size_t n, const flare_privkey *k)
{
    flare_test_heap cnt = {0};
    flare_mem mem = flare_test_heap_mem(&cnt);
    flare_prng p;
    flare_prng_seed(&p, 1);
    flare_relay_server_settings cfg;
    flare_relay_server_settings_default(&cfg);
    cfg.key = k;
    cfg.max_reservations = (uint32_t)n;
    cfg.max_circuits = (uint32_t)n;
    flare_relay_server *s;
    if (flare_relay_server_new(&s, &cfg, &mem, flare_prng_rng(&p)) != 0)
        return 1;
    size_t base = (size_t)cnt.bytes;
    flare_buf req, out;
    flare_buf_init(&req, NULL);
    flare_buf_init(&out, NULL);
    flare_relay_client_reserve(&req);
    flare_relay_hop_result res;
    for (uint32_t i = 0; i < n; i++) {
        flare_peerid id;
        flare_ipaddr ip;
        id = flare_test_pid(i);
        flare_ipaddr_v4(&ip, 10, (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i, 4001);
        flare_buf_reset(&out);
        if (flare_relay_server_handle_hop(s, req.base + 1, req.len - 1, &id, &ip, 0, 1, 1000, &out,
                                          &res) != 0 ||
            res.status != FLARE_RELAY_STATUS_OK)
            return 1;
    }
    size_t after_rsvp = (size_t)cnt.bytes;
    /* n/2 idle circuits: peer i+1 connects to peer i (each a target once). */
    size_t nc = n / 2;
    for (uint32_t i = 0; i < nc; i++) {
        flare_peerid src, dst;
        flare_ipaddr ip;
        src = flare_test_pid(2 * i + 1);
        dst = flare_test_pid(2 * i);
        flare_ipaddr_v4(&ip, 10, 0, 0, 1, 1);
        flare_buf_reset(&req);
        flare_relay_client_connect(&dst, &req);
        const uint8_t *msg;
        size_t len;
        flare_lpframe_parse(req.base, req.len, 4096, &msg, &len);
        flare_buf_reset(&out);
        if (flare_relay_server_handle_hop(s, msg, len, &src, &ip, 0, 1, 1000, &out, &res) != 0 ||
            res.action != FLARE_RELAY_HOP_OPEN_STOP)
            return 1;
        static const uint8_t ok[] = {0x08, 0x01, 0x20, 0x64};
        flare_buf_reset(&out);
        if (flare_relay_server_stop_reply(s, res.circuit, ok, sizeof(ok), 2, &out) != 0)
            return 1;
    }
    size_t after_circ = (size_t)cnt.bytes;
    printf("%6zu reservations: %7.1f heap bytes each (a ~104-byte record, two index slots "
           "and growth slack)\n",
           n, (double)(after_rsvp - base) / (double)n);
    printf("%6zu idle circuits: %7.1f heap bytes each; server fixed %zu bytes; peak %zu\n", nc,
           (double)(after_circ - after_rsvp) / (double)nc, base, (size_t)cnt.peak);
    flare_relay_server_del(s);
    flare_buf_free(&req);
    flare_buf_free(&out);
    return cnt.bytes != 0;
}

int main(void)
{
    flare_privkey k;
    flare_prng p;
    flare_prng_seed(&p, 7);
    flare_privkey_generate(&k, flare_prng_rng(&p));
    return run(1000, &k) || run(10000, &k);
}
