/*
 * The peer-connection side of a WebRTC link, shared by both transports
 * (link.h).
 */
#include "transport/webrtc/link.h"

#include "core/mem.h"

#define CERT_DAYS    3650
#define SECS_PER_DAY 86400

int flare__webrtc_cert_new(flare_host *h, flare_rng rng, flare__dtls_cert **out)
{
    int64_t now = (int64_t)h->io->ops->unix_time(h->io);
    return flare__dtls_cert_generate(out, rng, now - SECS_PER_DAY,
                                     now + (int64_t)CERT_DAYS * SECS_PER_DAY);
}

/* The muxer's flush: host writes go out now (no host calls from here). */
static void on_mux_flush(void *user)
{
    flare__webrtc_link *l = user;
    l->ops->flush(l);
    flare__webrtc_link_arm(l);
}

static void on_timer(flare_io_timer *tm, void *user)
{
    flare__webrtc_link *l = user;
    if (l->pc)
        (void)flare__webrtc_pc_handle_expiry(l->pc, flare_io_now(l->h->io));
    l->ops->timer(l);
}

void *flare__webrtc_link_new(size_t size, const flare__webrtc_link_ops *ops, flare_host *h,
                             flare_conn *c)
{
    flare__webrtc_link *l = flare__calloc(h->mem, 1, size);
    if (!l)
        return NULL;
    if (h->io->ops->timer_new(h->io, on_timer, l, &l->timer) != 0) {
        flare__free(h->mem, l);
        return NULL;
    }
    l->ops = ops;
    l->h = h;
    l->c = c;
    return l;
}

void flare__webrtc_link_deinit(flare__webrtc_link *l)
{
    if (l->timer)
        l->h->io->ops->timer_del(l->timer);
    l->timer = NULL;
    flare__webrtc_pc_del(l->pc);
    l->pc = NULL;
}

void flare__webrtc_link_arm(flare__webrtc_link *l)
{
    flare_tstamp at = l->ops->expiry(l);
    flare_io *io = l->h->io;
    if (!l->timer)
        return;
    if (at == FLARE_TSTAMP_NEVER)
        io->ops->timer_stop(l->timer);
    else
        io->ops->timer_start(l->timer, at);
}

void flare__webrtc_link_pc_cfg(flare__webrtc_link *l, const flare__dtls_cert *cert,
                               flare__webrtc_pc_cfg *cfg)
{
    flare_host *h = l->h;
    cfg->cert = cert;
    cfg->identity = &h->key;
    cfg->timeout = h->cfg.handshake_timeout;
    cfg->rng = h->rng;
    /* Charged to the connection's budget once there is one. */
    cfg->mem = l->c ? &l->c->rc.mem : h->mem;
    cfg->flush = on_mux_flush;
    cfg->user = l;
}

void flare__webrtc_link_send(flare__webrtc_link *l, flare_io_udp *u, const flare_ipaddr *to,
                             uint8_t *buf, size_t cap)
{
    flare_io *io = l->h->io;
    long n;
    while ((n = flare__webrtc_pc_pop_out(l->pc, buf, cap)) > 0)
        io->ops->udp_send(u, to, buf, (size_t)n);
}

int flare__webrtc_link_report(flare__webrtc_link *l)
{
    flare__webrtc_pc_state st = flare__webrtc_pc_get_state(l->pc);
    if (st == FLARE__WEBRTC_PC_FAILED)
        return flare__webrtc_pc_error(l->pc);
    if (st == FLARE__WEBRTC_PC_READY && l->c && !l->ready) {
        l->ready = 1;
        flare__session s = {
            .remote_key = flare__webrtc_pc_remote_key(l->pc),
            .security = l->ops->security,
            .muxer = "webrtc",
            .mux = &flare__webrtc_mux_ops,
            .mux_st = flare__webrtc_pc_mux(l->pc),
        };
        if (l->ops->up)
            l->ops->up(l, &s);
        flare__conn_session_ready(l->c, &s); /* on failure c fails: close follows */
    } else if (l->ready && l->c) {
        flare__conn_session_input(l->c);
    }
    return 0;
}

/* After news: 1 if the link is over (freed now, or once no longer busy or
 * pending) and the caller must not touch it, else 0. */
static int release(flare__webrtc_link *l)
{
    if (!l->dead && l->c)
        return 0;
    if (!l->busy && !l->pending)
        l->ops->free(l);
    return 1;
}

void flare__webrtc_link_settled(flare__webrtc_link *l, int err)
{
    l->busy--;
    if (err) {
        flare__webrtc_link_lost(l, err);
        return;
    }
    if (release(l))
        return;
    l->ops->flush(l);
    flare__webrtc_link_arm(l);
}

void flare__webrtc_link_lost(flare__webrtc_link *l, int err)
{
    flare_conn *c = l->c;
    l->c = NULL;
    if (l->busy || l->pending)
        l->dead = 1;
    else
        l->ops->free(l);
    if (c)
        flare__conn_transport_lost(c, err ? err : FLARE_ERR_CLOSED);
}

void flare__webrtc_link_close(flare__webrtc_link *l, int abort)
{
    l->c = NULL;
    /* Tell the peer (SCTP, then close_notify) rather than let it time out. */
    if (l->pc) {
        flare__webrtc_pc_close(l->pc, abort);
        l->ops->flush(l);
    }
    /* Now, while c lives: the peer connection allocates from c's budget. */
    flare__webrtc_pc_del(l->pc);
    l->pc = NULL;
    if (l->busy || l->pending) {
        l->dead = 1;
        return;
    }
    l->ops->free(l);
}
