/*
 * /webrtc-signaling/0.0.1 (libp2p/specs webrtc/webrtc.md): over a relayed
 * connection the dialer sends its SDP offer, the listener answers, both
 * trickle ICE candidates; uvarint-length-prefixed
 *
 *   message Message { optional Type type = 1; optional string data = 2; }
 *   enum Type { SDP_OFFER = 0; SDP_ANSWER = 1; ICE_CANDIDATE = 2; }
 *
 * data is the SDP (sdp.h) or a candidate's JSON. A message is at most
 * FLARE__SIGNAL_MAX_MSG bytes.
 */
#ifndef FLARE_WEBRTC_SIGNAL_H
#define FLARE_WEBRTC_SIGNAL_H

#include "flare/buf.h"
#include "flare/common.h"

#define FLARE__SIGNAL_PROTOCOL_ID "/webrtc-signaling/0.0.1"
#define FLARE__SIGNAL_MAX_MSG     (16384 + 64)

enum {
    FLARE__SIGNAL_SDP_OFFER = 0,
    FLARE__SIGNAL_SDP_ANSWER = 1,
    FLARE__SIGNAL_ICE_CANDIDATE = 2,
};

typedef struct flare__signal_msg {
    int type;         /* one of the three */
    const char *data; /* into the input, not NUL-terminated; "" if absent */
    size_t len;
} flare__signal_msg;

/* The first message of in: bytes taken (> 0), FLARE_ERR_AGAIN,
 * FLARE_ERR_TOO_LARGE, FLARE_ERR_MALFORMED / FLARE_ERR_OVERLONG /
 * FLARE_ERR_TRUNCATED, FLARE_ERR_UNKNOWN_CODE (type missing or unknown). */
long flare__signal_parse(const uint8_t *in, size_t len, flare__signal_msg *m);
int flare__signal_encode(flare_buf *out, int type, const char *data, size_t len);

#endif
