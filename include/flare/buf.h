/*
 * flare/buf.h - a growable byte buffer, the output side of every protocol core.
 *
 * Cores append what they want sent to a flare_buf owned by the caller
 * (picotls style). The caller drains it (flare_buf_consume) as the transport
 * accepts bytes.
 */
#ifndef FLARE_BUF_H
#define FLARE_BUF_H

#include "flare/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct flare_buf {
    uint8_t *base; /* first unread byte, inside alloc[0..cap) */
    size_t len;    /* unread bytes: base[0..len) */
    size_t cap;    /* size of the allocation at alloc */
    const flare_mem *mem;
    uint8_t *alloc; /* the allocation (NULL: base is the start of it) */
} flare_buf;

/* An empty buffer using mem (NULL: libc); nothing allocated yet. */
void flare_buf_init(flare_buf *b, const flare_mem *mem);
/* Frees the data; b is empty and reusable afterwards. */
void flare_buf_free(flare_buf *b);
/* Ensures room for extra more bytes. */
/* Returns 0, or FLARE_ERR_NOMEM (b unchanged). */
int flare_buf_reserve(flare_buf *b, size_t extra);
/* Returns 0, or FLARE_ERR_NOMEM (b unchanged). */
int flare_buf_append(flare_buf *b, const void *data, size_t len);
/* Returns 0, or FLARE_ERR_NOMEM (b unchanged). */
int flare_buf_append_byte(flare_buf *b, uint8_t c);
/* Appends an unsigned varint. */
/* Returns 0, or FLARE_ERR_NOMEM (b unchanged). */
int flare_buf_append_uvarint(flare_buf *b, uint64_t v);
/* Drops the first n bytes (n <= len) by advancing base: O(1). */
void flare_buf_consume(flare_buf *b, size_t n);
void flare_buf_reset(flare_buf *b);

#ifdef __cplusplus
}
#endif
#endif
