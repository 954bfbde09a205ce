/* Fuzz the libp2p WebRTC stream message parser as the muxer runs it: a
 * channel's bytes parsed message after message. Every message taken stays
 * within the input and the size limit, and re-encodes to one that parses
 * to the same flag and payload. */
#include <stdlib.h>
#include <string.h>

#include "transport/webrtc/frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t off = 0;
    flare_buf b;
    flare_buf_init(&b, NULL);
    while (off < size) {
        flare__webrtc_msg m;
        long k = flare__webrtc_msg_parse(data + off, size - off, &m);
        if (k < 0)
            break;
        if (k == 0 || (size_t)k > size - off || (size_t)k > FLARE__WEBRTC_MAX_MSG)
            abort();
        if (m.data != NULL && (m.data < data + off || m.data + m.len > data + off + (size_t)k))
            abort();
        if (m.len <= FLARE__WEBRTC_MAX_DATA) {
            flare_buf_reset(&b);
            if (flare__webrtc_msg_encode(&b, m.flag, m.data, m.len) != 0)
                abort();
            flare__webrtc_msg m2;
            if (flare__webrtc_msg_parse(b.base, b.len, &m2) != (long)b.len || m2.flag != m.flag ||
                m2.len != m.len || (m.data == NULL) != (m2.data == NULL) ||
                (m.len > 0 && memcmp(m.data, m2.data, m.len) != 0))
                abort();
        }
        off += (size_t)k;
    }
    flare_buf_free(&b);
    return 0;
}
