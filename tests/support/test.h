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
/* The address s (asserts it parses). */
flare_ipaddr flare_test_ip(const char *s);
/* A simulated host named name at ip on lan, its link delayed by delay. */
flare_sim_host *flare_test_sim_host(flare_sim *sim, const char *name, flare_sim_lan *lan,
                                    const char *ip, flare_tstamp delay);

flare_conn *flare_test_dial_ok(flare_sim *sim, flare_host *h, const flare_multiaddr *ma, long ms);
/* Asserts c's transport, security and muxer names. */
void flare_test_assert_stack(flare_conn *c, const char *transport, const char *security,
                             const char *muxer);
/* Pings peer from n and runs the simulation for 1 s; asserts that n got its
 * first ping answer, with an RTT in [lo, hi). */
void flare_test_ping_ok(flare_sim *sim, flare_test_node *n, const flare_peerid *peer,
                        flare_tstamp lo, flare_tstamp hi);
/* Opens proto (an echo service) from h to peer, sends len bytes in chunk
 * writes and runs the simulation for ms; asserts that all of them came back
 * intact, then EOF, with no write error. */
void flare_test_echo_ok(flare_sim *sim, flare_host *h, const flare_peerid *peer, const char *proto,
                        size_t len, size_t chunk, long ms);
/* Reads a file under FLARE_SOURCE_DIR (tests/vectors/...); caller frees. */
char *flare_test_read_source_file(const char *rel, size_t *len);

#endif
