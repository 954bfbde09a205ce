/* Common includes for cmocka tests. */
#ifndef FLARE_TEST_H
#define FLARE_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "flare/common.h"

/* Decodes hex into out; returns the length. Aborts the test on bad hex. */
size_t flare_test_unhex(const char *hex, uint8_t *out, size_t cap);
/* Reads a file under FLARE_SOURCE_DIR (tests/vectors/...); caller frees. */
char *flare_test_read_source_file(const char *rel, size_t *len);

/* Live and peak heap bytes of what allocates through flare_test_heap_mem(). */
typedef struct flare_test_heap {
    long bytes, peak;
} flare_test_heap;
/* Allocator hooks counting into heap (which must outlive them). */
flare_mem flare_test_heap_mem(flare_test_heap *heap);

#endif
