/* Fuzz the signalling message parser, the SDP subset parser and the
 * trickled-candidate parser: no crash, bounds kept, and an SDP that parses
 * is written and read back the same. */
#include <stdlib.h>
#include <string.h>

#include "transport/webrtc/sdp.h"
#include "transport/webrtc/signal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    flare__sdp d, back;
    flare__sdp_cand c;
    flare__signal_msg m;
    long k = flare__signal_parse(data, size, &m);
    if (k > 0) {
        if ((size_t)k > size || m.len > (size_t)k)
            abort();
        (void)flare__sdp_cand_json_parse(m.data, m.len, &c);
        (void)flare__sdp_parse(m.data, m.len, &d);
    }
    (void)flare__sdp_cand_json_parse((const char *)data, size, &c);
    if (flare__sdp_parse((const char *)data, size, &d) != 0)
        return 0;
    if (d.ncand > FLARE__SDP_MAX_CANDS || strlen(d.ufrag) > FLARE__SDP_ICE_MAX ||
        strlen(d.pwd) > FLARE__SDP_ICE_MAX)
        abort();
    flare_buf b;
    flare_buf_init(&b, NULL);
    if (flare__sdp_write(&d, 1, &b) == 0) {
        if (flare__sdp_parse((const char *)b.base, b.len, &back) != 0 ||
            strcmp(back.ufrag, d.ufrag) != 0 || strcmp(back.pwd, d.pwd) != 0 ||
            memcmp(back.fp, d.fp, 32) != 0 || back.ncand != d.ncand)
            abort();
    }
    flare_buf_free(&b);
    return 0;
}
