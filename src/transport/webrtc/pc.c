/* WebRTC peer connection below ICE (pc.h). */
#include "transport/webrtc/pc.h"

#include <string.h>

#include "core/mem.h"
#include "flare/multibase.h"
#include "flare/noise.h"
#include "security/noise/noise_internal.h"
#include "transport/webrtc/frame.h"

#define PC_TIMEOUT ((flare_tstamp)30000000000)
#define MH_SHA256  0x12

struct flare__webrtc_pc {
    flare__webrtc_pc_cfg cfg;
    flare__webrtc_pc_state state;
    int err;
    flare__dtls *dtls;
    flare__sctp *sctp;
    flare__webrtc_mux *mux;
    flare_noise noise;
    int noise_on;
    flare_pubkey remote;
    flare_buf ch0;   /* channel 0's bytes not yet a whole message */
    flare_buf nout;  /* Noise output to frame */
    flare_buf plain; /* Noise transport data (unused: only the handshake runs) */
    flare_tstamp deadline;
    uint8_t pkt[FLARE__DTLS_MAX_DGRAM];
};

void flare__webrtc_noise_prologue(const uint8_t responder_fp[FLARE__DTLS_FP_LEN],
                                  const uint8_t initiator_fp[FLARE__DTLS_FP_LEN],
                                  uint8_t out[FLARE__WEBRTC_PROLOGUE_LEN])
{
    size_t n = strlen(FLARE__WEBRTC_PROLOGUE_PREFIX);
    memcpy(out, FLARE__WEBRTC_PROLOGUE_PREFIX, n);
    const uint8_t *fps[2] = {responder_fp, initiator_fp};
    for (int i = 0; i < 2; i++) {
        out[n++] = MH_SHA256;
        out[n++] = FLARE__DTLS_FP_LEN;
        memcpy(out + n, fps[i], FLARE__DTLS_FP_LEN);
        n += FLARE__DTLS_FP_LEN;
    }
}

int flare__webrtc_certhash_encode(const uint8_t fp[FLARE__DTLS_FP_LEN], char *out, size_t cap)
{
    uint8_t mh[2 + FLARE__DTLS_FP_LEN] = {MH_SHA256, FLARE__DTLS_FP_LEN};
    memcpy(mh + 2, fp, FLARE__DTLS_FP_LEN);
    int n = flare_multibase_encode(FLARE_MULTIBASE_BASE64URL, mh, sizeof(mh), out, cap);
    if (n < 0)
        return n;
    if ((size_t)n >= cap)
        return FLARE_ERR_BUFFER_TOO_SMALL;
    out[n] = 0;
    return 0;
}

int flare__webrtc_certhash_decode(const char *s, size_t len, uint8_t fp[FLARE__DTLS_FP_LEN])
{
    uint8_t mh[128];
    flare_multibase base;
    if (len > FLARE__WEBRTC_CERTHASH_MAX * 2)
        return FLARE_ERR_TOO_LARGE;
    int n = flare_multibase_decode(s, len, mh, sizeof(mh), &base);
    if (n < 0)
        return n;
    if (n != 2 + FLARE__DTLS_FP_LEN || mh[0] != MH_SHA256 || mh[1] != FLARE__DTLS_FP_LEN)
        return FLARE_ERR_UNSUPPORTED;
    memcpy(fp, mh + 2, FLARE__DTLS_FP_LEN);
    return 0;
}

static void fail(flare__webrtc_pc *pc, int err)
{
    if (pc->state == FLARE__WEBRTC_PC_FAILED)
        return;
    pc->state = FLARE__WEBRTC_PC_FAILED;
    pc->err = err ? err : FLARE_ERR_INTERNAL;
}

/* Noise's output, framed as messages on channel 0. */
static void send_noise(flare__webrtc_pc *pc)
{
    size_t off = 0;
    while (off < pc->nout.len) {
        size_t n = pc->nout.len - off;
        if (n > FLARE__WEBRTC_MAX_DATA)
            n = FLARE__WEBRTC_MAX_DATA;
        flare_buf b;
        flare_buf_init(&b, pc->cfg.mem);
        int rc = flare__webrtc_msg_encode(&b, FLARE__WEBRTC_NO_FLAG, pc->nout.base + off, n);
        if (rc == 0)
            rc = flare__sctp_send(pc->sctp, 0, b.base, b.len);
        flare_buf_free(&b);
        if (rc != 0) {
            fail(pc, rc);
            return;
        }
        off += n;
    }
    flare_buf_reset(&pc->nout);
}

static void noise_done_check(flare__webrtc_pc *pc)
{
    if (pc->state != FLARE__WEBRTC_PC_CONNECTING || !flare_noise_handshake_done(&pc->noise))
        return;
    (void)flare__noise_remote_key_copy(&pc->noise, &pc->remote); /* done: cannot fail */
    /* Authenticated: channel 0 has done its work. The responder, which
     * read the last message, closes it; the initiator leaves that to the
     * peer (the peer closing it closes ours too): a stream reset sent right
     * after the last message can reach libdatachannel before that message
     * does, and its reader then sees the channel end mid-handshake. */
    if (pc->cfg.is_dtls_client)
        (void)flare__sctp_close_channel(pc->sctp, 0);
    pc->state = FLARE__WEBRTC_PC_READY;
}

static void on_ch0(void *user, const uint8_t *data, size_t len)
{
    flare__webrtc_pc *pc = user;
    if (pc->state != FLARE__WEBRTC_PC_CONNECTING || !pc->noise_on)
        return;
    if (pc->ch0.len + len > FLARE__WEBRTC_MAX_MSG + 16 ||
        flare_buf_append(&pc->ch0, data, len) != 0) {
        fail(pc, FLARE_ERR_TOO_LARGE);
        return;
    }
    while (pc->ch0.len > 0 && pc->state == FLARE__WEBRTC_PC_CONNECTING) {
        flare__webrtc_msg m;
        long k = flare__webrtc_msg_parse(pc->ch0.base, pc->ch0.len, &m);
        if (k == FLARE_ERR_AGAIN)
            break;
        if (k < 0) {
            fail(pc, FLARE_ERR_PROTO);
            return;
        }
        if (m.len > 0) {
            int rc = flare_noise_recv(&pc->noise, m.data, m.len, &pc->nout, &pc->plain);
            if (rc != 0) {
                fail(pc, rc);
                return;
            }
            send_noise(pc);
            noise_done_check(pc);
        }
        flare_buf_consume(&pc->ch0, (size_t)k);
    }
}

/* DTLS is up: SCTP over it, channel 0, and Noise bound to both
 * certificates. */
static int start_upper(flare__webrtc_pc *pc, flare_tstamp now)
{
    flare__sctp_cfg sc = {.is_dtls_client = pc->cfg.is_dtls_client,
                          .mtu = flare__dtls_data_mtu(pc->dtls),
                          .mem = pc->cfg.mem};
    int noise = pc->cfg.authenticated == NULL;
    sc.use_ch0 = !noise;
    int rc = flare__sctp_new(&pc->sctp, &sc, now);
    if (rc != 0)
        return rc;
    if (noise && (rc = flare__sctp_open_negotiated(pc->sctp, 0)) != 0)
        return rc;
    flare__webrtc_mux_cfg mc = {.sctp = pc->sctp,
                                .max_streams = pc->cfg.max_streams,
                                .mem = pc->cfg.mem,
                                .flush = pc->cfg.flush,
                                .user = pc->cfg.user,
                                .on_ch0 = on_ch0,
                                .ch0_user = pc,
                                .ch0_reserved = noise};
    if ((rc = flare__webrtc_mux_new(&pc->mux, &mc)) != 0)
        return rc;
    if (!noise)
        return 0;
    uint8_t prologue[FLARE__WEBRTC_PROLOGUE_LEN];
    const uint8_t *mine = flare__dtls_cert_fingerprint(pc->cfg.cert);
    const uint8_t *theirs = flare__dtls_peer_fingerprint(pc->dtls);
    /* The DTLS server initiates Noise; the responder's fingerprint first. */
    if (pc->cfg.is_dtls_client)
        flare__webrtc_noise_prologue(mine, theirs, prologue);
    else
        flare__webrtc_noise_prologue(theirs, mine, prologue);
    flare_noise_settings ns;
    flare_noise_settings_default(&ns);
    ns.identity = pc->cfg.identity;
    ns.initiator = !pc->cfg.is_dtls_client;
    ns.expected_remote = pc->cfg.expected_remote;
    ns.prologue = prologue;
    ns.prologue_len = sizeof(prologue);
    if ((rc = flare_noise_init(&pc->noise, &ns, pc->cfg.mem, pc->cfg.rng)) != 0)
        return rc;
    pc->noise_on = 1;
    return 0;
}

/* DTLS's decrypted datagrams into SCTP. */
static void shuttle(flare__webrtc_pc *pc, flare_tstamp now)
{
    long k;
    if (pc->sctp != NULL) {
        while ((k = flare__dtls_read(pc->dtls, pc->pkt, sizeof(pc->pkt))) > 0)
            flare__sctp_input(pc->sctp, pc->pkt, (size_t)k, now);
    }
}

static void maybe_start_noise(flare__webrtc_pc *pc)
{
    if (pc->noise_on != 1 || pc->cfg.is_dtls_client || !flare__sctp_is_up(pc->sctp))
        return;
    pc->noise_on = 2; /* started */
    int rc = flare_noise_start(&pc->noise, &pc->nout);
    if (rc != 0) {
        fail(pc, rc);
        return;
    }
    send_noise(pc);
}

static int step(flare__webrtc_pc *pc, flare_tstamp now)
{
    if (pc->state == FLARE__WEBRTC_PC_FAILED)
        return pc->err;
    flare__dtls_state ds = flare__dtls_get_state(pc->dtls);
    if (ds == FLARE__DTLS_FAILED || ds == FLARE__DTLS_CLOSED) {
        fail(pc, ds == FLARE__DTLS_FAILED ? flare__dtls_error(pc->dtls) : FLARE_ERR_CLOSED);
        return pc->err;
    }
    if (ds == FLARE__DTLS_CONNECTED && pc->sctp == NULL) {
        int rc = start_upper(pc, now);
        if (rc != 0) {
            fail(pc, rc);
            return rc;
        }
    }
    shuttle(pc, now);
    if (pc->sctp != NULL) {
        if (flare__sctp_is_up(pc->sctp) && pc->cfg.authenticated != NULL &&
            pc->state == FLARE__WEBRTC_PC_CONNECTING) {
            pc->remote = *pc->cfg.authenticated;
            pc->state = FLARE__WEBRTC_PC_READY;
        }
        if (flare__sctp_is_up(pc->sctp))
            maybe_start_noise(pc);
        if (pc->state == FLARE__WEBRTC_PC_CONNECTING)
            flare__webrtc_mux_pump(pc->mux);
    }
    if (pc->state == FLARE__WEBRTC_PC_CONNECTING && now >= pc->deadline)
        fail(pc, FLARE_ERR_TIMEOUT);
    return pc->state == FLARE__WEBRTC_PC_FAILED ? pc->err : 0;
}

int flare__webrtc_pc_new(flare__webrtc_pc **out, const flare__webrtc_pc_cfg *cfg, flare_tstamp now)
{
    if (out == NULL || cfg == NULL || cfg->cert == NULL || cfg->identity == NULL ||
        cfg->rng.fn == NULL)
        return FLARE_ERR_INVALID_ARG;
    flare__webrtc_pc *pc = flare__calloc(cfg->mem, 1, sizeof(*pc));
    if (pc == NULL)
        return FLARE_ERR_NOMEM;
    pc->cfg = *cfg;
    flare_buf_init(&pc->ch0, cfg->mem);
    flare_buf_init(&pc->nout, cfg->mem);
    flare_buf_init(&pc->plain, cfg->mem);
    pc->deadline = now + (cfg->timeout ? cfg->timeout : PC_TIMEOUT);
    flare__dtls_cfg dc = {.is_client = cfg->is_dtls_client,
                          .cert = cfg->cert,
                          .expected_fp = cfg->remote_fp,
                          .mem = cfg->mem};
    int rc = flare__dtls_new(&pc->dtls, &dc, now);
    if (rc != 0) {
        flare__webrtc_pc_del(pc);
        return rc;
    }
    *out = pc;
    return 0;
}

void flare__webrtc_pc_del(flare__webrtc_pc *pc)
{
    if (pc == NULL)
        return;
    flare__webrtc_mux_del(pc->mux);
    flare__sctp_del(pc->sctp);
    flare__dtls_del(pc->dtls);
    if (pc->noise_on)
        flare_noise_free(&pc->noise);
    flare_buf_free(&pc->ch0);
    flare_buf_free(&pc->nout);
    flare_buf_free(&pc->plain);
    flare__free(pc->cfg.mem, pc);
}

int flare__webrtc_pc_input(flare__webrtc_pc *pc, const uint8_t *dgram, size_t len, flare_tstamp now)
{
    if (pc->state == FLARE__WEBRTC_PC_FAILED)
        return pc->err;
    (void)flare__dtls_input(pc->dtls, dgram, len, now);
    return step(pc, now);
}

/* SCTP packets become DTLS records. */
static void seal_sctp(flare__webrtc_pc *pc)
{
    if (pc->sctp != NULL && flare__dtls_get_state(pc->dtls) == FLARE__DTLS_CONNECTED) {
        long k;
        while ((k = flare__sctp_pop_out(pc->sctp, pc->pkt, sizeof(pc->pkt))) > 0)
            (void)flare__dtls_send(pc->dtls, pc->pkt, (size_t)k); /* a full queue: lost */
    }
}

long flare__webrtc_pc_pop_out(flare__webrtc_pc *pc, uint8_t *dst, size_t cap)
{
    seal_sctp(pc);
    return flare__dtls_pop_out(pc->dtls, dst, cap);
}

void flare__webrtc_pc_close(flare__webrtc_pc *pc, int abort)
{
    if (pc->sctp != NULL)
        flare__sctp_shutdown(pc->sctp, abort);
    seal_sctp(pc);
    flare__dtls_close(pc->dtls);
    fail(pc, abort ? FLARE_ERR_RESET : FLARE_ERR_CLOSED);
}

flare_tstamp flare__webrtc_pc_expiry(const flare__webrtc_pc *pc)
{
    if (pc->state == FLARE__WEBRTC_PC_FAILED)
        return FLARE_TSTAMP_NEVER;
    flare_tstamp e = flare__dtls_expiry(pc->dtls);
    if (pc->sctp != NULL) {
        flare_tstamp s = flare__sctp_expiry(pc->sctp);
        if (s < e)
            e = s;
    }
    if (pc->state == FLARE__WEBRTC_PC_CONNECTING && pc->deadline < e)
        e = pc->deadline;
    return e;
}

int flare__webrtc_pc_handle_expiry(flare__webrtc_pc *pc, flare_tstamp now)
{
    if (pc->state == FLARE__WEBRTC_PC_FAILED)
        return pc->err;
    (void)flare__dtls_handle_expiry(pc->dtls, now);
    if (pc->sctp != NULL)
        flare__sctp_handle_expiry(pc->sctp, now);
    return step(pc, now);
}

flare__webrtc_pc_state flare__webrtc_pc_get_state(const flare__webrtc_pc *pc)
{
    return pc->state;
}

int flare__webrtc_pc_error(const flare__webrtc_pc *pc)
{
    return pc->err;
}

const flare_pubkey *flare__webrtc_pc_remote_key(const flare__webrtc_pc *pc)
{
    return pc->state == FLARE__WEBRTC_PC_READY ? &pc->remote : NULL;
}

flare__webrtc_mux *flare__webrtc_pc_mux(flare__webrtc_pc *pc)
{
    return pc->state == FLARE__WEBRTC_PC_READY ? pc->mux : NULL;
}
