/* Noise XX (src/security/noise/) behind the security operations. The
 * session is the core's heap state itself (flare_noise is its pointer). */
#include "flare/noise.h"
#include "security/noise/noise_internal.h"
#include "security/security.h"

static flare_noise of(const void *sess)
{
    flare_noise n = {(struct flare__noise_state *)sess};
    return n;
}

static int noise_init_op(void **sess, const flare__security_cfg *cfg)
{
    flare_noise_settings ns;
    flare_noise_settings_default(&ns);
    ns.identity = cfg->identity;
    ns.initiator = cfg->initiator;
    ns.expected_remote = cfg->expected_remote;
    ns.muxers = cfg->muxers;
    ns.nmuxers = cfg->nmuxers;
    ns.sig_cache = cfg->sig_cache;
    flare_noise n = {0};
    int rv = flare_noise_init(&n, &ns, cfg->mem, cfg->rng);
    *sess = n.st;
    return rv;
}

static int noise_start_op(void *sess, flare_buf *out)
{
    flare_noise n = of(sess);
    return flare_noise_start(&n, out);
}

static int noise_recv_op(void *sess, const uint8_t *in, size_t len, flare_buf *out,
                         flare_buf *plain)
{
    flare_noise n = of(sess);
    return flare_noise_recv(&n, in, len, out, plain);
}

static int noise_encrypt_op(void *sess, const uint8_t *data, size_t len, flare_buf *out)
{
    flare_noise n = of(sess);
    return flare_noise_encrypt(&n, data, len, out);
}

static int noise_encrypt_pair_op(void *sess, const uint8_t *head, size_t hlen, const uint8_t *data,
                                 size_t len, flare_buf *out)
{
    flare_noise n = of(sess);
    return flare_noise_encrypt_pair(&n, head, hlen, data, len, out);
}

static int noise_done_op(const void *sess)
{
    flare_noise n = of(sess);
    return flare_noise_handshake_done(&n);
}

static int noise_key_op(const void *sess, flare_pubkey *out)
{
    flare_noise n = of(sess);
    return flare__noise_remote_key_copy(&n, out);
}

static const flare_peerid *noise_peer_op(const void *sess)
{
    flare_noise n = of(sess);
    return flare_noise_remote_peerid(&n);
}

static const char *noise_muxer_op(const void *sess)
{
    flare_noise n = of(sess);
    return flare_noise_selected_muxer(&n);
}

static void noise_free_op(void *sess)
{
    flare_noise n = of(sess);
    flare_noise_free(&n);
}

const flare__security flare__sec_noise = {
    .id = "/noise",
    .init = noise_init_op,
    .start = noise_start_op,
    .recv = noise_recv_op,
    .encrypt = noise_encrypt_op,
    .encrypt_pair = noise_encrypt_pair_op,
    .handshake_done = noise_done_op,
    .remote_key = noise_key_op,
    .remote_peer = noise_peer_op,
    .early_muxer = noise_muxer_op,
    .free = noise_free_op,
};
