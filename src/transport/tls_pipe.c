/*
 * GnuTLS on memory buffers. The session never blocks: its pull function
 * says EAGAIN when the caller's input is used up, and its push function
 * appends to the caller's output. GnuTLS's own handshake timer is off: the
 * connection's handshake deadline (the caller's clock) bounds a peer that
 * stalls. Loading the credentials reads files, so a host does it once when
 * it starts, not per connection.
 */
#include "transport/tls_pipe.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "core/mem.h"

#define TLS_READ_CHUNK 16384

int flare__tls_creds_server(flare__tls_creds **out, const char *cert_file, const char *key_file,
                            const flare_mem *mem)
{
    flare__tls_creds *c = flare__calloc(mem, 1, sizeof(*c));
    if (!c)
        return FLARE_ERR_NOMEM;
    c->server = 1;
    if (gnutls_certificate_allocate_credentials(&c->cred) < 0) {
        flare__free(mem, c);
        return FLARE_ERR_NOMEM;
    }
    int rv =
        gnutls_certificate_set_x509_key_file(c->cred, cert_file, key_file, GNUTLS_X509_FMT_PEM);
    if (rv < 0) {
        flare__tls_creds_del(c, mem);
        return rv == GNUTLS_E_FILE_ERROR ? FLARE_ERR_NOT_FOUND : FLARE_ERR_MALFORMED;
    }
    *out = c;
    return 0;
}

int flare__tls_creds_client(flare__tls_creds **out, const char *ca_file, const flare_mem *mem)
{
    flare__tls_creds *c = flare__calloc(mem, 1, sizeof(*c));
    if (!c)
        return FLARE_ERR_NOMEM;
    if (gnutls_certificate_allocate_credentials(&c->cred) < 0) {
        flare__free(mem, c);
        return FLARE_ERR_NOMEM;
    }
    int rv = ca_file ? gnutls_certificate_set_x509_trust_file(c->cred, ca_file, GNUTLS_X509_FMT_PEM)
                     : gnutls_certificate_set_x509_system_trust(c->cred);
    /* Both return how many certificates they took; none is an error too. */
    if (rv <= 0) {
        flare__tls_creds_del(c, mem);
        return rv == GNUTLS_E_FILE_ERROR ? FLARE_ERR_NOT_FOUND : FLARE_ERR_MALFORMED;
    }
    *out = c;
    return 0;
}

void flare__tls_creds_del(flare__tls_creds *c, const flare_mem *mem)
{
    if (!c)
        return;
    gnutls_certificate_free_credentials(c->cred);
    flare__free(mem, c);
}

static ssize_t pipe_pull(gnutls_transport_ptr_t p, void *data, size_t len)
{
    flare__tls_pipe *t = p;
    if (t->in.len == 0) {
        gnutls_transport_set_errno(t->s, EAGAIN);
        return -1;
    }
    size_t n = len < t->in.len ? len : t->in.len;
    memcpy(data, t->in.base, n);
    flare_buf_consume(&t->in, n);
    return (ssize_t)n;
}

static ssize_t pipe_push(gnutls_transport_ptr_t p, const void *data, size_t len)
{
    flare__tls_pipe *t = p;
    if (!t->out || flare_buf_append(t->out, data, len)) {
        t->push_err = 1;
        gnutls_transport_set_errno(t->s, ENOMEM);
        return -1;
    }
    return (ssize_t)len;
}

static int is_ip(const char *name)
{
    uint8_t a[16];
    return inet_pton(AF_INET, name, a) == 1 || inet_pton(AF_INET6, name, a) == 1;
}

int flare__tls_pipe_init(flare__tls_pipe *t, const flare__tls_creds *creds, const char *name,
                         const flare_mem *mem)
{
    memset(t, 0, sizeof(*t));
    t->server = creds->server;
    flare_buf_init(&t->in, mem);
    if (gnutls_init(&t->s, (t->server ? GNUTLS_SERVER : GNUTLS_CLIENT) | GNUTLS_NONBLOCK) < 0)
        return FLARE_ERR_NOMEM;
    int rv = gnutls_set_default_priority(t->s);
    if (rv == 0)
        rv = gnutls_credentials_set(t->s, GNUTLS_CRD_CERTIFICATE, creds->cred);
    if (rv == 0 && !t->server) {
        if (!name || !*name) {
            rv = GNUTLS_E_INVALID_REQUEST;
        } else {
            if (!is_ip(name))
                rv = gnutls_server_name_set(t->s, GNUTLS_NAME_DNS, name, strlen(name));
            if (rv == 0)
                gnutls_session_set_verify_cert(t->s, name, 0);
        }
    }
    if (rv < 0) {
        flare__tls_pipe_free(t);
        return rv == GNUTLS_E_MEMORY_ERROR ? FLARE_ERR_NOMEM : FLARE_ERR_INVALID_ARG;
    }
    gnutls_handshake_set_timeout(t->s, 0);
    gnutls_transport_set_ptr(t->s, t);
    gnutls_transport_set_pull_function(t->s, pipe_pull);
    gnutls_transport_set_push_function(t->s, pipe_push);
    return 0;
}

void flare__tls_pipe_free(flare__tls_pipe *t)
{
    if (t->s)
        gnutls_deinit(t->s);
    t->s = NULL;
    flare_buf_free(&t->in);
}

static int map_err(flare__tls_pipe *t, int rv)
{
    if (t->push_err)
        return FLARE_ERR_NOMEM;
    return rv == GNUTLS_E_MEMORY_ERROR ? FLARE_ERR_NOMEM : FLARE_ERR_CRYPTO;
}

static int handshake(flare__tls_pipe *t, unsigned *events)
{
    int rv = gnutls_handshake(t->s);
    if (rv == GNUTLS_E_AGAIN || rv == GNUTLS_E_INTERRUPTED)
        return 0;
    if (rv < 0 && !gnutls_error_is_fatal(rv))
        return 0; /* a warning alert */
    if (rv < 0)
        return map_err(t, rv);
    t->open = 1;
    *events |= FLARE__TLS_EV_OPEN;
    return 0;
}

int flare__tls_pipe_start(flare__tls_pipe *t, flare_buf *wire)
{
    if (t->server || t->open)
        return FLARE_ERR_STATE;
    unsigned ev = 0;
    t->out = wire;
    int rv = handshake(t, &ev);
    t->out = NULL;
    return rv;
}

/* Reads every complete record GnuTLS can decrypt. */
static int read_records(flare__tls_pipe *t, flare_buf *plain, unsigned *events)
{
    for (;;) {
        int rv = flare_buf_reserve(plain, TLS_READ_CHUNK);
        if (rv)
            return rv;
        size_t before = t->in.len;
        ssize_t n = gnutls_record_recv(t->s, plain->base + plain->len, TLS_READ_CHUNK);
        if (n > 0) {
            plain->len += (size_t)n;
            continue;
        }
        if (n == 0) {
            t->closed = 1;
            *events |= FLARE__TLS_EV_EOF;
            return 0;
        }
        /* After a post-handshake message (TLS 1.3 session tickets) GnuTLS
         * may say EAGAIN with records still to read: go on while it takes
         * input or holds plaintext. */
        if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
            if (t->in.len < before || gnutls_record_check_pending(t->s) > 0)
                continue;
            return 0;
        }
        if (!gnutls_error_is_fatal((int)n))
            continue; /* warning alerts */
        return map_err(t, (int)n);
    }
}

int flare__tls_pipe_input(flare__tls_pipe *t, const uint8_t *data, size_t len, flare_buf *plain,
                          flare_buf *wire, unsigned *events)
{
    *events = 0;
    if (t->closed)
        return 0;
    int rv = flare_buf_append(&t->in, data, len);
    if (rv)
        return rv;
    t->out = wire;
    if (!t->open)
        rv = handshake(t, events);
    if (rv == 0 && t->open)
        rv = read_records(t, plain, events);
    t->out = NULL;
    /* What GnuTLS did not take yet is less than a record: keep it compact. */
    if (t->in.len == 0)
        flare_buf_free(&t->in);
    if (rv)
        t->closed = 1;
    return rv;
}

int flare__tls_pipe_write(flare__tls_pipe *t, const uint8_t *data, size_t len, flare_buf *wire)
{
    if (!t->open || t->closed)
        return FLARE_ERR_STATE;
    t->out = wire;
    int rv = 0;
    while (len) {
        ssize_t n = gnutls_record_send(t->s, data, len);
        if (n < 0) { /* not EAGAIN: pushing never blocks */
            rv = map_err(t, (int)n);
            break;
        }
        data += n;
        len -= (size_t)n;
    }
    t->out = NULL;
    return rv;
}

int flare__tls_pipe_close(flare__tls_pipe *t, flare_buf *wire)
{
    if (!t->open)
        return FLARE_ERR_STATE;
    t->out = wire;
    int rv = gnutls_bye(t->s, GNUTLS_SHUT_WR);
    t->out = NULL;
    return rv < 0 && rv != GNUTLS_E_AGAIN ? map_err(t, rv) : 0;
}
