/* The sans-I/O WebSocket endpoint: the upgrade both ways, framing, and the
 * refusals of bad upgrades and bad frames. */
#include <stdlib.h>

#include "support/test.h"
#include "transport/ws_core.h"

typedef struct pair {
    flare_prng prng;
    flare__ws cl, sv;
    flare_buf cwire, swire, capp, sapp;
} pair;

static void pair_init(pair *p)
{
    memset(p, 0, sizeof(*p));
    flare_prng_seed(&p->prng, 7);
    flare__ws_settings cs = {.client = 1, .rng = flare_prng_rng(&p->prng)};
    flare__ws_settings ss = {0};
    assert_int_equal(flare__ws_init(&p->cl, &cs, 0, NULL), 0);
    assert_int_equal(flare__ws_init(&p->sv, &ss, 0, NULL), 0);
    flare_buf_init(&p->cwire, NULL);
    flare_buf_init(&p->swire, NULL);
    flare_buf_init(&p->capp, NULL);
    flare_buf_init(&p->sapp, NULL);
}

static void pair_free(pair *p)
{
    flare__ws_free(&p->cl);
    flare__ws_free(&p->sv);
    flare_buf_free(&p->cwire);
    flare_buf_free(&p->swire);
    flare_buf_free(&p->capp);
    flare_buf_free(&p->sapp);
}

/* Moves what one side wrote into the other, n bytes per call (0: all). */
static int deliver(flare__ws *to, flare_buf *from, flare_buf *app, flare_buf *wire, size_t n,
                   unsigned *evs)
{
    *evs = 0;
    int rv = 0;
    while (from->len && rv == 0) {
        size_t k = n && n < from->len ? n : from->len;
        unsigned ev;
        rv = flare__ws_input(to, from->base, k, app, wire, &ev);
        *evs |= ev;
        flare_buf_consume(from, k);
    }
    flare_buf_reset(from);
    return rv;
}

static void pair_open(pair *p, size_t step)
{
    unsigned ev;
    assert_int_equal(flare__ws_start(&p->cl, &p->cwire, "example.com:443", "/"), 0);
    assert_int_equal(deliver(&p->sv, &p->cwire, &p->sapp, &p->swire, step, &ev), 0);
    assert_true(ev & FLARE__WS_EV_OPEN);
    assert_int_equal(p->sv.state, FLARE__WS_OPEN);
    assert_int_equal(deliver(&p->cl, &p->swire, &p->capp, &p->cwire, step, &ev), 0);
    assert_true(ev & FLARE__WS_EV_OPEN);
    assert_int_equal(p->cl.state, FLARE__WS_OPEN);
}

static void test_accept_vector(void **state)
{
    (void)state;
    char out[FLARE__WS_ACCEPT_LEN + 1];
    const char *key = "dGhlIHNhbXBsZSBub25jZQ=="; /* RFC 6455 section 1.3 */
    assert_int_equal(flare__ws_accept_for(key, strlen(key), out), 0);
    assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

static void test_open_and_echo(void **state)
{
    (void)state;
    for (size_t step = 0; step <= 1; step++) {
        pair p;
        pair_init(&p);
        pair_open(&p, step ? 1 : 0);
        /* 200 KiB each way, in several messages; fed byte by byte once. */
        size_t n = 200 * 1024;
        uint8_t *big = malloc(n);
        for (size_t i = 0; i < n; i++)
            big[i] = (uint8_t)(i * 31 + 7);
        unsigned ev;
        assert_int_equal(flare__ws_write(&p.cl, big, n, &p.cwire), 0);
        /* Client frames are masked: the payload does not appear as is. */
        assert_true(p.cwire.base[1] & 0x80);
        assert_int_equal(deliver(&p.sv, &p.cwire, &p.sapp, &p.swire, step ? 1 : 4096, &ev), 0);
        assert_int_equal(p.sapp.len, n);
        assert_memory_equal(p.sapp.base, big, n);
        assert_int_equal(flare__ws_write(&p.sv, big, n, &p.swire), 0);
        assert_false(p.swire.base[1] & 0x80); /* servers do not mask */
        assert_int_equal(deliver(&p.cl, &p.swire, &p.capp, &p.cwire, 0, &ev), 0);
        assert_int_equal(p.capp.len, n);
        assert_memory_equal(p.capp.base, big, n);
        free(big);
        pair_free(&p);
    }
}

static void test_ping_pong_close(void **state)
{
    (void)state;
    pair p;
    pair_init(&p);
    pair_open(&p, 0);
    unsigned ev;
    assert_int_equal(flare__ws_ping(&p.cl, (const uint8_t *)"hi", 2, &p.cwire), 0);
    assert_int_equal(deliver(&p.sv, &p.cwire, &p.sapp, &p.swire, 0, &ev), 0);
    assert_int_equal(p.sapp.len, 0);
    /* The server answered with a pong carrying the payload. */
    assert_int_equal(p.swire.len, 4);
    assert_int_equal(p.swire.base[0], 0x8a);
    assert_memory_equal(p.swire.base + 2, "hi", 2);
    assert_int_equal(deliver(&p.cl, &p.swire, &p.capp, &p.cwire, 0, &ev), 0);
    assert_int_equal(p.capp.len, 0);
    assert_int_equal(p.cwire.len, 0);
    /* Close: the server sees EOF and answers; the client sees the answer. */
    assert_int_equal(flare__ws_close(&p.cl, 1000, &p.cwire), 0);
    assert_int_equal(flare__ws_write(&p.cl, (const uint8_t *)"x", 1, &p.cwire), FLARE_ERR_STATE);
    assert_int_equal(deliver(&p.sv, &p.cwire, &p.sapp, &p.swire, 0, &ev), 0);
    assert_true(ev & FLARE__WS_EV_EOF);
    assert_int_equal(p.sv.close_code, 1000);
    assert_true(p.swire.len > 0);
    assert_int_equal(deliver(&p.cl, &p.swire, &p.capp, &p.cwire, 0, &ev), 0);
    assert_true(ev & FLARE__WS_EV_EOF);
    pair_free(&p);
}

/* ---- bad upgrades ------------------------------------------------------------------- */

#define GOOD_KEY "dGhlIHNhbXBsZSBub25jZQ=="

static int server_status(const char *req, int *err)
{
    flare__ws sv;
    flare__ws_settings ss = {0};
    flare_buf app, wire;
    flare_buf_init(&app, NULL);
    flare_buf_init(&wire, NULL);
    assert_int_equal(flare__ws_init(&sv, &ss, 0, NULL), 0);
    unsigned ev;
    *err = flare__ws_input(&sv, (const uint8_t *)req, strlen(req), &app, &wire, &ev);
    int status = 0;
    if (wire.len > 12)
        status = atoi((const char *)wire.base + 9);
    flare__ws_free(&sv);
    flare_buf_free(&app);
    flare_buf_free(&wire);
    return status;
}

static void test_bad_requests(void **state)
{
    (void)state;
    int err;
    assert_int_equal(
        server_status("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
                      "Connection: keep-alive, Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                      "Sec-WebSocket-Key: " GOOD_KEY "\r\n\r\n",
                      &err),
        101);
    assert_int_equal(err, 0);
    struct {
        const char *req;
        int status;
    } bad[] = {
        {"POST / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " GOOD_KEY "\r\n\r\n",
         405},
        {"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 426},
        {"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: " GOOD_KEY "\r\n\r\n",
         426},
        /* wrong keys: too short, not base64, not 16 bytes, twice */
        {"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: abc\r\n\r\n",
         400},
        {"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: !!!!!!!!!!!!!!!!!!!!!!==\r\n\r\n",
         400},
        {"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ\r\n\r\n",
         400},
        {"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " GOOD_KEY "\r\n"
         "Sec-WebSocket-Key: " GOOD_KEY "\r\n\r\n",
         400},
        {"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " GOOD_KEY "\r\n\r\n",
         400},
        {"GET / HTTP/1.0\r\nHost: a\r\n\r\n", 505},
        {"GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505},
        {"GET /\r\nHost: a\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", 400},
        {"GET / HTTP/1.1\nHost: a\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: a\r\nX\r\n\r\n", 400},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int st = server_status(bad[i].req, &err);
        if (st != bad[i].status)
            fail_msg("request %zu: status %d, want %d", i, st, bad[i].status);
        assert_int_equal(err, FLARE_ERR_PROTO);
    }
}

static void test_oversized_requests(void **state)
{
    (void)state;
    int err;
    /* No end of headers within the bound. */
    char *big = malloc(FLARE__WS_HTTP_MAX + 100);
    memset(big, 'a', FLARE__WS_HTTP_MAX + 99);
    big[FLARE__WS_HTTP_MAX + 99] = 0;
    assert_int_equal(server_status(big, &err), 431);
    assert_int_equal(err, FLARE_ERR_TOO_LARGE);
    /* Too many fields, each short. */
    size_t off = (size_t)sprintf(big, "GET / HTTP/1.1\r\n");
    for (int i = 0; i < FLARE__WS_HTTP_LINES + 1; i++)
        off += (size_t)sprintf(big + off, "X-%d: y\r\n", i);
    sprintf(big + off, "\r\n");
    assert_int_equal(server_status(big, &err), 431);
    assert_int_equal(err, FLARE_ERR_TOO_LARGE);
    free(big);
}

static void test_bad_responses(void **state)
{
    (void)state;
    const char *bad[] = {
        "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n", /* wrong accept */
        "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\r\n",
        "garbage\r\n\r\n",
    };
    int want[] = {FLARE_ERR_REFUSED, FLARE_ERR_PROTO, FLARE_ERR_PROTO, FLARE_ERR_PROTO};
    for (size_t i = 0; i < 4; i++) {
        pair p;
        pair_init(&p);
        assert_int_equal(flare__ws_start(&p.cl, &p.cwire, "h", NULL), 0);
        unsigned ev;
        int rv =
            flare__ws_input(&p.cl, (const uint8_t *)bad[i], strlen(bad[i]), &p.capp, &p.cwire, &ev);
        assert_int_equal(rv, want[i]);
        assert_int_equal(p.cl.state, FLARE__WS_CLOSED);
        pair_free(&p);
    }
}

static void test_upgrade_timeout(void **state)
{
    (void)state;
    flare__ws sv;
    flare__ws_settings ss = {.upgrade_time = 5 * FLARE_NS_PER_S};
    assert_int_equal(flare__ws_init(&sv, &ss, 100, NULL), 0);
    assert_int_equal(flare__ws_deadline(&sv), 100 + 5 * FLARE_NS_PER_S);
    assert_int_equal(flare__ws_check_time(&sv, 100 + 5 * FLARE_NS_PER_S - 1), 0);
    assert_int_equal(flare__ws_check_time(&sv, 100 + 5 * FLARE_NS_PER_S), FLARE_ERR_TIMEOUT);
    flare__ws_free(&sv);
}

/* ---- bad frames ---------------------------------------------------------------------- */

/* A frame as a client would send it; mask 0 leaves it unmasked. */
static size_t frame(uint8_t *out, uint8_t b0, const uint8_t *payload, size_t len, int mask)
{
    size_t o = 0;
    out[o++] = b0;
    uint8_t m = mask ? 0x80 : 0;
    if (len < 126)
        out[o++] = m | (uint8_t)len;
    else {
        out[o++] = m | 126;
        out[o++] = (uint8_t)(len >> 8);
        out[o++] = (uint8_t)len;
    }
    static const uint8_t key[4] = {1, 2, 3, 4};
    if (mask) {
        memcpy(out + o, key, 4);
        o += 4;
    }
    for (size_t i = 0; i < len; i++)
        out[o++] = payload[i] ^ (mask ? key[i % 4] : 0);
    return o;
}

/* Feeds one raw frame to an open server: its result and the close code sent. */
static int server_frame(const uint8_t *f, size_t n, int *close_code, size_t *app_len)
{
    pair p;
    pair_init(&p);
    pair_open(&p, 0);
    unsigned ev;
    int rv = flare__ws_input(&p.sv, f, n, &p.sapp, &p.swire, &ev);
    *close_code = 0;
    if (p.swire.len >= 4 && p.swire.base[0] == 0x88)
        *close_code = p.swire.base[2] << 8 | p.swire.base[3];
    *app_len = p.sapp.len;
    pair_free(&p);
    return rv;
}

static void test_bad_frames(void **state)
{
    (void)state;
    uint8_t f[512];
    int code;
    size_t app;
    const uint8_t data[] = "hello";
    /* Good: a masked binary frame. */
    size_t n = frame(f, 0x82, data, 5, 1);
    assert_int_equal(server_frame(f, n, &code, &app), 0);
    assert_int_equal(app, 5);
    /* Unmasked from a client. */
    n = frame(f, 0x82, data, 5, 0);
    assert_int_equal(server_frame(f, n, &code, &app), FLARE_ERR_PROTO);
    assert_int_equal(code, 1002);
    assert_int_equal(app, 0);
    /* A fragmented ping (FIN clear on a control frame). */
    n = frame(f, 0x09, data, 5, 1);
    assert_int_equal(server_frame(f, n, &code, &app), FLARE_ERR_PROTO);
    /* A control frame over 125 bytes. */
    uint8_t longp[200] = {0};
    n = frame(f, 0x89, longp, sizeof(longp), 1);
    assert_int_equal(server_frame(f, n, &code, &app), FLARE_ERR_PROTO);
    /* Text is not our stream. */
    n = frame(f, 0x81, data, 5, 1);
    assert_int_equal(server_frame(f, n, &code, &app), FLARE_ERR_PROTO);
    assert_int_equal(code, 1003);
    /* Reserved bits, an unknown opcode, a continuation with nothing to continue. */
    n = frame(f, 0xc2, data, 5, 1);
    assert_int_equal(server_frame(f, n, &code, &app), FLARE_ERR_PROTO);
    assert_int_equal(code, 1002);
    n = frame(f, 0x83, data, 5, 1);
    assert_int_equal(server_frame(f, n, &code, &app), FLARE_ERR_PROTO);
    n = frame(f, 0x80, data, 5, 1);
    assert_int_equal(server_frame(f, n, &code, &app), FLARE_ERR_PROTO);
    /* A frame announcing more than the bound (64-bit length), first bytes. */
    uint8_t hdr[16] = {0x82, 0x80 | 127, 0, 0, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6};
    assert_int_equal(server_frame(hdr, sizeof(hdr), &code, &app), FLARE_ERR_TOO_LARGE);
    assert_int_equal(code, 1009);
    /* A fragmented binary message with a ping in the middle is fine. */
    n = frame(f, 0x02, data, 3, 1);
    n += frame(f + n, 0x89, data, 1, 1);
    n += frame(f + n, 0x80, data + 3, 2, 1);
    assert_int_equal(server_frame(f, n, &code, &app), 0);
    assert_int_equal(app, 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accept_vector),      cmocka_unit_test(test_open_and_echo),
        cmocka_unit_test(test_ping_pong_close),    cmocka_unit_test(test_bad_requests),
        cmocka_unit_test(test_oversized_requests), cmocka_unit_test(test_bad_responses),
        cmocka_unit_test(test_upgrade_timeout),    cmocka_unit_test(test_bad_frames),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
