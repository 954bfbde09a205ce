/* Test certificates for TLS (wss): a CA and a server certificate it signs,
 * made with GnuTLS at test time and written as PEM files. */
#ifndef FLARE_TEST_TLS_CERT_H
#define FLARE_TEST_TLS_CERT_H

typedef struct flare_test_certs {
    char dir[256];
    char ca[300], cert[300], key[300];
    char other_ca[300]; /* a CA that signed nothing of ours */
} flare_test_certs;

/* Makes the files in a new temporary directory; the server certificate
 * names "localhost", 127.0.0.1 and ::1. Returns 0 or -1. */
int flare_test_certs_make(flare_test_certs *c);
/* Removes the files and the directory. */
void flare_test_certs_remove(flare_test_certs *c);

#endif
