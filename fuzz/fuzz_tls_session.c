/* libFuzzer: libp2p TLS sessions fed attacker bytes. The first byte picks
 * the step:
 *   0: server, bytes as the client's first flight;
 *   1: client after its ClientHello, bytes as the server's flight;
 *   2: established server (after a real handshake), bytes as records.
 * Input is fed in two pieces to exercise partial-record buffering; the
 * plaintext bound is small so that backpressure paths run too. GnuTLS draws
 * its own randomness, so replays are not bit-exact for steps 1 and 2. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "flare/tls.h"

typedef struct side {
    flare_privkey id;
    flare_tls t;
    flare_buf out, plain;
} side;

static int side_init(side *s, uint8_t seed, int initiator, flare_prng *rng)
{
    uint8_t k[32];
    memset(k, seed, sizeof(k));
    if (flare_privkey_from_seed(&s->id, k))
        return -1;
    static const char *const mux[] = {"/yamux/1.0.0"};
    flare_tls_settings st;
    flare_tls_settings_default(&st);
    st.identity = &s->id;
    st.initiator = initiator;
    st.muxers = mux;
    st.nmuxers = 1;
    st.max_plaintext_buffer = 4096;
    st.unix_now = 1800000000ULL;
    flare_buf_init(&s->out, NULL);
    flare_buf_init(&s->plain, NULL);
    return flare_tls_init(&s->t, &st, NULL, flare_prng_rng(rng));
}

static void side_free(side *s)
{
    flare_tls_free(&s->t);
    flare_buf_free(&s->out);
    flare_buf_free(&s->plain);
}

/* Delivers a's output to b; returns b's recv result. */
static int deliver(side *a, side *b)
{
    int rv = flare_tls_recv(&b->t, a->out.base, a->out.len, &b->out, &b->plain);
    flare_buf_consume(&a->out, a->out.len);
    return rv;
}

static void feed(side *s, const uint8_t *in, size_t len)
{
    size_t half = len / 2;
    if (flare_tls_recv(&s->t, in, half, &s->out, &s->plain) == 0)
        (void)flare_tls_recv(&s->t, in + half, len - half, &s->out, &s->plain);
    flare_buf_reset(&s->plain);
    (void)flare_tls_recv(&s->t, NULL, 0, &s->out, &s->plain);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    flare_prng rng;
    flare_prng_seed(&rng, 1);
    side c, s;
    if (side_init(&c, 1, 1, &rng) || side_init(&s, 2, 0, &rng))
        __builtin_trap();
    uint8_t step = data[0] % 3;
    if (flare_tls_start(&c.t, &c.out) || flare_tls_start(&s.t, &s.out))
        __builtin_trap();
    if (step == 0) {
        feed(&s, data + 1, size - 1);
    } else if (step == 1) {
        feed(&c, data + 1, size - 1);
    } else {
        for (int i = 0; i < 4 && !flare_tls_handshake_done(&s.t); i++)
            if (deliver(&c, &s) || deliver(&s, &c))
                __builtin_trap();
        if (!flare_tls_handshake_done(&s.t) || !flare_tls_handshake_done(&c.t))
            __builtin_trap();
        feed(&s, data + 1, size - 1);
    }
    side_free(&c);
    side_free(&s);
    return 0;
}
