/*
 * flare/lpframe.h - unsigned-varint length-prefixed frames.
 *
 * multistream-select and every protobuf protocol (identify, AutoNAT, relay,
 * DCUtR, kad) frame their messages as uvarint(len) || bytes.
 */
#ifndef FLARE_LPFRAME_H
#define FLARE_LPFRAME_H

#include "flare/buf.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Looks for one complete frame at the start of in[0..len). On success sets
 * *msg and *msglen (pointing into in) and returns the bytes the frame occupies.
 * FLARE_ERR_AGAIN: incomplete; FLARE_ERR_TOO_LARGE: the announced length
 * exceeds max; FLARE_ERR_OVERLONG: a bad varint. */
int flare_lpframe_parse(const uint8_t *in, size_t len, size_t max, const uint8_t **msg,
                        size_t *msglen);

/* Streaming form for a reader that gets a frame in pieces: appends data to
 * acc, then looks for the frame at acc's start as flare_lpframe_parse does
 * (returns its size, FLARE_ERR_AGAIN, FLARE_ERR_TOO_LARGE or
 * FLARE_ERR_OVERLONG). acc may hold at most a largest frame plus slack
 * bytes (what may follow the frame, e.g. early data): beyond that nothing is
 * appended and FLARE_ERR_LIMIT is returned. FLARE_ERR_NOMEM likewise. */
int flare_lpframe_accumulate(flare_buf *acc, const uint8_t *data, size_t len, size_t max,
                             size_t slack, const uint8_t **msg, size_t *msglen);

/* Appends uvarint(len) || msg to out. */
/* Returns 0, or FLARE_ERR_NOMEM. */
int flare_lpframe_append(flare_buf *out, const uint8_t *msg, size_t len);

#ifdef __cplusplus
}
#endif
#endif
