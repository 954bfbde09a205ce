/* Fuzzes a QUIC endpoint's datagram input (header parsing, CID dispatch,
 * Initial acceptance, version negotiation, stateless resets, and ngtcp2 and
 * GnuTLS behind them for what decrypts).
 *
 * Input: byte 0 = config (bit 0 tiny limits, bits 1-3 source port choice),
 * then records of [length: 2 bytes big-endian][datagram]; the clock moves
 * 10 ms per record and timers run. A seed holds a real client Initial. */
#include <gnutls/x509.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "transport/quic/quic.h"

static gnutls_certificate_credentials_t cred;

static gnutls_certificate_credentials_t make_cred(void)
{
    gnutls_x509_privkey_t key;
    gnutls_x509_crt_t crt;
    gnutls_certificate_credentials_t c;
    if (gnutls_x509_privkey_init(&key) != 0 ||
        gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA,
                                     GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0) != 0 ||
        gnutls_x509_crt_init(&crt) != 0)
        abort();
    uint8_t serial[4] = {1, 2, 3, 4};
    gnutls_x509_crt_set_version(crt, 3);
    gnutls_x509_crt_set_serial(crt, serial, sizeof(serial));
    gnutls_x509_crt_set_activation_time(crt, 1000000000);
    gnutls_x509_crt_set_expiration_time(crt, 4000000000);
    gnutls_x509_crt_set_key(crt, key);
    if (gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0) != 0 ||
        gnutls_certificate_allocate_credentials(&c) != 0 ||
        gnutls_certificate_set_x509_key(c, &crt, 1, key) != 0)
        abort();
    gnutls_x509_crt_deinit(crt);
    gnutls_x509_privkey_deinit(key);
    return c;
}

static size_t sent_bytes;

static void on_send(void *user, const flare_ipaddr *to, const uint8_t *data, size_t len)
{
    sent_bytes += len;
}

static int on_verify(void *user, flare__quic_conn *qc, gnutls_session_t tls)
{
    return 0;
}

static void on_closed(void *user, flare__quic_conn *qc, int err, uint64_t code) {}

static void on_data(void *user, flare__quic_stream *st, const uint8_t *data, size_t len, int fin)
{
    flare__quic_stream_consumed(st, len);
    if (len)
        (void)flare__quic_stream_write(st, data, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (!cred)
        cred = make_cred();
    flare_prng prng;
    flare_prng_seed(&prng, 1);
    flare__quic_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    flare__quic_settings_default(&cfg.settings);
    if (data[0] & 1) {
        cfg.settings.max_conns = 2;
        cfg.settings.max_handshakes = 1;
        cfg.settings.max_streams_in = 2;
    }
    cfg.cbs.send = on_send;
    cfg.cbs.verify = on_verify;
    cfg.cbs.closed = on_closed;
    cfg.cbs.stream_data = on_data;
    cfg.cred = cred;
    cfg.rng = flare_prng_rng(&prng);
    flare_ipaddr_v4(&cfg.local, 10, 0, 0, 2, 4001);
    flare__quic_ep *ep;
    if (flare__quic_ep_new(&cfg, &ep) != 0)
        abort();
    flare_tstamp now = 1000 * FLARE_NS_PER_S;
    flare_ipaddr from;
    flare_ipaddr_v4(&from, 10, 0, 0, 1, 4000);
    size_t off = 1;
    unsigned k = 0;
    while (off + 2 <= size) {
        size_t len = (size_t)data[off] << 8 | data[off + 1];
        off += 2;
        if (len > size - off)
            len = size - off;
        from.port = (uint16_t)(4000 + ((data[0] >> 1) & 7 & k++));
        flare__quic_ep_input(ep, &from, data + off, len, now);
        off += len;
        now += 10 * FLARE_NS_PER_MS;
        if (flare__quic_ep_expiry(ep) <= now)
            flare__quic_ep_timeout(ep, now);
    }
    now += 60 * FLARE_NS_PER_S;
    flare__quic_ep_timeout(ep, now);
    flare__quic_ep_del(ep);
    return 0;
}
