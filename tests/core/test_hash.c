/* The table hash: the same value as the plain word-at-a-time definition
 * (each word little-endian, the tail zero-padded) at every length, seed
 * and alignment, so that tables place keys where they always did. */
#include "support/test.h"

#include "core/hash.h"

static uint64_t reference(uint64_t seed, const uint8_t *p, size_t n)
{
    uint64_t h = seed ^ 0xcbf29ce484222325ULL ^ n;
    for (; n >= 8; p += 8, n -= 8) {
        uint64_t w = 0;
        for (int i = 0; i < 8; i++)
            w |= (uint64_t)p[i] << (8 * i);
        h = (h ^ w) * 0x9e3779b97f4a7c15ULL;
        h ^= h >> 32;
    }
    if (n) {
        uint64_t w = 0;
        for (size_t i = 0; i < n; i++)
            w |= (uint64_t)p[i] << (8 * i);
        h = (h ^ w) * 0x9e3779b97f4a7c15ULL;
    }
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ULL;
    return h ^ (h >> 32);
}

static void test_matches_reference(void **state)
{
    (void)state;
    uint8_t buf[160];
    uint64_t x = 0x123456789abcdefULL;
    for (size_t i = 0; i < sizeof(buf); i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        buf[i] = (uint8_t)(x >> 56);
    }
    const uint64_t seeds[] = {0, 1, 0xdeadbeefcafef00dULL};
    for (size_t s = 0; s < 3; s++)
        for (size_t off = 0; off < 8; off++)
            for (size_t n = 0; n <= 100; n++)
                assert_true(flare__hash_words(seeds[s], buf + off, n) ==
                            reference(seeds[s], buf + off, n));
    /* Bytes around the key do not count. */
    uint8_t a[48] = {0}, b[48];
    memset(b, 0xff, sizeof(b));
    memset(b + 8, 0, 38);
    assert_true(flare__hash_words(7, a + 8, 38) == flare__hash_words(7, b + 8, 38));
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_matches_reference)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
