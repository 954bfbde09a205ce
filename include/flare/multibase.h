/*
 * flare/multibase.h - multibase text encodings used by libp2p.
 *
 * All encoders NUL-terminate and return the encoded length (without NUL);
 * all decoders return the decoded length. Errors: FLARE_ERR_BUFFER_TOO_SMALL,
 * FLARE_ERR_MALFORMED (a character outside the alphabet or a bad tail),
 * FLARE_ERR_UNKNOWN_CODE (unknown multibase prefix).
 */
#ifndef FLARE_MULTIBASE_H
#define FLARE_MULTIBASE_H

#include "flare/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum flare_multibase {
    FLARE_MULTIBASE_BASE16 = 'f',    /* lower-case hex */
    FLARE_MULTIBASE_BASE32 = 'b',    /* RFC 4648 lower case, no padding */
    FLARE_MULTIBASE_BASE36 = 'k',    /* lower case */
    FLARE_MULTIBASE_BASE58BTC = 'z', /* bitcoin alphabet */
    FLARE_MULTIBASE_BASE64 = 'm',    /* RFC 4648, no padding */
    FLARE_MULTIBASE_BASE64URL = 'u', /* RFC 4648 URL-safe, no padding */
} flare_multibase;

/* Encodes without a prefix. */
/* Returns the characters written, or a negative FLARE_ERR_* code (FLARE_ERR_BUFFER_TOO_SMALL,
 * FLARE_ERR_UNKNOWN_CODE). */
int flare_base_encode(flare_multibase base, const uint8_t *in, size_t len, char *out, size_t cap);
/* Decodes text of length len (no prefix). */
/* Returns the bytes written, or a negative FLARE_ERR_* code (FLARE_ERR_MALFORMED,
 * FLARE_ERR_BUFFER_TOO_SMALL, FLARE_ERR_UNKNOWN_CODE). */
int flare_base_decode(flare_multibase base, const char *in, size_t len, uint8_t *out, size_t cap);
/* Upper bound of the encoded length (without prefix or NUL). */
/* Returns the bound. */
size_t flare_base_encoded_max(flare_multibase base, size_t len);

/* With the one-character multibase prefix. */
/* Returns the characters written, or a negative FLARE_ERR_* code (FLARE_ERR_BUFFER_TOO_SMALL,
 * FLARE_ERR_UNKNOWN_CODE). */
int flare_multibase_encode(flare_multibase base, const uint8_t *in, size_t len, char *out,
                           size_t cap);
/* Returns the bytes written, or a negative FLARE_ERR_* code (FLARE_ERR_TRUNCATED,
 * FLARE_ERR_UNKNOWN_CODE, FLARE_ERR_MALFORMED, FLARE_ERR_BUFFER_TOO_SMALL). */
int flare_multibase_decode(const char *in, size_t len, uint8_t *out, size_t cap,
                           flare_multibase *base);

#ifdef __cplusplus
}
#endif
#endif
