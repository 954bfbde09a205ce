/*
 * flare/identify.h - the identify message (/ipfs/id/1.0.0 and
 * /ipfs/id/push/1.0.0), encoding and bounds-checked decoding.
 *
 * On the wire the message is one uvarint-length-prefixed protobuf; the
 * responder writes it and closes its side. Decoding keeps what is valid and
 * drops what is not (an unparsable listen address, an over-long protocol),
 * like go and rust do, but rejects a message that is not a protobuf, is too
 * large, or carries an undecodable public key.
 */
#ifndef FLARE_IDENTIFY_H
#define FLARE_IDENTIFY_H

#include "flare/buf.h"
#include "flare/keys.h"
#include "flare/multiaddr.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FLARE_IDENTIFY_ID               "/ipfs/id/1.0.0"
#define FLARE_IDENTIFY_PUSH_ID          "/ipfs/id/push/1.0.0"
#define FLARE_IDENTIFY_PROTOCOL_VERSION "ipfs/0.1.0"
#define FLARE_IDENTIFY_MAX_MSG          8192 /* as js and go: peer records make it larger than 4 KiB */
#define FLARE_IDENTIFY_MAX_ADDRS        64
#define FLARE_IDENTIFY_MAX_PROTOCOLS    128

typedef struct flare_identify_msg {
    /* Each has_* says whether the field was present (push: absent = unchanged). */
    int has_protocol_version, has_agent_version, has_pubkey, has_observed;
    int has_listen_addrs, has_protocols;
    char protocol_version[64];
    char agent_version[128];
    flare_pubkey pubkey;
    flare_multiaddr observed;
    size_t nlisten;
    flare_multiaddr *listen; /* nlisten entries */
    size_t nprotocols;
    char **protocols; /* nprotocols NUL-terminated strings */
    size_t signed_record_len;
    uint8_t *signed_record; /* envelope bytes, not yet verified */
    const flare_mem *mem;
} flare_identify_msg;

/* What we send about ourselves. */
typedef struct flare_identify_out {
    const char *protocol_version; /* NULL: FLARE_IDENTIFY_PROTOCOL_VERSION */
    const char *agent_version;
    const flare_pubkey *pubkey;
    const flare_multiaddr *listen;
    size_t nlisten;
    const flare_multiaddr *observed; /* may be NULL */
    const char *const *protocols;
    size_t nprotocols;
    const uint8_t *signed_record;
    size_t signed_record_len;
} flare_identify_out;

/* Appends the length-prefixed message to out. */
/* Returns 0, or a negative FLARE_ERR_* code (FLARE_ERR_TOO_LARGE, FLARE_ERR_NOMEM). */
int flare_identify_encode(const flare_identify_out *m, flare_buf *out);

/* Decodes one protobuf message body (without the length prefix).
 * Errors: FLARE_ERR_TOO_LARGE, FLARE_ERR_MALFORMED, the key decoding errors,
 * FLARE_ERR_NOMEM. On success free with flare_identify_msg_free. */
int flare_identify_decode(flare_identify_msg *m, const uint8_t *in, size_t len,
                          const flare_mem *mem);
void flare_identify_msg_free(flare_identify_msg *m);

#ifdef __cplusplus
}
#endif
#endif
