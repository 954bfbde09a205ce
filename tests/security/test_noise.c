/* Noise: the XX core against the cacophony vectors, and two libp2p Noise
 * sessions pumped against each other in memory, including bad input. */
#include "support/test.h"

#include <sodium.h>
#include <stdlib.h>

#include "flare/noise.h"
#include "noise.pb-c.h"
#include "security/noise/noise_internal.h"
#include "security/noise/noise_xx.h"

/* --- the pure XX core: cacophony Noise_XX_25519_ChaChaPoly_SHA256 ------ */

typedef struct fixed_rng {
    const uint8_t *bytes;
    size_t len;
} fixed_rng;

static void fixed_fill(uint8_t *dst, size_t len, void *user)
{
    fixed_rng *f = user;
    assert_true(len <= f->len);
    memcpy(dst, f->bytes, len);
    f->bytes += len;
    f->len -= len;
}

static const char *const caco_payload[] = {"4c756477696720766f6e204d69736573",
                                           "4d757272617920526f746862617264",
                                           "462e20412e20486179656b",
                                           "4361726c204d656e676572",
                                           "4a65616e2d426170746973746520536179",
                                           "457567656e2042f6686d20766f6e2042617765726b"};
static const char *const caco_cipher[] = {
    "ca35def5ae56cec33dc2036731ab14896bc4c75dbb07a61f879f8e3afa4c79444c756477696720766f6e204d6973"
    "6573",
    "95ebc60d2b1fa672c1f46a8aa265ef51bfe38e7ccb39ec5be34069f14480884381cbad1f276e038c48378ffce2b6"
    "5285e08d6b68aaa3629a5a8639392490e5b9bd5269c2f1e4f488ed8831161f19b7815528f8982ffe09be9b5c412f"
    "8a0db50f8814c7194e83f23dbd8d162c9326ad",
    "c7195ffacac1307ff99046f219750fc47693e23c3cb08b89c2af808b444850a80ae475b9df0f169ae80a89be0865"
    "b57f58c9fea0d4ec82a286427402f113e4b6ae769a1d95941d49b25030",
    "96763ed773f8e47bb3712f0e29b3060ffc956ffc146cee53d5e1df",
    "3e40f15f6f3a46ae446b253bf8b1d9ffb6ed9b174d272328ff91a7e2e5c79c07f5",
    "eb3f3515110702e047a6c9da4478b6ead94873c11c0f2d710ddb3f09fce024b3a58502ae3f"};

static void test_xx_cacophony(void **state)
{
    uint8_t prologue[16], is[32], ie[32], rs[32], re[32], hh[32];
    size_t plen = flare_test_unhex("4a6f686e2047616c74", prologue, sizeof(prologue));
    flare_test_unhex("e61ef9919cde45dd5f82166404bd08e38bceb5dfdfded0a34c8df7ed542214d1", is, 32);
    flare_test_unhex("893e28b9dc6ca8d611ab664754b8ceb7bac5117349a4439a6b0569da977c464a", ie, 32);
    flare_test_unhex("4a3acbfdb163dec651dfa3194dece676d437029c62a408b4c5ea9114246e4893", rs, 32);
    flare_test_unhex("bbdb4cdbd309f1a1f2e1456967fe288cadd6f712d65dc7b7793d5e63da6b375b", re, 32);
    flare_test_unhex("c8e5f64e846193be2a834104c2a009868d6c9f3bd3c186299888b488b2f1f58e", hh, 32);
    fixed_rng fi = {ie, 32}, fr = {re, 32};
    flare_rng ri = {fixed_fill, &fi}, rr = {fixed_fill, &fr};
    flare__noise_xx hi, hr;
    flare__noise_xx_init(&hi, 1, prologue, plen, is);
    flare__noise_xx_init(&hr, 0, prologue, plen, rs);
    for (int i = 0; i < 3; i++) {
        flare__noise_xx *w = i % 2 ? &hr : &hi, *r = i % 2 ? &hi : &hr;
        uint8_t pay[64], want[256], got[256], dec[256];
        size_t pn = flare_test_unhex(caco_payload[i], pay, sizeof(pay));
        size_t wn = flare_test_unhex(caco_cipher[i], want, sizeof(want));
        assert_int_equal(flare__noise_xx_write(w, i % 2 ? rr : ri, pay, pn, got), (int)wn);
        assert_memory_equal(got, want, wn);
        assert_int_equal(flare__noise_xx_read(r, got, wn, dec), (int)pn);
        assert_memory_equal(dec, pay, pn);
    }
    assert_memory_equal(hi.ss.h, hh, 32);
    assert_memory_equal(hr.ss.h, hh, 32);
    flare__noise_cipher ti, tr, ui, ur; /* t: send, u: receive */
    assert_int_equal(flare__noise_xx_split(&hi, &ti, &ui), 0);
    assert_int_equal(flare__noise_xx_split(&hr, &tr, &ur), 0);
    for (int i = 3; i < 6; i++) {
        flare__noise_cipher *tx = i % 2 ? &tr : &ti, *rx = i % 2 ? &ui : &ur;
        uint8_t pay[64], want[128], got[128], dec[128];
        size_t pn = flare_test_unhex(caco_payload[i], pay, sizeof(pay));
        size_t wn = flare_test_unhex(caco_cipher[i], want, sizeof(want));
        assert_int_equal(wn, pn + 16);
        assert_int_equal(flare__noise_cipher_encrypt(tx, NULL, 0, pay, pn, got), 0);
        assert_memory_equal(got, want, wn);
        assert_int_equal(flare__noise_cipher_decrypt(rx, NULL, 0, got, wn, dec), 0);
        assert_memory_equal(dec, pay, pn);
    }
    flare__noise_xx_clear(&hi);
    flare__noise_xx_clear(&hr);
}

static void test_xx_state_errors(void **state)
{
    uint8_t s[32] = {1}, buf[256];
    flare_prng p;
    flare_prng_seed(&p, 1);
    flare__noise_xx h;
    flare__noise_xx_init(&h, 0, NULL, 0, s);
    /* The responder cannot write first; the initiator cannot read first. */
    assert_int_equal(flare__noise_xx_write(&h, flare_prng_rng(&p), NULL, 0, buf), FLARE_ERR_STATE);
    flare__noise_xx_init(&h, 1, NULL, 0, s);
    assert_int_equal(flare__noise_xx_read(&h, buf, 100, buf), FLARE_ERR_STATE);
    flare__noise_cipher a, b;
    assert_int_equal(flare__noise_xx_split(&h, &a, &b), FLARE_ERR_STATE);
    /* A cipher at the reserved nonce refuses to work. */
    flare__noise_cipher c = {{0}, 1, UINT64_MAX};
    assert_int_equal(flare__noise_cipher_encrypt(&c, NULL, 0, buf, 1, buf + 64),
                     FLARE_ERR_NONCE_EXHAUSTED);
    assert_int_equal(flare__noise_cipher_decrypt(&c, NULL, 0, buf, 17, buf + 64),
                     FLARE_ERR_NONCE_EXHAUSTED);
    assert_int_equal(flare__noise_cipher_decrypt(&c, NULL, 0, buf, 15, buf + 64),
                     FLARE_ERR_TRUNCATED);
}

/* --- two libp2p sessions ----------------------------------------------- */

typedef struct peer {
    flare_privkey id;
    flare_peerid pid;
    flare_noise n;
    flare_buf out, plain;
    int err;
} peer;

static const char *const MUX_YM[] = {"/yamux/1.0.0", "/mplex/6.7.0"};
static const char *const MUX_MY[] = {"/mplex/6.7.0", "/yamux/1.0.0"};
static const char *const MUX_OTHER[] = {"/other/1"};

typedef struct peer_opts {
    const char *const *muxers;
    size_t nmuxers;
    const flare_peerid *expected;
    size_t max_plain;
} peer_opts;

/* The prologue peer_init gives the next peers (NULL: none). */
static const char *g_prologue;
/* The signature cache peer_init gives the next peers (NULL: none). */
static flare_sig_cache *g_sig_cache;

static void peer_init(peer *p, uint8_t seed, int initiator, const peer_opts *o, flare_prng *rng)
{
    uint8_t s[32];
    memset(s, seed, sizeof(s));
    assert_int_equal(flare_privkey_from_seed(&p->id, s), 0);
    assert_int_equal(flare_peerid_from_pubkey(&p->pid, &p->id.pub), 0);
    flare_noise_settings st;
    flare_noise_settings_default(&st);
    st.identity = &p->id;
    st.initiator = initiator;
    if (o) {
        st.expected_remote = o->expected;
        st.muxers = o->muxers;
        st.nmuxers = o->nmuxers;
        if (o->max_plain)
            st.max_plaintext_buffer = o->max_plain;
    }
    st.sig_cache = g_sig_cache;
    if (g_prologue) {
        st.prologue = (const uint8_t *)g_prologue;
        st.prologue_len = strlen(g_prologue);
    }
    assert_int_equal(flare_noise_init(&p->n, &st, NULL, flare_prng_rng(rng)), 0);
    flare_buf_init(&p->out, NULL);
    flare_buf_init(&p->plain, NULL);
    p->err = 0;
}

static void peer_free(peer *p)
{
    flare_noise_free(&p->n);
    flare_buf_free(&p->out);
    flare_buf_free(&p->plain);
}

/* Moves src's pending output into dst in random pieces; returns 1 if any. */
static int transfer(peer *src, peer *dst, flare_prng *rng)
{
    if (src->out.len == 0 || dst->err)
        return 0;
    size_t total = src->out.len, off = 0;
    uint8_t *copy = malloc(total);
    memcpy(copy, src->out.base, total);
    flare_buf_reset(&src->out);
    while (off < total && !dst->err) {
        size_t n = 1 + flare_prng_next(rng) % (total - off);
        if (flare_prng_next(rng) % 4 == 0)
            n = 1 + n % 3; /* tiny pieces split headers */
        if (n > total - off)
            n = total - off;
        dst->err = flare_noise_recv(&dst->n, copy + off, n, &dst->out, &dst->plain);
        off += n;
    }
    free(copy);
    return 1;
}

static void pump(peer *a, peer *b, flare_prng *rng)
{
    while (transfer(a, b, rng) | transfer(b, a, rng))
        ;
}

static void handshake(peer *i, peer *r, flare_prng *rng)
{
    assert_int_equal(flare_noise_start(&i->n, &i->out), 0);
    assert_int_equal(flare_noise_start(&r->n, &r->out), 0);
    assert_int_equal(r->out.len, 0);
    pump(i, r, rng);
}

static void send_and_check(peer *from, peer *to, size_t len, flare_prng *rng)
{
    uint8_t *data = malloc(len);
    for (size_t k = 0; k < len; k++)
        data[k] = (uint8_t)flare_prng_next(rng);
    flare_buf_reset(&to->plain);
    assert_int_equal(flare_noise_encrypt(&from->n, data, len, &from->out), 0);
    pump(from, to, rng);
    assert_int_equal(to->err, 0);
    assert_int_equal(to->plain.len, len);
    assert_memory_equal(to->plain.base, data, len);
    free(data);
}

static void test_handshake_and_data(void **state)
{
    for (uint64_t seed = 1; seed <= 16; seed++) {
        flare_prng rng;
        flare_prng_seed(&rng, seed);
        peer i, r;
        peer_opts oi = {MUX_YM, 2, NULL, 0}, or_ = {MUX_MY, 2, NULL, 0};
        peer_init(&i, 1, 1, &oi, &rng);
        peer_init(&r, 2, 0, &or_, &rng);
        oi.expected = &r.pid; /* the dialer knows whom it dials */
        flare_noise_free(&i.n);
        flare_noise_settings st;
        flare_noise_settings_default(&st);
        st.identity = &i.id;
        st.initiator = 1;
        st.expected_remote = &r.pid;
        st.muxers = MUX_YM;
        st.nmuxers = 2;
        assert_int_equal(flare_noise_init(&i.n, &st, NULL, flare_prng_rng(&rng)), 0);
        assert_int_equal(flare_noise_encrypt(&i.n, (const uint8_t *)"x", 1, &i.out),
                         FLARE_ERR_STATE);
        handshake(&i, &r, &rng);
        assert_int_equal(i.err, 0);
        assert_int_equal(r.err, 0);
        assert_true(flare_noise_handshake_done(&i.n));
        assert_true(flare_noise_handshake_done(&r.n));
        assert_true(flare_peerid_equal(flare_noise_remote_peerid(&i.n), &r.pid));
        assert_true(flare_peerid_equal(flare_noise_remote_peerid(&r.n), &i.pid));
        assert_true(flare_pubkey_equal(flare_noise_remote_key(&i.n), &r.id.pub));
        const char *const *list;
        assert_int_equal(flare_noise_remote_muxers(&i.n, &list), 2);
        assert_string_equal(list[0], "/mplex/6.7.0");
        assert_int_equal(flare_noise_remote_muxers(&r.n, &list), 2);
        assert_string_equal(list[0], "/yamux/1.0.0");
        /* The initiator's preference wins on both sides. */
        assert_string_equal(flare_noise_selected_muxer(&i.n), "/yamux/1.0.0");
        assert_string_equal(flare_noise_selected_muxer(&r.n), "/yamux/1.0.0");
        send_and_check(&i, &r, 1 + seed * 100, &rng);
        send_and_check(&r, &i, 1 + seed * 37, &rng);
        send_and_check(&i, &r, 200000, &rng); /* several frames */
        send_and_check(&r, &i, FLARE_NOISE_MAX_PLAINTEXT + 1, &rng);
        assert_int_equal(flare_noise_buffered(&i.n), 0);
        peer_free(&i);
        peer_free(&r);
    }
}

/* flare_noise_encrypt_pair gives the same frames and bytes as
 * flare_noise_encrypt of the concatenation, for splits at and around
 * ChaCha20 block and Noise frame boundaries, and the peer decrypts them. */
static void test_encrypt_pair(void **state)
{
    (void)state;
    flare_prng rng;
    flare_prng_seed(&rng, 11);
    peer i, r;
    peer_init(&i, 1, 1, NULL, &rng);
    peer_init(&r, 2, 0, NULL, &rng);
    handshake(&i, &r, &rng);
    static const size_t hl[] = {0, 1, 12, 63, 64, 65, 100, 65519, 65520, 70000};
    static const size_t dl[] = {0, 1, 52, 53, 64, 127, 1000, 65507, 65519, 65520, 200000};
    size_t maxlen = 70000 + 200000;
    uint8_t *all = malloc(maxlen);
    for (size_t k = 0; k < maxlen; k++)
        all[k] = (uint8_t)flare_prng_next(&rng);
    flare_buf ref;
    flare_buf_init(&ref, NULL);
    uint64_t nonce = 0;
    for (size_t a = 0; a < sizeof(hl) / sizeof(hl[0]); a++) {
        for (size_t b = 0; b < sizeof(dl) / sizeof(dl[0]); b++) {
            size_t len = hl[a] + dl[b];
            flare_buf_reset(&ref);
            flare_buf_reset(&i.out);
            flare__noise_test_set_nonces(&i.n, nonce, 0);
            assert_int_equal(flare_noise_encrypt(&i.n, all, len, &ref), 0);
            flare__noise_test_set_nonces(&i.n, nonce, 0);
            assert_int_equal(flare_noise_encrypt_pair(&i.n, all, hl[a], all + hl[a], dl[b], &i.out),
                             0);
            assert_int_equal(i.out.len, ref.len);
            if (len)
                assert_memory_equal(i.out.base, ref.base, len);
            size_t frames = (len + FLARE_NOISE_MAX_PLAINTEXT - 1) / FLARE_NOISE_MAX_PLAINTEXT;
            flare_buf_reset(&r.plain);
            flare__noise_test_set_nonces(&r.n, 0, nonce);
            pump(&i, &r, &rng);
            assert_int_equal(r.err, 0);
            assert_int_equal(r.plain.len, len);
            if (len)
                assert_memory_equal(r.plain.base, all, len);
            nonce += frames;
        }
    }
    assert_int_equal(flare_noise_encrypt_pair(&i.n, NULL, 0, NULL, 0, &i.out), 0);
    assert_int_equal(flare_noise_encrypt_pair(&i.n, NULL, 1, all, 1, &i.out),
                     FLARE_ERR_INVALID_ARG);
    flare_buf_free(&ref);
    free(all);
    peer_free(&i);
    peer_free(&r);
}

static void test_frame_sizes(void **state)
{
    flare_prng rng;
    flare_prng_seed(&rng, 7);
    peer i, r;
    peer_init(&i, 1, 1, NULL, &rng);
    peer_init(&r, 2, 0, NULL, &rng);
    handshake(&i, &r, &rng);
    assert_true(flare_noise_handshake_done(&r.n));
    assert_null(flare_noise_selected_muxer(&i.n));
    assert_int_equal(flare_noise_remote_muxers(&i.n, NULL), 0);
    static uint8_t big[FLARE_NOISE_MAX_PLAINTEXT + 1];
    assert_int_equal(flare_noise_encrypt(&i.n, big, FLARE_NOISE_MAX_PLAINTEXT, &i.out), 0);
    assert_int_equal(i.out.len, 2 + 65535);
    assert_int_equal(i.out.base[0], 0xff);
    assert_int_equal(i.out.base[1], 0xff);
    flare_buf_reset(&i.out);
    assert_int_equal(flare_noise_encrypt(&i.n, big, sizeof(big), &i.out), 0);
    assert_int_equal(i.out.len, 2 + 65535 + 2 + 17);
    assert_int_equal(i.out.base[2 + 65535], 0);
    assert_int_equal(i.out.base[2 + 65535 + 1], 17);
    assert_int_equal(flare_noise_encrypt(&i.n, big, 0, &i.out), 0);
    assert_int_equal(i.out.len, 2 + 65535 + 2 + 17);
    peer_free(&i);
    peer_free(&r);
}

/* The initiator's first data rides with message 3; the responder gets both in
 * one recv call. */
static void test_early_data_same_recv(void **state)
{
    flare_prng rng;
    flare_prng_seed(&rng, 3);
    peer i, r;
    peer_init(&i, 1, 1, NULL, &rng);
    peer_init(&r, 2, 0, NULL, &rng);
    assert_int_equal(flare_noise_start(&i.n, &i.out), 0);
    assert_int_equal(i.out.len, 2 + 32);
    assert_int_equal(flare_noise_recv(&r.n, i.out.base, i.out.len, &r.out, &r.plain), 0);
    flare_buf_reset(&i.out);
    assert_int_equal(flare_noise_recv(&i.n, r.out.base, r.out.len, &i.out, &i.plain), 0);
    assert_true(flare_noise_handshake_done(&i.n));
    assert_false(flare_noise_handshake_done(&r.n));
    assert_int_equal(flare_noise_encrypt(&i.n, (const uint8_t *)"hello", 5, &i.out), 0);
    assert_int_equal(flare_noise_encrypt(&i.n, (const uint8_t *)" world", 6, &i.out), 0);
    assert_int_equal(flare_noise_recv(&r.n, i.out.base, i.out.len, &r.out, &r.plain), 0);
    assert_true(flare_noise_handshake_done(&r.n));
    assert_int_equal(r.plain.len, 11);
    assert_memory_equal(r.plain.base, "hello world", 11);
    peer_free(&i);
    peer_free(&r);
}

static void test_muxer_selection(void **state)
{
    static const struct {
        const char *const *mi;
        size_t ni;
        const char *const *mr;
        size_t nr;
        const char *want;
    } cases[] = {{MUX_MY, 2, MUX_YM, 2, "/mplex/6.7.0"},
                 {MUX_YM, 1, MUX_MY, 2, "/yamux/1.0.0"},
                 {MUX_YM, 2, MUX_OTHER, 1, NULL},
                 {MUX_YM, 2, NULL, 0, NULL},
                 {NULL, 0, MUX_YM, 2, NULL}};
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        flare_prng rng;
        flare_prng_seed(&rng, k);
        peer i, r;
        peer_opts oi = {cases[k].mi, cases[k].ni, NULL, 0};
        peer_opts or_ = {cases[k].mr, cases[k].nr, NULL, 0};
        peer_init(&i, 1, 1, &oi, &rng);
        peer_init(&r, 2, 0, &or_, &rng);
        handshake(&i, &r, &rng);
        assert_true(flare_noise_handshake_done(&r.n));
        const char *si = flare_noise_selected_muxer(&i.n), *sr = flare_noise_selected_muxer(&r.n);
        if (cases[k].want) {
            assert_string_equal(si, cases[k].want);
            assert_string_equal(sr, cases[k].want);
        } else {
            assert_null(si);
            assert_null(sr);
        }
        assert_int_equal(flare_noise_remote_muxers(&r.n, NULL), cases[k].ni);
        peer_free(&i);
        peer_free(&r);
    }
}

static void test_wrong_peer_id(void **state)
{
    flare_prng rng;
    flare_prng_seed(&rng, 4);
    peer i, r, other;
    peer_init(&other, 9, 1, NULL, &rng);
    peer_opts oi = {NULL, 0, &other.pid, 0};
    peer_init(&i, 1, 1, &oi, &rng);
    peer_init(&r, 2, 0, NULL, &rng);
    handshake(&i, &r, &rng);
    assert_int_equal(i.err, FLARE_ERR_PEER_ID_MISMATCH);
    assert_false(flare_noise_handshake_done(&i.n));
    assert_false(flare_noise_handshake_done(&r.n));
    assert_null(flare_noise_remote_peerid(&i.n));
    /* Dead: every further call fails. */
    assert_int_equal(flare_noise_recv(&i.n, (const uint8_t *)"", 0, &i.out, &i.plain),
                     FLARE_ERR_STATE);
    peer_free(&i);
    peer_free(&r);
    /* The responder may pin the dialer too. */
    peer_opts or_ = {NULL, 0, &other.pid, 0};
    peer_init(&i, 1, 1, NULL, &rng);
    peer_init(&r, 2, 0, &or_, &rng);
    handshake(&i, &r, &rng);
    assert_int_equal(r.err, FLARE_ERR_PEER_ID_MISMATCH);
    assert_true(flare_noise_handshake_done(&i.n)); /* it cannot know yet */
    peer_free(&i);
    peer_free(&r);
    peer_free(&other);
}

/* The prologue is bound into the handshake: the same one on both sides
 * works, different ones fail at message 2 (WebRTC binds its DTLS
 * certificates this way). */
static void test_prologue(void **state)
{
    flare_prng rng;
    flare_prng_seed(&rng, 5);
    peer i, r;
    g_prologue = "libp2p-webrtc-noise:AB";
    peer_init(&i, 1, 1, NULL, &rng);
    peer_init(&r, 2, 0, NULL, &rng);
    handshake(&i, &r, &rng);
    assert_true(flare_noise_handshake_done(&i.n));
    assert_true(flare_noise_handshake_done(&r.n));
    send_and_check(&i, &r, 100, &rng);
    peer_free(&i);
    peer_free(&r);
    peer_init(&i, 1, 1, NULL, &rng);
    g_prologue = "libp2p-webrtc-noise:AC";
    peer_init(&r, 2, 0, NULL, &rng);
    handshake(&i, &r, &rng);
    assert_int_equal(i.err, FLARE_ERR_CRYPTO);
    assert_false(flare_noise_handshake_done(&i.n));
    assert_false(flare_noise_handshake_done(&r.n));
    peer_free(&i);
    peer_free(&r);
    /* None against one: also a mismatch. */
    g_prologue = NULL;
    peer_init(&i, 1, 1, NULL, &rng);
    g_prologue = "libp2p-webrtc-noise:AB";
    peer_init(&r, 2, 0, NULL, &rng);
    g_prologue = NULL;
    handshake(&i, &r, &rng);
    assert_int_equal(i.err, FLARE_ERR_CRYPTO);
    peer_free(&i);
    peer_free(&r);
    /* A length without bytes is refused. */
    flare_noise n;
    flare_noise_settings st;
    flare_noise_settings_default(&st);
    flare_privkey k;
    uint8_t seed[32] = {1};
    assert_int_equal(flare_privkey_from_seed(&k, seed), 0);
    st.identity = &k;
    st.prologue_len = 3;
    assert_int_equal(flare_noise_init(&n, &st, NULL, flare_prng_rng(&rng)), FLARE_ERR_INVALID_ARG);
}

/* Packs a handshake payload with the given fields (NULL = absent). */
static size_t make_payload(uint8_t *out, const uint8_t *key, size_t klen, const uint8_t *sig,
                           size_t siglen)
{
    FlareNoise__NoiseHandshakePayload p = FLARE_NOISE__NOISE_HANDSHAKE_PAYLOAD__INIT;
    if (key) {
        p.has_identity_key = 1;
        p.identity_key.data = (uint8_t *)key;
        p.identity_key.len = klen;
    }
    if (sig) {
        p.has_identity_sig = 1;
        p.identity_sig.data = (uint8_t *)sig;
        p.identity_sig.len = siglen;
    }
    return flare_noise__noise_handshake_payload__pack(&p, out);
}

static void signed_static(const peer *p, uint8_t *key, int *klen, uint8_t *sig, size_t *siglen)
{
    uint8_t msg[24 + 32];
    memcpy(msg, "noise-libp2p-static-key:", 24);
    memcpy(msg + 24, flare__noise_test_static_pub(&p->n), 32);
    *klen = flare_pubkey_encode(&p->id.pub, key, FLARE_PUBKEY_PROTO_MAX);
    assert_true(*klen > 0);
    assert_int_equal(flare_privkey_sign(&p->id, msg, sizeof(msg), sig, siglen), 0);
}

/* Runs a handshake where the responder (or the initiator) sends payload
 * bytes pay; returns the error of the side that checks them. */
static int bad_payload_run(int responder_sends, const uint8_t *pay, size_t len)
{
    flare_prng rng;
    flare_prng_seed(&rng, 5);
    peer i, r;
    peer_init(&i, 1, 1, NULL, &rng);
    peer_init(&r, 2, 0, NULL, &rng);
    assert_int_equal(flare__noise_test_set_payload(responder_sends ? &r.n : &i.n, pay, len), 0);
    handshake(&i, &r, &rng);
    int err = responder_sends ? i.err : r.err;
    assert_int_equal(flare_noise_handshake_done(responder_sends ? &i.n : &r.n), err == 0);
    peer_free(&i);
    peer_free(&r);
    return err;
}

/* Payloads signed by a fresh pair of peers (the same seeds and rng as
 * bad_payload_run, so the static keys match). */
static void test_bad_payloads(void **state)
{
    for (int side = 0; side < 2; side++) {
        flare_prng rng;
        flare_prng_seed(&rng, 5);
        peer i, r;
        peer_init(&i, 1, 1, NULL, &rng);
        peer_init(&r, 2, 0, NULL, &rng);
        peer *sender = side ? &r : &i;
        uint8_t key[FLARE_PUBKEY_PROTO_MAX], sig[FLARE_SIG_MAX], pay[2048];
        int klen;
        size_t siglen, n;
        signed_static(sender, key, &klen, sig, &siglen);
        /* The unmodified payload is accepted. */
        n = make_payload(pay, key, (size_t)klen, sig, siglen);
        assert_int_equal(bad_payload_run(side, pay, n), 0);
        /* Tampered signature. */
        sig[10] ^= 1;
        n = make_payload(pay, key, (size_t)klen, sig, siglen);
        assert_int_equal(bad_payload_run(side, pay, n), FLARE_ERR_BAD_SIGNATURE);
        sig[10] ^= 1;
        /* Someone else's (valid) identity key. */
        peer_free(&i);
        peer_free(&r);
        flare_prng_seed(&rng, 5);
        peer_init(&i, 3, 1, NULL, &rng);
        peer_init(&r, 4, 0, NULL, &rng);
        int k2len = flare_pubkey_encode(&(side ? &r : &i)->id.pub, key, sizeof(key));
        n = make_payload(pay, key, (size_t)k2len, sig, siglen);
        assert_int_equal(bad_payload_run(side, pay, n), FLARE_ERR_BAD_SIGNATURE);
        /* An unknown key type (7). */
        uint8_t unk[36] = {0x08, 0x07, 0x12, 0x20};
        n = make_payload(pay, unk, sizeof(unk), sig, siglen);
        assert_int_equal(bad_payload_run(side, pay, n), FLARE_ERR_UNKNOWN_CODE);
        /* Missing fields. */
        n = make_payload(pay, key, (size_t)k2len, NULL, 0);
        assert_int_equal(bad_payload_run(side, pay, n), FLARE_ERR_PROTO);
        n = make_payload(pay, NULL, 0, sig, siglen);
        assert_int_equal(bad_payload_run(side, pay, n), FLARE_ERR_PROTO);
        /* Not a protobuf: field 1 as a length that runs past the end. */
        uint8_t junk[] = {0x0a, 0x7f, 0x01, 0x02};
        assert_int_equal(bad_payload_run(side, junk, sizeof(junk)), FLARE_ERR_MALFORMED);
        peer_free(&i);
        peer_free(&r);
    }
}

/* A peer that keeps its static key (the same rng draws here) signs the
 * same bytes in every handshake: the second handshake verifies nothing.
 * Its cached signature replayed over another static key still fails. */
static void test_sig_cache(void **state)
{
    (void)state;
    flare_sig_cache *c = NULL;
    assert_int_equal(flare_sig_cache_new(&c, 16, NULL), 0);
    g_sig_cache = c;
    uint8_t key[FLARE_PUBKEY_PROTO_MAX], sig[FLARE_SIG_MAX], pay[2048];
    int klen = 0;
    size_t siglen = 0;
    for (int round = 0; round < 2; round++) {
        flare_prng rng;
        flare_prng_seed(&rng, 5);
        peer i, r;
        peer_init(&i, 1, 1, NULL, &rng);
        peer_init(&r, 2, 0, NULL, &rng);
        if (round == 0)
            signed_static(&r, key, &klen, sig, &siglen);
        handshake(&i, &r, &rng);
        assert_int_equal(i.err, 0);
        assert_int_equal(r.err, 0);
        assert_true(flare_noise_handshake_done(&i.n) && flare_noise_handshake_done(&r.n));
        flare_sig_cache_stats st;
        flare_sig_cache_stats_get(c, &st);
        assert_int_equal(st.misses, 2); /* each side verified the other once */
        assert_int_equal(st.stored, 2);
        assert_int_equal(st.hits, (uint64_t)(2 * round));
        peer_free(&i);
        peer_free(&r);
    }
    /* R's identity and signature from above, with a new static key. */
    flare_prng rng;
    flare_prng_seed(&rng, 6);
    peer i, r;
    peer_init(&i, 1, 1, NULL, &rng);
    peer_init(&r, 2, 0, NULL, &rng);
    size_t n = make_payload(pay, key, (size_t)klen, sig, siglen);
    assert_int_equal(flare__noise_test_set_payload(&r.n, pay, n), 0);
    handshake(&i, &r, &rng);
    assert_int_equal(i.err, FLARE_ERR_BAD_SIGNATURE);
    flare_sig_cache_stats st;
    flare_sig_cache_stats_get(c, &st);
    assert_int_equal(st.stored, 2);
    assert_int_equal(st.misses, 3);
    peer_free(&i);
    peer_free(&r);
    g_sig_cache = NULL;
    flare_sig_cache_del(c);
}

static void test_too_many_muxers(void **state)
{
    flare_prng rng;
    flare_prng_seed(&rng, 5);
    peer i, r;
    peer_init(&i, 1, 1, NULL, &rng);
    peer_init(&r, 2, 0, NULL, &rng);
    uint8_t key[FLARE_PUBKEY_PROTO_MAX], sig[FLARE_SIG_MAX], pay[4096];
    int klen;
    size_t siglen;
    signed_static(&r, key, &klen, sig, &siglen);
    FlareNoise__NoiseHandshakePayload p = FLARE_NOISE__NOISE_HANDSHAKE_PAYLOAD__INIT;
    FlareNoise__NoiseExtensions ext = FLARE_NOISE__NOISE_EXTENSIONS__INIT;
    char *muxers[FLARE_NOISE_MAX_MUXERS + 1];
    for (size_t k = 0; k <= FLARE_NOISE_MAX_MUXERS; k++)
        muxers[k] = "/m";
    p.has_identity_key = p.has_identity_sig = 1;
    p.identity_key.data = key;
    p.identity_key.len = (size_t)klen;
    p.identity_sig.data = sig;
    p.identity_sig.len = siglen;
    ext.stream_muxers = muxers;
    ext.n_stream_muxers = FLARE_NOISE_MAX_MUXERS + 1;
    p.extensions = &ext;
    size_t n = flare_noise__noise_handshake_payload__pack(&p, pay);
    peer_free(&i);
    peer_free(&r);
    assert_int_equal(bad_payload_run(1, pay, n), FLARE_ERR_TOO_LARGE);
}

/* Feeds one frame with the given body to a fresh peer in the given role
 * after the messages before it; returns its error. */
static int feed_frame(peer *p, const uint8_t *body, size_t len)
{
    uint8_t hdr[2] = {(uint8_t)(len >> 8), (uint8_t)len};
    int rv = flare_noise_recv(&p->n, hdr, 2, &p->out, &p->plain);
    if (rv)
        return rv;
    return flare_noise_recv(&p->n, body, len, &p->out, &p->plain);
}

static void test_bad_message1(void **state)
{
    flare_prng rng;
    flare_prng_seed(&rng, 6);
    uint8_t body[64];
    memset(body, 0x42, sizeof(body));
    static const struct {
        size_t len;
        int fill;
        int want;
    } cases[] = {{0, 0x42, FLARE_ERR_TRUNCATED},
                 {31, 0x42, FLARE_ERR_TRUNCATED},
                 {33, 0x42, FLARE_ERR_PROTO},  /* message 1 carries no payload */
                 {32, 0x00, FLARE_ERR_CRYPTO}, /* low-order point: all-zero DH */
                 {32, 0x42, 0}};
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        peer r;
        peer_init(&r, 2, 0, NULL, &rng);
        memset(body, cases[k].fill, sizeof(body));
        assert_int_equal(feed_frame(&r, body, cases[k].len), cases[k].want);
        if (!cases[k].want)
            assert_int_equal(r.out.len, 2 + 96 + r.out.base[1] - 96);
        peer_free(&r);
    }
}

static void test_bad_message2_and_3(void **state)
{
    flare_prng rng;
    flare_prng_seed(&rng, 8);
    uint8_t junk[200];
    for (size_t k = 0; k < sizeof(junk); k++)
        junk[k] = (uint8_t)flare_prng_next(&rng);
    /* Message 2: too short, then garbage. */
    for (int c = 0; c < 2; c++) {
        peer i;
        peer_init(&i, 1, 1, NULL, &rng);
        assert_int_equal(flare_noise_start(&i.n, &i.out), 0);
        assert_int_equal(feed_frame(&i, junk, c ? 200 : 95),
                         c ? FLARE_ERR_CRYPTO : FLARE_ERR_TRUNCATED);
        peer_free(&i);
    }
    /* Message 3 after a real message 1. */
    for (int c = 0; c < 3; c++) {
        peer i, r;
        peer_init(&i, 1, 1, NULL, &rng);
        peer_init(&r, 2, 0, NULL, &rng);
        assert_int_equal(flare_noise_start(&i.n, &i.out), 0);
        assert_int_equal(flare_noise_recv(&r.n, i.out.base, i.out.len, &r.out, &r.plain), 0);
        static const size_t lens[] = {63, 64, 200};
        int want = c ? FLARE_ERR_CRYPTO : FLARE_ERR_TRUNCATED;
        assert_int_equal(feed_frame(&r, junk, lens[c]), want);
        peer_free(&i);
        peer_free(&r);
    }
    /* A tampered real message 2. */
    peer i, r;
    peer_init(&i, 1, 1, NULL, &rng);
    peer_init(&r, 2, 0, NULL, &rng);
    assert_int_equal(flare_noise_start(&i.n, &i.out), 0);
    assert_int_equal(flare_noise_recv(&r.n, i.out.base, i.out.len, &r.out, &r.plain), 0);
    r.out.base[r.out.len - 1] ^= 0x80;
    assert_int_equal(flare_noise_recv(&i.n, r.out.base, r.out.len, &i.out, &i.plain),
                     FLARE_ERR_CRYPTO);
    peer_free(&i);
    peer_free(&r);
}

static void connected(peer *i, peer *r, uint64_t seed, size_t max_plain)
{
    flare_prng rng;
    flare_prng_seed(&rng, seed);
    peer_opts o = {NULL, 0, NULL, max_plain};
    peer_init(i, 1, 1, &o, &rng);
    peer_init(r, 2, 0, &o, &rng);
    handshake(i, r, &rng);
    assert_true(flare_noise_handshake_done(&r->n));
    assert_true(flare_noise_handshake_done(&i->n));
}

static void test_bad_transport_frames(void **state)
{
    peer i, r;
    /* Tampered ciphertext. */
    connected(&i, &r, 9, 0);
    assert_int_equal(flare_noise_encrypt(&i.n, (const uint8_t *)"secret", 6, &i.out), 0);
    i.out.base[4] ^= 1;
    assert_int_equal(flare_noise_recv(&r.n, i.out.base, i.out.len, &r.out, &r.plain),
                     FLARE_ERR_CRYPTO);
    assert_int_equal(r.plain.len, 0);
    assert_int_equal(flare_noise_encrypt(&r.n, (const uint8_t *)"x", 1, &r.out), FLARE_ERR_STATE);
    peer_free(&i);
    peer_free(&r);
    /* A frame shorter than a tag. */
    connected(&i, &r, 10, 0);
    uint8_t shortf[17] = {0, 15};
    assert_int_equal(flare_noise_recv(&r.n, shortf, 17, &r.out, &r.plain), FLARE_ERR_TRUNCATED);
    peer_free(&i);
    peer_free(&r);
    /* Replayed frame (the nonce moved on). */
    connected(&i, &r, 11, 0);
    assert_int_equal(flare_noise_encrypt(&i.n, (const uint8_t *)"a", 1, &i.out), 0);
    assert_int_equal(flare_noise_recv(&r.n, i.out.base, i.out.len, &r.out, &r.plain), 0);
    assert_int_equal(flare_noise_recv(&r.n, i.out.base, i.out.len, &r.out, &r.plain),
                     FLARE_ERR_CRYPTO);
    peer_free(&i);
    peer_free(&r);
    /* Partial frames are held until complete. */
    connected(&i, &r, 12, 0);
    assert_int_equal(flare_noise_encrypt(&i.n, (const uint8_t *)"abc", 3, &i.out), 0);
    assert_int_equal(flare_noise_recv(&r.n, i.out.base, i.out.len - 1, &r.out, &r.plain), 0);
    assert_int_equal(r.plain.len, 0);
    assert_int_equal(flare_noise_buffered(&r.n), i.out.len - 1);
    assert_int_equal(flare_noise_recv(&r.n, i.out.base + i.out.len - 1, 1, &r.out, &r.plain), 0);
    assert_int_equal(r.plain.len, 3);
    assert_int_equal(flare_noise_buffered(&r.n), 0);
    peer_free(&i);
    peer_free(&r);
}

static void test_nonce_exhaustion(void **state)
{
    peer i, r;
    connected(&i, &r, 13, 0);
    flare__noise_test_set_nonces(&i.n, UINT64_MAX - 2, 0);
    flare__noise_test_set_nonces(&r.n, 0, UINT64_MAX - 2);
    assert_int_equal(flare_noise_encrypt(&i.n, (const uint8_t *)"a", 1, &i.out), 0);
    assert_int_equal(flare_noise_recv(&r.n, i.out.base, i.out.len, &r.out, &r.plain), 0);
    assert_int_equal(r.plain.len, 1);
    /* Two frames at once would need nonce 2^64-1: refused before writing. */
    static uint8_t big[FLARE_NOISE_MAX_PLAINTEXT + 1];
    flare_buf_reset(&i.out);
    assert_int_equal(flare_noise_encrypt(&i.n, big, sizeof(big), &i.out),
                     FLARE_ERR_NONCE_EXHAUSTED);
    assert_int_equal(i.out.len, 0);
    assert_int_equal(flare_noise_encrypt(&i.n, big, 1, &i.out), FLARE_ERR_STATE);
    peer_free(&i);
    peer_free(&r);
    /* The last usable nonce works, the next is exhausted (both directions). */
    connected(&i, &r, 14, 0);
    flare__noise_test_set_nonces(&i.n, UINT64_MAX - 1, 0);
    flare__noise_test_set_nonces(&r.n, 0, UINT64_MAX - 1);
    assert_int_equal(flare_noise_encrypt(&i.n, (const uint8_t *)"z", 1, &i.out), 0);
    assert_int_equal(flare_noise_recv(&r.n, i.out.base, i.out.len, &r.out, &r.plain), 0);
    assert_int_equal(flare_noise_encrypt(&i.n, (const uint8_t *)"z", 1, &i.out),
                     FLARE_ERR_NONCE_EXHAUSTED);
    uint8_t frame[2 + 17] = {0, 17};
    assert_int_equal(flare_noise_recv(&r.n, frame, sizeof(frame), &r.out, &r.plain),
                     FLARE_ERR_NONCE_EXHAUSTED);
    peer_free(&i);
    peer_free(&r);
}

static void test_backpressure(void **state)
{
    peer i, r;
    connected(&i, &r, 15, 100);
    uint8_t data[90];
    memset(data, 7, sizeof(data));
    for (int k = 0; k < 3; k++)
        assert_int_equal(flare_noise_encrypt(&i.n, data, sizeof(data), &i.out), 0);
    assert_int_equal(flare_noise_recv(&r.n, i.out.base, i.out.len, &r.out, &r.plain), 0);
    assert_int_equal(r.plain.len, 180); /* stopped once over the bound */
    assert_int_equal(flare_noise_buffered(&r.n), 2 + 90 + 16);
    flare_buf_reset(&r.plain);
    assert_int_equal(flare_noise_recv(&r.n, NULL, 0, &r.out, &r.plain), 0);
    assert_int_equal(r.plain.len, 90);
    assert_int_equal(flare_noise_buffered(&r.n), 0);
    peer_free(&i);
    peer_free(&r);
    /* Feeding far beyond the bound without draining is a caller error. */
    connected(&i, &r, 16, 100);
    for (int k = 0; k < 3; k++)
        assert_int_equal(flare_noise_encrypt(&i.n, data, sizeof(data), &i.out), 0);
    assert_int_equal(flare_noise_recv(&r.n, i.out.base, i.out.len, &r.out, &r.plain), 0);
    size_t held = flare_noise_buffered(&r.n);
    assert_int_equal(held, 2 + 90 + 16);
    static uint8_t flood[100 + 2 + 65535];
    assert_int_equal(flare_noise_recv(&r.n, flood, sizeof(flood) - held, &r.out, &r.plain), 0);
    assert_int_equal(flare_noise_recv(&r.n, flood, 1, &r.out, &r.plain), FLARE_ERR_LIMIT);
    peer_free(&i);
    peer_free(&r);
}

static void test_api_errors(void **state)
{
    flare_prng rng;
    flare_prng_seed(&rng, 16);
    flare_privkey id;
    uint8_t seed[32] = {5};
    assert_int_equal(flare_privkey_from_seed(&id, seed), 0);
    flare_noise n;
    flare_noise_settings s = {0};
    s.identity = &id;
    /* Zeroed (no struct_size): refused, not taken as the defaults. */
    assert_int_equal(flare_noise_init(&n, &s, NULL, flare_prng_rng(&rng)), FLARE_ERR_INVALID_ARG);
    flare_noise_settings_default(&s);
    s.initiator = 1;
    assert_int_equal(flare_noise_init(&n, &s, NULL, flare_prng_rng(&rng)), FLARE_ERR_INVALID_ARG);
    s.identity = &id;
    s.max_plaintext_buffer = 0; /* decrypting nothing would stall: refused */
    assert_int_equal(flare_noise_init(&n, &s, NULL, flare_prng_rng(&rng)), FLARE_ERR_INVALID_ARG);
    s.max_plaintext_buffer = FLARE_NOISE_DEFAULT_MAX_PLAINTEXT_BUFFER;
    const char *const empty[] = {""};
    s.muxers = empty;
    s.nmuxers = 1;
    assert_int_equal(flare_noise_init(&n, &s, NULL, flare_prng_rng(&rng)), FLARE_ERR_INVALID_ARG);
    s.nmuxers = 0;
    assert_int_equal(flare_noise_init(&n, &s, NULL, flare_prng_rng(&rng)), 0);
    flare_buf out, plain;
    flare_buf_init(&out, NULL);
    flare_buf_init(&plain, NULL);
    /* The initiator must start before it can receive. */
    uint8_t frame[2 + 32] = {0, 32};
    assert_int_equal(flare_noise_recv(&n, frame, sizeof(frame), &out, &plain), FLARE_ERR_STATE);
    flare_noise_free(&n);
    assert_int_equal(flare_noise_init(&n, &s, NULL, flare_prng_rng(&rng)), 0);
    assert_int_equal(flare_noise_start(&n, &out), 0);
    assert_int_equal(flare_noise_start(&n, &out), FLARE_ERR_STATE);
    assert_null(flare_noise_remote_key(&n));
    flare_noise_free(&n);
    flare_noise_free(&n); /* idempotent */
    flare_buf_free(&out);
    flare_buf_free(&plain);
}

/* Keys from seeds 1 and 2 and both sides' default settings, ki the
 * initiator's: the caller adds muxers. */
static void key_pair_settings(flare_privkey *ki, flare_privkey *kr, flare_noise_settings *si,
                              flare_noise_settings *sr)
{
    uint8_t s1[32] = {1}, s2[32] = {2};
    assert_int_equal(flare_privkey_from_seed(ki, s1), 0);
    assert_int_equal(flare_privkey_from_seed(kr, s2), 0);
    flare_noise_settings_default(si);
    flare_noise_settings_default(sr);
    si->identity = ki;
    si->initiator = 1;
    sr->identity = kr;
}

/* Allocation failure at every point of a handshake and a transfer: each
 * failure is reported as FLARE_ERR_NOMEM, and nothing leaks (ASan). */
static void test_allocation_failures(void **state)
{
    int completed = 0;
    for (long fail = 0; fail < 200 && !completed; fail++) {
        flare_test_heap fm = {.fail_at = fail + 1};
        flare_mem mem = flare_test_heap_mem(&fm);
        flare_prng rng;
        flare_prng_seed(&rng, 17);
        flare_privkey ki, kr;
        flare_noise_settings si, sr;
        key_pair_settings(&ki, &kr, &si, &sr);
        si.muxers = MUX_YM;
        si.nmuxers = 2;
        sr.muxers = MUX_MY;
        sr.nmuxers = 2;
        flare_noise i = {0}, r = {0};
        flare_buf io, ro, ip, rp; /* the caller's buffers never fail */
        flare_buf_init(&io, NULL);
        flare_buf_init(&ro, NULL);
        flare_buf_init(&ip, NULL);
        flare_buf_init(&rp, NULL);
        int rv = flare_noise_init(&i, &si, &mem, flare_prng_rng(&rng));
        if (!rv)
            rv = flare_noise_init(&r, &sr, &mem, flare_prng_rng(&rng));
        if (!rv)
            rv = flare_noise_start(&i, &io);
        if (!rv)
            rv = flare_noise_recv(&r, io.base, io.len, &ro, &rp);
        if (!rv)
            rv = flare_noise_recv(&i, ro.base, ro.len, &io, &ip);
        if (!rv) { /* message 3 split so that the responder buffers a part */
            rv = flare_noise_recv(&r, io.base + 34, 10, &ro, &rp);
            if (!rv)
                rv = flare_noise_recv(&r, io.base + 44, io.len - 44, &ro, &rp);
        }
        if (!rv)
            rv = flare_noise_encrypt(&i, (const uint8_t *)"data", 4, &io);
        if (rv) {
            assert_int_equal(rv, FLARE_ERR_NOMEM);
        } else {
            completed = 1;
            assert_true(flare_noise_handshake_done(&r));
            assert_string_equal(flare_noise_selected_muxer(&r), "/yamux/1.0.0");
        }
        flare_noise_free(&i);
        flare_noise_free(&r);
        flare_buf_free(&io);
        flare_buf_free(&ro);
        flare_buf_free(&ip);
        flare_buf_free(&rp);
        assert_int_equal(fm.blocks, 0);
    }
    assert_true(completed);
}

/* An established session keeps neither its handshake state nor a receive
 * buffer once the frame a read cut in two is complete, and holds the peer's
 * key at its length; the public accessor still gives the whole key. */
static void test_idle_memory(void **state)
{
    (void)state;
    flare_test_heap fm = {0};
    flare_mem mem = flare_test_heap_mem(&fm);
    flare_prng rng;
    flare_prng_seed(&rng, 23);
    flare_privkey ki, kr;
    flare_noise_settings si, sr;
    key_pair_settings(&ki, &kr, &si, &sr);
    flare_noise i = {0}, r = {0};
    flare_buf io, ro, ip, rp;
    flare_buf_init(&io, NULL);
    flare_buf_init(&ro, NULL);
    flare_buf_init(&ip, NULL);
    flare_buf_init(&rp, NULL);
    assert_int_equal(flare_noise_init(&r, &sr, &mem, flare_prng_rng(&rng)), 0);
    long fresh = fm.bytes;
    assert_int_equal(flare_noise_init(&i, &si, NULL, flare_prng_rng(&rng)), 0);
    assert_int_equal(flare_noise_start(&i, &io), 0);
    assert_int_equal(flare_noise_recv(&r, io.base, io.len, &ro, &rp), 0);
    flare_buf_reset(&io);
    assert_int_equal(flare_noise_recv(&i, ro.base, ro.len, &io, &ip), 0);
    flare_buf_reset(&ro);
    assert_int_equal(flare_noise_recv(&r, io.base, io.len, &ro, &rp), 0);
    flare_buf_reset(&io);
    assert_true(flare_noise_handshake_done(&r));
    long established = fm.bytes;
    print_message("Noise session: %ld B fresh, %ld B established\n", fresh, established);
    /* The identity copy and the handshake state are gone. */
    assert_true(established < fresh - (long)sizeof(flare_privkey) - 256);
    /* A 30 KB frame arrives cut in two: buffered, and kept while the
     * session streams; a few small reads later it is released. */
    static uint8_t big[30000];
    memset(big, 3, sizeof(big));
    assert_int_equal(flare_noise_encrypt(&i, big, sizeof(big), &io), 0);
    assert_int_equal(flare_noise_recv(&r, io.base, 1000, &ro, &rp), 0);
    assert_true(fm.bytes > established);
    assert_int_equal(flare_noise_recv(&r, io.base + 1000, io.len - 1000, &ro, &rp), 0);
    assert_int_equal(rp.len, sizeof(big));
    flare_buf_reset(&io);
    int small = 0;
    while (fm.bytes > established && small < 100) {
        assert_int_equal(flare_noise_encrypt(&i, (const uint8_t *)"ping", 4, &io), 0);
        assert_int_equal(flare_noise_recv(&r, io.base, io.len, &ro, &rp), 0);
        flare_buf_reset(&io);
        small++;
    }
    assert_int_equal(fm.bytes, established);
    assert_true(small <= 8);
    /* The whole key, once, for the accessor's caller. */
    const flare_pubkey *k = flare_noise_remote_key(&r);
    assert_non_null(k);
    assert_true(flare_pubkey_equal(k, &ki.pub));
    assert_ptr_equal(flare_noise_remote_key(&r), k);
    flare_noise_free(&i);
    flare_noise_free(&r);
    flare_buf_free(&io);
    flare_buf_free(&ro);
    flare_buf_free(&ip);
    flare_buf_free(&rp);
    assert_int_equal(fm.blocks, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_xx_cacophony),
        cmocka_unit_test(test_xx_state_errors),
        cmocka_unit_test(test_handshake_and_data),
        cmocka_unit_test(test_frame_sizes),
        cmocka_unit_test(test_encrypt_pair),
        cmocka_unit_test(test_early_data_same_recv),
        cmocka_unit_test(test_muxer_selection),
        cmocka_unit_test(test_wrong_peer_id),
        cmocka_unit_test(test_bad_payloads),
        cmocka_unit_test(test_too_many_muxers),
        cmocka_unit_test(test_bad_message1),
        cmocka_unit_test(test_bad_message2_and_3),
        cmocka_unit_test(test_bad_transport_frames),
        cmocka_unit_test(test_nonce_exhaustion),
        cmocka_unit_test(test_backpressure),
        cmocka_unit_test(test_api_errors),
        cmocka_unit_test(test_allocation_failures),
        cmocka_unit_test(test_prologue),
        cmocka_unit_test(test_sig_cache),
        cmocka_unit_test(test_idle_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
