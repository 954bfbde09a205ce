/*
 * libp2p streams over WebRTC data channels, as the host's stream muxer
 * (src/muxer/muxer.h, a session transport's own session): each data
 * channel is one stream, carrying the messages of frame.h.
 *
 * Half-close: close_stream sends FIN; the peer answers FIN_ACK. The data
 * channel is closed (SCTP stream reset) once we sent FIN and had it
 * acknowledged, received the peer's FIN and the reader took every byte;
 * STREAM_CLOSED follows when SCTP confirms. reset_stream sends RESET_STREAM
 * and closes the channel at once. A channel the peer closes without FIN
 * is a reset. A stream whose messages do not parse is reset.
 *
 * Bounds: streams (max_streams, at most the association's channels); bytes
 * received and not yet read, over all streams (max_buffered): beyond them
 * the association is not read, so SCTP's window holds the peer back (one
 * slow reader delays the others, as on any single-window transport).
 *
 * With ch0_reserved, channel 0 is the transport's (webrtc-direct's Noise
 * handshake): its messages go to on_ch0.
 */
#ifndef FLARE_WEBRTC_MUX_H
#define FLARE_WEBRTC_MUX_H

#include "muxer/muxer.h"
#include "transport/webrtc/sctp.h"

#define FLARE__WEBRTC_MUX_BUFFERED (1024 * 1024)

typedef struct flare__webrtc_mux_cfg {
    flare__sctp *sctp;    /* the association (not owned, outlives the muxer) */
    uint32_t max_streams; /* 0: the association's channel limit */
    size_t max_buffered;  /* 0: FLARE__WEBRTC_MUX_BUFFERED */
    const flare_mem *mem;
    /* Called by flush and after timers: the transport sends what the
     * association produced. Optional. */
    void (*flush)(void *user);
    void *user;
    /* Messages on channel 0 (raw SCTP message bytes), for the transport's
     * handshake. Optional: without it they are dropped. */
    void (*on_ch0)(void *ch0_user, const uint8_t *data, size_t len);
    void *ch0_user;
    /* Channel 0 is the transport's (webrtc-direct); else a stream like any. */
    int ch0_reserved;
} flare__webrtc_mux_cfg;

typedef struct flare__webrtc_mux flare__webrtc_mux;

extern const flare__muxer_ops flare__webrtc_mux_ops;

int flare__webrtc_mux_new(flare__webrtc_mux **m, const flare__webrtc_mux_cfg *cfg);
void flare__webrtc_mux_del(flare__webrtc_mux *m);
/* Moves the association's events into the streams (and channel 0's
 * messages to on_ch0) without the host: streams the peer opens before the
 * session is handed over wait as events. */
void flare__webrtc_mux_pump(flare__webrtc_mux *m);

#endif
