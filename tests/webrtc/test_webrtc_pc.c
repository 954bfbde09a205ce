/* Two WebRTC peer connections (below ICE) on a direct datagram pipe:
 * DTLS, SCTP, the Noise handshake on channel 0 bound to the certificates,
 * then libp2p streams; the spec's prologue vector; certhash strings;
 * failures (wrong certhash, wrong peer, garbage, silence). */
#include "support/test.h"

#include "flare/keys.h"
#include "flare/multibase.h"
#include "flare/peerid.h"
#include "transport/webrtc/pc.h"

#define MS ((flare_tstamp)1000000)

typedef struct side {
    flare__webrtc_pc *pc;
    flare__dtls_cert *cert;
    flare_privkey key;
    flare_peerid id;
    flare_prng prng;
} side;

typedef struct net {
    side c, s; /* c: the dialer (DTLS client, Noise responder) */
    flare_tstamp now;
    int silent_s; /* the server never answers */
} net;

static flare_tstamp g_base = 1000 * MS;

static void key_for(side *x, uint64_t seed)
{
    uint8_t sk[32];
    for (int i = 0; i < 32; i++)
        sk[i] = (uint8_t)(seed * 7 + (uint64_t)i);
    assert_int_equal(flare_privkey_from_seed(&x->key, sk), 0);
    assert_int_equal(flare_peerid_from_pubkey(&x->id, &x->key.pub), 0);
    flare_prng_seed(&x->prng, seed);
    assert_int_equal(flare__dtls_cert_generate(&x->cert, flare_prng_rng(&x->prng), 0, 2000000000),
                     0);
}

static void pump(net *n)
{
    uint8_t buf[4096];
    for (int moved = 1; moved;) {
        moved = 0;
        long k;
        while ((k = flare__webrtc_pc_pop_out(n->c.pc, buf, sizeof(buf))) > 0) {
            moved = 1;
            if (!n->silent_s)
                flare__webrtc_pc_input(n->s.pc, buf, (size_t)k, n->now);
        }
        while ((k = flare__webrtc_pc_pop_out(n->s.pc, buf, sizeof(buf))) > 0) {
            moved = 1;
            flare__webrtc_pc_input(n->c.pc, buf, (size_t)k, n->now);
        }
    }
}

static void run(net *n, flare_tstamp ms)
{
    flare_tstamp end = n->now + ms * MS;
    pump(n);
    while (n->now < end) {
        n->now += 10 * MS;
        flare__webrtc_pc_handle_expiry(n->c.pc, n->now);
        flare__webrtc_pc_handle_expiry(n->s.pc, n->now);
        pump(n);
    }
}

/* The dialer knows the server's certhash and peer ID (from its address). */
static void start(net *n, const uint8_t *fp_override, const flare_peerid *peer_override)
{
    memset(n, 0, sizeof(*n));
    g_base += 100000 * MS;
    n->now = g_base;
    key_for(&n->c, 1);
    key_for(&n->s, 2);
    flare__webrtc_pc_cfg cc = {.is_dtls_client = 1,
                               .cert = n->c.cert,
                               .remote_fp = fp_override ? fp_override
                                                        : flare__dtls_cert_fingerprint(n->s.cert),
                               .identity = &n->c.key,
                               .expected_remote = peer_override ? peer_override : &n->s.id,
                               .rng = flare_prng_rng(&n->c.prng)};
    flare__webrtc_pc_cfg sc = {.is_dtls_client = 0,
                               .cert = n->s.cert,
                               .identity = &n->s.key,
                               .rng = flare_prng_rng(&n->s.prng)};
    assert_int_equal(flare__webrtc_pc_new(&n->c.pc, &cc, n->now), 0);
    assert_int_equal(flare__webrtc_pc_new(&n->s.pc, &sc, n->now), 0);
}

static void finish(net *n)
{
    flare__webrtc_pc_del(n->c.pc);
    flare__webrtc_pc_del(n->s.pc);
    flare__dtls_cert_del(n->c.cert);
    flare__dtls_cert_del(n->s.cert);
}

static void test_connect_authenticate_and_stream(void **state)
{
    net n;
    start(&n, NULL, NULL);
    run(&n, 500);
    assert_int_equal(flare__webrtc_pc_get_state(n.c.pc), FLARE__WEBRTC_PC_READY);
    assert_int_equal(flare__webrtc_pc_get_state(n.s.pc), FLARE__WEBRTC_PC_READY);
    /* Each side authenticated the other's libp2p key. */
    flare_peerid got;
    assert_int_equal(flare_peerid_from_pubkey(&got, flare__webrtc_pc_remote_key(n.s.pc)), 0);
    assert_true(flare_peerid_equal(&got, &n.c.id));
    assert_int_equal(flare_peerid_from_pubkey(&got, flare__webrtc_pc_remote_key(n.c.pc)), 0);
    assert_true(flare_peerid_equal(&got, &n.s.id));

    /* Streams through the muxer interface, both directions. */
    const flare__muxer_ops *ops = &flare__webrtc_mux_ops;
    flare__webrtc_mux *mc = flare__webrtc_pc_mux(n.c.pc), *ms = flare__webrtc_pc_mux(n.s.pc);
    uint32_t id;
    assert_int_equal(ops->open_stream(mc, &id, NULL), 0);
    assert_int_equal(id % 2, 0); /* the DTLS client's */
    static uint8_t big[100000];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)(i % 253);
    assert_int_equal(ops->write(mc, id, big, sizeof(big), NULL), (long)sizeof(big));
    assert_int_equal(ops->close_stream(mc, id, NULL), 0);
    run(&n, 200);
    flare__mux_event e;
    int opened = 0;
    while (ops->poll_event(ms, &e) == 1)
        opened += e.type == FLARE__MUX_EV_STREAM_OPENED && e.stream_id == id;
    assert_int_equal(opened, 1);
    static uint8_t rx[100000];
    size_t got_n = 0;
    long r;
    while ((r = ops->read(ms, id, rx + got_n, sizeof(rx) - got_n, NULL)) > 0)
        got_n += (size_t)r;
    assert_int_equal(r, 0); /* FIN */
    assert_int_equal(got_n, sizeof(big));
    assert_memory_equal(rx, big, sizeof(big));
    uint32_t id2;
    assert_int_equal(ops->open_stream(ms, &id2, NULL), 0);
    assert_int_equal(id2 % 2, 1);
    assert_int_equal(ops->write(ms, id2, (const uint8_t *)"pong", 4, NULL), 4);
    run(&n, 100);
    while (ops->poll_event(mc, &e) == 1) {
    }
    assert_int_equal(ops->readable(mc, id2), 4);
    finish(&n);
}

/* The server's certificate is not the one the certhash names: DTLS fails
 * on the dialer's side. */
static void test_wrong_certhash(void **state)
{
    uint8_t fp[FLARE__DTLS_FP_LEN] = {1, 2, 3};
    net n;
    start(&n, fp, NULL);
    run(&n, 500);
    assert_int_equal(flare__webrtc_pc_get_state(n.c.pc), FLARE__WEBRTC_PC_FAILED);
    assert_int_equal(flare__webrtc_pc_error(n.c.pc), FLARE_ERR_PEER_ID_MISMATCH);
    assert_int_not_equal(flare__webrtc_pc_get_state(n.s.pc), FLARE__WEBRTC_PC_READY);
    assert_null(flare__webrtc_pc_mux(n.c.pc));
    finish(&n);
}

/* The right certificate but another libp2p identity: Noise fails. */
static void test_wrong_peer(void **state)
{
    side other;
    key_for(&other, 9);
    net n;
    start(&n, NULL, &other.id);
    run(&n, 500);
    assert_int_equal(flare__webrtc_pc_get_state(n.c.pc), FLARE__WEBRTC_PC_FAILED);
    assert_int_equal(flare__webrtc_pc_error(n.c.pc), FLARE_ERR_PEER_ID_MISMATCH);
    assert_null(flare__webrtc_pc_remote_key(n.c.pc));
    flare__dtls_cert_del(other.cert);
    finish(&n);
}

/* A silent server: the dialer gives up at its deadline; garbage datagrams
 * change nothing. */
static void test_silence_and_garbage(void **state)
{
    net n;
    start(&n, NULL, NULL);
    n.silent_s = 1;
    uint8_t junk[300];
    for (int i = 0; i < 100; i++) {
        memset(junk, i, sizeof(junk));
        junk[0] = (uint8_t)(20 + i % 4);
        assert_int_equal(flare__webrtc_pc_input(n.s.pc, junk, (size_t)(1 + i * 3), n.now), 0);
    }
    run(&n, 31000);
    assert_int_equal(flare__webrtc_pc_get_state(n.c.pc), FLARE__WEBRTC_PC_FAILED);
    assert_int_equal(flare__webrtc_pc_error(n.c.pc), FLARE_ERR_TIMEOUT);
    finish(&n);
}

/* After signalling (webrtc.md) both sides know each other's fingerprint
 * and key: no Noise, and channel 0 is an ordinary stream. */
static void test_private_to_private_no_noise(void **state)
{
    net n;
    memset(&n, 0, sizeof(n));
    g_base += 100000 * MS;
    n.now = g_base;
    key_for(&n.c, 3);
    key_for(&n.s, 4);
    flare__webrtc_pc_cfg cc = {.is_dtls_client = 1,
                               .cert = n.c.cert,
                               .remote_fp = flare__dtls_cert_fingerprint(n.s.cert),
                               .identity = &n.c.key,
                               .authenticated = &n.s.key.pub,
                               .rng = flare_prng_rng(&n.c.prng)};
    flare__webrtc_pc_cfg sc = {.is_dtls_client = 0,
                               .cert = n.s.cert,
                               .remote_fp = flare__dtls_cert_fingerprint(n.c.cert),
                               .identity = &n.s.key,
                               .authenticated = &n.c.key.pub,
                               .rng = flare_prng_rng(&n.s.prng)};
    assert_int_equal(flare__webrtc_pc_new(&n.c.pc, &cc, n.now), 0);
    assert_int_equal(flare__webrtc_pc_new(&n.s.pc, &sc, n.now), 0);
    run(&n, 300);
    assert_int_equal(flare__webrtc_pc_get_state(n.c.pc), FLARE__WEBRTC_PC_READY);
    assert_int_equal(flare__webrtc_pc_get_state(n.s.pc), FLARE__WEBRTC_PC_READY);
    assert_true(flare_pubkey_equal(flare__webrtc_pc_remote_key(n.c.pc), &n.s.key.pub));
    /* A browser's first channel is id 0: an ordinary stream here. */
    const flare__muxer_ops *ops = &flare__webrtc_mux_ops;
    flare__webrtc_mux *ms = flare__webrtc_pc_mux(n.s.pc);
    uint32_t id;
    assert_int_equal(ops->open_stream(flare__webrtc_pc_mux(n.c.pc), &id, NULL), 0);
    assert_int_equal(id, 0);
    assert_int_equal(ops->write(flare__webrtc_pc_mux(n.c.pc), id, (const uint8_t *)"hi", 2, NULL),
                     2);
    run(&n, 100);
    flare__mux_event e;
    int opened = 0;
    while (ops->poll_event(ms, &e) == 1)
        opened += e.type == FLARE__MUX_EV_STREAM_OPENED;
    assert_int_equal(opened, 1);
    assert_int_equal(ops->readable(ms, id), 2);
    finish(&n);
}

/* libp2p/specs webrtc-direct.md's prologue vector (client A is the Noise
 * responder, server B the initiator). */
/* A local close reaches the peer at once, without any time passing: first
 * SCTP's ABORT (abort) or SHUTDOWN ends the peer's muxer session with
 * FLARE_ERR_RESET or FLARE_ERR_CLOSED, then DTLS's close_notify fails the
 * peer connection with FLARE_ERR_CLOSED. */
static void close_case(int abort)
{
    net n;
    start(&n, NULL, NULL);
    run(&n, 500);
    assert_int_equal(flare__webrtc_pc_get_state(n.s.pc), FLARE__WEBRTC_PC_READY);
    flare__webrtc_mux *ms = flare__webrtc_pc_mux(n.s.pc);
    const flare__muxer_ops *ops = &flare__webrtc_mux_ops;
    flare__mux_event e;
    while (ops->poll_event(ms, &e) == 1)
        ;
    flare__webrtc_pc_close(n.c.pc, abort);
    assert_int_equal(flare__webrtc_pc_get_state(n.c.pc), FLARE__WEBRTC_PC_FAILED);
    assert_int_equal(flare__webrtc_pc_error(n.c.pc), abort ? FLARE_ERR_RESET : FLARE_ERR_CLOSED);
    uint8_t d[8][2048];
    long len[8];
    int nd = 0;
    while (nd < 8 && (len[nd] = flare__webrtc_pc_pop_out(n.c.pc, d[nd], sizeof(d[nd]))) > 0)
        nd++;
    assert_true(nd >= 2); /* SCTP's chunk, then close_notify */
    for (int i = 0; i < nd - 1; i++)
        assert_int_equal(flare__webrtc_pc_input(n.s.pc, d[i], (size_t)len[i], n.now), 0);
    int err = 0;
    while (ops->poll_event(ms, &e) == 1)
        if (e.type == FLARE__MUX_EV_SESSION_ERROR)
            err = e.error;
    assert_int_equal(err, abort ? FLARE_ERR_RESET : FLARE_ERR_CLOSED);
    assert_int_equal(flare__webrtc_pc_get_state(n.s.pc), FLARE__WEBRTC_PC_READY);
    assert_int_equal(flare__webrtc_pc_input(n.s.pc, d[nd - 1], (size_t)len[nd - 1], n.now),
                     FLARE_ERR_CLOSED);
    assert_int_equal(flare__webrtc_pc_get_state(n.s.pc), FLARE__WEBRTC_PC_FAILED);
    /* Closing the closed is harmless. */
    flare__webrtc_pc_close(n.c.pc, 1);
    flare__webrtc_pc_close(n.s.pc, 0);
    finish(&n);
}

static void test_close_tells_peer(void **state)
{
    close_case(0);
}

static void test_abort_tells_peer(void **state)
{
    close_case(1);
}

static void test_prologue_vector(void **state)
{
    uint8_t a[32], b[32], want[FLARE__WEBRTC_PROLOGUE_LEN], out[FLARE__WEBRTC_PROLOGUE_LEN];
    flare_test_unhex("3e79af40d6059617a0d83b83a52ce73b0c1f37a72c6043ad2969e2351bdca870", a, 32);
    flare_test_unhex("30fc9f469c207419dfdd0aab5f27a86c973c94e40548db9375cca2e915973b99", b, 32);
    assert_int_equal(
        flare_test_unhex("6c69627032702d7765627274632d6e6f6973653a12203e79af40d6059617a0d83b83a"
                         "52ce73b0c1f37a72c6043ad2969e2351bdca870122030fc9f469c207419dfdd0aab5f"
                         "27a86c973c94e40548db9375cca2e915973b99",
                         want, sizeof(want)),
        sizeof(want));
    flare__webrtc_noise_prologue(a, b, out);
    assert_memory_equal(out, want, sizeof(want));
}

static void test_certhash_strings(void **state)
{
    uint8_t fp[32], back[32];
    for (int i = 0; i < 32; i++)
        fp[i] = (uint8_t)(i * 9 + 250);
    char s[FLARE__WEBRTC_CERTHASH_MAX];
    assert_int_equal(flare__webrtc_certhash_encode(fp, s, sizeof(s)), 0);
    assert_int_equal(s[0], 'u');
    assert_int_equal(strncmp(s, "uEiD", 4), 0); /* 0x12 0x20 ... */
    assert_int_equal(flare__webrtc_certhash_decode(s, strlen(s), back), 0);
    assert_memory_equal(fp, back, 32);
    char small[10];
    assert_int_equal(flare__webrtc_certhash_encode(fp, small, sizeof(small)),
                     FLARE_ERR_BUFFER_TOO_SMALL);
    /* Base58 of the same multihash decodes too; another hash does not. */
    uint8_t mh[34] = {0x12, 0x20};
    memcpy(mh + 2, fp, 32);
    char z[100];
    int k = flare_multibase_encode(FLARE_MULTIBASE_BASE58BTC, mh, 34, z, sizeof(z));
    assert_true(k > 0);
    assert_int_equal(flare__webrtc_certhash_decode(z, (size_t)k, back), 0);
    mh[0] = 0x13;
    k = flare_multibase_encode(FLARE_MULTIBASE_BASE64URL, mh, 34, z, sizeof(z));
    assert_int_equal(flare__webrtc_certhash_decode(z, (size_t)k, back), FLARE_ERR_UNSUPPORTED);
    assert_true(flare__webrtc_certhash_decode("u!!", 3, back) < 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connect_authenticate_and_stream),
        cmocka_unit_test(test_wrong_certhash),
        cmocka_unit_test(test_wrong_peer),
        cmocka_unit_test(test_silence_and_garbage),
        cmocka_unit_test(test_private_to_private_no_noise),
        cmocka_unit_test(test_close_tells_peer),
        cmocka_unit_test(test_abort_tells_peer),
        cmocka_unit_test(test_prologue_vector),
        cmocka_unit_test(test_certhash_strings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
