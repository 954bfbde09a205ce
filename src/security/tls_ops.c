/* libp2p TLS 1.3 (src/security/tls/) behind the security operations. The
 * session is the core's heap state itself (flare_tls is its pointer). */
#include "flare/tls.h"
#include "security/security.h"

static flare_tls of(const void *sess)
{
    flare_tls t = {(struct flare__tls_state *)sess};
    return t;
}

static int tls_init_op(void **sess, const flare__security_cfg *cfg)
{
    flare_tls_settings ts;
    flare_tls_settings_default(&ts);
    ts.identity = cfg->identity;
    ts.initiator = cfg->initiator;
    ts.expected_remote = cfg->expected_remote;
    ts.muxers = cfg->muxers;
    ts.nmuxers = cfg->nmuxers;
    ts.unix_now = cfg->unix_now;
    flare_tls t = {0};
    int rv = flare_tls_init(&t, &ts, cfg->mem, cfg->rng);
    *sess = t.st;
    return rv;
}

static int tls_start_op(void *sess, flare_buf *out)
{
    flare_tls t = of(sess);
    return flare_tls_start(&t, out);
}

/* The peer's close_notify ends its half: what came before it is delivered
 * and the connection goes on until the transport closes (as after a FIN). */
static int tls_recv_op(void *sess, const uint8_t *in, size_t len, flare_buf *out, flare_buf *plain)
{
    flare_tls t = of(sess);
    int rv = flare_tls_recv(&t, in, len, out, plain);
    return rv == FLARE_ERR_CLOSED ? 0 : rv;
}

static int tls_encrypt_op(void *sess, const uint8_t *data, size_t len, flare_buf *out)
{
    flare_tls t = of(sess);
    return flare_tls_encrypt(&t, data, len, out);
}

static int tls_done_op(const void *sess)
{
    flare_tls t = of(sess);
    return flare_tls_handshake_done(&t);
}

static int tls_key_op(const void *sess, flare_pubkey *out)
{
    flare_tls t = of(sess);
    const flare_pubkey *k = flare_tls_remote_key(&t);
    if (!k)
        return FLARE_ERR_STATE;
    *out = *k;
    return 0;
}

static const flare_peerid *tls_peer_op(const void *sess)
{
    flare_tls t = of(sess);
    return flare_tls_remote_peerid(&t);
}

static const char *tls_muxer_op(const void *sess)
{
    flare_tls t = of(sess);
    return flare_tls_selected_muxer(&t);
}

static int tls_close_op(void *sess, flare_buf *out)
{
    flare_tls t = of(sess);
    return flare_tls_close(&t, out);
}

static void tls_free_op(void *sess)
{
    flare_tls t = of(sess);
    flare_tls_free(&t);
}

const flare__security flare__sec_tls = {
    .id = FLARE_TLS_PROTOCOL_ID,
    .init = tls_init_op,
    .start = tls_start_op,
    .recv = tls_recv_op,
    .encrypt = tls_encrypt_op,
    .handshake_done = tls_done_op,
    .remote_key = tls_key_op,
    .remote_peer = tls_peer_op,
    .early_muxer = tls_muxer_op,
    .close = tls_close_op,
    .free = tls_free_op,
};
