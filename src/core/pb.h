/*
 * Internal protobuf helpers.
 *
 * flare__pb_allocator() adapts a flare_mem to protobuf-c, so generated
 * unpackers allocate through the module's hooks.
 *
 * The reader walks the fields of a message without allocating: length-
 * delimited fields come back as views into the input, so decoders can hand
 * out pointers into the caller's bytes and report precise errors (protobuf-c
 * only says "failed").
 */
#ifndef FLARE_CORE_PB_H
#define FLARE_CORE_PB_H

#include <protobuf-c/protobuf-c.h>

#include "flare/buf.h"
#include "flare/common.h"

/* A ProtobufCAllocator over mem (NULL = libc). The allocator keeps a pointer
 * to mem, which must outlive it. */
ProtobufCAllocator flare__pb_allocator(const flare_mem *mem);

enum {
    FLARE__PB_VARINT = 0,
    FLARE__PB_I64 = 1,
    FLARE__PB_LEN = 2,
    FLARE__PB_I32 = 5,
};

typedef struct flare__pb_reader {
    const uint8_t *p;
    size_t len;
    size_t off;
} flare__pb_reader;

typedef struct flare__pb_field {
    uint32_t num;
    int wire;
    uint64_t v;          /* VARINT, I64, I32 */
    const uint8_t *data; /* LEN: points into the input */
    size_t len;
} flare__pb_field;

static inline void flare__pb_reader_init(flare__pb_reader *r, const uint8_t *p, size_t len)
{
    r->p = p;
    r->len = len;
    r->off = 0;
}

/* Reads the next field. Returns 1 with *f filled, 0 at the end of the input,
 * or FLARE_ERR_TRUNCATED, FLARE_ERR_OVERLONG (varint over 10 bytes),
 * FLARE_ERR_MALFORMED (field number 0 or out of range, group wire types). */
int flare__pb_next(flare__pb_reader *r, flare__pb_field *f);

/* Protobuf varint (up to 10 bytes; non-minimal forms are legal protobuf). */
int flare__pb_varint(const uint8_t *in, size_t len, uint64_t *v);

/* Writers appending to a flare_buf. */
int flare__pb_put_varint_field(flare_buf *b, uint32_t num, uint64_t v);
int flare__pb_put_bytes_field(flare_buf *b, uint32_t num, const uint8_t *data, size_t len);

#endif
