/* varint, multibase and multihash: multiformats vectors and bad input. */
#include "support/test.h"

#include "flare/buf.h"
#include "flare/lpframe.h"
#include "flare/multibase.h"
#include "flare/multihash.h"
#include "flare/varint.h"

static void test_varint_vectors(void **state)
{
    /* multiformats/unsigned-varint README examples */
    static const struct {
        uint64_t v;
        const char *hex;
    } vec[] = {{1, "01"},     {127, "7f"},
               {128, "8001"}, {255, "ff01"},
               {300, "ac02"}, {16384, "808001"},
               {0, "00"},     {FLARE_UVARINT_MAX_VALUE, "ffffffffffffffff7f"}};
    for (size_t i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
        uint8_t want[16], got[16];
        size_t n = flare_test_unhex(vec[i].hex, want, sizeof(want));
        assert_int_equal(flare_uvarint_encode(vec[i].v, got), (int)n);
        assert_memory_equal(got, want, n);
        assert_int_equal(flare_uvarint_len(vec[i].v), n);
        uint64_t v;
        assert_int_equal(flare_uvarint_decode(want, n, &v), (int)n);
        assert_true(v == vec[i].v);
    }
}

static void test_varint_bad(void **state)
{
    uint64_t v;
    uint8_t trunc[] = {0x80};
    assert_int_equal(flare_uvarint_decode(trunc, 1, &v), FLARE_ERR_TRUNCATED);
    assert_int_equal(flare_uvarint_decode(trunc, 0, &v), FLARE_ERR_TRUNCATED);
    uint8_t nonmin[] = {0x81, 0x00};
    assert_int_equal(flare_uvarint_decode(nonmin, 2, &v), FLARE_ERR_OVERLONG);
    uint8_t ten[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    assert_int_equal(flare_uvarint_decode(ten, 10, &v), FLARE_ERR_OVERLONG);
    uint8_t out[16];
    assert_int_equal(flare_uvarint_encode(UINT64_MAX, out), FLARE_ERR_OUT_OF_RANGE);
}

static void test_multibase_vectors(void **state)
{
    /* multiformats/multibase test vectors for "yes mani !" */
    static const char *vec[] = {"f796573206d616e692021", "bpfsxgidnmfxgsibb", "k2lcpzo5yikidynfl",
                                "z7paNL19xttacUY",       "meWVzIG1hbmkgIQ",   "ueWVzIG1hbmkgIQ"};
    const char *plain = "yes mani !";
    for (size_t i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
        char out[64];
        uint8_t dec[64];
        flare_multibase base;
        int n = flare_multibase_decode(vec[i], strlen(vec[i]), dec, sizeof(dec), &base);
        assert_int_equal(n, (int)strlen(plain));
        assert_memory_equal(dec, plain, strlen(plain));
        assert_int_equal(base, vec[i][0]);
        n = flare_multibase_encode(base, (const uint8_t *)plain, strlen(plain), out, sizeof(out));
        assert_int_equal(n, (int)strlen(vec[i]));
        assert_string_equal(out, vec[i]);
    }
}

static void test_multibase_leading_zeros(void **state)
{
    static const struct {
        flare_multibase b;
        const char *s;
    } vec[] = {{FLARE_MULTIBASE_BASE58BTC, "z17paNL19xttacUY"},
               {FLARE_MULTIBASE_BASE36, "k02lcpzo5yikidynfl"},
               {FLARE_MULTIBASE_BASE32, "bab4wk4zanvqw42jaee"}};
    uint8_t plain[] = "\0yes mani !";
    for (size_t i = 0; i < 3; i++) {
        char out[64];
        assert_int_equal(flare_multibase_encode(vec[i].b, plain, 11, out, sizeof(out)),
                         (int)strlen(vec[i].s));
        assert_string_equal(out, vec[i].s);
        uint8_t dec[64];
        assert_int_equal(flare_multibase_decode(vec[i].s, strlen(vec[i].s), dec, 64, NULL), 11);
        assert_memory_equal(dec, plain, 11);
    }
}

static void test_multibase_bad(void **state)
{
    uint8_t out[64];
    assert_int_equal(flare_multibase_decode("", 0, out, 64, NULL), FLARE_ERR_TRUNCATED);
    assert_int_equal(flare_multibase_decode("Xabc", 4, out, 64, NULL), FLARE_ERR_UNKNOWN_CODE);
    assert_int_equal(flare_multibase_decode("z0OIl", 5, out, 64, NULL), FLARE_ERR_MALFORMED);
    assert_int_equal(flare_multibase_decode("bA", 2, out, 64, NULL), FLARE_ERR_MALFORMED);
    /* 'b' + one char: 5 bits, not a byte */
    assert_int_equal(flare_multibase_decode("ba", 2, out, 64, NULL), FLARE_ERR_MALFORMED);
    /* non-zero tail bits */
    assert_int_equal(flare_multibase_decode("bmf", 3, out, 64, NULL), FLARE_ERR_MALFORMED);
    assert_int_equal(flare_multibase_decode("z7paNL19xttacUY", 15, out, 4, NULL),
                     FLARE_ERR_BUFFER_TOO_SMALL);
    char small[4];
    assert_int_equal(flare_multibase_encode(FLARE_MULTIBASE_BASE58BTC, out, 10, small, 4),
                     FLARE_ERR_BUFFER_TOO_SMALL);
}

static void test_multihash(void **state)
{
    /* sha2-256("foo"), from multiformats/multihash */
    uint8_t want[64], got[64];
    size_t n = flare_test_unhex(
        "12202c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae", want, 64);
    assert_int_equal(flare_multihash_sum(FLARE_MH_SHA2_256, (const uint8_t *)"foo", 3, got, 64),
                     (int)n);
    assert_memory_equal(got, want, n);
    flare_multihash_view mh;
    assert_int_equal(flare_multihash_parse_exact(want, n, &mh), (int)n);
    assert_int_equal(mh.code, FLARE_MH_SHA2_256);
    assert_int_equal(mh.digest_len, 32);
    assert_int_equal(flare_multihash_sum(FLARE_MH_IDENTITY, (const uint8_t *)"foo", 3, got, 64), 5);
    assert_memory_equal(got,
                        "\x00\x03"
                        "foo",
                        5);
    assert_int_equal(flare_multihash_sum(0x13, got, 1, got, 64), FLARE_ERR_UNSUPPORTED);
    /* bad input */
    assert_int_equal(flare_multihash_parse(want, n - 1, &mh), FLARE_ERR_TRUNCATED);
    uint8_t short_sha[] = {0x12, 0x02, 1, 2};
    assert_int_equal(flare_multihash_parse(short_sha, 4, &mh), FLARE_ERR_MALFORMED);
    assert_int_equal(flare_multihash_parse_exact(got, 6, &mh), FLARE_ERR_MALFORMED);
}

static void test_lpframe_accumulate(void **state)
{
    flare_buf acc;
    flare_buf_init(&acc, NULL);
    const uint8_t *msg;
    size_t len;
    /* A frame arriving in pieces, with a byte after it. */
    assert_int_equal(flare_lpframe_accumulate(&acc,
                                              (const uint8_t *)"\x03"
                                                               "a",
                                              2, 16, 4, &msg, &len),
                     FLARE_ERR_AGAIN);
    assert_int_equal(flare_lpframe_accumulate(&acc, (const uint8_t *)"bcX", 3, 16, 4, &msg, &len),
                     4);
    assert_int_equal(len, 3);
    assert_memory_equal(msg, "abc", 3);
    assert_int_equal(acc.len, 5);
    /* More than a largest frame plus slack is refused and not appended. */
    static const uint8_t big[32];
    flare_buf_reset(&acc);
    assert_int_equal(flare_lpframe_accumulate(&acc, big, sizeof(big), 16, 4, &msg, &len),
                     FLARE_ERR_LIMIT);
    assert_int_equal(acc.len, 0);
    /* A length over the limit is told by its prefix. */
    assert_int_equal(flare_lpframe_accumulate(&acc, (const uint8_t *)"\x20", 1, 16, 4, &msg, &len),
                     FLARE_ERR_TOO_LARGE);
    flare_buf_free(&acc);
}

static void test_buf(void **state)
{
    flare_buf b;
    flare_buf_init(&b, NULL);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(flare_buf_append_byte(&b, (uint8_t)i), 0);
    assert_int_equal(b.len, 1000);
    flare_buf_consume(&b, 10);
    assert_int_equal(b.base[0], 10);
    assert_int_equal(flare_buf_append_uvarint(&b, 300), 0);
    assert_int_equal(b.len, 992);
    flare_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_varint_vectors),
        cmocka_unit_test(test_varint_bad),
        cmocka_unit_test(test_multibase_vectors),
        cmocka_unit_test(test_multibase_leading_zeros),
        cmocka_unit_test(test_multibase_bad),
        cmocka_unit_test(test_multihash),
        cmocka_unit_test(test_buf),
        cmocka_unit_test(test_lpframe_accumulate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
