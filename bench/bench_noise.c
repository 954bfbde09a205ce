/* Noise benchmarks: full XX handshakes per second (both sides in memory) and
 * transport encrypt/decrypt throughput. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "flare/noise.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct side {
    flare_noise n;
    flare_buf out, plain;
} side;

static void side_init(side *s, const flare_privkey *id, int initiator, flare_rng rng)
{
    static const char *const mux[] = {"/yamux/1.0.0"};
    flare_noise_settings st;
    flare_noise_settings_default(&st);
    st.identity = id;
    st.initiator = initiator;
    st.muxers = mux;
    st.nmuxers = 1;
    if (flare_noise_init(&s->n, &st, NULL, rng) != 0)
        abort();
    flare_buf_init(&s->out, NULL);
    flare_buf_init(&s->plain, NULL);
}

static void side_free(side *s)
{
    flare_noise_free(&s->n);
    flare_buf_free(&s->out);
    flare_buf_free(&s->plain);
}

static void deliver(side *a, side *b)
{
    if (flare_noise_recv(&b->n, a->out.base, a->out.len, &b->out, &b->plain) != 0)
        abort();
    flare_buf_reset(&a->out);
}

static void handshake(side *i, side *r)
{
    if (flare_noise_start(&i->n, &i->out) || flare_noise_start(&r->n, &r->out))
        abort();
    deliver(i, r);
    deliver(r, i);
    deliver(i, r);
    if (!flare_noise_handshake_done(&i->n) || !flare_noise_handshake_done(&r->n))
        abort();
}

int main(void)
{
    flare_prng prng;
    flare_prng_seed(&prng, 1);
    flare_rng rng = flare_prng_rng(&prng);
    flare_privkey a, b;
    uint8_t s1[32] = {1}, s2[32] = {2};
    if (flare_privkey_from_seed(&a, s1) || flare_privkey_from_seed(&b, s2))
        abort();

    int hs = 2000;
    double t0 = now_s();
    for (int k = 0; k < hs; k++) {
        side i, r;
        side_init(&i, &a, 1, rng);
        side_init(&r, &b, 0, rng);
        handshake(&i, &r);
        side_free(&i);
        side_free(&r);
    }
    double t1 = now_s();
    printf("noise handshakes: %.0f/s (both sides, one core)\n", hs / (t1 - t0));

    side i, r;
    side_init(&i, &a, 1, rng);
    side_init(&r, &b, 0, rng);
    handshake(&i, &r);
    size_t chunk = 256 * 1024, total = 0, rounds = 2000;
    uint8_t *data = calloc(1, chunk);
    t0 = now_s();
    for (size_t k = 0; k < rounds; k++) {
        if (flare_noise_encrypt(&i.n, data, chunk, &i.out))
            abort();
        deliver(&i, &r);
        total += r.plain.len;
        flare_buf_reset(&r.plain);
    }
    t1 = now_s();
    printf("noise encrypt+decrypt: %.0f MB/s\n", (double)total / (t1 - t0) / 1e6);
    free(data);
    side_free(&i);
    side_free(&r);
    return 0;
}
