/* libp2p TLS benchmarks: certificate making and checking, full handshakes
 * (both sides in memory, certificates included) and record encrypt/decrypt
 * throughput. Times are CPU time of this process, so that a loaded machine
 * does not skew them; compare with bench_noise run the same way. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "flare/tls.h"
#include "security/tls/tls_cert.h"

#define UNIX_NOW 1800000000ULL

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct side {
    flare_tls t;
    flare_buf out, plain;
} side;

static void side_init(side *s, const flare_privkey *id, int initiator, flare_rng rng)
{
    static const char *const mux[] = {"/yamux/1.0.0"};
    flare_tls_settings st;
    flare_tls_settings_default(&st);
    st.identity = id;
    st.initiator = initiator;
    st.muxers = mux;
    st.nmuxers = 1;
    st.unix_now = UNIX_NOW;
    if (flare_tls_init(&s->t, &st, NULL, rng) != 0)
        abort();
    flare_buf_init(&s->out, NULL);
    flare_buf_init(&s->plain, NULL);
}

static void side_free(side *s)
{
    flare_tls_free(&s->t);
    flare_buf_free(&s->out);
    flare_buf_free(&s->plain);
}

static size_t deliver(side *a, side *b)
{
    size_t n = a->out.len;
    if (flare_tls_recv(&b->t, a->out.base, a->out.len, &b->out, &b->plain) != 0)
        abort();
    flare_buf_reset(&a->out);
    return n;
}

/* ClientHello; server flight; client Finished. Returns the wire bytes. */
static size_t handshake(side *c, side *s)
{
    if (flare_tls_start(&c->t, &c->out) || flare_tls_start(&s->t, &s->out))
        abort();
    size_t n = deliver(c, s);
    n += deliver(s, c);
    n += deliver(c, s);
    if (!flare_tls_handshake_done(&c->t) || !flare_tls_handshake_done(&s->t))
        abort();
    return n;
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

    int n = 500;
    flare__tls_cert cert;
    double t0 = cpu_s();
    for (int k = 0; k < n; k++) {
        if (flare__tls_cert_make(&cert, &a, UNIX_NOW, rng))
            abort();
        if (k < n - 1)
            flare__tls_cert_free(&cert);
    }
    double t1 = cpu_s();
    for (int k = 0; k < n; k++)
        if (flare__tls_cert_verify(cert.der.data, cert.der.size, UNIX_NOW, NULL, NULL, NULL))
            abort();
    double t2 = cpu_s();
    printf("tls certificate: make %.0f us, verify %.0f us, %u bytes\n", (t1 - t0) / n * 1e6,
           (t2 - t1) / n * 1e6, cert.der.size);
    flare__tls_cert_free(&cert);

    int hs = 300;
    size_t wire = 0;
    t0 = cpu_s();
    for (int k = 0; k < hs; k++) {
        side c, s;
        side_init(&c, &a, 1, rng);
        side_init(&s, &b, 0, rng);
        wire += handshake(&c, &s);
        side_free(&c);
        side_free(&s);
    }
    t1 = cpu_s();
    printf("tls handshakes: %.0f/s (both sides, one core), %zu wire bytes each\n", hs / (t1 - t0),
           wire / (size_t)hs);

    side c, s;
    side_init(&c, &a, 1, rng);
    side_init(&s, &b, 0, rng);
    handshake(&c, &s);
    size_t chunk = 256 * 1024, total = 0, rounds = 2000;
    uint8_t *data = calloc(1, chunk);
    t0 = cpu_s();
    for (size_t k = 0; k < rounds; k++) {
        if (flare_tls_encrypt(&c.t, data, chunk, &c.out))
            abort();
        deliver(&c, &s);
        total += s.plain.len;
        flare_buf_reset(&s.plain);
    }
    t1 = cpu_s();
    printf("tls encrypt+decrypt: %.0f MB/s\n", (double)total / (t1 - t0) / 1e6);
    free(data);
    side_free(&c);
    side_free(&s);
    return 0;
}
