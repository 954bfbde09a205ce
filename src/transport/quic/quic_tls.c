/*
 * transport/quic/quic_tls.c - the libp2p identity on a QUIC endpoint: our
 * certificate (security/tls/tls_cert.h) as GnuTLS credentials, and the
 * stateless-reset secret derived from the host key so it survives restarts.
 */
#include <sodium.h>
#include <string.h>

#include "security/tls/tls_cert.h"
#include "transport/quic/quic.h"

int flare__quic_tls_cred(const flare_privkey *id, uint64_t unix_now, flare_rng rng,
                         gnutls_certificate_credentials_t *out)
{
    *out = NULL;
    flare__tls_cert c;
    int rv = flare__tls_cert_make(&c, id, unix_now, rng);
    if (rv != 0)
        return rv;
    gnutls_certificate_credentials_t cred;
    if (gnutls_certificate_allocate_credentials(&cred) != 0) {
        flare__tls_cert_free(&c);
        return FLARE_ERR_NOMEM;
    }
    rv = flare__tls_cert_set_credentials(&c, cred);
    flare__tls_cert_free(&c);
    if (rv != 0) {
        gnutls_certificate_free_credentials(cred);
        return rv;
    }
    *out = cred;
    return 0;
}

int flare__quic_reset_secret(const flare_privkey *id, uint8_t out[32])
{
    uint8_t enc[512];
    int n = flare_privkey_encode(id, enc, sizeof(enc));
    if (n < 0)
        return n;
    static const char ctx[] = "flare quic stateless reset v1";
    uint8_t key[crypto_generichash_KEYBYTES];
    crypto_generichash(key, sizeof(key), (const uint8_t *)ctx, sizeof(ctx) - 1, NULL, 0);
    crypto_generichash(out, 32, enc, (size_t)n, key, sizeof(key));
    sodium_memzero(enc, sizeof(enc));
    return 0;
}
