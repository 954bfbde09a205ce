/* security/tls/tls_der.h - a minimal, bounded DER reader and writer for the
 * few structures libp2p TLS parses by hand (peer input). Single-byte tags,
 * definite minimal lengths of at most 3 length bytes (16 MiB). */
#ifndef FLARE_SECURITY_TLS_DER_H
#define FLARE_SECURITY_TLS_DER_H

#include <stddef.h>
#include <stdint.h>

#define FLARE__DER_INTEGER      0x02
#define FLARE__DER_BIT_STRING   0x03
#define FLARE__DER_OCTET_STRING 0x04
#define FLARE__DER_SEQUENCE     0x30

/* A byte range; readers consume it from the front. */
typedef struct flare__der {
    const uint8_t *p;
    size_t len;
} flare__der;

/* Reads one TLV with tag from d: *val gets the contents, *whole (may be NULL)
 * the whole TLV. Returns 0, FLARE_ERR_TRUNCATED (d ends early),
 * FLARE_ERR_MALFORMED (wrong tag, indefinite or non-minimal length). */
int flare__der_get(flare__der *d, uint8_t tag, flare__der *val, flare__der *whole);

/* Appends tag, length and len bytes of val to out[*pos..cap). Returns 0 or
 * FLARE_ERR_BUFFER_TOO_SMALL. */
int flare__der_put(uint8_t *out, size_t cap, size_t *pos, uint8_t tag, const uint8_t *val,
                   size_t len);

#endif
