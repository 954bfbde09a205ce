/*
 * WebRTC peer connection below ICE, both ends in this process on one core
 * over an in-memory datagram pipe (no loss): the connection set-up (DTLS
 * with two new ECDSA certificates' handshake, SCTP, Noise on channel 0),
 * and one data-channel stream's throughput (libp2p framing, SCTP, DTLS
 * AES-GCM both ways). The clock given to the stack moves 1 ms per round.
 * Usage: bench_webrtc [MiB [runs]]   (defaults 64, 3)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "flare/keys.h"
#include "transport/webrtc/pc.h"

#define MS ((flare_tstamp)1000000)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct end {
    flare__webrtc_pc *pc;
    flare__dtls_cert *cert;
    flare_privkey key;
    flare_prng prng;
} end;

static flare_tstamp vnow = 1000 * MS;

static void pump(end *a, end *b)
{
    static uint8_t buf[4096];
    for (int moved = 1; moved;) {
        moved = 0;
        long k;
        while ((k = flare__webrtc_pc_pop_out(a->pc, buf, sizeof(buf))) > 0)
            moved = 1, flare__webrtc_pc_input(b->pc, buf, (size_t)k, vnow);
        while ((k = flare__webrtc_pc_pop_out(b->pc, buf, sizeof(buf))) > 0)
            moved = 1, flare__webrtc_pc_input(a->pc, buf, (size_t)k, vnow);
    }
}

static void tick(end *a, end *b)
{
    vnow += MS;
    flare__webrtc_pc_handle_expiry(a->pc, vnow);
    flare__webrtc_pc_handle_expiry(b->pc, vnow);
    pump(a, b);
}

static void setup(end *e, uint64_t seed)
{
    uint8_t sk[32];
    for (int i = 0; i < 32; i++)
        sk[i] = (uint8_t)(seed + (uint64_t)i);
    flare_privkey_from_seed(&e->key, sk);
    flare_prng_seed(&e->prng, seed);
}

/* Returns seconds of CPU-bound set-up, or -1. */
static double connect_pair(end *c, end *s, uint64_t seed)
{
    double t0 = now_s();
    setup(c, seed);
    setup(s, seed + 1);
    if (flare__dtls_cert_generate(&c->cert, flare_prng_rng(&c->prng), 0, 2000000000) != 0 ||
        flare__dtls_cert_generate(&s->cert, flare_prng_rng(&s->prng), 0, 2000000000) != 0)
        return -1;
    flare__webrtc_pc_cfg cc = {.is_dtls_client = 1,
                               .cert = c->cert,
                               .remote_fp = flare__dtls_cert_fingerprint(s->cert),
                               .identity = &c->key,
                               .rng = flare_prng_rng(&c->prng)};
    flare__webrtc_pc_cfg sc = {
        .is_dtls_client = 0, .cert = s->cert, .identity = &s->key, .rng = flare_prng_rng(&s->prng)};
    if (flare__webrtc_pc_new(&c->pc, &cc, vnow) != 0 ||
        flare__webrtc_pc_new(&s->pc, &sc, vnow) != 0)
        return -1;
    for (int i = 0; i < 5000 && (flare__webrtc_pc_get_state(c->pc) != FLARE__WEBRTC_PC_READY ||
                                 flare__webrtc_pc_get_state(s->pc) != FLARE__WEBRTC_PC_READY);
         i++)
        tick(c, s);
    if (flare__webrtc_pc_get_state(c->pc) != FLARE__WEBRTC_PC_READY)
        return -1;
    return now_s() - t0;
}

static void free_pair(end *c, end *s)
{
    flare__webrtc_pc_del(c->pc);
    flare__webrtc_pc_del(s->pc);
    flare__dtls_cert_del(c->cert);
    flare__dtls_cert_del(s->cert);
}

static double transfer(end *c, end *s, size_t total)
{
    const flare__muxer_ops *ops = &flare__webrtc_mux_ops;
    flare__webrtc_mux *mc = flare__webrtc_pc_mux(c->pc), *ms = flare__webrtc_pc_mux(s->pc);
    uint32_t id;
    if (ops->open_stream(mc, &id, NULL) != 0)
        return -1;
    static uint8_t chunk[65536], rx[65536];
    size_t sent = 0, got = 0;
    double t0 = now_s();
    while (got < total) {
        while (sent < total) {
            size_t n = total - sent < sizeof(chunk) ? total - sent : sizeof(chunk);
            long w = ops->write(mc, id, chunk, n, NULL);
            if (w <= 0)
                break;
            sent += (size_t)w;
        }
        pump(c, s);
        flare__mux_event e;
        while (ops->poll_event(ms, &e) == 1) {
        }
        while (ops->poll_event(mc, &e) == 1) {
        }
        long r;
        while ((r = ops->read(ms, id, rx, sizeof(rx), NULL)) > 0)
            got += (size_t)r;
        tick(c, s);
    }
    return now_s() - t0;
}

int main(int argc, char **argv)
{
    size_t mib = argc > 1 ? (size_t)atoi(argv[1]) : 64;
    int runs = argc > 2 ? atoi(argv[2]) : 3;
    for (int r = 0; r < runs; r++) {
        end c = {0}, s = {0};
        double setup_s = connect_pair(&c, &s, (uint64_t)(r * 10 + 1));
        if (setup_s < 0) {
            fprintf(stderr, "bench_webrtc: connection failed\n");
            return 1;
        }
        double t = transfer(&c, &s, mib << 20);
        if (t < 0) {
            fprintf(stderr, "bench_webrtc: transfer failed\n");
            return 1;
        }
        printf("run %d: set-up %.2f ms (CPU, both ends), stream %zu MiB in %.2f s = %.1f MiB/s\n",
               r + 1, setup_s * 1e3, mib, t, (double)mib / t);
        free_pair(&c, &s);
    }
    return 0;
}
