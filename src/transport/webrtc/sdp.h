/*
 * The subset of SDP (RFC 8866, RFC 8841 for data channels) that libp2p's
 * WebRTC signalling exchanges: one "application" media section over
 * UDP/DTLS/SCTP with ICE credentials, the DTLS fingerprint (SHA-256) and
 * role, the SCTP port and message size, and candidates (RFC 8839), inline
 * or trickled as the JSON of an RTCIceCandidateInit, as browsers and
 * js-libp2p send them. Everything else is ignored.
 *
 * The parser is for peer input: sizes, line counts and candidates are
 * bounded, and an offer without credentials, fingerprint or the data
 * channel section is refused.
 */
#ifndef FLARE_WEBRTC_SDP_H
#define FLARE_WEBRTC_SDP_H

#include "flare/buf.h"
#include "flare/common.h"
#include "flare/ipaddr.h"

#define FLARE__SDP_MAX_LEN   16384
#define FLARE__SDP_MAX_LINES 256
#define FLARE__SDP_MAX_CANDS 16
#define FLARE__SDP_ICE_MAX   256 /* ufrag / pwd (RFC 8839: 4..256, 22..256) */

typedef enum {
    FLARE__SDP_SETUP_NONE,
    FLARE__SDP_SETUP_ACTPASS,
    FLARE__SDP_SETUP_ACTIVE,  /* DTLS client */
    FLARE__SDP_SETUP_PASSIVE, /* DTLS server */
} flare__sdp_setup;

typedef enum {
    FLARE__CAND_HOST,
    FLARE__CAND_SRFLX,
    FLARE__CAND_PRFLX,
    FLARE__CAND_RELAY,
} flare__cand_type;

typedef struct flare__sdp_cand {
    flare_ipaddr addr; /* UDP only */
    uint32_t priority;
    uint8_t component;
    flare__cand_type type;
    char foundation[33];
} flare__sdp_cand;

typedef struct flare__sdp {
    char ufrag[FLARE__SDP_ICE_MAX + 1];
    char pwd[FLARE__SDP_ICE_MAX + 1];
    uint8_t fp[32];
    int has_fp;
    int ice_lite;
    flare__sdp_setup setup;
    uint16_t sctp_port;        /* 5000 if absent */
    uint32_t max_message_size; /* 65536 if absent (RFC 8841) */
    char mid[33];
    size_t ncand;
    flare__sdp_cand cand[FLARE__SDP_MAX_CANDS]; /* extra ones are dropped */
} flare__sdp;

/* Parses a session description: 0, FLARE_ERR_TOO_LARGE, FLARE_ERR_MALFORMED
 * (a line or value that does not parse), FLARE_ERR_UNSUPPORTED (no data
 * channel section, another fingerprint hash), FLARE_ERR_PROTO (credentials
 * or fingerprint missing). */
int flare__sdp_parse(const char *in, size_t len, flare__sdp *out);

/* One "candidate:..." attribute value (with or without "a=" and the
 * "candidate:" prefix): 0, FLARE_ERR_MALFORMED, FLARE_ERR_UNSUPPORTED (TCP,
 * an mDNS name, another component). */
int flare__sdp_cand_parse(const char *in, size_t len, flare__sdp_cand *c);

/* A trickled candidate: {"candidate":"candidate:...", "sdpMid":...} as
 * js-libp2p sends it. An empty candidate (end of candidates) is
 * FLARE_ERR_NOT_FOUND. */
int flare__sdp_cand_json_parse(const char *in, size_t len, flare__sdp_cand *c);

/* Writes a description with our credentials, fingerprint, role and
 * candidates (session id from sess_id). */
int flare__sdp_write(const flare__sdp *d, uint64_t sess_id, flare_buf *out);
/* Writes a candidate as RTCIceCandidateInit JSON (sdpMid "0"). */
int flare__sdp_cand_json_write(const flare__sdp_cand *c, flare_buf *out);

#endif
