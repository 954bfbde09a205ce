/* Internal: the multiaddr protocol table and per-protocol value codecs. */
#ifndef FLARE_CORE_MULTIADDR_INTERNAL_H
#define FLARE_CORE_MULTIADDR_INTERNAL_H

#include "flare/multiaddr.h"

/* How a protocol's value is written in text. */
typedef enum flare__ma_kind {
    FLARE__MA_NONE,     /* no value */
    FLARE__MA_IP4,      /* 4 bytes */
    FLARE__MA_IP6,      /* 16 bytes */
    FLARE__MA_PORT,     /* 2 bytes big-endian, decimal */
    FLARE__MA_U8,       /* 1 byte, decimal (ipcidr) */
    FLARE__MA_NAME,     /* variable: non-empty, no '/' or NUL */
    FLARE__MA_PATH,     /* variable: canonical absolute path (unix) */
    FLARE__MA_PEERID,   /* variable: multihash, base58btc / CID in text */
    FLARE__MA_CERTHASH, /* variable: multihash, multibase in text */
} flare__ma_kind;

typedef struct flare__ma_proto {
    uint64_t code;
    const char *name;
    int size; /* fixed value size in bytes, or -1 for a length-prefixed one */
    flare__ma_kind kind;
} flare__ma_proto;

const flare__ma_proto *flare__ma_proto_by_code(uint64_t code);
const flare__ma_proto *flare__ma_proto_by_name(const char *name, size_t len);

/* Validates a binary value of protocol p. 0 or a FLARE_ERR_*. */
int flare__ma_value_check(const flare__ma_proto *p, const uint8_t *v, size_t len);
/* Binary value -> text (NUL-terminated); returns the length. */
int flare__ma_value_to_text(const flare__ma_proto *p, const uint8_t *v, size_t len, char *out,
                            size_t cap);
/* Text value s[0..len) -> binary value in out; returns its length. */
int flare__ma_value_from_text(const flare__ma_proto *p, const char *s, size_t len, uint8_t *out,
                              size_t cap);

#endif
