/*
 * What the two WebRTC transports (webrtc_direct.c, webrtc_p2p.c) do alike
 * with a peer connection (pc.h) once they have one: its configuration from
 * the host, its datagrams out, its news to the host (the session once
 * READY, input after), the host letting go of the connection, and the
 * guard that keeps a link alive while a host call made from it runs; and
 * the DTLS certificate either makes when the host gave none.
 *
 * Each transport embeds a flare__webrtc_link in its own link and gives the
 * ops for what differs: how datagrams leave (ICE-lite's peer address, or
 * the pair ICE selected), its own deadlines (STUN, ICE, set-up), how the
 * link is freed. The rest stays the transport's: ICE-lite, the certhash and
 * Noise for webrtc-direct; signalling and the ICE agent for p2p.
 */
#ifndef FLARE_WEBRTC_LINK_H
#define FLARE_WEBRTC_LINK_H

#include "transport/transport.h"
#include "transport/webrtc/pc.h"

typedef struct flare__webrtc_link flare__webrtc_link;

typedef struct flare__webrtc_link_ops {
    void (*flush)(flare__webrtc_link *l); /* all the link has to send, out */
    /* The link's next deadline, pc's included (FLARE_TSTAMP_NEVER: none). */
    flare_tstamp (*expiry)(const flare__webrtc_link *l);
    /* The timer fired (pc's expiry handled already): the link's own, then news. */
    void (*timer)(flare__webrtc_link *l);
    void (*free)(flare__webrtc_link *l); /* unlinks it, deinits l, frees it */
    /* Optional: just before the host gets the session s (READY). */
    void (*up)(flare__webrtc_link *l, flare__session *s);
    const char *security; /* the session's: how the peer was authenticated */
} flare__webrtc_link_ops;

struct flare__webrtc_link {
    const flare__webrtc_link_ops *ops;
    flare_host *h;
    flare__webrtc_pc *pc;
    flare_io_timer *timer;
    flare_conn *c; /* NULL once the host let go */
    int ready;     /* the host has the session */
    int busy;      /* host calls from the link running: free it after */
    int dead;      /* to free once neither busy nor pending */
    int pending;   /* a callback of another's still points at it */
};

/* A DTLS certificate of our own, valid from a day ago (clock skew) for ten
 * years: a /certhash that names it must not expire under a running node. */
int flare__webrtc_cert_new(flare_host *h, flare_rng rng, flare__dtls_cert **out);
/* 1 once h's WebRTC-direct certificate exists (imported at host creation,
 * or made by the first listen, dial or export; tests). */
int flare__webrtc_direct_cert_made(flare_host *h);

/* A zeroed link of size bytes (the transport's, l its first member) with
 * its timer, or NULL. */
void *flare__webrtc_link_new(size_t size, const flare__webrtc_link_ops *ops, flare_host *h,
                             flare_conn *c);
/* The timer and pc, gone (ops->free calls it; the caller frees the link). */
void flare__webrtc_link_deinit(flare__webrtc_link *l);
/* The timer at ops->expiry. */
void flare__webrtc_link_arm(flare__webrtc_link *l);
/* The peer connection's settings every link shares (the caller adds the
 * role, the fingerprint and who the peer must be). */
void flare__webrtc_link_pc_cfg(flare__webrtc_link *l, const flare__dtls_cert *cert,
                               flare__webrtc_pc_cfg *cfg);
/* pc's datagrams, each to `to` over u, through the scratch buf. */
void flare__webrtc_link_send(flare__webrtc_link *l, flare_io_udp *u, const flare_ipaddr *to,
                             uint8_t *buf, size_t cap);
/* With busy held: pc's news to the host. pc's error once it failed, else 0. */
int flare__webrtc_link_report(flare__webrtc_link *l);
/* Ends a busy stretch (busy--) whose outcome was err: the link is lost
 * (err), or freed if the host let go (now, or once no longer busy or
 * pending), or else its datagrams go out and its timer is armed. The caller
 * must not touch the link afterwards. */
void flare__webrtc_link_settled(flare__webrtc_link *l, int err);
/* The link failed or ended by itself: c fails with err (0: CLOSED). */
void flare__webrtc_link_lost(flare__webrtc_link *l, int err);
/* The transport's ops->close: the host let go of c. */
void flare__webrtc_link_close(flare__webrtc_link *l, int abort);

#endif
