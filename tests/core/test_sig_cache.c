/* The signature cache: a hit only for exactly the (key type, key, message,
 * signature) that verified before; failures are never remembered; the
 * cache stays at its size. */
#include "support/test.h"

#include "flare/sig_cache.h"

static flare_privkey key, other;

static int setup(void **state)
{
    (void)state;
    uint8_t s1[32] = {1}, s2[32] = {2};
    if (flare_privkey_from_seed(&key, s1) || flare_privkey_from_seed(&other, s2))
        return -1;
    return 0;
}

static flare_sig_cache_stats stats(const flare_sig_cache *c)
{
    flare_sig_cache_stats st;
    flare_sig_cache_stats_get(c, &st);
    return st;
}

static void sign(const flare_privkey *k, const uint8_t *m, size_t len, uint8_t *sig, size_t *sl)
{
    assert_int_equal(flare_privkey_sign(k, m, len, sig, sl), 0);
}

static void test_hit_after_success(void **state)
{
    (void)state;
    flare_sig_cache *c = NULL;
    assert_int_equal(flare_sig_cache_new(&c, 16, NULL), 0);
    const uint8_t msg[] = "a signed peer record";
    uint8_t sig[FLARE_SIG_MAX];
    size_t sl;
    sign(&key, msg, sizeof(msg), sig, &sl);
    assert_int_equal(flare_sig_cache_verify(c, &key.pub, msg, sizeof(msg), sig, sl), 0);
    flare_sig_cache_stats st = stats(c);
    assert_true(st.misses == 1 && st.hits == 0 && st.stored == 1);
    for (int i = 0; i < 3; i++)
        assert_int_equal(flare_sig_cache_verify(c, &key.pub, msg, sizeof(msg), sig, sl), 0);
    st = stats(c);
    assert_true(st.misses == 1 && st.hits == 3 && st.stored == 1 && st.evicted == 0);
    assert_int_equal(st.capacity, 16);
    /* An empty message is a message like any other. */
    sign(&key, NULL, 0, sig, &sl);
    assert_int_equal(flare_sig_cache_verify(c, &key.pub, NULL, 0, sig, sl), 0);
    assert_int_equal(flare_sig_cache_verify(c, &key.pub, NULL, 0, sig, sl), 0);
    st = stats(c);
    assert_true(st.misses == 2 && st.hits == 4);
    flare_sig_cache_del(c);
}

/* A forgery is checked in full every time and never stored. */
static void test_failure_not_stored(void **state)
{
    (void)state;
    flare_sig_cache *c = NULL;
    assert_int_equal(flare_sig_cache_new(&c, 16, NULL), 0);
    const uint8_t msg[] = "forged";
    uint8_t sig[FLARE_SIG_MAX];
    size_t sl;
    sign(&other, msg, sizeof(msg), sig, &sl); /* signed by someone else */
    for (int i = 0; i < 3; i++)
        assert_int_equal(flare_sig_cache_verify(c, &key.pub, msg, sizeof(msg), sig, sl),
                         FLARE_ERR_BAD_SIGNATURE);
    flare_sig_cache_stats st = stats(c);
    assert_true(st.misses == 3 && st.hits == 0 && st.stored == 0);
    flare_sig_cache_del(c);
}

/* With the genuine triple cached, any changed byte of key, message or
 * signature, or another key type over the same key bytes, is a miss and
 * fails verification. */
static void test_changed_byte_misses(void **state)
{
    (void)state;
    flare_sig_cache *c = NULL;
    assert_int_equal(flare_sig_cache_new(&c, 64, NULL), 0);
    uint8_t msg[100];
    for (size_t i = 0; i < sizeof(msg); i++)
        msg[i] = (uint8_t)i;
    uint8_t sig[FLARE_SIG_MAX];
    size_t sl;
    sign(&key, msg, sizeof(msg), sig, &sl);
    assert_int_equal(flare_sig_cache_verify(c, &key.pub, msg, sizeof(msg), sig, sl), 0);
    uint64_t misses = stats(c).misses;
    for (size_t i = 0; i < sizeof(msg); i += 7) {
        msg[i] ^= 0x01;
        assert_int_equal(flare_sig_cache_verify(c, &key.pub, msg, sizeof(msg), sig, sl),
                         FLARE_ERR_BAD_SIGNATURE);
        msg[i] ^= 0x01;
        assert_int_equal(stats(c).misses, ++misses);
    }
    /* A shorter or longer message (a prefix of the signed bytes). */
    assert_int_equal(flare_sig_cache_verify(c, &key.pub, msg, sizeof(msg) - 1, sig, sl),
                     FLARE_ERR_BAD_SIGNATURE);
    assert_int_equal(stats(c).misses, ++misses);
    for (size_t i = 0; i < sl; i += 5) {
        sig[i] ^= 0x80;
        assert_int_not_equal(flare_sig_cache_verify(c, &key.pub, msg, sizeof(msg), sig, sl), 0);
        sig[i] ^= 0x80;
        assert_int_equal(stats(c).misses, ++misses);
    }
    flare_pubkey k = key.pub;
    for (size_t i = 0; i < k.len; i += 3) {
        k.data[i] ^= 0x04;
        assert_int_not_equal(flare_sig_cache_verify(c, &k, msg, sizeof(msg), sig, sl), 0);
        k.data[i] ^= 0x04;
        assert_int_equal(stats(c).misses, ++misses);
    }
    /* Another valid key. */
    assert_int_equal(flare_sig_cache_verify(c, &other.pub, msg, sizeof(msg), sig, sl),
                     FLARE_ERR_BAD_SIGNATURE);
    assert_int_equal(stats(c).misses, ++misses);
    /* The same key bytes claimed as another type. */
    k = key.pub;
    k.type = FLARE_KEY_SECP256K1;
    assert_int_not_equal(flare_sig_cache_verify(c, &k, msg, sizeof(msg), sig, sl), 0);
    assert_int_equal(stats(c).misses, ++misses);
    /* The genuine one is still a hit, and only it ever was. */
    assert_int_equal(flare_sig_cache_verify(c, &key.pub, msg, sizeof(msg), sig, sl), 0);
    flare_sig_cache_stats st = stats(c);
    assert_true(st.hits == 1 && st.stored == 1 && st.misses == misses);
    flare_sig_cache_del(c);
}

/* Many distinct signatures: the cache keeps its capacity, evicting the
 * least recently used; an evicted entry is simply verified again. */
static void test_eviction_bounded(void **state)
{
    (void)state;
    flare_sig_cache *c = NULL;
    assert_int_equal(flare_sig_cache_new(&c, 5, NULL), 0); /* rounded up to 8 */
    assert_int_equal(stats(c).capacity, 8);
    enum { N = 200 };
    uint8_t sigs[N][FLARE_ED25519_SIG_LEN];
    for (uint32_t i = 0; i < N; i++) {
        uint8_t m[4] = {(uint8_t)i, (uint8_t)(i >> 8), 0, 0};
        size_t sl;
        uint8_t sig[FLARE_SIG_MAX];
        sign(&key, m, sizeof(m), sig, &sl);
        memcpy(sigs[i], sig, sizeof(sigs[i]));
        assert_int_equal(flare_sig_cache_verify(c, &key.pub, m, sizeof(m), sigs[i], sl), 0);
        /* A hot entry, used between the others, survives them all. */
        uint8_t m0[4] = {0};
        assert_int_equal(flare_sig_cache_verify(c, &key.pub, m0, sizeof(m0), sigs[0], 64), 0);
    }
    flare_sig_cache_stats st = stats(c);
    assert_int_equal(st.stored, N);
    assert_int_equal(st.misses, N);
    assert_int_equal(st.hits, N);
    assert_true(st.stored - st.evicted <= 8); /* what it holds */
    assert_true(st.evicted >= N - 8);
    /* The oldest cold entries are gone: verified (successfully) again. */
    uint8_t m1[4] = {1, 0, 0, 0};
    assert_int_equal(flare_sig_cache_verify(c, &key.pub, m1, sizeof(m1), sigs[1], 64), 0);
    assert_int_equal(stats(c).misses, N + 1);
    flare_sig_cache_del(c);
}

static void test_api(void **state)
{
    (void)state;
    flare_sig_cache *c = NULL;
    assert_int_equal(flare_sig_cache_new(&c, 0, NULL), FLARE_ERR_INVALID_ARG);
    assert_int_equal(flare_sig_cache_new(&c, (size_t)FLARE_SIG_CACHE_MAX_ENTRIES + 1, NULL),
                     FLARE_ERR_INVALID_ARG);
    assert_int_equal(flare_sig_cache_new(NULL, 4, NULL), FLARE_ERR_INVALID_ARG);
    assert_null(c);
    flare_sig_cache_del(NULL);
    const uint8_t msg[] = "m";
    uint8_t sig[FLARE_SIG_MAX];
    size_t sl;
    sign(&key, msg, sizeof(msg), sig, &sl);
    /* No cache: a plain verification. */
    assert_int_equal(flare_sig_cache_verify(NULL, &key.pub, msg, sizeof(msg), sig, sl), 0);
    assert_int_equal(flare_sig_cache_new(&c, 4, NULL), 0);
    /* What flare_pubkey_verify refuses is refused the same way. */
    assert_int_equal(flare_sig_cache_verify(c, NULL, msg, sizeof(msg), sig, sl),
                     FLARE_ERR_INVALID_ARG);
    assert_int_equal(flare_sig_cache_verify(c, &key.pub, NULL, 3, sig, sl), FLARE_ERR_INVALID_ARG);
    assert_int_equal(flare_sig_cache_verify(c, &key.pub, msg, sizeof(msg), sig, 0),
                     FLARE_ERR_BAD_SIGNATURE);
    assert_int_equal(flare_sig_cache_verify(c, &key.pub, msg, sizeof(msg), sig, FLARE_SIG_MAX + 1),
                     FLARE_ERR_BAD_SIGNATURE);
    flare_sig_cache_stats st = stats(c);
    assert_true(st.stored == 0 && st.hits == 0);
    flare_sig_cache_stats_get(NULL, &st);
    assert_true(st.capacity == 0 && st.hits == 0);
    flare_sig_cache_del(c);
}

/* Allocation failures leave nothing behind. */
static void test_nomem(void **state)
{
    (void)state;
    for (int fail_at = 1; fail_at <= 4; fail_at++) {
        flare_test_heap heap = {.fail_at = fail_at};
        flare_mem mem = flare_test_heap_mem(&heap);
        flare_sig_cache *c = NULL;
        int rv = flare_sig_cache_new(&c, 64, &mem);
        if (rv == 0)
            flare_sig_cache_del(c);
        else
            assert_int_equal(rv, FLARE_ERR_NOMEM);
        assert_int_equal(heap.blocks, 0);
        assert_int_equal(rv, fail_at <= 3 ? FLARE_ERR_NOMEM : 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hit_after_success),
        cmocka_unit_test(test_failure_not_stored),
        cmocka_unit_test(test_changed_byte_misses),
        cmocka_unit_test(test_eviction_bounded),
        cmocka_unit_test(test_api),
        cmocka_unit_test(test_nomem),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
