/* libp2p TLS sessions pumped against each other in memory: handshake, ALPN
 * muxer negotiation, data, close_notify, backpressure, and bad input. */
#include "support/test.h"

#include <errno.h>
#include <gnutls/gnutls.h>
#include <stdlib.h>

#include "flare/tls.h"
#include "security/tls/tls_cert.h"

#define NOW 1800000000ULL

typedef struct side {
    flare_privkey id;
    flare_peerid pid;
    flare_tls t;
    flare_buf out, plain;
    int err; /* first error of recv */
} side;

static flare_prng prng;

/* Settings from the defaults; max_plain 0 keeps the default bound. */
static flare_tls_settings mk(const flare_privkey *id, int initiator, const flare_peerid *expected,
                             const char *const *mux, size_t nmux, size_t max_plain)
{
    flare_tls_settings st;
    flare_tls_settings_default(&st);
    st.identity = id;
    st.initiator = initiator;
    st.expected_remote = expected;
    st.muxers = mux;
    st.nmuxers = nmux;
    if (max_plain)
        st.max_plaintext_buffer = max_plain;
    st.unix_now = NOW;
    return st;
}

static void side_setup(side *s, uint8_t seed, int initiator, const char *const *mux, size_t nmux,
                       const flare_peerid *expected, size_t max_plain)
{
    memset(s, 0, sizeof(*s));
    uint8_t k[32];
    memset(k, seed, sizeof(k));
    assert_int_equal(flare_privkey_from_seed(&s->id, k), 0);
    assert_int_equal(flare_peerid_from_pubkey(&s->pid, &s->id.pub), 0);
    flare_tls_settings st = mk(&s->id, initiator, expected, mux, nmux, max_plain);
    flare_buf_init(&s->out, NULL);
    flare_buf_init(&s->plain, NULL);
    assert_int_equal(flare_tls_init(&s->t, &st, NULL, flare_prng_rng(&prng)), 0);
}

static void side_free(side *s)
{
    flare_tls_free(&s->t);
    flare_buf_free(&s->out);
    flare_buf_free(&s->plain);
}

/* Moves a's output into b; returns 1 if anything moved. */
static int deliver(side *a, side *b)
{
    if (a->out.len == 0 || b->err)
        return 0;
    int rv = flare_tls_recv(&b->t, a->out.base, a->out.len, &b->out, &b->plain);
    flare_buf_consume(&a->out, a->out.len);
    if (rv && !b->err)
        b->err = rv;
    return 1;
}

static void pump(side *c, side *s)
{
    for (int i = 0; i < 100; i++) {
        int moved = deliver(c, s);
        moved |= deliver(s, c);
        if (!moved)
            return;
    }
    fail_msg("pump did not settle");
}

static void connect_pair(side *c, side *s)
{
    assert_int_equal(flare_tls_start(&c->t, &c->out), 0);
    assert_int_equal(flare_tls_start(&s->t, &s->out), 0);
    assert_true(c->out.len > 0);
    assert_int_equal(s->out.len, 0);
    pump(c, s);
}

static const char *const yamux[] = {"/yamux/1.0.0"};

static void test_handshake_and_data(void **state)
{
    (void)state;
    side c, s;
    side_setup(&c, 1, 1, yamux, 1, NULL, 0);
    side_setup(&s, 2, 0, yamux, 1, NULL, 0);

    connect_pair(&c, &s);
    assert_int_equal(c.err, 0);
    assert_int_equal(s.err, 0);
    assert_true(flare_tls_handshake_done(&c.t));
    assert_true(flare_tls_handshake_done(&s.t));
    assert_true(flare_peerid_equal(flare_tls_remote_peerid(&c.t), &s.pid));
    assert_true(flare_peerid_equal(flare_tls_remote_peerid(&s.t), &c.pid));
    assert_true(flare_pubkey_equal(flare_tls_remote_key(&c.t), &s.id.pub));
    assert_string_equal(flare_tls_selected_muxer(&c.t), "/yamux/1.0.0");
    assert_string_equal(flare_tls_selected_muxer(&s.t), "/yamux/1.0.0");

    /* 100 KB each way: several records, any split of the wire bytes. */
    size_t n = 100000;
    uint8_t *data = malloc(n);
    assert_non_null(data);
    for (size_t i = 0; i < n; i++)
        data[i] = (uint8_t)(i * 7 + 3);
    assert_int_equal(flare_tls_encrypt(&c.t, data, n, &c.out), 0);
    assert_true(c.out.len > n);
    size_t off = 0;
    while (off < c.out.len) { /* 1000-byte pieces */
        size_t k = c.out.len - off < 1000 ? c.out.len - off : 1000;
        assert_int_equal(flare_tls_recv(&s.t, c.out.base + off, k, &s.out, &s.plain), 0);
        off += k;
    }
    flare_buf_consume(&c.out, c.out.len);
    assert_int_equal(s.plain.len, n);
    assert_memory_equal(s.plain.base, data, n);
    assert_int_equal(flare_tls_encrypt(&s.t, data, 5, &s.out), 0);
    assert_int_equal(flare_tls_encrypt(&s.t, data, 0, &s.out), 0);
    pump(&c, &s);
    assert_int_equal(c.plain.len, 5);

    /* close_notify: the data before it arrives, then CLOSED; the closer can
     * no longer send, the other side still can (half-close). */
    flare_buf_reset(&c.plain);
    assert_int_equal(flare_tls_encrypt(&s.t, data, 10, &s.out), 0);
    assert_int_equal(flare_tls_close(&s.t, &s.out), 0);
    assert_int_equal(flare_tls_close(&s.t, &s.out), 0);
    assert_int_equal(flare_tls_encrypt(&s.t, data, 1, &s.out), FLARE_ERR_STATE);
    pump(&c, &s);
    assert_int_equal(c.err, FLARE_ERR_CLOSED);
    assert_int_equal(c.plain.len, 10);
    assert_int_equal(flare_tls_recv(&c.t, NULL, 0, &c.out, &c.plain), FLARE_ERR_CLOSED);
    assert_int_equal(flare_tls_encrypt(&c.t, data, 7, &c.out), 0);
    flare_buf_reset(&s.plain);
    pump(&c, &s);
    assert_int_equal(s.plain.len, 7);
    free(data);
    side_free(&c);
    side_free(&s);
}

/* The client may send data right after its Finished; the server gets both
 * in one recv and delivers the data with the handshake's completion. */
static void test_data_with_finished(void **state)
{
    (void)state;
    side c, s;
    side_setup(&c, 1, 1, yamux, 1, NULL, 0);
    side_setup(&s, 2, 0, yamux, 1, NULL, 0);
    assert_int_equal(flare_tls_start(&c.t, &c.out), 0);
    assert_int_equal(deliver(&c, &s), 1);
    assert_int_equal(deliver(&s, &c), 1);
    assert_true(flare_tls_handshake_done(&c.t));
    assert_false(flare_tls_handshake_done(&s.t));
    assert_int_equal(flare_tls_encrypt(&c.t, (const uint8_t *)"early", 5, &c.out), 0);
    assert_int_equal(deliver(&c, &s), 1);
    assert_int_equal(s.err, 0);
    assert_true(flare_tls_handshake_done(&s.t));
    assert_int_equal(s.plain.len, 5);
    assert_memory_equal(s.plain.base, "early", 5);
    side_free(&c);
    side_free(&s);
}

static const char *alpn_result(const char *const *cm, size_t cn, const char *const *sm, size_t sn)
{
    static char buf[64];
    side c, s;
    side_setup(&c, 1, 1, cm, cn, NULL, 0);
    side_setup(&s, 2, 0, sm, sn, NULL, 0);
    connect_pair(&c, &s);
    assert_int_equal(c.err, 0);
    assert_int_equal(s.err, 0);
    const char *a = flare_tls_selected_muxer(&c.t), *b = flare_tls_selected_muxer(&s.t);
    assert_true((a == NULL) == (b == NULL));
    if (a)
        assert_string_equal(a, b);
    snprintf(buf, sizeof(buf), "%s", a ? a : "(libp2p)");
    side_free(&c);
    side_free(&s);
    return buf;
}

static void test_alpn_muxers(void **state)
{
    (void)state;
    static const char *const both[] = {"/mplex/6.7.0", "/yamux/1.0.0"};
    static const char *const both_rev[] = {"/yamux/1.0.0", "/mplex/6.7.0"};
    static const char *const other[] = {"/other/1"};
    assert_string_equal(alpn_result(NULL, 0, yamux, 1), "(libp2p)");
    assert_string_equal(alpn_result(yamux, 1, NULL, 0), "(libp2p)");
    assert_string_equal(alpn_result(yamux, 1, other, 1), "(libp2p)");
    /* The client's preference wins. */
    assert_string_equal(alpn_result(both, 2, both_rev, 2), "/mplex/6.7.0");
    assert_string_equal(alpn_result(both_rev, 2, both, 2), "/yamux/1.0.0");
    assert_string_equal(alpn_result(both, 2, yamux, 1), "/yamux/1.0.0");
}

static void test_wrong_peer_id(void **state)
{
    (void)state;
    side c, s, x;
    side_setup(&x, 9, 0, NULL, 0, NULL, 0);
    /* The dialer expects x but reaches s. */
    side_setup(&c, 1, 1, yamux, 1, &x.pid, 0);
    side_setup(&s, 2, 0, yamux, 1, NULL, 0);
    connect_pair(&c, &s);
    assert_int_equal(c.err, FLARE_ERR_PEER_ID_MISMATCH);
    assert_false(flare_tls_handshake_done(&c.t));
    assert_null(flare_tls_remote_peerid(&c.t));
    char a[FLARE_PEERID_STR_MAX], b[FLARE_PEERID_STR_MAX];
    flare_peerid_to_string(&x.pid, a, sizeof(a));
    flare_peerid_to_string(&s.pid, b, sizeof(b));
    const char *d = flare_tls_error_detail(&c.t);
    assert_non_null(strstr(d, a));
    assert_non_null(strstr(d, b));
    /* The server was told (an alert) and fails too. */
    assert_true(s.err < 0);
    assert_false(flare_tls_handshake_done(&s.t));
    assert_int_equal(flare_tls_recv(&c.t, NULL, 0, &c.out, &c.plain), FLARE_ERR_STATE);
    assert_int_equal(flare_tls_encrypt(&c.t, (const uint8_t *)a, 1, &c.out), FLARE_ERR_STATE);
    side_free(&c);
    side_free(&s);

    /* A listener expecting someone else (e.g. after DCUtR): the client
     * finishes first, then learns of the rejection as an alert. */
    side_setup(&c, 1, 1, yamux, 1, NULL, 0);
    side_setup(&s, 2, 0, yamux, 1, &x.pid, 0);
    connect_pair(&c, &s);
    assert_int_equal(s.err, FLARE_ERR_PEER_ID_MISMATCH);
    assert_int_equal(c.err, FLARE_ERR_REFUSED);
    assert_non_null(strstr(flare_tls_error_detail(&c.t), "alert"));
    side_free(&c);
    side_free(&s);
    /* The right expectation passes. */
    side_setup(&c, 1, 1, yamux, 1, &x.pid, 0);
    side_free(&c);
    side_setup(&s, 2, 0, yamux, 1, NULL, 0);
    side_setup(&c, 1, 1, yamux, 1, &s.pid, 0);
    connect_pair(&c, &s);
    assert_int_equal(c.err, 0);
    assert_int_equal(s.err, 0);
    side_free(&c);
    side_free(&s);
    side_free(&x);
}

static void test_garbage_and_truncation(void **state)
{
    (void)state;
    side c, s;
    /* Garbage instead of a ClientHello. */
    side_setup(&s, 2, 0, NULL, 0, NULL, 0);
    static const uint8_t junk[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    int rv = flare_tls_recv(&s.t, junk, sizeof(junk), &s.out, &s.plain);
    assert_true(rv < 0);
    assert_int_equal(flare_tls_recv(&s.t, junk, 1, &s.out, &s.plain), FLARE_ERR_STATE);
    side_free(&s);

    /* A truncated ClientHello: the server waits for more, and says nothing. */
    side_setup(&c, 1, 1, NULL, 0, NULL, 0);
    side_setup(&s, 2, 0, NULL, 0, NULL, 0);
    assert_int_equal(flare_tls_start(&c.t, &c.out), 0);
    assert_int_equal(flare_tls_recv(&s.t, c.out.base, c.out.len - 10, &s.out, &s.plain), 0);
    assert_int_equal(s.out.len, 0);
    assert_false(flare_tls_handshake_done(&s.t));
    /* The rest completes it. */
    assert_int_equal(flare_tls_recv(&s.t, c.out.base + c.out.len - 10, 10, &s.out, &s.plain), 0);
    flare_buf_consume(&c.out, c.out.len);
    assert_true(s.out.len > 0);
    /* The server's flight truncated: the client waits. */
    assert_int_equal(flare_tls_recv(&c.t, s.out.base, s.out.len / 2, &c.out, &c.plain), 0);
    assert_false(flare_tls_handshake_done(&c.t));
    assert_int_equal(flare_tls_recv(&c.t, s.out.base + s.out.len / 2, s.out.len - s.out.len / 2,
                                    &c.out, &c.plain),
                     0);
    flare_buf_consume(&s.out, s.out.len);
    assert_true(flare_tls_handshake_done(&c.t));
    pump(&c, &s);
    assert_true(flare_tls_handshake_done(&s.t));

    /* A tampered record fails authentication. */
    assert_int_equal(flare_tls_encrypt(&c.t, junk, 20, &c.out), 0);
    c.out.base[c.out.len - 3] ^= 0x40;
    rv = flare_tls_recv(&s.t, c.out.base, c.out.len, &s.out, &s.plain);
    assert_true(rv == FLARE_ERR_CRYPTO || rv == FLARE_ERR_PROTO);
    assert_int_equal(s.plain.len, 0);
    side_free(&c);
    side_free(&s);

    /* A record of garbage after the handshake. */
    side_setup(&c, 1, 1, NULL, 0, NULL, 0);
    side_setup(&s, 2, 0, NULL, 0, NULL, 0);
    connect_pair(&c, &s);
    static const uint8_t rec[] = {23, 3,  3,  0,  20, 1,  2,  3,  4,  5,  6,  7, 8,
                                  9,  10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20};
    rv = flare_tls_recv(&c.t, rec, sizeof(rec), &c.out, &c.plain);
    assert_true(rv == FLARE_ERR_CRYPTO || rv == FLARE_ERR_PROTO);
    /* An over-long record header. */
    static const uint8_t big[] = {23, 3, 3, 0xff, 0xff, 0};
    rv = flare_tls_recv(&s.t, big, sizeof(big), &s.out, &s.plain);
    assert_true(rv < 0);
    side_free(&c);
    side_free(&s);

    /* A ClientHello that claims 16 MiB, sent in full records: GnuTLS would
     * hold all of it; the session stops it after 64 KiB. */
    side_setup(&s, 2, 0, NULL, 0, NULL, 0);
    static uint8_t hello[5 + 16384] = {22, 3, 1, 0x40, 0x00, 1, 0xff, 0xff, 0xff};
    rv = 0;
    int i = 0;
    for (; i < 1100 && rv == 0; i++)
        rv = flare_tls_recv(&s.t, hello, sizeof(hello), &s.out, &s.plain);
    assert_int_equal(rv, FLARE_ERR_TOO_LARGE);
    assert_true(i <= 5);
    assert_non_null(strstr(flare_tls_error_detail(&s.t), "64 KiB"));
    side_free(&s);
}

static void test_backpressure(void **state)
{
    (void)state;
    side c, s;
    side_setup(&c, 1, 1, NULL, 0, NULL, 0);
    side_setup(&s, 2, 0, NULL, 0, NULL, 4096);
    connect_pair(&c, &s);
    size_t n = 200000;
    uint8_t *data = calloc(1, n);
    assert_non_null(data);
    assert_int_equal(flare_tls_encrypt(&c.t, data, n, &c.out), 0);
    /* Fed everything at once without draining: the excess stays ciphertext. */
    size_t feed = 4096 + 2 * (FLARE_TLS_MAX_PLAINTEXT + 100);
    assert_int_equal(flare_tls_recv(&s.t, c.out.base, feed, &s.out, &s.plain), 0);
    flare_buf_consume(&c.out, feed);
    assert_true(s.plain.len >= 4096 && s.plain.len <= 4096 + FLARE_TLS_MAX_PLAINTEXT);
    assert_true(flare_tls_buffered(&s.t) > 0);
    /* Drain and resume with no new input. */
    size_t got = s.plain.len;
    flare_buf_reset(&s.plain);
    assert_int_equal(flare_tls_recv(&s.t, NULL, 0, &s.out, &s.plain), 0);
    assert_true(s.plain.len > 0);
    got += s.plain.len;
    flare_buf_reset(&s.plain);
    /* Reading on, all of it arrives intact. */
    size_t off = 0;
    int rv;
    while (got < 150000) {
        size_t k = c.out.len - off < 5000 ? c.out.len - off : 5000;
        rv = flare_tls_recv(&s.t, c.out.base + off, k, &s.out, &s.plain);
        assert_int_equal(rv, 0);
        off += k;
        got += s.plain.len;
        flare_buf_reset(&s.plain);
    }
    /* A peer that keeps sending while we do not read is cut off. */
    flare_buf_consume(&c.out, off);
    assert_int_equal(flare_tls_encrypt(&c.t, data, n, &c.out), 0);
    rv = flare_tls_recv(&s.t, c.out.base, c.out.len, &s.out, &s.plain);
    assert_int_equal(rv, FLARE_ERR_LIMIT);
    free(data);
    side_free(&c);
    side_free(&s);
}

/* A plain GnuTLS client (not flare's), to try what flare's own never sends:
 * an older TLS version, no certificate. */
typedef struct raw_client {
    gnutls_session_t s;
    gnutls_certificate_credentials_t cred;
    flare_buf out, in;
} raw_client;

static ssize_t raw_push(gnutls_transport_ptr_t p, const void *d, size_t n)
{
    raw_client *r = p;
    assert_int_equal(flare_buf_append(&r->out, d, n), 0);
    return (ssize_t)n;
}

static ssize_t raw_pull(gnutls_transport_ptr_t p, void *d, size_t n)
{
    raw_client *r = p;
    if (r->in.len == 0) {
        gnutls_transport_set_errno(r->s, EAGAIN);
        return -1;
    }
    if (n > r->in.len)
        n = r->in.len;
    memcpy(d, r->in.base, n);
    flare_buf_consume(&r->in, n);
    return (ssize_t)n;
}

/* Runs a raw client with priority prio (and a flare certificate or none)
 * against a flare server; returns the server's error. */
static int raw_against_server(const char *prio, int with_cert)
{
    raw_client r;
    memset(&r, 0, sizeof(r));
    flare_buf_init(&r.out, NULL);
    flare_buf_init(&r.in, NULL);
    assert_int_equal(gnutls_certificate_allocate_credentials(&r.cred), 0);
    flare__tls_cert cert;
    flare_privkey id;
    uint8_t k[32] = {5};
    assert_int_equal(flare_privkey_from_seed(&id, k), 0);
    assert_int_equal(flare__tls_cert_make(&cert, &id, NOW, flare_prng_rng(&prng)), 0);
    if (with_cert)
        assert_int_equal(flare__tls_cert_set_credentials(&cert, r.cred), 0);
    assert_int_equal(gnutls_init(&r.s, GNUTLS_CLIENT | GNUTLS_NONBLOCK), 0);
    assert_int_equal(gnutls_priority_set_direct(r.s, prio, NULL), 0);
    assert_int_equal(gnutls_credentials_set(r.s, GNUTLS_CRD_CERTIFICATE, r.cred), 0);
    gnutls_datum_t alpn = {(unsigned char *)"libp2p", 6};
    assert_int_equal(gnutls_alpn_set_protocols(r.s, &alpn, 1, 0), 0);
    gnutls_transport_set_ptr(r.s, &r);
    gnutls_transport_set_push_function(r.s, raw_push);
    gnutls_transport_set_pull_function(r.s, raw_pull);
    side s;
    side_setup(&s, 2, 0, NULL, 0, NULL, 0);
    assert_int_equal(flare_tls_start(&s.t, &s.out), 0);
    for (int i = 0; i < 20 && !s.err; i++) {
        int g = gnutls_handshake(r.s);
        if (r.out.len) {
            s.err = flare_tls_recv(&s.t, r.out.base, r.out.len, &s.out, &s.plain);
            flare_buf_consume(&r.out, r.out.len);
        }
        if (s.out.len) {
            assert_int_equal(flare_buf_append(&r.in, s.out.base, s.out.len), 0);
            flare_buf_consume(&s.out, s.out.len);
        }
        if (g == 0 || (g < 0 && g != GNUTLS_E_AGAIN && r.out.len == 0))
            break;
    }
    int err = s.err;
    if (!err)
        assert_true(flare_tls_handshake_done(&s.t));
    if (err)
        printf("raw client (%s, cert %d): %s\n", prio, with_cert, flare_tls_error_detail(&s.t));
    gnutls_deinit(r.s);
    gnutls_certificate_free_credentials(r.cred);
    flare__tls_cert_free(&cert);
    flare_buf_free(&r.out);
    flare_buf_free(&r.in);
    side_free(&s);
    return err;
}

static void test_foreign_clients(void **state)
{
    (void)state;
    /* The plain client works when it follows the rules... */
    assert_int_equal(raw_against_server("NORMAL:-VERS-ALL:+VERS-TLS1.3", 1), 0);
    /* ...but TLS 1.2 is refused, and so is a client without a certificate. */
    assert_true(raw_against_server("NORMAL:-VERS-ALL:+VERS-TLS1.2", 1) < 0);
    assert_true(raw_against_server("NORMAL:-VERS-ALL:+VERS-TLS1.3", 0) < 0);
}

/* Allocations through flare_mem failing one after the other (the session's
 * own; GnuTLS allocates with libc), then the caller's output buffer. */
typedef struct failing_mem {
    long left; /* allocations until the failure; < 0: never fail */
} failing_mem;

static void *fm_malloc(size_t n, void *u)
{
    failing_mem *f = u;
    return f->left-- == 0 ? NULL : malloc(n);
}
static void fm_free(void *p, void *u)
{
    (void)u;
    free(p);
}
static void *fm_calloc(size_t k, size_t n, void *u)
{
    failing_mem *f = u;
    return f->left-- == 0 ? NULL : calloc(k, n);
}
static void *fm_realloc(void *p, size_t n, void *u)
{
    failing_mem *f = u;
    return f->left-- == 0 ? NULL : realloc(p, n);
}

static void test_allocation_failures(void **state)
{
    (void)state;
    int completed = 0;
    flare_privkey kc, ks;
    uint8_t s1[32] = {1}, s2[32] = {2};
    assert_int_equal(flare_privkey_from_seed(&kc, s1), 0);
    assert_int_equal(flare_privkey_from_seed(&ks, s2), 0);
    for (long fail = 0; fail < 50 && !completed; fail++) {
        failing_mem fm = {fail};
        flare_mem mem = {&fm, fm_malloc, fm_free, fm_calloc, fm_realloc};
        flare_tls_settings sc = mk(&kc, 1, NULL, yamux, 1, 0), ss = sc;
        ss.identity = &ks;
        ss.initiator = 0;
        flare_tls c = {0}, s = {0};
        flare_buf co, so, cp, sp; /* the caller's buffers never fail here */
        flare_buf_init(&co, NULL);
        flare_buf_init(&so, NULL);
        flare_buf_init(&cp, NULL);
        flare_buf_init(&sp, NULL);
        int rv = flare_tls_init(&c, &sc, &mem, flare_prng_rng(&prng));
        if (!rv)
            rv = flare_tls_init(&s, &ss, &mem, flare_prng_rng(&prng));
        if (!rv)
            rv = flare_tls_start(&c, &co);
        if (!rv) /* split, so that the server buffers input */
            rv = flare_tls_recv(&s, co.base, 7, &so, &sp);
        if (!rv)
            rv = flare_tls_recv(&s, co.base + 7, co.len - 7, &so, &sp);
        if (!rv)
            rv = flare_tls_recv(&c, so.base, so.len, &co, &cp);
        if (rv) {
            assert_int_equal(rv, FLARE_ERR_NOMEM);
        } else {
            completed = 1;
            assert_true(flare_tls_handshake_done(&c));
        }
        flare_tls_free(&c);
        flare_tls_free(&s);
        flare_buf_free(&co);
        flare_buf_free(&so);
        flare_buf_free(&cp);
        flare_buf_free(&sp);
    }
    assert_true(completed);

    /* The caller's output buffer cannot grow: NOMEM, and the session is dead. */
    failing_mem never = {0};
    flare_mem bad = {&never, fm_malloc, fm_free, fm_calloc, fm_realloc};
    flare_tls_settings sc = mk(&kc, 1, NULL, NULL, 0, 0);
    flare_tls c;
    flare_buf out;
    flare_buf_init(&out, &bad);
    assert_int_equal(flare_tls_init(&c, &sc, NULL, flare_prng_rng(&prng)), 0);
    assert_int_equal(flare_tls_start(&c, &out), FLARE_ERR_NOMEM);
    assert_int_equal(flare_tls_recv(&c, NULL, 0, &out, &out), FLARE_ERR_STATE);
    flare_tls_free(&c);
    flare_buf_free(&out);
}

static void test_api_errors(void **state)
{
    (void)state;
    flare_privkey id;
    uint8_t k[32] = {1};
    assert_int_equal(flare_privkey_from_seed(&id, k), 0);
    flare_tls t;
    flare_rng rng = flare_prng_rng(&prng);
    flare_tls_settings st = {0};
    /* Zeroed settings (no struct_size) are refused, not taken as defaults. */
    st.identity = &id;
    st.unix_now = NOW;
    st.max_plaintext_buffer = 4096;
    assert_int_equal(flare_tls_init(&t, &st, NULL, rng), FLARE_ERR_INVALID_ARG);
    st = mk(&id, 1, NULL, NULL, 0, 0);
    assert_int_equal(st.max_plaintext_buffer, FLARE_TLS_DEFAULT_MAX_PLAINTEXT_BUFFER);
    st.max_plaintext_buffer = 0;
    assert_int_equal(flare_tls_init(&t, &st, NULL, rng), FLARE_ERR_INVALID_ARG);
    st.max_plaintext_buffer = FLARE_TLS_DEFAULT_MAX_PLAINTEXT_BUFFER;
    assert_int_equal(flare_tls_init(NULL, &st, NULL, rng), FLARE_ERR_INVALID_ARG);
    assert_int_equal(flare_tls_init(&t, NULL, NULL, rng), FLARE_ERR_INVALID_ARG);
    st.unix_now = 0;
    assert_int_equal(flare_tls_init(&t, &st, NULL, rng), FLARE_ERR_INVALID_ARG);
    st.unix_now = NOW;
    st.identity = NULL;
    assert_int_equal(flare_tls_init(&t, &st, NULL, rng), FLARE_ERR_INVALID_ARG);
    st.identity = &id;
    static const char *const empty[] = {""};
    st.muxers = empty;
    st.nmuxers = 1;
    assert_int_equal(flare_tls_init(&t, &st, NULL, rng), FLARE_ERR_INVALID_ARG);
    st.nmuxers = FLARE_TLS_MAX_MUXERS + 1;
    assert_int_equal(flare_tls_init(&t, &st, NULL, rng), FLARE_ERR_INVALID_ARG);
    st.muxers = NULL;
    st.nmuxers = 0;
    assert_int_equal(flare_tls_init(&t, &st, NULL, rng), 0);
    flare_buf out, plain;
    flare_buf_init(&out, NULL);
    flare_buf_init(&plain, NULL);
    assert_int_equal(flare_tls_recv(&t, NULL, 0, &out, &plain), FLARE_ERR_STATE);
    assert_int_equal(flare_tls_encrypt(&t, k, 1, &out), FLARE_ERR_STATE);
    assert_int_equal(flare_tls_close(&t, &out), FLARE_ERR_STATE);
    assert_null(flare_tls_remote_peerid(&t));
    assert_null(flare_tls_selected_muxer(&t));
    assert_int_equal(flare_tls_start(&t, &out), 0);
    assert_int_equal(flare_tls_start(&t, &out), FLARE_ERR_STATE);
    assert_string_equal(flare_tls_error_detail(&t), "");
    flare_tls_free(&t);
    flare_tls_free(&t);
    flare_buf_free(&out);
    flare_buf_free(&plain);
}

int main(void)
{
    flare_prng_seed(&prng, 42);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handshake_and_data),
        cmocka_unit_test(test_data_with_finished),
        cmocka_unit_test(test_alpn_muxers),
        cmocka_unit_test(test_wrong_peer_id),
        cmocka_unit_test(test_garbage_and_truncation),
        cmocka_unit_test(test_backpressure),
        cmocka_unit_test(test_foreign_clients),
        cmocka_unit_test(test_api_errors),
        cmocka_unit_test(test_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
