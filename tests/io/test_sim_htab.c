/* The simulator's intrusive hash table (src/io/sim_htab.c): lookups against
 * a reference model under random operations, chains of equal hashes that
 * keep newest-first order through growth, removal while walking a chain,
 * and bucket collisions between different hashes. */
#include "support/test.h"

#include "flare/common.h"
#include "io/sim_htab.h"

typedef struct item {
    sim_hnode hn;
    int key;
    int alive;
} item;

#define ITEM(n) ((item *)(void *)(n))

static uint64_t key_hash(int key)
{
    return flare__sim_mix(0, (uint64_t)key);
}

static item *find(const sim_htab *t, int key)
{
    for (sim_hnode *n = flare__sim_htab_first(t, key_hash(key)); n; n = flare__sim_htab_next(n))
        if (ITEM(n)->key == key)
            return ITEM(n);
    return NULL;
}

static void test_random_against_model(void **state)
{
    (void)state;
    enum { N = 4000 };
    item *items = calloc(N, sizeof(*items));
    assert_non_null(items);
    sim_htab t;
    flare__sim_htab_init(&t, NULL);
    flare_prng prng;
    flare_prng_seed(&prng, 7);
    size_t live = 0;
    for (int step = 0; step < 60000; step++) {
        int k = (int)(flare_prng_next(&prng) % N);
        item *it = &items[k];
        if (it->alive) {
            assert_ptr_equal(find(&t, k), it);
            flare__sim_htab_remove(&t, &it->hn);
            it->alive = 0;
            live--;
        } else {
            assert_null(find(&t, k));
            it->key = k;
            assert_int_equal(flare__sim_htab_insert(&t, &it->hn, key_hash(k)), 0);
            it->alive = 1;
            live++;
        }
        assert_int_equal(t.len, live);
    }
    for (int k = 0; k < N; k++)
        assert_ptr_equal(find(&t, k), items[k].alive ? &items[k] : NULL);
    /* Removing a node twice, or one never inserted, changes nothing. */
    item stray = {0};
    flare__sim_htab_remove(&t, &stray.hn);
    for (int k = 0; k < N; k++)
        if (!items[k].alive)
            flare__sim_htab_remove(&t, &items[k].hn);
    assert_int_equal(t.len, live);
    flare__sim_htab_free(&t);
    free(items);
}

/* Half the nodes under one hash, half under another, interleaved: each
 * chain stays newest first across every doubling of the bucket array. */
static void test_equal_hashes_keep_order(void **state)
{
    (void)state;
    enum { N = 1000 };
    item *items = calloc(N, sizeof(*items));
    assert_non_null(items);
    sim_htab t;
    flare__sim_htab_init(&t, NULL);
    for (int i = 0; i < N; i++) {
        items[i].key = i;
        assert_int_equal(flare__sim_htab_insert(&t, &items[i].hn, 42 + (uint64_t)(i % 2)), 0);
    }
    assert_true(t.cap >= N);
    for (int h = 0; h < 2; h++) {
        int expect = N - 2 + h, count = 0;
        for (sim_hnode *n = flare__sim_htab_first(&t, 42 + (uint64_t)h); n;
             n = flare__sim_htab_next(n)) {
            assert_int_equal(ITEM(n)->key, expect);
            expect -= 2;
            count++;
        }
        assert_int_equal(count, N / 2);
    }
    assert_null(flare__sim_htab_first(&t, 44));
    flare__sim_htab_free(&t);
    free(items);
}

/* Hashes that differ but share a bucket at every size (a multiple of the
 * largest bucket count apart), interleaved: each walk sees its own hash
 * only, in newest-first order, and removal while walking is safe. */
static void test_bucket_collisions_and_removal_while_walking(void **state)
{
    (void)state;
    enum { N = 600 };
    item *items = calloc(N, sizeof(*items));
    assert_non_null(items);
    sim_htab t;
    flare__sim_htab_init(&t, NULL);
    const uint64_t stride = (uint64_t)1 << 40;
    for (int i = 0; i < N; i++) {
        items[i].key = i;
        assert_int_equal(flare__sim_htab_insert(&t, &items[i].hn, 5 + (uint64_t)(i % 3) * stride),
                         0);
    }
    for (int h = 0; h < 3; h++) {
        int last = N, count = 0;
        for (sim_hnode *n = flare__sim_htab_first(&t, 5 + h * stride); n;
             n = flare__sim_htab_next(n)) {
            assert_int_equal(ITEM(n)->key % 3, h);
            assert_true(ITEM(n)->key < last);
            last = ITEM(n)->key;
            count++;
        }
        assert_int_equal(count, N / 3);
    }
    /* Remove every even key of hash 1 during the walk, then the rest. */
    for (sim_hnode *n = flare__sim_htab_first(&t, 5 + stride), *next; n; n = next) {
        next = flare__sim_htab_next(n);
        if (ITEM(n)->key % 2 == 0)
            flare__sim_htab_remove(&t, n);
    }
    int count = 0;
    for (sim_hnode *n = flare__sim_htab_first(&t, 5 + stride); n; n = flare__sim_htab_next(n)) {
        assert_int_equal(ITEM(n)->key % 2, 1);
        count++;
    }
    assert_int_equal(count, N / 6);
    for (sim_hnode *n = flare__sim_htab_first(&t, 5 + stride), *next; n; n = next) {
        next = flare__sim_htab_next(n);
        flare__sim_htab_remove(&t, n);
    }
    assert_null(flare__sim_htab_first(&t, 5 + stride));
    assert_int_equal(t.len, 2 * N / 3);
    /* The other hashes are untouched. */
    count = 0;
    for (sim_hnode *n = flare__sim_htab_first(&t, 5); n; n = flare__sim_htab_next(n))
        count++;
    assert_int_equal(count, N / 3);
    flare__sim_htab_free(&t);
    free(items);
}

static void test_empty_and_address_keys(void **state)
{
    (void)state;
    sim_htab t;
    flare__sim_htab_init(&t, NULL);
    assert_null(flare__sim_htab_first(&t, 1));
    flare__sim_htab_free(&t);
    /* Endpoint keys: port and family count, unused IPv4 bytes do not. */
    flare_ipaddr a, b;
    assert_int_equal(flare_ipaddr_parse(&a, "10.0.0.1:4001"), 0);
    b = a;
    b.ip[10] = 99;
    assert_true(flare__sim_mix_ep(0, &a) == flare__sim_mix_ep(0, &b));
    b = a;
    b.port = 4002;
    assert_true(flare__sim_mix_ep(0, &a) != flare__sim_mix_ep(0, &b));
    assert_true(flare__sim_mix_ip(0, &a) == flare__sim_mix_ip(0, &b));
    assert_int_equal(flare_ipaddr_parse(&b, "[::a00:1]:4001"), 0);
    assert_true(flare__sim_mix_ep(0, &a) != flare__sim_mix_ep(0, &b));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_against_model),
        cmocka_unit_test(test_equal_hashes_keep_order),
        cmocka_unit_test(test_bucket_collisions_and_removal_while_walking),
        cmocka_unit_test(test_empty_and_address_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
