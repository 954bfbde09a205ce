/* /webrtc-signaling messages (signal.h). */
#include "transport/webrtc/signal.h"

#include "core/pb.h"
#include "flare/varint.h"
#include "transport/webrtc/frame.h"

long flare__signal_parse(const uint8_t *in, size_t len, flare__signal_msg *m)
{
    uint64_t n;
    int k = flare__webrtc_lp_head(in, len, FLARE__SIGNAL_MAX_MSG, &n);
    if (k < 0)
        return k;
    m->type = -1;
    m->data = "";
    m->len = 0;
    flare__pb_reader r;
    flare__pb_reader_init(&r, in + k, (size_t)n);
    flare__pb_field f;
    int rc;
    while ((rc = flare__pb_next(&r, &f)) == 1) {
        if (f.num == 1) {
            if (f.wire != FLARE__PB_VARINT)
                return FLARE_ERR_MALFORMED;
            m->type = f.v <= FLARE__SIGNAL_ICE_CANDIDATE ? (int)f.v : -1;
        } else if (f.num == 2) {
            if (f.wire != FLARE__PB_LEN)
                return FLARE_ERR_MALFORMED;
            m->data = (const char *)f.data;
            m->len = f.len;
        }
    }
    if (rc < 0)
        return rc;
    /* proto3: a type of 0 (SDP_OFFER) may be left out. */
    if (m->type < 0) {
        flare__pb_reader_init(&r, in + k, (size_t)n);
        int has_type = 0;
        while (flare__pb_next(&r, &f) == 1)
            has_type |= f.num == 1;
        if (has_type)
            return FLARE_ERR_UNKNOWN_CODE;
        m->type = FLARE__SIGNAL_SDP_OFFER;
    }
    return (long)((size_t)k + n);
}

int flare__signal_encode(flare_buf *out, int type, const char *data, size_t len)
{
    if (type < 0 || type > FLARE__SIGNAL_ICE_CANDIDATE || len > FLARE__SIGNAL_MAX_MSG - 16)
        return FLARE_ERR_INVALID_ARG;
    size_t body = 2 + 1 + flare_uvarint_len(len) + len;
    int rc = flare_buf_reserve(out, body + 3);
    if (rc == 0)
        rc = flare_buf_append_uvarint(out, body);
    if (rc == 0)
        rc = flare__pb_put_varint_field(out, 1, (uint64_t)type);
    if (rc == 0)
        rc = flare__pb_put_bytes_field(out, 2, (const uint8_t *)data, len);
    return rc;
}
