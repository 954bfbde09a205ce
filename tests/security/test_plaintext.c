/* /plaintext/2.0.0: the Exchange message against a vector built by hand
 * from the spec's protobuf, two sessions pumped in memory (whole, byte by
 * byte, with data behind the Exchange), bad input, and two simulated hosts
 * upgrading with it (and a default host refusing it). */
#include "support/test.h"

#include "flare/host.h"
#include "flare/sim.h"
#include "security/plaintext.h"
#include "security/security.h"

/* RFC 8032 test 1: seed and public key. */
#define SEED "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
#define PUB  "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
/* uvarint(78) || Exchange { id = identity multihash (00 24) of the
 * PublicKey { Type = Ed25519 (08 01); Data (12 20) }; pubkey = that
 * PublicKey }. */
#define VECTOR "4e0a26002408011220" PUB "122408011220" PUB

static void key_from_seed(flare_privkey *k, const char *hex)
{
    uint8_t seed[32];
    assert_int_equal(flare_test_unhex(hex, seed, 32), 32);
    assert_int_equal(flare_privkey_from_seed(k, seed), 0);
}

static void test_vector(void **state)
{
    (void)state;
    flare_privkey k;
    key_from_seed(&k, SEED);
    flare_buf b;
    flare_buf_init(&b, NULL);
    assert_int_equal(flare__plaintext_encode(&k.pub, &b), 0);
    flare_test_assert_hex(&b, VECTOR);
    flare_pubkey got;
    flare_peerid id, want;
    assert_int_equal(flare__plaintext_decode(b.base + 1, b.len - 1, &got, &id), 0);
    assert_true(flare_pubkey_equal(&got, &k.pub));
    assert_int_equal(flare_peerid_from_pubkey(&want, &k.pub), 0);
    assert_true(flare_peerid_equal(&id, &want));
    flare_buf_free(&b);
}

static int decode_hex(const char *hex)
{
    uint8_t m[256];
    size_t n = flare_test_unhex(hex, m, sizeof(m));
    flare_pubkey k;
    flare_peerid id;
    return flare__plaintext_decode(m, n, &k, &id);
}

static void test_bad_exchange(void **state)
{
    (void)state;
    /* Unknown fields skipped; the fields in any order. */
    assert_int_equal(decode_hex("1801122408011220" PUB "0a26002408011220" PUB), 0);
    /* Either field missing. */
    assert_int_equal(decode_hex("0a26002408011220" PUB), FLARE_ERR_MALFORMED);
    assert_int_equal(decode_hex("122408011220" PUB), FLARE_ERR_MALFORMED);
    assert_int_equal(decode_hex(""), FLARE_ERR_MALFORMED);
    /* id as a varint. */
    assert_int_equal(decode_hex("0801122408011220" PUB), FLARE_ERR_MALFORMED);
    /* Truncated. */
    assert_int_equal(decode_hex("0a26002408011220"), FLARE_ERR_TRUNCATED);
    /* An id that is not the key's (last byte changed). */
    assert_int_equal(decode_hex("0a26002408011220d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af"
                                "021a68f707511b122408011220" PUB),
                     FLARE_ERR_PEER_ID_MISMATCH);
    /* A key that is no key; an id that is no multihash. */
    assert_true(decode_hex("0a26002408011220" PUB "120408091200") < 0);
    assert_true(decode_hex("0a02ffff122408011220" PUB) < 0);
}

/* --- sessions in memory --- */

typedef struct side {
    void *sess;
    flare_buf out, plain;
} side;

static const flare__security *sec(void)
{
    const flare__security *s =
        flare__security_find(FLARE__PLAINTEXT_ID, strlen(FLARE__PLAINTEXT_ID));
    assert_non_null(s);
    return s;
}

static void side_init(side *s, const flare_privkey *k, int initiator, const flare_peerid *expect)
{
    flare__security_cfg c = {0};
    c.identity = k;
    c.initiator = initiator;
    c.expected_remote = expect;
    memset(s, 0, sizeof(*s));
    flare_buf_init(&s->out, NULL);
    flare_buf_init(&s->plain, NULL);
    assert_int_equal(sec()->init(&s->sess, &c), 0);
    assert_int_equal(sec()->start(s->sess, &s->out), 0);
    assert_false(sec()->handshake_done(s->sess));
    assert_null(sec()->remote_peer(s->sess));
}

static void side_free(side *s)
{
    sec()->free(s->sess);
    flare_buf_free(&s->out);
    flare_buf_free(&s->plain);
}

/* Delivers from's output to to, step bytes at a time; returns the first error. */
static int pump(side *from, side *to, size_t step)
{
    while (from->out.len) {
        size_t n = from->out.len < step ? from->out.len : step;
        int rv = sec()->recv(to->sess, from->out.base, n, &to->out, &to->plain);
        flare_buf_consume(&from->out, n);
        if (rv)
            return rv;
    }
    return 0;
}

static void handshake(size_t step)
{
    flare_privkey ka, kb;
    key_from_seed(&ka, SEED);
    key_from_seed(&kb, "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb");
    flare_peerid ida, idb;
    assert_int_equal(flare_peerid_from_pubkey(&ida, &ka.pub), 0);
    assert_int_equal(flare_peerid_from_pubkey(&idb, &kb.pub), 0);
    side a, b;
    side_init(&a, &ka, 1, &idb);
    side_init(&b, &kb, 0, NULL);
    /* a's first application bytes ride behind its Exchange. */
    assert_int_equal(sec()->encrypt(a.sess, (const uint8_t *)"hello", 5, &a.out), 0);
    assert_int_equal(pump(&a, &b, step), 0);
    assert_true(sec()->handshake_done(b.sess));
    assert_true(flare_peerid_equal(sec()->remote_peer(b.sess), &ida));
    flare_pubkey got;
    assert_int_equal(sec()->remote_key(b.sess, &got), 0);
    assert_true(flare_pubkey_equal(&got, &ka.pub));
    assert_int_equal(b.plain.len, 5);
    assert_memory_equal(b.plain.base, "hello", 5);
    assert_int_equal(
        sec()->encrypt_pair(b.sess, (const uint8_t *)"ab", 2, (const uint8_t *)"cd", 2, &b.out), 0);
    assert_int_equal(pump(&b, &a, step), 0);
    assert_true(sec()->handshake_done(a.sess));
    assert_true(flare_peerid_equal(sec()->remote_peer(a.sess), &idb));
    assert_int_equal(a.plain.len, 4);
    assert_memory_equal(a.plain.base, "abcd", 4);
    side_free(&a);
    side_free(&b);
}

static void test_sessions(void **state)
{
    (void)state;
    handshake(1 << 20);
    handshake(1);
    handshake(7);
}

/* The session's verdict on the wire bytes hex from the peer. */
static int feed(const char *hex, const flare_peerid *expect)
{
    flare_privkey k;
    key_from_seed(&k, "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb");
    side s;
    side_init(&s, &k, 0, expect);
    uint8_t m[256];
    size_t n = flare_test_unhex(hex, m, sizeof(m));
    int rv = sec()->recv(s.sess, m, n, &s.out, &s.plain);
    if (rv == 0 && !sec()->handshake_done(s.sess))
        rv = FLARE_ERR_AGAIN;
    assert_int_equal(s.plain.len, 0);
    side_free(&s);
    return rv;
}

static void test_bad_sessions(void **state)
{
    (void)state;
    assert_int_equal(feed(VECTOR, NULL), 0);
    /* Not who we dialed. */
    flare_peerid other;
    flare_privkey k;
    key_from_seed(&k, "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb");
    assert_int_equal(flare_peerid_from_pubkey(&other, &k.pub), 0);
    assert_int_equal(feed(VECTOR, &other), FLARE_ERR_PEER_ID_MISMATCH);
    /* A frame over the bound is refused from its prefix alone. */
    assert_int_equal(feed("ffff03", NULL), FLARE_ERR_TOO_LARGE);
    /* A non-minimal length prefix. */
    assert_int_equal(feed("8000", NULL), FLARE_ERR_OVERLONG);
    /* An empty Exchange; half a frame waits. */
    assert_int_equal(feed("00", NULL), FLARE_ERR_MALFORMED);
    assert_int_equal(feed("4e0a26", NULL), FLARE_ERR_AGAIN);
}

/* --- hosts --- */

static flare_host *make(flare_sim *sim, const char *ip, uint8_t seed, const char *security,
                        int port)
{
    flare_host_settings cfg;
    flare_test_settings_default(&cfg);
    if (security)
        cfg.security = security;
    flare_test_host_spec sp = {.name = ip,
                               .lan = flare_sim_internet(sim),
                               .ip = ip,
                               .link = {.delay = 5 * FLARE_NS_PER_MS},
                               .seed = {seed},
                               .cfg = &cfg,
                               .listen_port = port};
    flare_sim_host *sh;
    flare_host *h;
    assert_int_equal(flare_test_host_make(sim, &sp, &sh, &h), 0);
    return h;
}

static int dial(const char *sec_a, const char *sec_b, char *got, size_t cap)
{
    flare_sim *sim = flare_sim_new(5, NULL);
    assert_non_null(sim);
    flare_host *a = make(sim, "198.51.100.1", 1, sec_a, 4001);
    flare_host *b = make(sim, "198.51.100.2", 2, sec_b, 0);
    flare_multiaddr ma;
    assert_int_equal(flare_test_tcp_addr(&ma, "198.51.100.1", 4001, flare_host_peerid(a)), 0);
    flare_test_dial r = {0};
    assert_int_equal(flare_host_dial(b, &ma, NULL, flare_test_dial_cb, &r), 0);
    flare_test_run_ms(sim, 2000);
    assert_int_equal(r.calls, 1);
    snprintf(got, cap, "%s", r.status ? "" : flare_conn_security(r.conn));
    if (r.status == 0) {
        /* Streams work over it: a ping. */
        assert_int_equal(flare_host_ping(b, flare_host_peerid(a), NULL, NULL), 0);
        flare_test_run_ms(sim, 500);
        assert_non_null(flare_host_conn_to(a, flare_host_peerid(b)));
    }
    flare_host_del(a);
    flare_host_del(b);
    flare_sim_del(sim);
    return r.status;
}

static void test_hosts(void **state)
{
    (void)state;
    char got[32];
    assert_int_equal(dial(FLARE__PLAINTEXT_ID, FLARE__PLAINTEXT_ID, got, sizeof(got)), 0);
    assert_string_equal(got, FLARE__PLAINTEXT_ID);
    assert_int_equal(dial("/noise," FLARE__PLAINTEXT_ID, FLARE__PLAINTEXT_ID, got, sizeof(got)), 0);
    assert_string_equal(got, FLARE__PLAINTEXT_ID);
    /* Never by default: a default listener refuses it. */
    assert_int_equal(dial(NULL, FLARE__PLAINTEXT_ID, got, sizeof(got)), FLARE_ERR_NEGOTIATION);
    assert_int_equal(dial(NULL, "/plaintext/2.0.0,/noise", got, sizeof(got)), 0);
    assert_string_equal(got, "/noise");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vector),   cmocka_unit_test(test_bad_exchange),
        cmocka_unit_test(test_sessions), cmocka_unit_test(test_bad_sessions),
        cmocka_unit_test(test_hosts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
