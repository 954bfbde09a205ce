/* TLS on memory buffers (the wss layer): handshakes against a test CA,
 * data both ways, close_notify, and the failures: an untrusted or
 * misnamed certificate, bad credentials files, garbage from a client. */
#include <stdlib.h>

#include "support/test.h"
#include "support/tls_cert.h"
#include "transport/tls_pipe.h"

static flare_test_certs certs;

static int setup(void **state)
{
    (void)state;
    return flare_test_certs_make(&certs);
}

static int teardown(void **state)
{
    (void)state;
    flare_test_certs_remove(&certs);
    return 0;
}

typedef struct tpair {
    flare__tls_creds *ccred, *scred;
    flare__tls_pipe cl, sv;
    flare_buf c2s, s2c, capp, sapp;
    unsigned cev, sev;
} tpair;

static void tpair_init(tpair *p, const char *ca, const char *name)
{
    memset(p, 0, sizeof(*p));
    assert_int_equal(flare__tls_creds_server(&p->scred, certs.cert, certs.key, NULL), 0);
    assert_int_equal(flare__tls_creds_client(&p->ccred, ca, NULL), 0);
    assert_int_equal(flare__tls_pipe_init(&p->sv, p->scred, NULL, NULL), 0);
    assert_int_equal(flare__tls_pipe_init(&p->cl, p->ccred, name, NULL), 0);
    flare_buf_init(&p->c2s, NULL);
    flare_buf_init(&p->s2c, NULL);
    flare_buf_init(&p->capp, NULL);
    flare_buf_init(&p->sapp, NULL);
}

static void tpair_free(tpair *p)
{
    flare__tls_pipe_free(&p->cl);
    flare__tls_pipe_free(&p->sv);
    flare__tls_creds_del(p->ccred, NULL);
    flare__tls_creds_del(p->scred, NULL);
    flare_buf_free(&p->c2s);
    flare_buf_free(&p->s2c);
    flare_buf_free(&p->capp);
    flare_buf_free(&p->sapp);
}

/* Moves bytes both ways until nothing moves or one side fails. */
static int pump(tpair *p, int *cerr, int *serr)
{
    *cerr = *serr = 0;
    for (int round = 0; round < 20 && (p->c2s.len || p->s2c.len); round++) {
        unsigned ev;
        if (p->c2s.len) {
            flare_buf in = p->c2s;
            flare_buf_init(&p->c2s, NULL);
            *serr = flare__tls_pipe_input(&p->sv, in.base, in.len, &p->sapp, &p->s2c, &ev);
            p->sev |= ev;
            flare_buf_free(&in);
        }
        if (p->s2c.len) {
            flare_buf in = p->s2c;
            flare_buf_init(&p->s2c, NULL);
            *cerr = flare__tls_pipe_input(&p->cl, in.base, in.len, &p->capp, &p->c2s, &ev);
            p->cev |= ev;
            flare_buf_free(&in);
        }
        if (*cerr || *serr)
            return -1;
    }
    return 0;
}

static void test_handshake_and_data(void **state)
{
    (void)state;
    const char *names[] = {"localhost", "127.0.0.1"};
    for (int i = 0; i < 2; i++) {
        tpair p;
        int ce, se;
        tpair_init(&p, certs.ca, names[i]);
        assert_int_equal(flare__tls_pipe_start(&p.cl, &p.c2s), 0);
        assert_int_equal(pump(&p, &ce, &se), 0);
        assert_true(p.cev & FLARE__TLS_EV_OPEN);
        assert_true(p.sev & FLARE__TLS_EV_OPEN);
        size_t n = 100000;
        uint8_t *d = malloc(n);
        for (size_t k = 0; k < n; k++)
            d[k] = (uint8_t)(k * 7);
        assert_int_equal(flare__tls_pipe_write(&p.cl, d, n, &p.c2s), 0);
        assert_int_equal(flare__tls_pipe_write(&p.sv, d, 1000, &p.s2c), 0);
        assert_int_equal(pump(&p, &ce, &se), 0);
        assert_int_equal(p.sapp.len, n);
        assert_memory_equal(p.sapp.base, d, n);
        assert_int_equal(p.capp.len, 1000);
        assert_memory_equal(p.capp.base, d, 1000);
        assert_int_equal(flare__tls_pipe_close(&p.cl, &p.c2s), 0);
        assert_int_equal(pump(&p, &ce, &se), 0);
        assert_true(p.sev & FLARE__TLS_EV_EOF);
        free(d);
        tpair_free(&p);
    }
}

/* The server's session ticket (a post-handshake message) and its first
 * data reach the client in one read, as from Node's TLS server. */
static void test_ticket_then_data(void **state)
{
    (void)state;
    tpair p;
    tpair_init(&p, certs.ca, "localhost");
    gnutls_datum_t tkey;
    assert_int_equal(gnutls_session_ticket_key_generate(&tkey), 0);
    assert_int_equal(gnutls_session_ticket_enable_server(p.sv.s, &tkey), 0);
    unsigned ev;
    assert_int_equal(flare__tls_pipe_start(&p.cl, &p.c2s), 0);
    assert_int_equal(flare__tls_pipe_input(&p.sv, p.c2s.base, p.c2s.len, &p.sapp, &p.s2c, &ev), 0);
    flare_buf_reset(&p.c2s);
    assert_int_equal(flare__tls_pipe_input(&p.cl, p.s2c.base, p.s2c.len, &p.capp, &p.c2s, &ev), 0);
    assert_true(ev & FLARE__TLS_EV_OPEN);
    flare_buf_reset(&p.s2c);
    assert_int_equal(flare__tls_pipe_input(&p.sv, p.c2s.base, p.c2s.len, &p.sapp, &p.s2c, &ev), 0);
    assert_true(ev & FLARE__TLS_EV_OPEN);
    /* GnuTLS sends its ticket with the first record it sends. */
    flare_buf_reset(&p.c2s);
    assert_int_equal(flare__tls_pipe_write(&p.sv, (const uint8_t *)"HTTP/1.1 101", 12, &p.s2c), 0);
    assert_int_equal(flare__tls_pipe_input(&p.cl, p.s2c.base, p.s2c.len, &p.capp, &p.c2s, &ev), 0);
    assert_int_equal(p.capp.len, 12);
    assert_memory_equal(p.capp.base, "HTTP/1.1 101", 12);
    tpair_free(&p);
    gnutls_free(tkey.data);
}

static void test_untrusted(void **state)
{
    (void)state;
    struct {
        const char *ca, *name;
    } bad[] = {{certs.other_ca, "localhost"}, {certs.ca, "example.com"}, {certs.ca, "10.0.0.1"}};
    for (int i = 0; i < 3; i++) {
        tpair p;
        int ce, se;
        tpair_init(&p, bad[i].ca, bad[i].name);
        assert_int_equal(flare__tls_pipe_start(&p.cl, &p.c2s), 0);
        assert_int_equal(pump(&p, &ce, &se), -1);
        assert_int_equal(ce, FLARE_ERR_CRYPTO);
        assert_false(p.cev & FLARE__TLS_EV_OPEN);
        assert_int_equal(p.capp.len, 0);
        tpair_free(&p);
    }
}

static void test_bad_creds(void **state)
{
    (void)state;
    flare__tls_creds *c = NULL;
    assert_int_equal(flare__tls_creds_server(&c, "/nonexistent/cert.pem", certs.key, NULL),
                     FLARE_ERR_NOT_FOUND);
    /* A CA certificate with the server's key: not a pair. */
    assert_int_equal(flare__tls_creds_server(&c, certs.ca, certs.key, NULL), FLARE_ERR_MALFORMED);
    assert_int_equal(flare__tls_creds_server(&c, certs.key, certs.key, NULL), FLARE_ERR_MALFORMED);
    assert_int_equal(flare__tls_creds_client(&c, "/nonexistent/ca.pem", NULL), FLARE_ERR_NOT_FOUND);
    assert_int_equal(flare__tls_creds_client(&c, certs.key, NULL), FLARE_ERR_MALFORMED);
    /* A client needs a name to check. */
    assert_int_equal(flare__tls_creds_client(&c, certs.ca, NULL), 0);
    flare__tls_pipe t;
    assert_int_equal(flare__tls_pipe_init(&t, c, NULL, NULL), FLARE_ERR_INVALID_ARG);
    flare__tls_creds_del(c, NULL);
}

static void test_garbage_client(void **state)
{
    (void)state;
    tpair p;
    tpair_init(&p, certs.ca, "localhost");
    /* Not TLS at all (a plain WebSocket upgrade sent to a wss port). */
    const char *req = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    unsigned ev;
    int rv = flare__tls_pipe_input(&p.sv, (const uint8_t *)req, strlen(req), &p.sapp, &p.s2c, &ev);
    assert_int_equal(rv, FLARE_ERR_CRYPTO);
    assert_int_equal(p.sapp.len, 0);
    /* After a failure the pipe takes nothing more. */
    assert_int_equal(flare__tls_pipe_write(&p.sv, (const uint8_t *)"x", 1, &p.s2c),
                     FLARE_ERR_STATE);
    tpair_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handshake_and_data), cmocka_unit_test(test_ticket_then_data),
        cmocka_unit_test(test_untrusted),          cmocka_unit_test(test_bad_creds),
        cmocka_unit_test(test_garbage_client),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
