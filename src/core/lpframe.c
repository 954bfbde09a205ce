#include "flare/lpframe.h"
#include "flare/varint.h"

int flare_lpframe_parse(const uint8_t *in, size_t len, size_t max, const uint8_t **msg,
                        size_t *msglen)
{
    uint64_t n;
    int h = flare_uvarint_decode(in, len, &n);
    if (h == FLARE_ERR_TRUNCATED)
        return FLARE_ERR_AGAIN;
    if (h < 0)
        return h;
    if (n > max)
        return FLARE_ERR_TOO_LARGE;
    if (n > len - (size_t)h)
        return FLARE_ERR_AGAIN;
    *msg = in + h;
    *msglen = (size_t)n;
    return h + (int)n;
}

int flare_lpframe_append(flare_buf *out, const uint8_t *msg, size_t len)
{
    int rv = flare_buf_reserve(out, len + FLARE_UVARINT_MAX_LEN);
    if (rv)
        return rv;
    rv = flare_buf_append_uvarint(out, len);
    if (rv)
        return rv;
    return flare_buf_append(out, msg, len);
}

int flare_lpframe_accumulate(flare_buf *acc, const uint8_t *data, size_t len, size_t max,
                             size_t slack, const uint8_t **msg, size_t *msglen)
{
    if (acc->len + len > max + FLARE_UVARINT_MAX_LEN + slack)
        return FLARE_ERR_LIMIT;
    int rv = flare_buf_append(acc, data, len);
    if (rv)
        return rv;
    return flare_lpframe_parse(acc->base, acc->len, max, msg, msglen);
}
