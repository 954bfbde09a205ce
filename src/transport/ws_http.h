/*
 * The HTTP/1.1 upgrade that opens a WebSocket (RFC 6455 section 4): the
 * client's GET request and the server's 101 answer, built and parsed here.
 * The parsers take a complete header block (up to the blank line) and keep
 * to fixed bounds, so a peer cannot make us hold more than
 * FLARE__WS_HTTP_MAX bytes before the connection is refused.
 */
#ifndef FLARE_TRANSPORT_WS_HTTP_H
#define FLARE_TRANSPORT_WS_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "flare/buf.h"

#define FLARE__WS_HTTP_MAX   8192 /* header block, request line included */
#define FLARE__WS_HTTP_LINES 64   /* header fields */
#define FLARE__WS_KEY_LEN    24   /* base64 of 16 bytes */
#define FLARE__WS_ACCEPT_LEN 28   /* base64 of a SHA-1 digest */
#define FLARE__WS_HOST_MAX   320  /* a DNS name, a port and brackets */

/* Where the blank line that ends a header block is: the length of the block
 * including it, or 0 if data does not hold one yet. */
size_t flare__ws_http_end(const uint8_t *data, size_t len);

/* Sec-WebSocket-Accept for a key: base64(SHA-1(key + the RFC's GUID)). out
 * receives FLARE__WS_ACCEPT_LEN characters and a NUL. */
int flare__ws_accept_for(const char *key, size_t keylen, char *out);

/* The client's request for host (the Host field) and path, with the key
 * made from nonce (16 random bytes), which is written to key (NUL ended). */
int flare__ws_http_request(flare_buf *out, const char *host, const char *path,
                           const uint8_t nonce[16], char *key);

/* Parses a client's request block (as found by flare__ws_http_end). Returns
 * 0 and the accept value to answer with, or an HTTP status to refuse with
 * (400, 405, 426, 431, 505). */
int flare__ws_http_parse_request(const uint8_t *data, size_t len, char *accept);

/* The server's 101 answer, and a refusal with status (426 names the version
 * we speak). */
int flare__ws_http_response(flare_buf *out, const char *accept);
int flare__ws_http_refusal(flare_buf *out, int status);

/* Parses the server's answer block. Returns 0 if it is a 101 with the
 * expected accept value, FLARE_ERR_REFUSED for another status, or
 * FLARE_ERR_PROTO for a malformed or wrong answer. */
int flare__ws_http_parse_response(const uint8_t *data, size_t len, const char *accept);

#endif
