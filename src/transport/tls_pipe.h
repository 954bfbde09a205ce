/*
 * TLS over a byte stream for secure WebSockets (/tls/ws, /wss): a GnuTLS
 * session whose transport is memory (its push function appends to the
 * caller's output buffer, its pull function reads the caller's input), so
 * it runs over any of our transports and in the simulator. Certificates
 * are X.509 as for HTTPS: this is the web's TLS, not libp2p's (the peer's
 * identity is still proven by Noise on top).
 */
#ifndef FLARE_TRANSPORT_TLS_PIPE_H
#define FLARE_TRANSPORT_TLS_PIPE_H

#include <gnutls/gnutls.h>

#include "flare/buf.h"
#include "flare/common.h"

/* Credentials shared by a host's sessions. */
typedef struct flare__tls_creds {
    gnutls_certificate_credentials_t cred;
    int server;
} flare__tls_creds;

/* A server's certificate chain and key from PEM files. Returns 0,
 * FLARE_ERR_NOT_FOUND (a file cannot be read), FLARE_ERR_MALFORMED (not a
 * matching PEM certificate and key) or FLARE_ERR_NOMEM. */
int flare__tls_creds_server(flare__tls_creds **out, const char *cert_file, const char *key_file,
                            const flare_mem *mem);
/* A client's trust: the CA certificates of ca_file (PEM), or the system's
 * trust store if ca_file is NULL. */
int flare__tls_creds_client(flare__tls_creds **out, const char *ca_file, const flare_mem *mem);
void flare__tls_creds_del(flare__tls_creds *c, const flare_mem *mem);

#define FLARE__TLS_EV_OPEN 1u /* the handshake finished */
#define FLARE__TLS_EV_EOF  2u /* the peer's close_notify */

typedef struct flare__tls_pipe {
    gnutls_session_t s;
    flare_buf in;   /* the peer's bytes not yet read by GnuTLS */
    flare_buf *out; /* during a call: where GnuTLS's records go */
    int server, open, closed, push_err;
} flare__tls_pipe;

/* name: the client's server name, sent as SNI (if it is not an IP
 * address) and checked against the certificate (a DNS name or an IP
 * address). */
int flare__tls_pipe_init(flare__tls_pipe *t, const flare__tls_creds *creds, const char *name,
                         const flare_mem *mem);
void flare__tls_pipe_free(flare__tls_pipe *t);
/* Client: the first handshake flight. */
int flare__tls_pipe_start(flare__tls_pipe *t, flare_buf *wire);
/* The peer's bytes: plaintext to plain, our handshake and alert records to
 * wire, FLARE__TLS_EV_* to *events. FLARE_ERR_CRYPTO: the handshake or a
 * record failed (a certificate that does not verify, a bad record). */
int flare__tls_pipe_input(flare__tls_pipe *t, const uint8_t *data, size_t len, flare_buf *plain,
                          flare_buf *wire, unsigned *events);
/* Plaintext toward the peer (only once open). */
int flare__tls_pipe_write(flare__tls_pipe *t, const uint8_t *data, size_t len, flare_buf *wire);
/* Our close_notify. */
int flare__tls_pipe_close(flare__tls_pipe *t, flare_buf *wire);

#endif
