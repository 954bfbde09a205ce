/* libFuzzer: Noise sessions fed attacker bytes at each handshake step.
 * The first byte picks the step:
 *   0: responder, bytes as message 1 (wire framing included);
 *   1: responder after a real message 1, bytes as message 3;
 *   2: initiator after message 1, bytes as message 2;
 *   3: established responder, bytes as transport frames;
 *   4: bytes as the responder's (correctly encrypted) handshake payload.
 * Input is fed in two pieces to exercise partial-frame buffering. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "flare/noise.h"
#include "security/noise/noise_internal.h"

typedef struct side {
    flare_privkey id;
    flare_noise n;
    flare_buf out, plain;
} side;

static int side_init(side *s, uint8_t seed, int initiator, flare_prng *rng)
{
    uint8_t k[32];
    memset(k, seed, sizeof(k));
    if (flare_privkey_from_seed(&s->id, k))
        return -1;
    static const char *const mux[] = {"/yamux/1.0.0"};
    flare_noise_settings st;
    flare_noise_settings_default(&st);
    st.identity = &s->id;
    st.initiator = initiator;
    st.muxers = mux;
    st.nmuxers = 1;
    st.max_plaintext_buffer = 4096;
    flare_buf_init(&s->out, NULL);
    flare_buf_init(&s->plain, NULL);
    return flare_noise_init(&s->n, &st, NULL, flare_prng_rng(rng));
}

static void side_free(side *s)
{
    flare_noise_free(&s->n);
    flare_buf_free(&s->out);
    flare_buf_free(&s->plain);
}

/* Moves a's output to b; returns b's error. */
static int deliver(side *a, side *b)
{
    int rv = flare_noise_recv(&b->n, a->out.base, a->out.len, &b->out, &b->plain);
    flare_buf_reset(&a->out);
    return rv;
}

static void feed(side *s, const uint8_t *d, size_t len)
{
    size_t half = len / 2;
    if (flare_noise_recv(&s->n, d, half, &s->out, &s->plain) == 0)
        flare_noise_recv(&s->n, d + half, len - half, &s->out, &s->plain);
    /* Whatever happened, the session must still answer queries sanely. */
    (void)flare_noise_handshake_done(&s->n);
    (void)flare_noise_remote_muxers(&s->n, NULL);
    (void)flare_noise_selected_muxer(&s->n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t mode = data[0] % 5;
    data++;
    size--;
    flare_prng rng;
    flare_prng_seed(&rng, 42);
    side i, r;
    if (side_init(&i, 1, 1, &rng) || side_init(&r, 2, 0, &rng))
        goto out;
    if (mode == 4)
        flare__noise_test_set_payload(&r.n, data, size);
    if (flare_noise_start(&i.n, &i.out) || flare_noise_start(&r.n, &r.out))
        goto out;
    if (mode == 0) {
        feed(&r, data, size);
        goto out;
    }
    if (deliver(&i, &r))
        goto out;
    if (mode == 1) {
        feed(&r, data, size);
        goto out;
    }
    if (mode == 2) {
        feed(&i, data, size);
        goto out;
    }
    if (deliver(&r, &i) || (mode != 4 && deliver(&i, &r)))
        goto out;
    if (mode == 3)
        feed(&r, data, size);
out:
    side_free(&i);
    side_free(&r);
    return 0;
}
