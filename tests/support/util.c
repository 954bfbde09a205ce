#include <stdlib.h>

#include "support/test.h"

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

size_t flare_test_unhex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = strlen(hex);
    assert_int_equal(n % 2, 0);
    assert_true(n / 2 <= cap);
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        assert_true(hi >= 0 && lo >= 0);
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return n / 2;
}

void flare_test_assert_hex(const flare_buf *b, const char *hex)
{
    uint8_t want[256];
    size_t n = flare_test_unhex(hex, want, sizeof(want));
    assert_int_equal(b->len, n);
    assert_memory_equal(b->base, want, n);
}

flare_conn *flare_test_dial_ok(flare_sim *sim, flare_host *h, const flare_multiaddr *ma, long ms)
{
    flare_test_dial d = {0};
    assert_int_equal(flare_host_dial(h, ma, NULL, flare_test_dial_cb, &d), 0);
    flare_test_run_ms(sim, ms);
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.status, 0);
    assert_non_null(d.conn);
    return d.conn;
}

void flare_test_assert_stack(flare_conn *c, const char *transport, const char *security,
                             const char *muxer)
{
    assert_string_equal(flare_conn_transport(c), transport);
    assert_string_equal(flare_conn_security(c), security);
    assert_string_equal(flare_conn_muxer(c), muxer);
}

void flare_test_ping_ok(flare_sim *sim, flare_test_node *n, const flare_peerid *peer,
                        flare_tstamp lo, flare_tstamp hi)
{
    assert_int_equal(flare_host_ping(n->h, peer, NULL, NULL), 0);
    flare_test_run_ms(sim, 1000);
    assert_int_equal(n->pings, 1);
    assert_true(n->rtt >= lo && n->rtt < hi);
}

void flare_test_echo_ok(flare_sim *sim, flare_host *h, const flare_peerid *peer, const char *proto,
                        size_t len, size_t chunk, long ms)
{
    flare_test_bulk x;
    assert_int_equal(flare_test_bulk_init(&x, len, chunk), 0);
    assert_int_equal(flare_host_new_stream(h, peer, proto, &flare_test_bulk_cbs, &x, 0, &x.s), 0);
    flare_test_run_ms(sim, ms);
    assert_true(x.opened);
    assert_int_equal(x.write_err, 0);
    assert_int_equal(x.got, x.len);
    assert_true(x.match);
    assert_true(x.eof);
    flare_test_bulk_free(&x);
}

char *flare_test_read_source_file(const char *rel, size_t *len)
{
    const char *dir = getenv("FLARE_SOURCE_DIR");
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir ? dir : ".", rel);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        free(buf);
        return NULL;
    }
    fclose(f);
    buf[n] = 0;
    if (len)
        *len = (size_t)n;
    return buf;
}

flare_ipaddr flare_test_ip(const char *s)
{
    flare_ipaddr a;
    assert_int_equal(flare_ipaddr_parse(&a, s), 0);
    return a;
}

flare_sim_host *flare_test_sim_host(flare_sim *sim, const char *name, flare_sim_lan *lan,
                                    const char *ip, flare_tstamp delay)
{
    flare_sim_host *h = flare_sim_host_new(sim, name);
    assert_non_null(h);
    assert_int_equal(flare_sim_host_add_addr(h, lan, ip), 0);
    flare_sim_link l = {.delay = delay};
    flare_sim_link_set(h, &l);
    return h;
}
