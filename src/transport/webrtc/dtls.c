/* DTLS 1.2 endpoint over GnuTLS with in-memory datagram queues (dtls.h). */
#include "transport/webrtc/dtls.h"

#include <errno.h>
#include <gnutls/crypto.h>
#include <gnutls/dtls.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <string.h>

#include "core/mem.h"

#define RTO_INITIAL ((flare_tstamp)1000000000)
#define RTO_MAX     ((flare_tstamp)8000000000)
#define HS_TIMEOUT  ((flare_tstamp)20000000000)
/* Keeps GnuTLS's own real-clock timers out of the way of ours. */
#define GNUTLS_RETRANS_MS 600000u
#define GNUTLS_TOTAL_MS   1200000u

struct flare__dtls_cert {
    gnutls_x509_crt_t crt;
    gnutls_x509_privkey_t key;
    gnutls_certificate_credentials_t cred;
    uint8_t fp[FLARE__DTLS_FP_LEN];
};

/* Datagrams as [u16 length][bytes] records in one buffer. */
typedef struct dq {
    flare_buf b;
    size_t n;
} dq;

struct flare__dtls {
    const flare_mem *mem;
    gnutls_session_t s;
    flare__dtls_state state;
    int err;
    int have_expected;
    uint8_t expected[FLARE__DTLS_FP_LEN];
    uint8_t peer_fp[FLARE__DTLS_FP_LEN];
    int have_peer_fp;
    /* The datagram GnuTLS pulls next (one at a time). */
    const uint8_t *in;
    size_t in_len;
    dq out, app;
    /* The last flight sent, for replays on the caller's clock. */
    dq flight;
    int new_flight; /* input arrived: the next push starts a flight */
    flare_tstamp rto, rtx_at, hs_deadline;
};

static int dq_push(dq *q, const uint8_t *p, size_t len)
{
    if (q->n >= FLARE__DTLS_MAX_QUEUE || len > 0xffff)
        return FLARE_ERR_LIMIT;
    uint8_t h[2] = {(uint8_t)(len >> 8), (uint8_t)len};
    if (flare_buf_reserve(&q->b, len + 2) != 0)
        return FLARE_ERR_NOMEM;
    flare_buf_append(&q->b, h, 2);
    flare_buf_append(&q->b, p, len);
    q->n++;
    return 0;
}

static long dq_pop(dq *q, uint8_t *dst, size_t cap)
{
    if (q->n == 0)
        return FLARE_ERR_AGAIN;
    size_t len = ((size_t)q->b.base[0] << 8) | q->b.base[1];
    if (len > cap)
        return FLARE_ERR_BUFFER_TOO_SMALL;
    memcpy(dst, q->b.base + 2, len);
    flare_buf_consume(&q->b, len + 2);
    q->n--;
    return (long)len;
}

static void dq_clear(dq *q)
{
    flare_buf_reset(&q->b);
    q->n = 0;
}

/* ---- certificates ------------------------------------------------------------------- */

static int cert_finish(flare__dtls_cert *c)
{
    gnutls_datum_t der = {0};
    if (gnutls_x509_crt_export2(c->crt, GNUTLS_X509_FMT_DER, &der) < 0)
        return FLARE_ERR_CRYPTO;
    int rc = gnutls_hash_fast(GNUTLS_DIG_SHA256, der.data, der.size, c->fp);
    gnutls_free(der.data);
    if (rc < 0)
        return FLARE_ERR_CRYPTO;
    if (gnutls_certificate_allocate_credentials(&c->cred) < 0)
        return FLARE_ERR_NOMEM;
    if (gnutls_certificate_set_x509_key(c->cred, &c->crt, 1, c->key) < 0)
        return FLARE_ERR_CRYPTO;
    return 0;
}

static flare__dtls_cert *cert_alloc(void)
{
    flare__dtls_cert *c = flare__calloc(NULL, 1, sizeof(*c));
    if (c == NULL)
        return NULL;
    if (gnutls_x509_crt_init(&c->crt) < 0) {
        flare__free(NULL, c);
        return NULL;
    }
    if (gnutls_x509_privkey_init(&c->key) < 0) {
        gnutls_x509_crt_deinit(c->crt);
        flare__free(NULL, c);
        return NULL;
    }
    return c;
}

int flare__dtls_cert_generate(flare__dtls_cert **out, flare_rng rng, int64_t not_before,
                              int64_t not_after)
{
    if (out == NULL || rng.fn == NULL || not_after <= not_before)
        return FLARE_ERR_INVALID_ARG;
    flare__dtls_cert *c = cert_alloc();
    if (c == NULL)
        return FLARE_ERR_NOMEM;
    uint8_t serial[FLARE__DTLS_CERT_RNG_LEN];
    rng.fn(serial, sizeof(serial), rng.user);
    serial[0] &= 0x7f; /* a positive INTEGER */
    serial[0] |= 0x01; /* and a minimal one */
    int rc = FLARE_ERR_CRYPTO;
    if (gnutls_x509_privkey_generate(c->key, GNUTLS_PK_ECDSA,
                                     GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0) < 0 ||
        gnutls_x509_crt_set_version(c->crt, 3) < 0 ||
        gnutls_x509_crt_set_serial(c->crt, serial, sizeof(serial)) < 0 ||
        gnutls_x509_crt_set_dn(c->crt, "CN=flare", NULL) < 0 ||
        gnutls_x509_crt_set_activation_time(c->crt, (time_t)not_before) < 0 ||
        gnutls_x509_crt_set_expiration_time(c->crt, (time_t)not_after) < 0 ||
        gnutls_x509_crt_set_key(c->crt, c->key) < 0 ||
        gnutls_x509_crt_sign2(c->crt, c->crt, c->key, GNUTLS_DIG_SHA256, 0) < 0 ||
        (rc = cert_finish(c)) != 0) {
        flare__dtls_cert_del(c);
        return rc;
    }
    *out = c;
    return 0;
}

int flare__dtls_cert_export(const flare__dtls_cert *c, flare_buf *pem)
{
    gnutls_datum_t k = {0}, x = {0};
    int rc = FLARE_ERR_CRYPTO;
    if (gnutls_x509_privkey_export2(c->key, GNUTLS_X509_FMT_PEM, &k) >= 0 &&
        gnutls_x509_crt_export2(c->crt, GNUTLS_X509_FMT_PEM, &x) >= 0) {
        rc = flare_buf_append(pem, k.data, k.size);
        if (rc == 0)
            rc = flare_buf_append(pem, x.data, x.size);
    }
    if (k.data != NULL) {
        gnutls_memset(k.data, 0, k.size);
        gnutls_free(k.data);
    }
    gnutls_free(x.data);
    return rc;
}

int flare__dtls_cert_import(flare__dtls_cert **out, const uint8_t *pem, size_t len)
{
    if (out == NULL || pem == NULL || len == 0 || len > 65536)
        return FLARE_ERR_INVALID_ARG;
    flare__dtls_cert *c = cert_alloc();
    if (c == NULL)
        return FLARE_ERR_NOMEM;
    gnutls_datum_t d = {(unsigned char *)pem, (unsigned)len};
    int rc = FLARE_ERR_MALFORMED;
    if (gnutls_x509_privkey_import(c->key, &d, GNUTLS_X509_FMT_PEM) < 0 ||
        gnutls_x509_crt_import(c->crt, &d, GNUTLS_X509_FMT_PEM) < 0 ||
        gnutls_x509_privkey_get_pk_algorithm(c->key) != GNUTLS_PK_ECDSA ||
        (rc = cert_finish(c)) != 0) {
        flare__dtls_cert_del(c);
        return rc;
    }
    *out = c;
    return 0;
}

const uint8_t *flare__dtls_cert_fingerprint(const flare__dtls_cert *c)
{
    return c->fp;
}

void flare__dtls_cert_del(flare__dtls_cert *c)
{
    if (c == NULL)
        return;
    if (c->cred != NULL)
        gnutls_certificate_free_credentials(c->cred);
    gnutls_x509_crt_deinit(c->crt);
    gnutls_x509_privkey_deinit(c->key);
    flare__free(NULL, c);
}

/* ---- GnuTLS transport functions ---------------------------------------------------- */

static ssize_t push_fn(gnutls_transport_ptr_t p, const void *data, size_t len)
{
    flare__dtls *d = p;
    if (d->state == FLARE__DTLS_HANDSHAKING) {
        if (d->new_flight) {
            dq_clear(&d->flight);
            d->new_flight = 0;
        }
        (void)dq_push(&d->flight, data, len);
    }
    if (dq_push(&d->out, data, len) != 0) {
        /* A datagram network may lose it; DTLS recovers. */
        return (ssize_t)len;
    }
    return (ssize_t)len;
}

static ssize_t pull_fn(gnutls_transport_ptr_t p, void *data, size_t len)
{
    flare__dtls *d = p;
    if (d->in == NULL) {
        gnutls_transport_set_errno(d->s, EAGAIN);
        return -1;
    }
    size_t n = d->in_len < len ? d->in_len : len;
    memcpy(data, d->in, n);
    d->in = NULL;
    d->in_len = 0;
    return (ssize_t)n;
}

static int pull_timeout_fn(gnutls_transport_ptr_t p, unsigned int ms)
{
    flare__dtls *d = p;
    return d->in != NULL ? 1 : 0;
}

static int verify_fn(gnutls_session_t s)
{
    flare__dtls *d = gnutls_session_get_ptr(s);
    unsigned n = 0;
    const gnutls_datum_t *certs = gnutls_certificate_get_peers(s, &n);
    if (certs == NULL || n == 0)
        return -1;
    if (gnutls_hash_fast(GNUTLS_DIG_SHA256, certs[0].data, certs[0].size, d->peer_fp) < 0)
        return -1;
    if (d->have_expected && memcmp(d->peer_fp, d->expected, FLARE__DTLS_FP_LEN) != 0) {
        d->err = FLARE_ERR_PEER_ID_MISMATCH;
        return -1;
    }
    d->have_peer_fp = 1;
    return 0;
}

/* ---- endpoint ------------------------------------------------------------------------ */

static void fail(flare__dtls *d, int err)
{
    if (d->state == FLARE__DTLS_FAILED || d->state == FLARE__DTLS_CLOSED)
        return;
    d->state = FLARE__DTLS_FAILED;
    if (d->err == 0)
        d->err = err;
    dq_clear(&d->flight);
}

static void handshake_step(flare__dtls *d, flare_tstamp now)
{
    int rc = gnutls_handshake(d->s);
    if (rc == GNUTLS_E_SUCCESS) {
        if (!d->have_peer_fp) {
            fail(d, FLARE_ERR_PROTO);
            return;
        }
        d->state = FLARE__DTLS_CONNECTED;
        dq_clear(&d->flight);
        return;
    }
    if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED || !gnutls_error_is_fatal(rc)) {
        if (d->flight.n > 0 && d->new_flight == 0)
            d->rtx_at = now + d->rto;
        return;
    }
    fail(d, rc == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR || rc == GNUTLS_E_CERTIFICATE_ERROR
                ? FLARE_ERR_PEER_ID_MISMATCH
                : FLARE_ERR_CRYPTO);
}

int flare__dtls_new(flare__dtls **out, const flare__dtls_cfg *cfg, flare_tstamp now)
{
    if (out == NULL || cfg == NULL || cfg->cert == NULL)
        return FLARE_ERR_INVALID_ARG;
    flare__dtls *d = flare__calloc(cfg->mem, 1, sizeof(*d));
    if (d == NULL)
        return FLARE_ERR_NOMEM;
    d->mem = cfg->mem;
    flare_buf_init(&d->out.b, cfg->mem);
    flare_buf_init(&d->app.b, cfg->mem);
    flare_buf_init(&d->flight.b, cfg->mem);
    if (cfg->expected_fp != NULL) {
        d->have_expected = 1;
        memcpy(d->expected, cfg->expected_fp, FLARE__DTLS_FP_LEN);
    }
    unsigned flags =
        (cfg->is_client ? GNUTLS_CLIENT : GNUTLS_SERVER) | GNUTLS_DATAGRAM | GNUTLS_NONBLOCK;
    if (gnutls_init(&d->s, flags) < 0) {
        flare__free(d->mem, d);
        return FLARE_ERR_NOMEM;
    }
    gnutls_session_set_ptr(d->s, d);
    if (gnutls_priority_set_direct(d->s, "NORMAL:-VERS-ALL:+VERS-DTLS1.2", NULL) < 0 ||
        gnutls_credentials_set(d->s, GNUTLS_CRD_CERTIFICATE, cfg->cert->cred) < 0) {
        flare__dtls_del(d);
        return FLARE_ERR_CRYPTO;
    }
    if (!cfg->is_client)
        gnutls_certificate_server_set_request(d->s, GNUTLS_CERT_REQUIRE);
    gnutls_session_set_verify_function(d->s, verify_fn);
    gnutls_transport_set_ptr(d->s, d);
    gnutls_transport_set_push_function(d->s, push_fn);
    gnutls_transport_set_pull_function(d->s, pull_fn);
    gnutls_transport_set_pull_timeout_function(d->s, pull_timeout_fn);
    gnutls_dtls_set_mtu(d->s, (unsigned)(cfg->mtu ? cfg->mtu : FLARE__DTLS_MTU));
    gnutls_dtls_set_timeouts(d->s, GNUTLS_RETRANS_MS, GNUTLS_TOTAL_MS);
    d->state = FLARE__DTLS_HANDSHAKING;
    d->rto = RTO_INITIAL;
    d->rtx_at = FLARE_TSTAMP_NEVER;
    d->hs_deadline = now + (cfg->handshake_timeout ? cfg->handshake_timeout : HS_TIMEOUT);
    if (cfg->is_client)
        handshake_step(d, now);
    *out = d;
    return 0;
}

void flare__dtls_del(flare__dtls *d)
{
    if (d == NULL)
        return;
    gnutls_deinit(d->s);
    flare_buf_free(&d->out.b);
    flare_buf_free(&d->app.b);
    flare_buf_free(&d->flight.b);
    flare__free(d->mem, d);
}

static void read_records(flare__dtls *d)
{
    uint8_t buf[FLARE__DTLS_MAX_DGRAM];
    for (;;) {
        ssize_t n = gnutls_record_recv(d->s, buf, sizeof(buf));
        if (n > 0) {
            (void)dq_push(&d->app, buf, (size_t)n); /* a full queue drops: SCTP resends */
            continue;
        }
        if (n == 0) {
            d->state = FLARE__DTLS_CLOSED;
            return;
        }
        if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
            return;
        if (gnutls_error_is_fatal((int)n)) {
            fail(d, FLARE_ERR_CRYPTO);
            return;
        }
        /* A bad record (MAC, replay, rehandshake): ignored, as DTLS does. */
        if (d->in == NULL)
            return;
    }
}

int flare__dtls_input(flare__dtls *d, const uint8_t *pkt, size_t len, flare_tstamp now)
{
    if (d->state != FLARE__DTLS_HANDSHAKING && d->state != FLARE__DTLS_CONNECTED)
        return d->state == FLARE__DTLS_FAILED ? d->err : 0;
    if (len == 0 || len > FLARE__DTLS_MAX_DGRAM)
        return 0;
    d->in = pkt;
    d->in_len = len;
    if (d->state == FLARE__DTLS_HANDSHAKING) {
        d->new_flight = 1;
        handshake_step(d, now);
        if (d->state == FLARE__DTLS_HANDSHAKING && d->new_flight == 0)
            d->rto = RTO_INITIAL; /* the peer answered: a fresh flight */
    }
    if (d->state == FLARE__DTLS_CONNECTED)
        read_records(d);
    d->in = NULL;
    d->in_len = 0;
    return d->state == FLARE__DTLS_FAILED ? d->err : 0;
}

int flare__dtls_send(flare__dtls *d, const uint8_t *data, size_t len)
{
    if (d->state != FLARE__DTLS_CONNECTED)
        return FLARE_ERR_STATE;
    if (len > flare__dtls_data_mtu(d))
        return FLARE_ERR_TOO_LARGE;
    if (d->out.n >= FLARE__DTLS_MAX_QUEUE)
        return FLARE_ERR_LIMIT;
    ssize_t n = gnutls_record_send(d->s, data, len);
    if (n < 0) {
        if (gnutls_error_is_fatal((int)n)) {
            fail(d, FLARE_ERR_CRYPTO);
            return d->err;
        }
        return FLARE_ERR_LIMIT;
    }
    return 0;
}

long flare__dtls_read(flare__dtls *d, uint8_t *dst, size_t cap)
{
    return dq_pop(&d->app, dst, cap);
}

long flare__dtls_pop_out(flare__dtls *d, uint8_t *dst, size_t cap)
{
    return dq_pop(&d->out, dst, cap);
}

size_t flare__dtls_data_mtu(const flare__dtls *d)
{
    return gnutls_dtls_get_data_mtu(d->s);
}

flare_tstamp flare__dtls_expiry(const flare__dtls *d)
{
    if (d->state != FLARE__DTLS_HANDSHAKING)
        return FLARE_TSTAMP_NEVER;
    return d->rtx_at < d->hs_deadline ? d->rtx_at : d->hs_deadline;
}

int flare__dtls_handle_expiry(flare__dtls *d, flare_tstamp now)
{
    if (d->state != FLARE__DTLS_HANDSHAKING)
        return 0;
    if (now >= d->hs_deadline) {
        fail(d, FLARE_ERR_TIMEOUT);
        return d->err;
    }
    if (now < d->rtx_at)
        return 0;
    /* Replay the last flight as it was sent (RFC 6347 4.2.4). */
    const uint8_t *p = d->flight.b.base;
    for (size_t i = 0; i < d->flight.n; i++) {
        size_t len = ((size_t)p[0] << 8) | p[1];
        (void)dq_push(&d->out, p + 2, len);
        p += 2 + len;
    }
    d->rto = d->rto * 2 > RTO_MAX ? RTO_MAX : d->rto * 2;
    d->rtx_at = now + d->rto;
    return 0;
}

void flare__dtls_close(flare__dtls *d)
{
    if (d->state == FLARE__DTLS_CONNECTED)
        (void)gnutls_bye(d->s, GNUTLS_SHUT_WR);
    if (d->state == FLARE__DTLS_CONNECTED || d->state == FLARE__DTLS_HANDSHAKING)
        d->state = FLARE__DTLS_CLOSED;
}

flare__dtls_state flare__dtls_get_state(const flare__dtls *d)
{
    return d->state;
}

int flare__dtls_error(const flare__dtls *d)
{
    return d->err;
}

const uint8_t *flare__dtls_peer_fingerprint(const flare__dtls *d)
{
    return d->state == FLARE__DTLS_CONNECTED && d->have_peer_fp ? d->peer_fp : NULL;
}
