/*
 * flare/varint.h - unsigned varint (multiformats/unsigned-varint).
 *
 * At most 9 bytes (63 bits of value); encodings that are over-long or not
 * minimal (a trailing 0x00 continuation byte) are rejected, as the spec asks.
 */
#ifndef FLARE_VARINT_H
#define FLARE_VARINT_H

#include "flare/common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FLARE_UVARINT_MAX_LEN   9
#define FLARE_UVARINT_MAX_VALUE ((UINT64_C(1) << 63) - 1)

/* Decodes a varint from in[0..len). On success stores the value and returns
 * the number of bytes read (1..9). Errors: FLARE_ERR_TRUNCATED (input ends
 * inside the varint), FLARE_ERR_OVERLONG (more than 9 bytes, or not minimal). */
int flare_uvarint_decode(const uint8_t *in, size_t len, uint64_t *value);

/* Encodes v (<= FLARE_UVARINT_MAX_VALUE) into out (room for
 * FLARE_UVARINT_MAX_LEN). Returns the length, or FLARE_ERR_OUT_OF_RANGE. */
int flare_uvarint_encode(uint64_t v, uint8_t *out);

/* Encoded length of v (1..9), or 0 if v is out of range. */
/* Returns the encoded length of v (1..10). */
size_t flare_uvarint_len(uint64_t v);

#ifdef __cplusplus
}
#endif
#endif
