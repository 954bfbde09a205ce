/* libp2p TLS 1.3 session over GnuTLS, fed from memory buffers. */
#include "flare/tls.h"

#include <errno.h>
#include <gnutls/gnutls.h>
#include <stdio.h>
#include <string.h>

#include "core/mem.h"
#include "security/tls/tls_cert.h"

/* TLS 1.3 only; GnuTLS's default ciphers, groups and signature schemes. */
#define TLS_PRIORITY   "NORMAL:-VERS-ALL:+VERS-TLS1.3"
#define MUXER_NAME_MAX 255
/* Ciphertext we hold beyond the plaintext bound: two maximal records. */
#define RECORD_MAX (FLARE_TLS_MAX_PLAINTEXT + 256 + 5)
/* Largest handshake message accepted (certificates are at most
 * FLARE__TLS_CERT_MAX; this leaves room for extensions). */
#define HANDSHAKE_MAX (64 * 1024)
/* GnuTLS assembles a handshake message up to the length its header claims
 * (up to 16 MiB) before judging it, also after the handshake (tickets, key
 * updates). So we ration what it may pull: at most this much wire input
 * before the handshake is done (a real one is a few KiB each way), and
 * afterwards at most this much between two records of application data
 * (more than one maximal record). */
#define PULL_MAX (64 * 1024)

struct flare__tls_state {
    const flare_mem *mem;
    gnutls_session_t s;
    gnutls_certificate_credentials_t cred;
    int initiator, started, done, dead, sent_close, peer_closed;
    int verify_err, verified;
    uint64_t unix_now;
    size_t max_plain;
    flare_peerid expected, remote;
    flare_pubkey remote_key;
    flare_buf in;   /* wire bytes GnuTLS has not pulled yet */
    flare_buf *out; /* where push appends during a call */
    int push_err, pull_err;
    size_t pulled; /* input GnuTLS took since the start, then since the last data */
    size_t nalpn;
    gnutls_datum_t alpn[FLARE_TLS_MAX_MUXERS + 1];
    char names[FLARE_TLS_MAX_MUXERS][MUXER_NAME_MAX + 1];
    char selected[MUXER_NAME_MAX + 1];
    char detail[320];
};

/* ---- GnuTLS transport over memory ---------------------------------------- */

static ssize_t push_fn(gnutls_transport_ptr_t p, const void *data, size_t len)
{
    struct flare__tls_state *st = p;
    if (!st->out || flare_buf_append(st->out, data, len)) {
        st->push_err = st->out ? FLARE_ERR_NOMEM : FLARE_ERR_INTERNAL;
        gnutls_transport_set_errno(st->s, ENOMEM);
        return -1;
    }
    return (ssize_t)len;
}

static ssize_t pull_fn(gnutls_transport_ptr_t p, void *data, size_t len)
{
    struct flare__tls_state *st = p;
    if (st->in.len == 0) {
        gnutls_transport_set_errno(st->s, EAGAIN);
        return -1;
    }
    if (st->pulled >= PULL_MAX) {
        st->pull_err = FLARE_ERR_TOO_LARGE;
        gnutls_transport_set_errno(st->s, EMSGSIZE);
        return -1;
    }
    size_t n = len < st->in.len ? len : st->in.len;
    if (n > PULL_MAX - st->pulled)
        n = PULL_MAX - st->pulled;
    memcpy(data, st->in.base, n);
    flare_buf_consume(&st->in, n);
    st->pulled += n;
    return (ssize_t)n;
}

static int pull_timeout_fn(gnutls_transport_ptr_t p, unsigned ms)
{
    struct flare__tls_state *st = p;
    return st->in.len > 0 ? 1 : 0;
}

/* ---- peer authentication ------------------------------------------------- */

static int verify_fn(gnutls_session_t s)
{
    struct flare__tls_state *st = gnutls_session_get_ptr(s);
    const flare_peerid *exp = st->expected.len ? &st->expected : NULL;
    int rv = flare__tls_session_verify(s, st->unix_now, exp, &st->remote_key, &st->remote);
    if (rv == FLARE_ERR_PEER_ID_MISMATCH) {
        flare__tls_mismatch_str(&st->expected, &st->remote, st->detail, sizeof(st->detail));
        memset(&st->remote, 0, sizeof(st->remote));
    } else if (rv) {
        snprintf(st->detail, sizeof(st->detail), "bad peer certificate: %s", flare_strerror(rv));
    }
    st->verify_err = rv;
    st->verified = rv == 0;
    return rv ? -1 : 0;
}

/* ---- setup ------------------------------------------------------------- */

static int set_alpn(struct flare__tls_state *st, const flare_tls_settings *s)
{
    if (s->nmuxers > FLARE_TLS_MAX_MUXERS || (s->nmuxers && !s->muxers))
        return FLARE_ERR_INVALID_ARG;
    for (size_t i = 0; i < s->nmuxers; i++) {
        size_t n = s->muxers[i] ? strlen(s->muxers[i]) : 0;
        if (n == 0 || n > MUXER_NAME_MAX)
            return FLARE_ERR_INVALID_ARG;
        memcpy(st->names[i], s->muxers[i], n + 1);
        st->alpn[i].data = (unsigned char *)st->names[i];
        st->alpn[i].size = (unsigned)n;
    }
    /* "libp2p" last: the spec's fallback to multistream muxer negotiation. */
    st->alpn[s->nmuxers].data = (unsigned char *)FLARE_TLS_ALPN;
    st->alpn[s->nmuxers].size = sizeof(FLARE_TLS_ALPN) - 1;
    st->nalpn = s->nmuxers + 1;
    return 0;
}

static int session_setup(struct flare__tls_state *st, flare_rng rng, const flare_tls_settings *s)
{
    flare__tls_cert cert;
    int rv = flare__tls_cert_make(&cert, s->identity, s->unix_now, rng);
    if (rv)
        return rv;
    if (gnutls_certificate_allocate_credentials(&st->cred) < 0)
        rv = FLARE_ERR_NOMEM;
    else
        rv = flare__tls_cert_set_credentials(&cert, st->cred);
    flare__tls_cert_free(&cert); /* the credentials hold their own copy */
    if (rv)
        return rv;
    unsigned flags =
        (s->initiator ? GNUTLS_CLIENT : GNUTLS_SERVER) | GNUTLS_NONBLOCK | GNUTLS_NO_TICKETS;
    if (gnutls_init(&st->s, flags) < 0) {
        st->s = NULL;
        return FLARE_ERR_NOMEM;
    }
    gnutls_session_set_ptr(st->s, st);
    gnutls_transport_set_ptr(st->s, st);
    gnutls_transport_set_push_function(st->s, push_fn);
    gnutls_transport_set_pull_function(st->s, pull_fn);
    gnutls_transport_set_pull_timeout_function(st->s, pull_timeout_fn);
    /* The host enforces its own handshake deadline on its clock. */
    gnutls_handshake_set_timeout(st->s, 0);
    gnutls_handshake_set_max_packet_length(st->s, HANDSHAKE_MAX);
    if (gnutls_priority_set_direct(st->s, TLS_PRIORITY, NULL) < 0 ||
        gnutls_credentials_set(st->s, GNUTLS_CRD_CERTIFICATE, st->cred) < 0)
        return FLARE_ERR_CRYPTO;
    if (!s->initiator)
        gnutls_certificate_server_set_request(st->s, GNUTLS_CERT_REQUIRE);
    gnutls_session_set_verify_function(st->s, verify_fn);
    if (gnutls_alpn_set_protocols(st->s, st->alpn, (unsigned)st->nalpn, GNUTLS_ALPN_MANDATORY) < 0)
        return FLARE_ERR_CRYPTO;
    return 0;
}

static void state_free(struct flare__tls_state *st)
{
    if (st->s)
        gnutls_deinit(st->s);
    if (st->cred)
        gnutls_certificate_free_credentials(st->cred);
    flare_buf_free(&st->in);
    const flare_mem *mem = st->mem;
    memset(st, 0, sizeof(*st));
    flare__free(mem, st);
}

void flare_tls_settings_default(flare_tls_settings *s)
{
    memset(s, 0, sizeof(*s));
    s->struct_size = sizeof(*s);
    s->max_plaintext_buffer = FLARE_TLS_DEFAULT_MAX_PLAINTEXT_BUFFER;
}

int flare_tls_init(flare_tls *t, const flare_tls_settings *s, const flare_mem *mem, flare_rng rng)
{
    if (!t)
        return FLARE_ERR_INVALID_ARG;
    t->st = NULL;
    if (!s || s->struct_size != sizeof(*s) || !s->identity || !rng.fn || s->unix_now == 0 ||
        s->max_plaintext_buffer == 0)
        return FLARE_ERR_INVALID_ARG;
    struct flare__tls_state *st = flare__calloc(mem, 1, sizeof(*st));
    if (!st)
        return FLARE_ERR_NOMEM;
    st->mem = mem;
    flare_buf_init(&st->in, mem);
    st->initiator = s->initiator ? 1 : 0;
    st->unix_now = s->unix_now;
    st->max_plain =
        s->max_plaintext_buffer ? s->max_plaintext_buffer : FLARE_TLS_DEFAULT_MAX_PLAINTEXT_BUFFER;
    if (s->expected_remote)
        st->expected = *s->expected_remote;
    int rv = set_alpn(st, s);
    if (!rv)
        rv = session_setup(st, rng, s);
    if (rv) {
        state_free(st);
        return rv;
    }
    t->st = st;
    return 0;
}

void flare_tls_free(flare_tls *t)
{
    if (!t || !t->st)
        return;
    state_free(t->st);
    t->st = NULL;
}

/* ---- errors ------------------------------------------------------------ */

/* A fatal GnuTLS error as a FLARE_ERR_* code; the session dies. */
static int fail(struct flare__tls_state *st, int g)
{
    int rv;
    st->dead = 1;
    if (st->push_err)
        return st->push_err;
    if (st->pull_err) {
        snprintf(st->detail, sizeof(st->detail),
                 "tls: peer sent %d KiB without completing a message", PULL_MAX / 1024);
        return st->pull_err;
    }
    if (st->verify_err)
        return st->verify_err;
    switch (g) {
    case GNUTLS_E_NO_APPLICATION_PROTOCOL:
        rv = FLARE_ERR_NEGOTIATION;
        break;
    case GNUTLS_E_FATAL_ALERT_RECEIVED: {
        gnutls_alert_description_t a = gnutls_alert_get(st->s);
        rv = a == GNUTLS_A_NO_APPLICATION_PROTOCOL ? FLARE_ERR_NEGOTIATION : FLARE_ERR_REFUSED;
        const char *name = gnutls_alert_get_name(a);
        snprintf(st->detail, sizeof(st->detail), "peer sent alert: %s", name ? name : "?");
        return rv;
    }
    case GNUTLS_E_DECRYPTION_FAILED:
        rv = FLARE_ERR_CRYPTO;
        break;
    case GNUTLS_E_MEMORY_ERROR:
        rv = FLARE_ERR_NOMEM;
        break;
    default:
        rv = FLARE_ERR_PROTO;
        break;
    }
    snprintf(st->detail, sizeof(st->detail), "tls: %s", gnutls_strerror(g));
    return rv;
}

/* Tells the peer why we give up (best effort), then fails. */
static int fail_alert(struct flare__tls_state *st, int g)
{
    if (!st->push_err && g != GNUTLS_E_FATAL_ALERT_RECEIVED)
        gnutls_alert_send_appropriate(st->s, g);
    return fail(st, g);
}

/* ---- handshake --------------------------------------------------------- */

static int finish_handshake(struct flare__tls_state *st)
{
    if (!st->verified || gnutls_protocol_get_version(st->s) != GNUTLS_TLS1_3) {
        st->dead = 1;
        snprintf(st->detail, sizeof(st->detail), "tls: peer not authenticated");
        return FLARE_ERR_PROTO;
    }
    gnutls_datum_t sel = {NULL, 0};
    if (gnutls_alpn_get_selected_protocol(st->s, &sel) < 0 || sel.size == 0 ||
        sel.size > MUXER_NAME_MAX) {
        st->dead = 1;
        snprintf(st->detail, sizeof(st->detail), "tls: no ALPN protocol selected");
        return FLARE_ERR_NEGOTIATION;
    }
    memcpy(st->selected, sel.data, sel.size);
    st->selected[sel.size] = 0;
    if (!strcmp(st->selected, FLARE_TLS_ALPN))
        st->selected[0] = 0;
    st->done = 1;
    st->pulled = 0;
    return 0;
}

static int step_handshake(struct flare__tls_state *st)
{
    int g;
    do {
        g = gnutls_handshake(st->s);
    } while (g == GNUTLS_E_INTERRUPTED || g == GNUTLS_E_WARNING_ALERT_RECEIVED);
    if (g == GNUTLS_E_AGAIN)
        return st->push_err ? fail(st, g) : 0;
    if (g < 0)
        return fail_alert(st, g);
    return finish_handshake(st);
}

int flare_tls_start(flare_tls *t, flare_buf *out)
{
    if (!t || !t->st || !out)
        return FLARE_ERR_INVALID_ARG;
    struct flare__tls_state *st = t->st;
    if (st->dead || st->started)
        return FLARE_ERR_STATE;
    st->started = 1;
    if (!st->initiator)
        return 0;
    st->out = out;
    int rv = step_handshake(st);
    st->out = NULL;
    return rv;
}

/* ---- records ----------------------------------------------------------- */

/* Decrypts records into plain until it is full or the input runs dry. */
static int read_records(struct flare__tls_state *st, flare_buf *plain)
{
    while (!st->peer_closed && plain->len < st->max_plain) {
        if (flare_buf_reserve(plain, FLARE_TLS_MAX_PLAINTEXT)) {
            st->dead = 1;
            return FLARE_ERR_NOMEM;
        }
        ssize_t n = gnutls_record_recv(st->s, plain->base + plain->len, FLARE_TLS_MAX_PLAINTEXT);
        if (n > 0) {
            plain->len += (size_t)n;
            st->pulled = 0;
        } else if (n == 0) {
            st->peer_closed = 1;
        } else if (n == GNUTLS_E_AGAIN) {
            if (st->push_err)
                return fail(st, (int)n);
            break;
        } else if (n != GNUTLS_E_INTERRUPTED && n != GNUTLS_E_WARNING_ALERT_RECEIVED) {
            return fail_alert(st, (int)n);
        }
    }
    return 0;
}

int flare_tls_recv(flare_tls *t, const uint8_t *in, size_t len, flare_buf *out, flare_buf *plain)
{
    if (!t || !t->st || !out || !plain || (len && !in))
        return FLARE_ERR_INVALID_ARG;
    struct flare__tls_state *st = t->st;
    if (st->dead || (st->initiator && !st->started))
        return FLARE_ERR_STATE;
    st->started = 1;
    if (st->peer_closed)
        return FLARE_ERR_CLOSED; /* anything after close_notify is ignored */
    if (len && flare_buf_append(&st->in, in, len)) {
        st->dead = 1;
        return FLARE_ERR_NOMEM;
    }
    st->out = out;
    int rv = 0;
    if (!st->done)
        rv = step_handshake(st);
    if (!rv && st->done)
        rv = read_records(st, plain);
    st->out = NULL;
    if (rv)
        return rv;
    if (st->in.len > st->max_plain + 2 * RECORD_MAX) {
        st->dead = 1;
        snprintf(st->detail, sizeof(st->detail), "tls: peer sent beyond the plaintext bound");
        return FLARE_ERR_LIMIT;
    }
    return st->peer_closed ? FLARE_ERR_CLOSED : 0;
}

int flare_tls_encrypt(flare_tls *t, const uint8_t *data, size_t len, flare_buf *out)
{
    if (!t || !t->st || !out || (len && !data))
        return FLARE_ERR_INVALID_ARG;
    struct flare__tls_state *st = t->st;
    if (st->dead || !st->done || st->sent_close)
        return FLARE_ERR_STATE;
    st->out = out;
    int rv = 0;
    size_t off = 0;
    while (off < len) {
        size_t n = len - off;
        if (n > FLARE_TLS_MAX_PLAINTEXT)
            n = FLARE_TLS_MAX_PLAINTEXT;
        ssize_t w = gnutls_record_send(st->s, data + off, n);
        if (w == GNUTLS_E_INTERRUPTED)
            continue;
        if (w <= 0) {
            rv = st->push_err ? fail(st, (int)w) : (st->dead = 1, FLARE_ERR_CRYPTO);
            break;
        }
        off += (size_t)w;
    }
    st->out = NULL;
    return rv;
}

int flare_tls_close(flare_tls *t, flare_buf *out)
{
    if (!t || !t->st || !out)
        return FLARE_ERR_INVALID_ARG;
    struct flare__tls_state *st = t->st;
    if (st->dead || !st->done)
        return FLARE_ERR_STATE;
    if (st->sent_close)
        return 0;
    st->out = out;
    int g = gnutls_bye(st->s, GNUTLS_SHUT_WR);
    st->out = NULL;
    st->sent_close = 1;
    if (g < 0)
        return fail(st, g);
    return 0;
}

/* ---- getters ----------------------------------------------------------- */

int flare_tls_handshake_done(const flare_tls *t)
{
    return t && t->st && t->st->done && !t->st->dead;
}

const flare_peerid *flare_tls_remote_peerid(const flare_tls *t)
{
    return t && t->st && t->st->done ? &t->st->remote : NULL;
}

const flare_pubkey *flare_tls_remote_key(const flare_tls *t)
{
    return t && t->st && t->st->done ? &t->st->remote_key : NULL;
}

const char *flare_tls_selected_muxer(const flare_tls *t)
{
    return t && t->st && t->st->done && t->st->selected[0] ? t->st->selected : NULL;
}

const char *flare_tls_error_detail(const flare_tls *t)
{
    return t && t->st ? t->st->detail : "";
}

size_t flare_tls_buffered(const flare_tls *t)
{
    return t && t->st ? t->st->in.len : 0;
}
