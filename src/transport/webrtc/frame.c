/* libp2p WebRTC stream messages (frame.h). */
#include "transport/webrtc/frame.h"

#include "core/pb.h"
#include "flare/varint.h"

int flare__webrtc_lp_head(const uint8_t *in, size_t len, size_t max, uint64_t *n)
{
    int k = flare_uvarint_decode(in, len, n);
    if (k == FLARE_ERR_TRUNCATED)
        return len >= 3 ? FLARE_ERR_TOO_LARGE : FLARE_ERR_AGAIN;
    if (k < 0)
        return k;
    if (*n + (uint64_t)k > max)
        return FLARE_ERR_TOO_LARGE;
    if ((size_t)k + *n > len)
        return FLARE_ERR_AGAIN;
    return k;
}

long flare__webrtc_msg_parse(const uint8_t *in, size_t len, flare__webrtc_msg *m)
{
    uint64_t n;
    int k = flare__webrtc_lp_head(in, len, FLARE__WEBRTC_MAX_MSG, &n);
    if (k < 0)
        return k;
    m->flag = FLARE__WEBRTC_NO_FLAG;
    m->data = NULL;
    m->len = 0;
    flare__pb_reader r;
    flare__pb_reader_init(&r, in + k, (size_t)n);
    flare__pb_field f;
    int rc;
    while ((rc = flare__pb_next(&r, &f)) == 1) {
        if (f.num == 1) {
            if (f.wire != FLARE__PB_VARINT)
                return FLARE_ERR_MALFORMED;
            if (f.v <= FLARE__WEBRTC_FIN_ACK)
                m->flag = (int)f.v;
        } else if (f.num == 2) {
            if (f.wire != FLARE__PB_LEN)
                return FLARE_ERR_MALFORMED;
            m->data = f.data;
            m->len = f.len;
        }
    }
    if (rc < 0)
        return rc;
    return (long)((size_t)k + n);
}

int flare__webrtc_msg_encode(flare_buf *out, int flag, const uint8_t *data, size_t len)
{
    if (len > FLARE__WEBRTC_MAX_DATA || flag < FLARE__WEBRTC_NO_FLAG ||
        flag > FLARE__WEBRTC_FIN_ACK)
        return FLARE_ERR_INVALID_ARG;
    size_t body = 0;
    if (flag != FLARE__WEBRTC_NO_FLAG)
        body += 2;
    if (data != NULL)
        body += 1 + flare_uvarint_len(len) + len;
    int rc = flare_buf_reserve(out, body + 3);
    if (rc == 0)
        rc = flare_buf_append_uvarint(out, body);
    if (rc == 0 && flag != FLARE__WEBRTC_NO_FLAG)
        rc = flare__pb_put_varint_field(out, 1, (uint64_t)flag);
    if (rc == 0 && data != NULL)
        rc = flare__pb_put_bytes_field(out, 2, data, len);
    return rc;
}
