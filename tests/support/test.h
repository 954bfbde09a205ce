/* Common includes for cmocka tests. */
#ifndef FLARE_TEST_H
#define FLARE_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "flare/buf.h"
#include "flare/common.h"
#include "support/helpers.h"

/* Decodes hex into out; returns the length. Aborts the test on bad hex. */
size_t flare_test_unhex(const char *hex, uint8_t *out, size_t cap);
/* Asserts that b holds exactly the bytes of hex (at most 256). */
void flare_test_assert_hex(const flare_buf *b, const char *hex);
/* Dials ma from h and runs the simulation for ms; asserts that the dial
 * succeeded. Returns the connection. */
flare_conn *flare_test_dial_ok(flare_sim *sim, flare_host *h, const flare_multiaddr *ma, long ms);
/* Reads a file under FLARE_SOURCE_DIR (tests/vectors/...); caller frees. */
char *flare_test_read_source_file(const char *rel, size_t *len);

#endif
