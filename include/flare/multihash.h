/*
 * flare/multihash.h - multihash (identity and sha2-256).
 */
#ifndef FLARE_MULTIHASH_H
#define FLARE_MULTIHASH_H

#include "flare/common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FLARE_MH_IDENTITY     0x00
#define FLARE_MH_SHA2_256     0x12
#define FLARE_MH_SHA2_256_LEN 32

typedef struct flare_multihash_view {
    uint64_t code;
    const uint8_t *digest; /* points into the parsed input */
    size_t digest_len;
} flare_multihash_view;

/* Parses a multihash at the start of in[0..len). Returns bytes consumed.
 * Errors: FLARE_ERR_TRUNCATED, FLARE_ERR_OVERLONG (varints),
 * FLARE_ERR_MALFORMED (sha2-256 digest not 32 bytes). Unknown codes parse
 * (the structure is generic); check mh->code if you need a known one. */
int flare_multihash_parse(const uint8_t *in, size_t len, flare_multihash_view *mh);

/* As above but the multihash must fill in[0..len) exactly. */
/* Returns len, or FLARE_ERR_MALFORMED (also for trailing bytes). */
int flare_multihash_parse_exact(const uint8_t *in, size_t len, flare_multihash_view *mh);

/* Hashes data with code (identity copies it) and writes the multihash to
 * out. Returns its length. Errors: FLARE_ERR_UNSUPPORTED,
 * FLARE_ERR_BUFFER_TOO_SMALL. */
int flare_multihash_sum(uint64_t code, const uint8_t *data, size_t len, uint8_t *out, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
