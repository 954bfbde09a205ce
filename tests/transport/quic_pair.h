/*
 * quic_pair.h - two or more QUIC endpoints exchanging datagrams in memory,
 * with a virtual clock, loss, reordering and address rewriting (NAT
 * rebinding). Header-only, shared by the QUIC core tests.
 */
#ifndef FLARE_TEST_QUIC_PAIR_H
#define FLARE_TEST_QUIC_PAIR_H

#include <gnutls/x509.h>
#include <stdlib.h>

#include "support/test.h"
#include "transport/quic/quic.h"

#define QP_MAX_EPS  8
#define QP_MAX_PKTS 4096

typedef struct qp_pkt {
    flare_ipaddr from, to;
    size_t len;
    uint8_t data[FLARE__QUIC_MAX_DGRAM];
} qp_pkt;

typedef struct qp_net qp_net;

/* One endpoint and what its callbacks saw. */
typedef struct qp_ep qp_ep;
struct qp_ep {
    qp_net *net;
    flare__quic_ep *ep;
    flare_ipaddr addr; /* its address */
    flare_ipaddr seen; /* what the others see as its source (NAT) */
    gnutls_certificate_credentials_t cred;
    int refuse; /* verify returns this */
    /* Optional: replaces the default check (one certificate, then refuse). */
    int (*verify)(struct qp_ep *e, gnutls_session_t tls);
    void *ctx;
    int verified, established, closed, closed_err;
    uint64_t closed_code;
    flare__quic_conn *conn; /* the last connection established or accepted */
    flare__quic_stream *stream;
    int echo; /* echo every stream's data back, FIN after FIN */
    uint8_t *rx;
    size_t rx_len, rx_cap;
    int rx_fin, resets, stream_closes, writable;
};

struct qp_net {
    flare_prng prng;
    flare_tstamp now;
    qp_ep eps[QP_MAX_EPS];
    int neps;
    qp_pkt *q; /* in flight */
    size_t nq;
    unsigned loss_pct, reorder;
    int blackhole; /* drop everything */
    size_t sent;
};

static inline void qp_rand(uint8_t *dst, size_t len, void *user)
{
    flare_prng *p = user;
    for (size_t i = 0; i < len; i++)
        dst[i] = (uint8_t)flare_prng_next(p);
}

static inline gnutls_certificate_credentials_t qp_make_cred(void)
{
    gnutls_x509_privkey_t key;
    gnutls_x509_crt_t crt;
    gnutls_certificate_credentials_t cred;
    assert_int_equal(gnutls_x509_privkey_init(&key), 0);
    assert_int_equal(gnutls_x509_privkey_generate(
                         key, GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0),
                     0);
    assert_int_equal(gnutls_x509_crt_init(&crt), 0);
    gnutls_x509_crt_set_version(crt, 3);
    uint8_t serial[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    gnutls_x509_crt_set_serial(crt, serial, sizeof(serial));
    gnutls_x509_crt_set_activation_time(crt, 1000000000);
    gnutls_x509_crt_set_expiration_time(crt, 4000000000);
    gnutls_x509_crt_set_key(crt, key);
    assert_int_equal(gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0), 0);
    assert_int_equal(gnutls_certificate_allocate_credentials(&cred), 0);
    assert_int_equal(gnutls_certificate_set_x509_key(cred, &crt, 1, key), 0);
    gnutls_x509_crt_deinit(crt);
    gnutls_x509_privkey_deinit(key);
    return cred;
}

static inline void qp_cb_send(void *user, const flare_ipaddr *to, const uint8_t *data, size_t len)
{
    qp_ep *e = user;
    qp_net *n = e->net;
    n->sent++;
    if (n->nq >= QP_MAX_PKTS || len > FLARE__QUIC_MAX_DGRAM)
        return;
    qp_pkt *p = &n->q[n->nq++];
    p->from = e->seen;
    p->to = *to;
    p->len = len;
    memcpy(p->data, data, len);
}

static inline int qp_cb_verify(void *user, flare__quic_conn *qc, gnutls_session_t tls)
{
    qp_ep *e = user;
    if (e->verify)
        return e->verify(e, tls);
    unsigned n = 0;
    const gnutls_datum_t *certs = gnutls_certificate_get_peers(tls, &n);
    if (!certs || n != 1)
        return FLARE_ERR_PROTO;
    e->verified++;
    return e->refuse;
}

static inline void qp_cb_established(void *user, flare__quic_conn *qc)
{
    qp_ep *e = user;
    e->established++;
    e->conn = qc;
}

static inline void qp_cb_closed(void *user, flare__quic_conn *qc, int err, uint64_t code)
{
    qp_ep *e = user;
    e->closed++;
    e->closed_err = err;
    e->closed_code = code;
    if (e->conn == qc) {
        e->conn = NULL;
        e->stream = NULL;
    }
}

static inline int qp_cb_stream_open(void *user, flare__quic_conn *qc, flare__quic_stream *st)
{
    qp_ep *e = user;
    e->stream = st;
    return 0;
}

static inline void qp_cb_stream_data(void *user, flare__quic_stream *st, const uint8_t *data,
                                     size_t len, int fin)
{
    qp_ep *e = user;
    if (e->rx_len + len > e->rx_cap) {
        e->rx_cap = (e->rx_len + len) * 2 + 1024;
        e->rx = realloc(e->rx, e->rx_cap);
        assert_non_null(e->rx);
    }
    memcpy(e->rx + e->rx_len, data, len);
    e->rx_len += len;
    if (e->echo && len)
        assert_true(flare__quic_stream_write(st, data, len) >= 0);
    if (fin) {
        e->rx_fin = 1;
        if (e->echo)
            flare__quic_stream_fin(st);
    }
    flare__quic_stream_consumed(st, len);
}

static inline void qp_cb_stream_reset(void *user, flare__quic_stream *st, uint64_t code, int stop)
{
    qp_ep *e = user;
    e->resets++;
}

static inline void qp_cb_stream_writable(void *user, flare__quic_stream *st)
{
    qp_ep *e = user;
    e->writable++;
}

static inline void qp_cb_stream_closed(void *user, flare__quic_stream *st)
{
    qp_ep *e = user;
    e->stream_closes++;
    if (e->stream == st)
        e->stream = NULL;
}

static inline void qp_config(qp_ep *e, flare__quic_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    flare__quic_settings_default(&cfg->settings);
    cfg->settings.idle_timeout = 5 * FLARE_NS_PER_S;
    cfg->settings.keepalive = 2 * FLARE_NS_PER_S;
    cfg->cbs = (flare__quic_cbs){
        .send = qp_cb_send,
        .verify = qp_cb_verify,
        .established = qp_cb_established,
        .closed = qp_cb_closed,
        .stream_open = qp_cb_stream_open,
        .stream_data = qp_cb_stream_data,
        .stream_reset = qp_cb_stream_reset,
        .stream_writable = qp_cb_stream_writable,
        .stream_closed = qp_cb_stream_closed,
    };
    cfg->user = e;
    cfg->cred = e->cred;
    cfg->rng = flare_prng_rng(&e->net->prng);
    cfg->local = e->addr;
}

/* Adds an endpoint at 10.0.0.<i+1>:<1000+i> with credentials cred (NULL: a
 * plain self-signed certificate); hook may adjust its config. */
static inline qp_ep *qp_add_cred(qp_net *n, void (*hook)(flare__quic_config *),
                                 gnutls_certificate_credentials_t cred)
{
    qp_ep *e = &n->eps[n->neps];
    memset(e, 0, sizeof(*e));
    e->net = n;
    flare_ipaddr_v4(&e->addr, 10, 0, 0, (uint8_t)(n->neps + 1), (uint16_t)(1000 + n->neps));
    e->seen = e->addr;
    e->cred = cred ? cred : qp_make_cred();
    flare__quic_config cfg;
    qp_config(e, &cfg);
    if (hook)
        hook(&cfg);
    assert_int_equal(flare__quic_ep_new(&cfg, &e->ep), 0);
    n->neps++;
    return e;
}

static inline qp_ep *qp_add(qp_net *n, void (*hook)(flare__quic_config *))
{
    return qp_add_cred(n, hook, NULL);
}

static inline void qp_init(qp_net *n, uint64_t seed)
{
    memset(n, 0, sizeof(*n));
    flare_prng_seed(&n->prng, seed);
    n->now = 1000 * FLARE_NS_PER_S;
    n->q = calloc(QP_MAX_PKTS, sizeof(qp_pkt));
    assert_non_null(n->q);
}

static inline void qp_free(qp_net *n)
{
    for (int i = 0; i < n->neps; i++) {
        flare__quic_ep_del(n->eps[i].ep);
        gnutls_certificate_free_credentials(n->eps[i].cred);
        free(n->eps[i].rx);
    }
    free(n->q);
}

/* Delivers what is in flight (with loss and reordering); returns how many. */
static inline size_t qp_deliver(qp_net *n)
{
    size_t count = n->nq;
    if (count == 0)
        return 0;
    qp_pkt *batch = malloc(count * sizeof(qp_pkt));
    assert_non_null(batch);
    memcpy(batch, n->q, count * sizeof(qp_pkt));
    n->nq = 0;
    if (n->reorder) {
        for (size_t i = count; i > 1; i--) {
            size_t j = flare_prng_next(&n->prng) % i;
            qp_pkt t = batch[i - 1];
            batch[i - 1] = batch[j];
            batch[j] = t;
        }
    }
    for (size_t i = 0; i < count; i++) {
        if (n->blackhole || (n->loss_pct && flare_prng_next(&n->prng) % 100 < n->loss_pct))
            continue;
        qp_ep *dst = NULL;
        for (int k = 0; k < n->neps; k++)
            if (flare_ipaddr_equal(&n->eps[k].seen, &batch[i].to) ||
                flare_ipaddr_equal(&n->eps[k].addr, &batch[i].to))
                dst = &n->eps[k];
        if (dst && dst->ep)
            flare__quic_ep_input(dst->ep, &batch[i].from, batch[i].data, batch[i].len, n->now);
    }
    free(batch);
    return count;
}

/* One step: deliver in-flight packets (1 ms later), or jump to the next timer. */
static inline void qp_step(qp_net *n)
{
    for (int i = 0; i < n->neps; i++)
        if (n->eps[i].ep && flare__quic_ep_dirty(n->eps[i].ep))
            flare__quic_ep_flush(n->eps[i].ep, n->now);
    if (n->nq) {
        n->now += FLARE_NS_PER_MS;
        qp_deliver(n);
        return;
    }
    flare_tstamp t = FLARE_TSTAMP_NEVER;
    for (int i = 0; i < n->neps; i++) {
        if (!n->eps[i].ep)
            continue;
        flare_tstamp e = flare__quic_ep_expiry(n->eps[i].ep);
        if (e < t)
            t = e;
    }
    if (t == FLARE_TSTAMP_NEVER)
        t = n->now + FLARE_NS_PER_S;
    if (t > n->now)
        n->now = t;
    for (int i = 0; i < n->neps; i++)
        if (n->eps[i].ep)
            flare__quic_ep_timeout(n->eps[i].ep, n->now);
}

/* Steps until cond(n) holds or the virtual clock passes limit ns from now. */
static inline int qp_run_until(qp_net *n, int (*cond)(qp_net *), flare_tstamp limit)
{
    flare_tstamp end = n->now + limit;
    while (!cond(n)) {
        if (n->now > end)
            return 0;
        qp_step(n);
    }
    return 1;
}

/* Runs for span ns of virtual time. */
static inline void qp_run_for(qp_net *n, flare_tstamp span)
{
    flare_tstamp end = n->now + span;
    while (n->now < end)
        qp_step(n);
}

#endif
