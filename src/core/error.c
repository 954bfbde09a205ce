#include "flare/common.h"

const char *flare_strerror(int err)
{
    switch (err) {
    case FLARE_OK:
        return "success";
    case FLARE_ERR_NOMEM:
        return "out of memory";
    case FLARE_ERR_INVALID_ARG:
        return "invalid argument";
    case FLARE_ERR_TRUNCATED:
        return "truncated input";
    case FLARE_ERR_OVERLONG:
        return "over-long or non-minimal encoding";
    case FLARE_ERR_UNKNOWN_CODE:
        return "unknown code";
    case FLARE_ERR_OUT_OF_RANGE:
        return "value out of range";
    case FLARE_ERR_MALFORMED:
        return "malformed input";
    case FLARE_ERR_BAD_SIGNATURE:
        return "bad signature";
    case FLARE_ERR_UNSUPPORTED:
        return "unsupported";
    case FLARE_ERR_BUFFER_TOO_SMALL:
        return "buffer too small";
    case FLARE_ERR_AGAIN:
        return "need more input";
    case FLARE_ERR_TOO_LARGE:
        return "message too large";
    case FLARE_ERR_PROTO:
        return "protocol violation";
    case FLARE_ERR_PEER_ID_MISMATCH:
        return "remote peer id mismatch";
    case FLARE_ERR_CRYPTO:
        return "cryptographic failure";
    case FLARE_ERR_NEGOTIATION:
        return "protocol negotiation failed";
    case FLARE_ERR_CLOSED:
        return "closed";
    case FLARE_ERR_RESET:
        return "reset";
    case FLARE_ERR_TIMEOUT:
        return "timed out";
    case FLARE_ERR_LIMIT:
        return "resource limit exceeded";
    case FLARE_ERR_IO:
        return "I/O error";
    case FLARE_ERR_NOT_FOUND:
        return "not found";
    case FLARE_ERR_STATE:
        return "invalid in current state";
    case FLARE_ERR_NONCE_EXHAUSTED:
        return "nonce exhausted";
    case FLARE_ERR_FLOW_CONTROL:
        return "flow control violation";
    case FLARE_ERR_REFUSED:
        return "refused";
    case FLARE_ERR_UNREACHABLE:
        return "unreachable";
    case FLARE_ERR_ADDR_IN_USE:
        return "address in use";
    case FLARE_ERR_EXISTS:
        return "already exists";
    case FLARE_ERR_LIMITED:
        return "not allowed on a limited connection";
    case FLARE_ERR_ADDR_NOT_AVAIL:
        return "cannot assign requested address";
    case FLARE_ERR_PERMISSION:
        return "permission denied";
    case FLARE_ERR_FATAL:
        return "fatal error";
    case FLARE_ERR_INTERNAL:
        return "internal error";
    default:
        return "unknown error";
    }
}
