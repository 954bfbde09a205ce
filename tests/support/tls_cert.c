/* Test certificates made with GnuTLS (see tls_cert.h). */
#include "support/tls_cert.h"

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int write_file(const char *path, const gnutls_datum_t *d)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t n = fwrite(d->data, 1, d->size, f);
    return fclose(f) == 0 && n == d->size ? 0 : -1;
}

static int new_key(gnutls_x509_privkey_t *k)
{
    if (gnutls_x509_privkey_init(k) < 0)
        return -1;
    return gnutls_x509_privkey_generate(*k, GNUTLS_PK_ECDSA,
                                        GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0) < 0
               ? -1
               : 0;
}

/* A certificate for key, signed by (ca, ca_key) or by itself. */
static int new_cert(gnutls_x509_crt_t *crt, gnutls_x509_privkey_t key, const char *cn, int is_ca,
                    gnutls_x509_crt_t ca, gnutls_x509_privkey_t ca_key, unsigned serial)
{
    time_t now = time(NULL);
    unsigned char ser[4] = {0, 0, (unsigned char)(serial >> 8), (unsigned char)serial};
    int rv = gnutls_x509_crt_init(crt);
    if (rv == 0)
        rv = gnutls_x509_crt_set_version(*crt, 3);
    if (rv == 0)
        rv = gnutls_x509_crt_set_serial(*crt, ser, sizeof(ser));
    if (rv == 0)
        rv = gnutls_x509_crt_set_activation_time(*crt, now - 3600);
    if (rv == 0)
        rv = gnutls_x509_crt_set_expiration_time(*crt, now + 86400);
    if (rv == 0)
        rv = gnutls_x509_crt_set_dn_by_oid(*crt, GNUTLS_OID_X520_COMMON_NAME, 0, cn, strlen(cn));
    if (rv == 0)
        rv = gnutls_x509_crt_set_key(*crt, key);
    if (rv == 0)
        rv = gnutls_x509_crt_set_basic_constraints(*crt, is_ca, -1);
    if (rv == 0 && is_ca)
        rv = gnutls_x509_crt_set_key_usage(*crt, GNUTLS_KEY_KEY_CERT_SIGN | GNUTLS_KEY_CRL_SIGN);
    if (rv == 0 && !is_ca) {
        rv = gnutls_x509_crt_set_key_usage(*crt, GNUTLS_KEY_DIGITAL_SIGNATURE);
        if (rv == 0)
            rv = gnutls_x509_crt_set_key_purpose_oid(*crt, GNUTLS_KP_TLS_WWW_SERVER, 0);
        if (rv == 0)
            rv = gnutls_x509_crt_set_subject_alt_name(*crt, GNUTLS_SAN_DNSNAME, "localhost", 9,
                                                      GNUTLS_FSAN_APPEND);
        unsigned char v4[4] = {127, 0, 0, 1}, v6[16] = {0};
        v6[15] = 1;
        if (rv == 0)
            rv = gnutls_x509_crt_set_subject_alt_name(*crt, GNUTLS_SAN_IPADDRESS, v4, 4,
                                                      GNUTLS_FSAN_APPEND);
        if (rv == 0)
            rv = gnutls_x509_crt_set_subject_alt_name(*crt, GNUTLS_SAN_IPADDRESS, v6, 16,
                                                      GNUTLS_FSAN_APPEND);
    }
    if (rv == 0)
        rv = gnutls_x509_crt_sign2(*crt, ca ? ca : *crt, ca ? ca_key : key, GNUTLS_DIG_SHA256, 0);
    return rv < 0 ? -1 : 0;
}

static int export_crt(gnutls_x509_crt_t c, const char *path)
{
    gnutls_datum_t d;
    if (gnutls_x509_crt_export2(c, GNUTLS_X509_FMT_PEM, &d) < 0)
        return -1;
    int rv = write_file(path, &d);
    gnutls_free(d.data);
    return rv;
}

int flare_test_certs_make(flare_test_certs *c)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->dir, sizeof(c->dir), "/tmp/flare-certs-XXXXXX");
    if (!mkdtemp(c->dir))
        return -1;
    snprintf(c->ca, sizeof(c->ca), "%s/ca.pem", c->dir);
    snprintf(c->cert, sizeof(c->cert), "%s/cert.pem", c->dir);
    snprintf(c->key, sizeof(c->key), "%s/key.pem", c->dir);
    snprintf(c->other_ca, sizeof(c->other_ca), "%s/other-ca.pem", c->dir);
    gnutls_x509_privkey_t cak = NULL, k = NULL, ok = NULL;
    gnutls_x509_crt_t ca = NULL, crt = NULL, oca = NULL;
    int rv = -1;
    if (new_key(&cak) || new_key(&k) || new_key(&ok))
        goto out;
    if (new_cert(&ca, cak, "flare test CA", 1, NULL, NULL, 1) ||
        new_cert(&crt, k, "localhost", 0, ca, cak, 2) ||
        new_cert(&oca, ok, "another CA", 1, NULL, NULL, 3))
        goto out;
    gnutls_datum_t d;
    if (gnutls_x509_privkey_export2(k, GNUTLS_X509_FMT_PEM, &d) < 0)
        goto out;
    rv = write_file(c->key, &d);
    gnutls_free(d.data);
    if (rv == 0)
        rv = export_crt(ca, c->ca);
    if (rv == 0)
        rv = export_crt(crt, c->cert);
    if (rv == 0)
        rv = export_crt(oca, c->other_ca);
out:
    if (ca)
        gnutls_x509_crt_deinit(ca);
    if (crt)
        gnutls_x509_crt_deinit(crt);
    if (oca)
        gnutls_x509_crt_deinit(oca);
    if (cak)
        gnutls_x509_privkey_deinit(cak);
    if (k)
        gnutls_x509_privkey_deinit(k);
    if (ok)
        gnutls_x509_privkey_deinit(ok);
    return rv;
}

void flare_test_certs_remove(flare_test_certs *c)
{
    unlink(c->ca);
    unlink(c->cert);
    unlink(c->key);
    unlink(c->other_ca);
    rmdir(c->dir);
}
