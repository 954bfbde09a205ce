/* flare_buf: consuming advances a read offset (no copy); the dead prefix is
 * reclaimed only when an append needs room and the move is cheap; readers see
 * the unread bytes at base[0..len) throughout. */
#include "support/test.h"

#include <stdlib.h>

#include "flare/buf.h"
#include "flare/varint.h"

static void fill(flare_buf *b, size_t n, uint32_t *next)
{
    for (size_t i = 0; i < n; i++)
        assert_int_equal(flare_buf_append_byte(b, (uint8_t)(*next)++), 0);
}

static void check(const flare_buf *b, uint32_t first)
{
    for (size_t i = 0; i < b->len; i++)
        assert_int_equal(b->base[i], (uint8_t)(first + i));
}

/* Consuming moves no bytes: base advances inside the same allocation. */
static void test_consume_advances(void **state)
{
    (void)state;
    flare_buf b;
    uint32_t next = 0;
    flare_buf_init(&b, NULL);
    fill(&b, 1000, &next);
    uint8_t *a = b.alloc, *base = b.base;
    size_t cap = b.cap;
    assert_ptr_equal(a, base);
    flare_buf_consume(&b, 10);
    assert_ptr_equal(b.base, base + 10);
    assert_ptr_equal(b.alloc, a);
    assert_int_equal(b.cap, cap);
    assert_int_equal(b.len, 990);
    check(&b, 10);
    flare_buf_consume(&b, 500);
    assert_ptr_equal(b.base, base + 510);
    check(&b, 510);
    /* Emptying it returns base to the start: the next append needs no move. */
    flare_buf_consume(&b, 490);
    assert_int_equal(b.len, 0);
    assert_ptr_equal(b.base, a);
    flare_buf_consume(&b, 5); /* more than there is: stays empty */
    assert_int_equal(b.len, 0);
    flare_buf_free(&b);
    assert_null(b.base);
    assert_null(b.alloc);
}

/* An append that does not fit after base reuses the dead prefix when it is
 * at least an eighth of what is left (the move is then paid for). */
static void test_compacts_when_cheap(void **state)
{
    (void)state;
    flare_buf b;
    uint32_t next = 0;
    flare_buf_init(&b, NULL);
    fill(&b, 1024, &next);
    uint8_t *a = b.alloc;
    size_t cap = b.cap;
    assert_int_equal(cap, 1024);
    flare_buf_consume(&b, 600); /* 600 dead, 424 live */
    fill(&b, 500, &next);       /* 924 <= cap: compacts in place */
    assert_ptr_equal(b.alloc, a);
    assert_ptr_equal(b.base, a);
    assert_int_equal(b.cap, cap);
    assert_int_equal(b.len, 924);
    check(&b, 600);
    /* Appending into the room after base needs no move either. */
    flare_buf_consume(&b, 24);
    assert_int_equal(flare_buf_reserve(&b, 100), 0);
    assert_ptr_equal(b.base, a + 24);
    memset(b.base + b.len, 0xee, 100);
    b.len += 100;
    assert_int_equal(b.base[b.len - 1], 0xee);
    flare_buf_free(&b);
}

/* A small dead prefix (under an eighth) in front of a big live part is not
 * moved on every append (that is the old front-shift): the buffer grows,
 * copying only the unread bytes. */
static void test_grows_instead_of_shifting(void **state)
{
    (void)state;
    flare_test_heap heap = {0};
    flare_mem mem = flare_test_heap_mem(&heap);
    flare_buf b;
    uint32_t next = 0, first = 0;
    flare_buf_init(&b, &mem);
    fill(&b, 4096, &next);
    flare_buf_consume(&b, 100);
    first = 100;
    fill(&b, 100, &next);
    assert_int_equal(b.cap, 8192);
    assert_ptr_equal(b.base, b.alloc);
    assert_int_equal(b.len, 4096);
    check(&b, first);
    flare_buf_free(&b);
    assert_int_equal(heap.bytes, 0);
}

/* A queue kept near a high-water mark and drained in chunks (a stream's
 * write queue) stays bounded and keeps its bytes in order. */
static void test_queue_bounded(void **state)
{
    (void)state;
    flare_test_heap heap = {0};
    flare_mem mem = flare_test_heap_mem(&heap);
    flare_buf b;
    uint32_t next = 0, first = 0;
    const size_t high = 64 * 1024, chunk = 4000;
    flare_buf_init(&b, &mem);
    uint8_t *data = malloc(chunk);
    assert_non_null(data);
    for (int round = 0; round < 2000; round++) {
        while (b.len < high) {
            for (size_t i = 0; i < chunk; i++)
                data[i] = (uint8_t)(next + i);
            assert_int_equal(flare_buf_append(&b, data, chunk), 0);
            next += (uint32_t)chunk;
        }
        size_t n = chunk + (size_t)(round % 7) * 333;
        assert_int_equal(b.base[0], (uint8_t)first);
        assert_int_equal(b.base[b.len - 1], (uint8_t)(first + b.len - 1));
        flare_buf_consume(&b, n);
        first += (uint32_t)n;
    }
    check(&b, first);
    /* Live bytes never exceed high + chunk: the allocation stays within 2x. */
    assert_true(b.cap <= 2 * (high + chunk));
    free(data);
    flare_buf_free(&b);
    assert_int_equal(heap.bytes, 0);
}

/* Random appends, reserves and consumes against a plain model. */
static void test_model(void **state)
{
    (void)state;
    flare_buf b;
    uint32_t next = 0, first = 0;
    srand(7);
    flare_buf_init(&b, NULL);
    for (int i = 0; i < 20000; i++) {
        int op = rand() % 4;
        if (op == 0)
            fill(&b, (size_t)(rand() % 300), &next);
        else if (op == 1) {
            size_t n = b.len ? (size_t)rand() % (b.len + 1) : 0;
            flare_buf_consume(&b, n);
            first += (uint32_t)n;
        } else if (op == 2) {
            size_t n = (size_t)(rand() % 200);
            assert_int_equal(flare_buf_reserve(&b, n), 0);
            assert_true((size_t)(b.base - b.alloc) + b.len + n <= b.cap);
            for (size_t k = 0; k < n; k++)
                b.base[b.len + k] = (uint8_t)(next + k);
            b.len += n;
            next += (uint32_t)n;
        } else if (b.len > 4096) {
            flare_buf_consume(&b, b.len - 10);
            first = next - 10;
        }
        assert_int_equal(first + b.len, next);
        assert_true(b.base >= b.alloc && b.base + b.len <= b.alloc + b.cap);
    }
    check(&b, first);
    flare_buf_free(&b);
}

/* A buffer built around caller memory (no alloc set) works while it fits. */
static void test_caller_memory(void **state)
{
    (void)state;
    uint8_t mem[32];
    flare_buf b = {.base = mem, .cap = sizeof(mem)};
    assert_int_equal(flare_buf_append(&b, "abcdef", 6), 0);
    flare_buf_consume(&b, 2);
    assert_memory_equal(b.base, "cdef", 4);
    assert_int_equal(flare_buf_append(&b, "gh", 2), 0);
    assert_memory_equal(b.base, "cdefgh", 6);
    assert_ptr_equal(b.base, mem + 2);
}

/* Varints appended in place (one and two bytes) or through the encoder
 * read back as the encoder writes them, at the room's edges too: an empty
 * buffer, one with a consumed prefix, one with a byte or two of room. */
static void test_append_uvarint(void **state)
{
    (void)state;
    static const uint64_t vals[] = {0,
                                    1,
                                    0x7f,
                                    0x80,
                                    0x81,
                                    0xff,
                                    0x100,
                                    0x3fff,
                                    0x4000,
                                    0x4001,
                                    1u << 21,
                                    1u << 28,
                                    FLARE_UVARINT_MAX_VALUE};
    for (size_t pre = 0; pre < 70; pre++) {
        flare_buf b;
        flare_buf_init(&b, NULL);
        uint32_t next = 0;
        fill(&b, pre, &next);
        flare_buf_consume(&b, pre / 2);
        size_t start = b.len;
        uint8_t want[256];
        size_t wn = 0;
        for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
            assert_int_equal(flare_buf_append_uvarint(&b, vals[i]), 0);
            wn += (size_t)flare_uvarint_encode(vals[i], want + wn);
        }
        assert_int_equal(b.len - start, wn);
        assert_memory_equal(b.base + start, want, wn);
        for (size_t i = 0; i < start; i++) /* what was there stays */
            assert_int_equal(b.base[i], (uint8_t)(pre / 2 + i));
        assert_int_equal(flare_buf_append_uvarint(&b, FLARE_UVARINT_MAX_VALUE + 1),
                         FLARE_ERR_OUT_OF_RANGE);
        flare_buf_free(&b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_consume_advances),
        cmocka_unit_test(test_append_uvarint),
        cmocka_unit_test(test_compacts_when_cheap),
        cmocka_unit_test(test_grows_instead_of_shifting),
        cmocka_unit_test(test_queue_bounded),
        cmocka_unit_test(test_model),
        cmocka_unit_test(test_caller_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
