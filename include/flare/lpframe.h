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

/* Appends uvarint(len) || msg to out. */
int flare_lpframe_append(flare_buf *out, const uint8_t *msg, size_t len);

#ifdef __cplusplus
}
#endif
#endif
