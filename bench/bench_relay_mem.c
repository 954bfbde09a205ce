/* Relay memory: heap bytes per reservation (1,000 and 10,000 distinct peers
 * and IPs, limits raised) and per idle circuit, with a counting allocator. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flare/lpframe.h"
#include "flare/relay.h"
#include "flare/relay_server.h"

typedef struct counting {
    size_t live, peak;
} counting;

/* A size header in front of each block so free knows what it releases. */
static void *c_malloc(size_t n, void *u)
{
    counting *c = u;
    size_t *p = malloc(n + sizeof(size_t) * 2);
    if (!p)
        return NULL;
    p[0] = n;
    c->live += n;
    if (c->live > c->peak)
        c->peak = c->live;
    return p + 2;
}
static void c_free(void *q, void *u)
{
    if (!q)
        return;
    size_t *p = (size_t *)q - 2;
    ((counting *)u)->live -= p[0];
    free(p);
}
static void *c_calloc(size_t k, size_t n, void *u)
{
    void *p = c_malloc(k * n, u);
    if (p)
        memset(p, 0, k * n);
    return p;
}
static void *c_realloc(void *q, size_t n, void *u)
{
    if (!q)
        return c_malloc(n, u);
    size_t old = ((size_t *)q)[-2];
    void *p = c_malloc(n, u);
    if (!p)
        return NULL;
    memcpy(p, q, old < n ? old : n);
    c_free(q, u);
    return p;
}

static void peer(flare_peerid *id, uint32_t n)
{
    uint8_t mh[34] = {0x12, 0x20};
    memcpy(mh + 2, &n, sizeof(n));
    flare_peerid_from_bytes(id, mh, sizeof(mh));
}

static int run(size_t n, const flare_privkey *k)
{
    counting cnt = {0, 0};
    flare_mem mem = {&cnt, c_malloc, c_free, c_calloc, c_realloc};
    flare_prng p;
    flare_prng_seed(&p, 1);
    flare_relay_server_config cfg;
    flare_relay_server_config_default(&cfg);
    cfg.key = k;
    cfg.max_reservations = (uint32_t)n;
    cfg.max_circuits = (uint32_t)n;
    flare_relay_server *s;
    if (flare_relay_server_new(&s, &cfg, &mem, flare_prng_rng(&p)) != 0)
        return 1;
    size_t base = cnt.live;
    flare_buf req, out;
    flare_buf_init(&req, NULL);
    flare_buf_init(&out, NULL);
    flare_relay_client_reserve(&req);
    flare_relay_hop_result res;
    for (uint32_t i = 0; i < n; i++) {
        flare_peerid id;
        flare_ipaddr ip;
        peer(&id, i);
        flare_ipaddr_v4(&ip, 10, (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i, 4001);
        flare_buf_reset(&out);
        if (flare_relay_server_handle_hop(s, req.base + 1, req.len - 1, &id, &ip, 0, 1, 1000, &out,
                                          &res) != 0 ||
            res.status != FLARE_RELAY_STATUS_OK)
            return 1;
    }
    size_t after_rsvp = cnt.live;
    /* n/2 idle circuits: peer i+1 connects to peer i (each a target once). */
    size_t nc = n / 2;
    for (uint32_t i = 0; i < nc; i++) {
        flare_peerid src, dst;
        flare_ipaddr ip;
        peer(&src, 2 * i + 1);
        peer(&dst, 2 * i);
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
    size_t after_circ = cnt.live;
    printf("%6zu reservations: %7.1f heap bytes each (a ~104-byte record, two index slots "
           "and growth slack)\n",
           n, (double)(after_rsvp - base) / (double)n);
    printf("%6zu idle circuits: %7.1f heap bytes each; server fixed %zu bytes; peak %zu\n", nc,
           (double)(after_circ - after_rsvp) / (double)nc, base, cnt.peak);
    flare_relay_server_del(s);
    flare_buf_free(&req);
    flare_buf_free(&out);
    return cnt.live != 0;
}

int main(void)
{
    flare_privkey k;
    flare_prng p;
    flare_prng_seed(&p, 7);
    flare_privkey_generate(&k, flare_prng_rng(&p));
    return run(1000, &k) || run(10000, &k);
}
