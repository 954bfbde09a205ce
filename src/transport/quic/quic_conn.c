/*
 * transport/quic/quic_conn.c - one QUIC connection: ngtcp2 state, its TLS
 * session (ALPN "libp2p", mutual certificates judged by cbs.verify), the
 * ngtcp2 callbacks, and reading, writing, timers and closing.
 */
#include <ngtcp2/ngtcp2_crypto_gnutls.h>
#include <string.h>

#include "transport/quic/quic_int.h"

#define ALPN "libp2p"
/* TLS 1.3 only, the QUIC cipher suites (RFC 9001), no middlebox compatibility
 * mode (QUIC forbids it). */
#define TLS_PRIORITY                                                                               \
    "%DISABLE_TLS13_COMPAT_MODE:NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-128-GCM:"           \
    "+AES-256-GCM:+CHACHA20-POLY1305:+AES-128-CCM:-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1:"      \
    "+GROUP-SECP384R1"

static flare__quic_conn *conn_of(void *ud)
{
    return ud;
}

static const flare__quic_cbs *cbs_of(flare__quic_conn *qc)
{
    return &qc->ep->cfg.cbs;
}

/* ---- ngtcp2 callbacks ---------------------------------------------------------------- */

static void on_rand(uint8_t *dest, size_t len, const ngtcp2_rand_ctx *ctx)
{
    flare__quic_rand(ctx->native_handle, dest, len);
}

static int on_new_cid(ngtcp2_conn *conn, ngtcp2_cid *cid, uint8_t *token, size_t cidlen, void *ud)
{
    flare__quic_conn *qc = conn_of(ud);
    flare__quic_ep *ep = qc->ep;
    flare__quic_rand(ep, cid->data, cidlen);
    cid->datalen = cidlen;
    if (ngtcp2_crypto_generate_stateless_reset_token(token, ep->reset_secret,
                                                     sizeof(ep->reset_secret), cid) != 0)
        return NGTCP2_ERR_CALLBACK_FAILURE;
    return flare__quic_cid_add(ep, qc, cid) == 0 ? 0 : NGTCP2_ERR_CALLBACK_FAILURE;
}

static int on_remove_cid(ngtcp2_conn *conn, const ngtcp2_cid *cid, void *ud)
{
    flare__quic_conn *qc = conn_of(ud);
    flare__quic_cid_remove(qc->ep, cid);
    return 0;
}

static int alpn_ok(gnutls_session_t s)
{
    gnutls_datum_t d;
    return gnutls_alpn_get_selected_protocol(s, &d) == 0 && d.size == strlen(ALPN) &&
           memcmp(d.data, ALPN, d.size) == 0;
}

static int on_confirmed(ngtcp2_conn *conn, void *ud)
{
    flare__quic_conn *qc = conn_of(ud);
    if (!qc->verified || !alpn_ok(qc->tls)) {
        if (!qc->verify_err)
            qc->verify_err = FLARE_ERR_CRYPTO;
        return NGTCP2_ERR_CALLBACK_FAILURE;
    }
    if (qc->counted_hs) {
        qc->counted_hs = 0;
        qc->ep->nhandshakes--;
    }
    qc->established = 1;
    if (qc->ep->cfg.settings.keepalive)
        ngtcp2_conn_set_keep_alive_timeout(conn, qc->ep->cfg.settings.keepalive);
    if (cbs_of(qc)->established)
        cbs_of(qc)->established(qc->ep->cfg.user, qc);
    return 0;
}

/* A server's handshake is confirmed when it completes (RFC 9001 4.1.2). */
static int on_completed(ngtcp2_conn *conn, void *ud)
{
    flare__quic_conn *qc = conn_of(ud);
    return qc->server ? on_confirmed(conn, ud) : 0;
}

static int on_stream_open(ngtcp2_conn *conn, int64_t sid, void *ud)
{
    flare__quic_conn *qc = conn_of(ud);
    if (!ngtcp2_is_bidi_stream(sid))
        return 0; /* none allowed (initial_max_streams_uni = 0) */
    flare__quic_stream *st = flare__quic_stream_new(qc, sid);
    if (!st)
        return NGTCP2_ERR_CALLBACK_FAILURE;
    if (qc->closing || !cbs_of(qc)->stream_open ||
        cbs_of(qc)->stream_open(qc->ep->cfg.user, qc, st) != 0)
        flare__quic_stream_reset(st, 0);
    return 0;
}

static int on_stream_data(ngtcp2_conn *conn, uint32_t flags, int64_t sid, uint64_t offset,
                          const uint8_t *data, size_t len, void *ud, void *sud)
{
    flare__quic_stream *st = sud;
    int fin = (flags & NGTCP2_STREAM_DATA_FLAG_FIN) != 0;
    if (!st || st->reset || st->rd_done) {
        /* Nobody reads it: reopen the window so the connection is not stuck. */
        ngtcp2_conn_extend_max_offset(conn, len);
        if (st)
            ngtcp2_conn_extend_max_stream_offset(conn, sid, len);
        return 0;
    }
    if (fin)
        st->rd_done = 1;
    if (cbs_of(st->qc)->stream_data)
        cbs_of(st->qc)->stream_data(st->qc->ep->cfg.user, st, data, len, fin);
    return 0;
}

static int on_acked(ngtcp2_conn *conn, int64_t sid, uint64_t offset, uint64_t datalen, void *ud,
                    void *sud)
{
    if (sud)
        flare__quic_stream_acked(sud, datalen);
    return 0;
}

static int on_stream_close(ngtcp2_conn *conn, uint32_t flags, int64_t sid, uint64_t code, void *ud,
                           void *sud)
{
    flare__quic_stream *st = sud;
    if (!st)
        return 0;
    st->closed = 1;
    ngtcp2_conn_set_stream_user_data(conn, sid, NULL);
    if (cbs_of(st->qc)->stream_closed)
        cbs_of(st->qc)->stream_closed(st->qc->ep->cfg.user, st);
    flare__quic_stream_free(st);
    return 0;
}

static int on_stream_reset(ngtcp2_conn *conn, int64_t sid, uint64_t final_size, uint64_t code,
                           void *ud, void *sud)
{
    flare__quic_stream *st = sud;
    if (st && !st->reset && !st->rd_done) {
        st->rd_done = 1;
        if (cbs_of(st->qc)->stream_reset)
            cbs_of(st->qc)->stream_reset(st->qc->ep->cfg.user, st, code, 0);
    }
    return 0;
}

static int on_stop_sending(ngtcp2_conn *conn, int64_t sid, uint64_t code, void *ud, void *sud)
{
    flare__quic_stream *st = sud;
    if (st && !st->reset && !st->shut_wr) {
        st->shut_wr = 1;
        if (cbs_of(st->qc)->stream_reset)
            cbs_of(st->qc)->stream_reset(st->qc->ep->cfg.user, st, code, 1);
    }
    return 0;
}

static int on_extend_stream(ngtcp2_conn *conn, int64_t sid, uint64_t max_data, void *ud, void *sud)
{
    flare__quic_stream *st = sud;
    if (st)
        st->blocked = 0;
    conn_of(ud)->dirty = 1;
    return 0;
}

static int on_stateless_reset(ngtcp2_conn *conn, const ngtcp2_pkt_stateless_reset *sr, void *ud)
{
    flare__quic_conn_kill(conn_of(ud), FLARE_ERR_RESET, 0);
    return 0;
}

static void fill_callbacks(ngtcp2_callbacks *cb, int server)
{
    memset(cb, 0, sizeof(*cb));
    if (server) {
        cb->recv_client_initial = ngtcp2_crypto_recv_client_initial_cb;
    } else {
        cb->client_initial = ngtcp2_crypto_client_initial_cb;
        cb->recv_retry = ngtcp2_crypto_recv_retry_cb;
    }
    cb->recv_crypto_data = ngtcp2_crypto_recv_crypto_data_cb;
    cb->encrypt = ngtcp2_crypto_encrypt_cb;
    cb->decrypt = ngtcp2_crypto_decrypt_cb;
    cb->hp_mask = ngtcp2_crypto_hp_mask_cb;
    cb->update_key = ngtcp2_crypto_update_key_cb;
    cb->delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb;
    cb->delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb;
    cb->get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb;
    cb->version_negotiation = ngtcp2_crypto_version_negotiation_cb;
    cb->rand = on_rand;
    cb->get_new_connection_id = on_new_cid;
    cb->remove_connection_id = on_remove_cid;
    cb->handshake_confirmed = on_confirmed;
    cb->handshake_completed = on_completed;
    cb->stream_open = on_stream_open;
    cb->recv_stream_data = on_stream_data;
    cb->acked_stream_data_offset = on_acked;
    cb->stream_close = on_stream_close;
    cb->stream_reset = on_stream_reset;
    cb->stream_stop_sending = on_stop_sending;
    cb->extend_max_stream_data = on_extend_stream;
    cb->recv_stateless_reset = on_stateless_reset;
}

static void fill_settings(flare__quic_ep *ep, ngtcp2_settings *st, ngtcp2_transport_params *p,
                          flare_tstamp now)
{
    const flare__quic_settings *s = &ep->cfg.settings;
    ngtcp2_settings_default(st);
    st->initial_ts = now;
    st->rand_ctx.native_handle = ep;
    st->max_tx_udp_payload_size = FLARE__QUIC_MAX_DGRAM;
    st->max_window = s->max_conn_window;
    st->max_stream_window = s->max_stream_window;
    st->handshake_timeout = s->handshake_timeout;
    ngtcp2_transport_params_default(p);
    p->initial_max_stream_data_bidi_local = s->stream_window;
    p->initial_max_stream_data_bidi_remote = s->stream_window;
    p->initial_max_stream_data_uni = 0;
    p->initial_max_data = s->conn_window;
    p->initial_max_streams_bidi = s->max_streams_in;
    p->initial_max_streams_uni = 0;
    p->max_idle_timeout = s->idle_timeout;
    p->active_connection_id_limit = FLARE__QUIC_ACTIVE_CID_LIMIT;
}

/* ---- TLS ------------------------------------------------------------------------------- */

static ngtcp2_conn *get_conn(ngtcp2_crypto_conn_ref *ref)
{
    return ((flare__quic_conn *)ref->user_data)->conn;
}

/* GnuTLS calls this when the peer's certificate arrives (both sides). */
static int tls_verify(gnutls_session_t s)
{
    ngtcp2_crypto_conn_ref *ref = gnutls_session_get_ptr(s);
    flare__quic_conn *qc = ref->user_data;
    int rv = cbs_of(qc)->verify(qc->ep->cfg.user, qc, s);
    if (rv != 0) {
        qc->verify_err = rv < 0 ? rv : FLARE_ERR_CRYPTO;
        return -1;
    }
    qc->verified = 1;
    return 0;
}

static int tls_setup(flare__quic_conn *qc, int server)
{
    unsigned flags = (server ? GNUTLS_SERVER : GNUTLS_CLIENT) | GNUTLS_NO_END_OF_EARLY_DATA;
    if (gnutls_init(&qc->tls, flags) != 0) {
        qc->tls = NULL;
        return FLARE_ERR_NOMEM;
    }
    gnutls_datum_t alpn = {(unsigned char *)ALPN, (unsigned)strlen(ALPN)};
    qc->ref.get_conn = get_conn;
    qc->ref.user_data = qc;
    int cfg = server ? ngtcp2_crypto_gnutls_configure_server_session(qc->tls)
                     : ngtcp2_crypto_gnutls_configure_client_session(qc->tls);
    if (cfg != 0 || gnutls_priority_set_direct(qc->tls, TLS_PRIORITY, NULL) != 0 ||
        gnutls_credentials_set(qc->tls, GNUTLS_CRD_CERTIFICATE, qc->ep->cfg.cred) != 0 ||
        gnutls_alpn_set_protocols(qc->tls, &alpn, 1, GNUTLS_ALPN_MANDATORY) != 0)
        return FLARE_ERR_CRYPTO;
    gnutls_session_set_ptr(qc->tls, &qc->ref);
    gnutls_session_set_verify_function(qc->tls, tls_verify);
    if (server)
        gnutls_certificate_server_set_request(qc->tls, GNUTLS_CERT_REQUIRE);
    ngtcp2_conn_set_tls_native_handle(qc->conn, qc->tls);
    return 0;
}

/* ---- life cycle ------------------------------------------------------------------------ */

static flare__quic_conn *conn_alloc(flare__quic_ep *ep, const flare_ipaddr *remote)
{
    flare__quic_conn *qc = flare__calloc(ep->mem, 1, sizeof(*qc));
    if (!qc)
        return NULL;
    qc->ep = ep;
    qc->remote = *remote;
    flare__quic_sa_from(&qc->remote_sa, &qc->remote_len, remote);
    qc->next = ep->conns;
    if (ep->conns)
        ep->conns->prev = qc;
    ep->conns = qc;
    ep->nconns++;
    return qc;
}

static ngtcp2_path conn_path(flare__quic_conn *qc)
{
    ngtcp2_path path = {
        .local = {(ngtcp2_sockaddr *)&qc->ep->local_sa, qc->ep->local_len},
        .remote = {(ngtcp2_sockaddr *)&qc->remote_sa, qc->remote_len},
    };
    return path;
}

int flare__quic_connect(flare__quic_ep *ep, const flare_ipaddr *remote, void *user,
                        flare_tstamp now, flare__quic_conn **out)
{
    *out = NULL;
    if (ep->nconns >= ep->cfg.settings.max_conns)
        return FLARE_ERR_LIMIT;
    flare__quic_conn *qc = conn_alloc(ep, remote);
    if (!qc)
        return FLARE_ERR_NOMEM;
    qc->user = user;
    ngtcp2_cid dcid, scid;
    dcid.datalen = 18;
    scid.datalen = FLARE__QUIC_CID_LEN;
    flare__quic_rand(ep, dcid.data, dcid.datalen);
    flare__quic_rand(ep, scid.data, scid.datalen);
    ngtcp2_callbacks cb;
    ngtcp2_settings st;
    ngtcp2_transport_params p;
    fill_callbacks(&cb, 0);
    fill_settings(ep, &st, &p, now);
    ngtcp2_path path = conn_path(qc);
    int rv = FLARE_ERR_NOMEM;
    if (ngtcp2_conn_client_new(&qc->conn, &dcid, &scid, &path, NGTCP2_PROTO_VER_V1, &cb, &st, &p,
                               NULL, qc) != 0) {
        qc->conn = NULL;
        goto fail;
    }
    if ((rv = tls_setup(qc, 0)) != 0 || (rv = flare__quic_cid_add(ep, qc, &scid)) != 0)
        goto fail;
    qc->dirty = 1;
    *out = qc;
    return 0;
fail:
    flare__quic_conn_free(qc);
    return rv;
}

int flare__quic_conn_new_server(flare__quic_ep *ep, const ngtcp2_pkt_hd *hd,
                                const flare_ipaddr *from, flare_tstamp now, flare__quic_conn **out)
{
    *out = NULL;
    flare__quic_conn *qc = conn_alloc(ep, from);
    if (!qc)
        return FLARE_ERR_NOMEM;
    qc->server = 1;
    qc->counted_hs = 1;
    ep->nhandshakes++;
    ngtcp2_cid scid;
    scid.datalen = FLARE__QUIC_CID_LEN;
    flare__quic_rand(ep, scid.data, scid.datalen);
    ngtcp2_callbacks cb;
    ngtcp2_settings st;
    ngtcp2_transport_params p;
    fill_callbacks(&cb, 1);
    fill_settings(ep, &st, &p, now);
    p.original_dcid = hd->dcid;
    p.stateless_reset_token_present = 1;
    int rv = FLARE_ERR_CRYPTO;
    if (ngtcp2_crypto_generate_stateless_reset_token(p.stateless_reset_token, ep->reset_secret,
                                                     sizeof(ep->reset_secret), &scid) != 0)
        goto fail;
    ngtcp2_path path = conn_path(qc);
    rv = FLARE_ERR_NOMEM;
    if (ngtcp2_conn_server_new(&qc->conn, &hd->scid, &scid, &path, hd->version, &cb, &st, &p, NULL,
                               qc) != 0) {
        qc->conn = NULL;
        goto fail;
    }
    if ((rv = tls_setup(qc, 1)) != 0 || (rv = flare__quic_cid_add(ep, qc, &scid)) != 0 ||
        (rv = flare__quic_cid_add(ep, qc, &hd->dcid)) != 0)
        goto fail;
    *out = qc;
    return 0;
fail:
    flare__quic_conn_free(qc);
    return rv;
}

void flare__quic_conn_free(flare__quic_conn *qc)
{
    flare__quic_ep *ep = qc->ep;
    while (qc->streams)
        flare__quic_stream_free(qc->streams);
    while (qc->ncids)
        flare__quic_cid_remove(ep, &qc->cids[0]->cid);
    if (qc->conn)
        ngtcp2_conn_del(qc->conn);
    if (qc->tls)
        gnutls_deinit(qc->tls);
    if (qc->counted_hs)
        ep->nhandshakes--;
    if (qc->prev)
        qc->prev->next = qc->next;
    else
        ep->conns = qc->next;
    if (qc->next)
        qc->next->prev = qc->prev;
    ep->nconns--;
    flare__free(ep->mem, qc);
}

void flare__quic_conn_kill(flare__quic_conn *qc, int err, uint64_t app_code)
{
    if (qc->dead)
        return;
    qc->dead = 1;
    qc->dead_err = err;
    qc->dead_code = app_code;
}

void flare__quic_reap(flare__quic_ep *ep)
{
    flare__quic_conn *qc = ep->conns;
    while (qc) {
        flare__quic_conn *next = qc->next;
        if (qc->dead) {
            ep->cfg.cbs.closed(ep->cfg.user, qc, qc->dead_err, qc->dead_code);
            flare__quic_conn_free(qc);
            next = ep->conns; /* closed() may have freed or killed others */
        }
        qc = next;
    }
}

/* ---- packets --------------------------------------------------------------------------- */

void flare__quic_send(flare__quic_conn *qc, const ngtcp2_path *path, const uint8_t *data,
                      size_t len)
{
    flare_ipaddr to;
    flare__quic_sa_to(&to, (const struct sockaddr *)path->remote.addr);
    qc->ep->cfg.cbs.send(qc->ep->cfg.user, &to, data, len);
}

/* Sends a CONNECTION_CLOSE (best effort) and marks the connection dead. */
static void close_with(flare__quic_conn *qc, const ngtcp2_connection_close_error *ccerr,
                       flare_tstamp now, int err, uint64_t app_code)
{
    ngtcp2_path_storage ps;
    ngtcp2_path_storage_zero(&ps);
    ngtcp2_pkt_info pi;
    ngtcp2_ssize n = ngtcp2_conn_write_connection_close(qc->conn, &ps.path, &pi, qc->ep->pkt,
                                                        sizeof(qc->ep->pkt), ccerr, now);
    if (n > 0)
        flare__quic_send(qc, &ps.path, qc->ep->pkt, (size_t)n);
    flare__quic_conn_kill(qc, err, app_code);
}

static int err_of_liberr(flare__quic_conn *qc, int rv)
{
    if (qc->verify_err)
        return qc->verify_err;
    switch (rv) {
    case NGTCP2_ERR_NOMEM:
        return FLARE_ERR_NOMEM;
    case NGTCP2_ERR_CRYPTO:
    case NGTCP2_ERR_CALLBACK_FAILURE:
        return FLARE_ERR_CRYPTO;
    case NGTCP2_ERR_HANDSHAKE_TIMEOUT:
    case NGTCP2_ERR_IDLE_CLOSE:
        return FLARE_ERR_TIMEOUT;
    case NGTCP2_ERR_RECV_VERSION_NEGOTIATION:
        return FLARE_ERR_UNSUPPORTED;
    default:
        return FLARE_ERR_PROTO;
    }
}

static void fail(flare__quic_conn *qc, int rv, flare_tstamp now)
{
    if (qc->dead)
        return;
    if (rv == NGTCP2_ERR_DRAINING || rv == NGTCP2_ERR_CLOSING) {
        ngtcp2_connection_close_error ccerr;
        ngtcp2_conn_get_connection_close_error(qc->conn, &ccerr);
        uint64_t code = ccerr.type == NGTCP2_CONNECTION_CLOSE_ERROR_CODE_TYPE_APPLICATION
                            ? ccerr.error_code
                            : 0;
        flare__quic_conn_kill(qc, FLARE_ERR_CLOSED, code);
        return;
    }
    if (rv == NGTCP2_ERR_DROP_CONN || rv == NGTCP2_ERR_IDLE_CLOSE ||
        rv == NGTCP2_ERR_HANDSHAKE_TIMEOUT || rv == NGTCP2_ERR_RECV_VERSION_NEGOTIATION) {
        flare__quic_conn_kill(qc, err_of_liberr(qc, rv), 0);
        return;
    }
    ngtcp2_connection_close_error ccerr;
    ngtcp2_connection_close_error_default(&ccerr);
    if (rv == NGTCP2_ERR_CRYPTO)
        ngtcp2_connection_close_error_set_transport_error_tls_alert(
            &ccerr, ngtcp2_conn_get_tls_alert(qc->conn), NULL, 0);
    else
        ngtcp2_connection_close_error_set_transport_error_liberr(&ccerr, rv, NULL, 0);
    close_with(qc, &ccerr, now, err_of_liberr(qc, rv), 0);
}

void flare__quic_conn_read(flare__quic_conn *qc, const flare_ipaddr *from, const uint8_t *data,
                           size_t len, flare_tstamp now)
{
    struct sockaddr_storage sa;
    socklen_t salen;
    flare__quic_sa_from(&sa, &salen, from);
    ngtcp2_path path = {
        .local = {(ngtcp2_sockaddr *)&qc->ep->local_sa, qc->ep->local_len},
        .remote = {(ngtcp2_sockaddr *)&sa, salen},
    };
    ngtcp2_pkt_info pi = {0};
    int rv = ngtcp2_conn_read_pkt(qc->conn, &path, &pi, data, len, now);
    qc->dirty = 1;
    if (rv != 0)
        fail(qc, rv, now);
}

static void app_close(flare__quic_conn *qc, flare_tstamp now)
{
    ngtcp2_connection_close_error ccerr;
    ngtcp2_connection_close_error_default(&ccerr);
    ngtcp2_connection_close_error_set_application_error(&ccerr, qc->close_code, NULL, 0);
    close_with(qc, &ccerr, now, FLARE_ERR_CLOSED, qc->close_code);
}

void flare__quic_conn_write(flare__quic_conn *qc, flare_tstamp now)
{
    if (qc->dead)
        return;
    if (qc->closing) {
        app_close(qc, now);
        return;
    }
    qc->dirty = 0;
    ngtcp2_path_storage ps;
    ngtcp2_path_storage_zero(&ps);
    size_t budget = FLARE__QUIC_BURST;
    int rv = flare__quic_streams_write(qc, &ps, now, &budget);
    if (rv != 0) {
        fail(qc, rv, now);
        return;
    }
    if (budget == 0)
        qc->dirty = 1; /* more to send: the caller flushes again */
    /* Pacing from the established state on: during the handshake the pacer
     * works from the 333 ms initial RTT and would hold our Finished for tens
     * of milliseconds. */
    if (qc->established)
        ngtcp2_conn_update_pkt_tx_time(qc->conn, now);
}

void flare__quic_conn_expire(flare__quic_conn *qc, flare_tstamp now)
{
    int rv = ngtcp2_conn_handle_expiry(qc->conn, now);
    if (rv != 0) {
        fail(qc, rv, now);
        return;
    }
    qc->dirty = 1;
    flare__quic_conn_write(qc, now);
}

/* ---- accessors ------------------------------------------------------------------------- */

void flare__quic_conn_close(flare__quic_conn *qc, uint64_t app_code)
{
    if (qc->dead || qc->closing)
        return;
    qc->closing = 1;
    qc->close_code = app_code;
    qc->dirty = 1;
}

void flare__quic_conn_set_user(flare__quic_conn *qc, void *user)
{
    qc->user = user;
}

void *flare__quic_conn_user(const flare__quic_conn *qc)
{
    return qc->user;
}

int flare__quic_conn_is_server(const flare__quic_conn *qc)
{
    return qc->server;
}

int flare__quic_conn_established(const flare__quic_conn *qc)
{
    return qc->established && !qc->dead && !qc->closing;
}

void flare__quic_conn_remote(const flare__quic_conn *qc, flare_ipaddr *out)
{
    const ngtcp2_path *p = ngtcp2_conn_get_path(qc->conn);
    flare__quic_sa_to(out, (const struct sockaddr *)p->remote.addr);
}

gnutls_session_t flare__quic_conn_tls(const flare__quic_conn *qc)
{
    return qc->tls;
}

flare_tstamp flare__quic_conn_rtt(const flare__quic_conn *qc)
{
    ngtcp2_conn_stat cs;
    ngtcp2_conn_get_conn_stat(qc->conn, &cs);
    return cs.smoothed_rtt;
}
