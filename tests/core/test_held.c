/* Multiaddrs and public keys held at their length (multiaddr_held.h,
 * keys_held.h): every length round-trips, short ones allocate nothing,
 * replacing and freeing leave nothing behind. */
#include "support/test.h"

#include "core/keys_held.h"
#include "core/multiaddr_held.h"
#include "flare/multiaddr.h"

/* A valid multiaddr of exactly len bytes (0 or 2..FLARE_MULTIADDR_MAX):
 * /p2p-circuit is 2 bytes, /tcp/N 3. */
static void ma_of_len(flare_multiaddr *ma, size_t len)
{
    memset(ma, 0, sizeof(*ma));
    if (len % 2) {
        uint8_t port[2] = {(uint8_t)(len >> 8), (uint8_t)len};
        assert_int_equal(flare_multiaddr_push(ma, FLARE_MA_TCP, port, 2), 0);
    }
    while (ma->len < len)
        assert_int_equal(flare_multiaddr_push(ma, FLARE_MA_P2P_CIRCUIT, NULL, 0), 0);
    assert_int_equal(ma->len, len);
}

static void test_ma_every_length(void **state)
{
    (void)state;
    flare_test_heap heap = {0};
    flare_mem mem = flare_test_heap_mem(&heap);
    flare__ma_held h = {0};
    flare_multiaddr ma, out;
    for (size_t len = 0; len <= FLARE_MULTIADDR_MAX; len++) {
        if (len == 1)
            continue; /* no protocol has a 1-byte form */
        ma_of_len(&ma, len);
        long calls = heap.calls;
        assert_int_equal(flare__ma_hold(&h, &ma, &mem), 0);
        /* Up to an IPv6 TCP address it lives inline. */
        if (len <= FLARE__MA_HELD_INLINE)
            assert_int_equal(heap.calls, calls);
        assert_true(heap.bytes <= (long)len);
        memset(&out, 0xa5, sizeof(out));
        assert_ptr_equal(flare__ma_held_get(&h, &out), &out);
        assert_true(flare_multiaddr_equal(&out, &ma));
        assert_true(flare__ma_held_equal(&h, &ma));
        /* A valid multiaddr comes back: it decodes from its bytes. */
        if (len) {
            flare_multiaddr again;
            assert_int_equal(flare_multiaddr_from_bytes(&again, out.bytes, out.len), 0);
        }
    }
    /* Replacing a long address by a short one and back, then freeing. */
    ma_of_len(&ma, 8);
    assert_int_equal(flare__ma_hold(&h, &ma, &mem), 0);
    assert_int_equal(heap.bytes, 0);
    ma_of_len(&out, 51);
    assert_false(flare__ma_held_equal(&h, &out));
    assert_int_equal(flare__ma_hold(&h, &out, &mem), 0);
    assert_int_equal(heap.bytes, 51);
    flare__ma_held_free(&h, &mem);
    assert_int_equal(heap.bytes, 0);
    assert_int_equal(flare__ma_held_get(&h, &out)->len, 0);
}

static void test_ma_nomem(void **state)
{
    (void)state;
    flare_test_heap heap = {0};
    flare_mem mem = flare_test_heap_mem(&heap);
    flare__ma_held h = {0};
    flare_multiaddr ma, out;
    ma_of_len(&ma, 60);
    heap.fail_at = heap.calls + 1;
    assert_int_equal(flare__ma_hold(&h, &ma, &mem), FLARE_ERR_NOMEM);
    assert_int_equal(flare__ma_held_get(&h, &out)->len, 0); /* empty, not stale */
    heap.fail_at = 0;
    assert_int_equal(flare__ma_hold(&h, &ma, &mem), 0);
    flare__ma_held_free(&h, &mem);
    assert_int_equal(heap.bytes, 0);
}

static void test_key_every_length(void **state)
{
    (void)state;
    flare_test_heap heap = {0};
    flare_mem mem = flare_test_heap_mem(&heap);
    flare__pubkey_held h = {0};
    static flare_pubkey k, out;
    assert_int_equal(flare__pubkey_held_get(&h, &out), FLARE_ERR_STATE);
    for (size_t len = 1; len <= FLARE_PUBKEY_DATA_MAX; len++) {
        k.type = (flare_key_type)(len % 4);
        k.len = len;
        for (size_t i = 0; i < len; i++)
            k.data[i] = (uint8_t)(i * 7 + len);
        assert_int_equal(flare__pubkey_hold(&h, &k, &mem), 0);
        assert_true(heap.bytes == (len <= FLARE__PUBKEY_HELD_INLINE ? 0 : (long)len));
        memset(&out, 0, sizeof(out));
        assert_int_equal(flare__pubkey_held_get(&h, &out), 0);
        assert_int_equal(out.type, k.type);
        assert_int_equal(out.len, len);
        assert_memory_equal(out.data, k.data, len);
    }
    k.len = FLARE_PUBKEY_DATA_MAX + 1;
    assert_int_equal(flare__pubkey_hold(&h, &k, &mem), FLARE_ERR_INVALID_ARG);
    assert_int_equal(flare__pubkey_held_get(&h, &out), FLARE_ERR_STATE);
    flare__pubkey_held_free(&h, &mem);
    assert_int_equal(heap.bytes, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ma_every_length),
        cmocka_unit_test(test_ma_nomem),
        cmocka_unit_test(test_key_every_length),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
