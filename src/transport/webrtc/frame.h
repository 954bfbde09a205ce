/*
 * libp2p's framing on WebRTC data channels (libp2p/specs webrtc/README.md):
 * each data channel is one libp2p stream carrying uvarint-length-prefixed
 * protobuf messages
 *
 *   message Message { optional Flag flag = 1; optional bytes message = 2; }
 *   enum Flag { FIN = 0; STOP_SENDING = 1; RESET_STREAM = 2; FIN_ACK = 3; }
 *
 * A message, prefix included, is at most 16 KiB (RFC 8831's advice against
 * monopolizing the association). Senders put one message in each SCTP
 * message; the parser reads the channel as a byte stream, as other
 * implementations do, so a message split over SCTP messages or several in
 * one are both accepted.
 */
#ifndef FLARE_WEBRTC_FRAME_H
#define FLARE_WEBRTC_FRAME_H

#include "flare/buf.h"
#include "flare/common.h"

#define FLARE__WEBRTC_MAX_MSG 16384
/* Payload bytes that fit in one message: the prefix takes 2 bytes, the
 * message field's tag and length 3, a flag field 2. */
#define FLARE__WEBRTC_MAX_DATA (FLARE__WEBRTC_MAX_MSG - 2 - 3 - 2)

enum {
    FLARE__WEBRTC_FIN = 0,
    FLARE__WEBRTC_STOP_SENDING = 1,
    FLARE__WEBRTC_RESET_STREAM = 2,
    FLARE__WEBRTC_FIN_ACK = 3,
    FLARE__WEBRTC_NO_FLAG = -1,
};

typedef struct flare__webrtc_msg {
    int flag;            /* FLARE__WEBRTC_NO_FLAG, or one of the four (others ignored) */
    const uint8_t *data; /* points into the input; NULL if absent */
    size_t len;
} flare__webrtc_msg;

/* Parses the first message of in: the bytes it took (> 0) with *m filled,
 * FLARE_ERR_AGAIN (incomplete), FLARE_ERR_TOO_LARGE (a prefix over the
 * limit), FLARE_ERR_OVERLONG / FLARE_ERR_MALFORMED / FLARE_ERR_TRUNCATED
 * (not a valid message). */
/* The head of one uvarint-length-prefixed message of at most max bytes
 * (prefix included), shared by the stream messages and /webrtc-signaling:
 * the prefix's length with *n the body's once all of it is in, else
 * FLARE_ERR_AGAIN, FLARE_ERR_TOO_LARGE or the varint's error. */
int flare__webrtc_lp_head(const uint8_t *in, size_t len, size_t max, uint64_t *n);
long flare__webrtc_msg_parse(const uint8_t *in, size_t len, flare__webrtc_msg *m);
/* Appends one message (flag may be FLARE__WEBRTC_NO_FLAG; data NULL: no
 * message field). len at most FLARE__WEBRTC_MAX_DATA. */
int flare__webrtc_msg_encode(flare_buf *out, int flag, const uint8_t *data, size_t len);

#endif
