/* libFuzzer: libp2p TLS peer certificates. The first byte picks the input:
 *   even: the rest is a whole DER certificate, verified at a fixed time;
 *   odd:  the rest is a SignedKey extension value for the bounded DER parser.
 * A certificate that verifies must name a peer whose key it carries. */
#include <stddef.h>
#include <stdint.h>

#include "security/tls/tls_cert.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const uint8_t *in = data + 1;
    size_t len = size - 1;
    if (data[0] & 1) {
        const uint8_t *pub, *sig;
        size_t pl, sl;
        if (flare__tls_signed_key_parse(in, len, &pub, &pl, &sig, &sl) == 0 &&
            (pub < in || pub + pl > in + len || sig < in || sig + sl > in + len ||
             pl > FLARE_PUBKEY_PROTO_MAX || sl > FLARE_SIG_MAX))
            __builtin_trap();
        return 0;
    }
    flare_pubkey k;
    flare_peerid id;
    if (flare__tls_cert_verify(in, len, 1800000000ULL, NULL, &k, &id) == 0 &&
        !flare_peerid_matches_pubkey(&id, &k))
        __builtin_trap();
    return 0;
}
