/* AutoNAT v1 codec (proto2 Message, see proto/autonat_v1.proto). Decoding
 * walks the fields with the flare__pb reader for precise errors. */
#include <string.h>

#include "core/pb.h"
#include "protocols/autonat/autonat_int.h"

static int expect_wire(const flare__pb_field *f, int wire)
{
    return f->wire == wire ? 0 : FLARE_ERR_MALFORMED;
}

static int add_addr(flare_multiaddr *addrs, size_t *n, const flare__pb_field *f)
{
    if (*n >= FLARE_AUTONAT_MAX_ADDRS)
        return FLARE_ERR_TOO_LARGE;
    /* An invalid address is kept as an empty entry: peers skip, not fail. */
    if (flare_multiaddr_from_bytes(&addrs[*n], f->data, f->len) < 0)
        addrs[*n].len = 0;
    (*n)++;
    return 0;
}

static int decode_peer(flare_autonat1_msg *m, const uint8_t *in, size_t len)
{
    flare__pb_reader r;
    flare__pb_field f;
    int rv;
    flare__pb_reader_init(&r, in, len);
    while ((rv = flare__pb_next(&r, &f)) == 1) {
        if (f.num == 1) {
            if ((rv = expect_wire(&f, FLARE__PB_LEN)) < 0)
                return rv;
            if (f.len > FLARE_PEERID_MAX)
                return FLARE_ERR_TOO_LARGE;
            memcpy(m->peer_id, f.data, f.len);
            m->peer_id_len = f.len;
        } else if (f.num == 2) {
            if ((rv = expect_wire(&f, FLARE__PB_LEN)) < 0)
                return rv;
            if ((rv = add_addr(m->addrs, &m->naddrs, &f)) < 0)
                return rv;
        }
    }
    return rv;
}

static int decode_dial(flare_autonat1_msg *m, const uint8_t *in, size_t len)
{
    flare__pb_reader r;
    flare__pb_field f;
    int rv;
    flare__pb_reader_init(&r, in, len);
    while ((rv = flare__pb_next(&r, &f)) == 1) {
        if (f.num != 1)
            continue;
        if ((rv = expect_wire(&f, FLARE__PB_LEN)) < 0)
            return rv;
        m->has_peer = 1;
        if ((rv = decode_peer(m, f.data, f.len)) < 0)
            return rv;
    }
    return rv;
}

static int valid_status(uint64_t v)
{
    return v == FLARE_AUTONAT1_OK || v == FLARE_AUTONAT1_E_DIAL_ERROR ||
           v == FLARE_AUTONAT1_E_DIAL_REFUSED || v == FLARE_AUTONAT1_E_BAD_REQUEST ||
           v == FLARE_AUTONAT1_E_INTERNAL_ERROR;
}

static int decode_response(flare_autonat1_msg *m, const uint8_t *in, size_t len)
{
    flare__pb_reader r;
    flare__pb_field f;
    int rv, has_status = 0;
    flare__pb_reader_init(&r, in, len);
    while ((rv = flare__pb_next(&r, &f)) == 1) {
        if (f.num == 1) {
            if ((rv = expect_wire(&f, FLARE__PB_VARINT)) < 0)
                return rv;
            if (!valid_status(f.v))
                return FLARE_ERR_UNKNOWN_CODE;
            m->status = (flare_autonat1_status)f.v;
            has_status = 1;
        } else if (f.num == 2) {
            if ((rv = expect_wire(&f, FLARE__PB_LEN)) < 0)
                return rv;
            size_t n = f.len < FLARE_AUTONAT_STATUS_TEXT_MAX - 1
                           ? f.len
                           : FLARE_AUTONAT_STATUS_TEXT_MAX - 1;
            memcpy(m->status_text, f.data, n);
            m->status_text[n] = 0;
        } else if (f.num == 3) {
            if ((rv = expect_wire(&f, FLARE__PB_LEN)) < 0)
                return rv;
            if (flare_multiaddr_from_bytes(&m->addr, f.data, f.len) < 0)
                m->addr.len = 0;
        }
    }
    if (rv < 0)
        return rv;
    return has_status ? 0 : FLARE_ERR_MALFORMED;
}

int flare_autonat1_decode(flare_autonat1_msg *m, const uint8_t *in, size_t len)
{
    flare__pb_reader r;
    flare__pb_field f;
    const uint8_t *dial = NULL, *resp = NULL;
    size_t dial_len = 0, resp_len = 0;
    int rv, has_type = 0;
    memset(m, 0, sizeof(*m));
    flare__pb_reader_init(&r, in, len);
    while ((rv = flare__pb_next(&r, &f)) == 1) {
        if (f.num == 1) {
            if ((rv = expect_wire(&f, FLARE__PB_VARINT)) < 0)
                return rv;
            if (f.v > FLARE_AUTONAT1_DIAL_RESPONSE)
                return FLARE_ERR_UNKNOWN_CODE;
            m->type = (flare_autonat1_type)f.v;
            has_type = 1;
        } else if (f.num == 2 || f.num == 3) {
            if ((rv = expect_wire(&f, FLARE__PB_LEN)) < 0)
                return rv;
            /* proto2 merges repeated sub-messages; we keep the last. */
            if (f.num == 2) {
                dial = f.data;
                dial_len = f.len;
            } else {
                resp = f.data;
                resp_len = f.len;
            }
        }
    }
    if (rv < 0)
        return rv;
    if (!has_type)
        return FLARE_ERR_MALFORMED;
    if (m->type == FLARE_AUTONAT1_DIAL)
        return dial ? decode_dial(m, dial, dial_len) : FLARE_ERR_MALFORMED;
    return resp ? decode_response(m, resp, resp_len) : FLARE_ERR_MALFORMED;
}

int flare_autonat1_encode_dial(flare_buf *out, const flare_peerid *self,
                               const flare_multiaddr *addrs, size_t naddrs)
{
    if (!self || (naddrs && !addrs))
        return FLARE_ERR_INVALID_ARG;
    flare_buf peer, dial, msg;
    flare_buf_init(&peer, out->mem);
    flare_buf_init(&dial, out->mem);
    flare_buf_init(&msg, out->mem);
    int rv = flare__pb_put_bytes_field(&peer, 1, self->bytes, self->len);
    for (size_t i = 0; rv == 0 && i < naddrs; i++)
        rv = flare__pb_put_bytes_field(&peer, 2, addrs[i].bytes, addrs[i].len);
    if (rv == 0)
        rv = flare__pb_put_bytes_field(&dial, 1, peer.base, peer.len);
    if (rv == 0)
        rv = flare__pb_put_varint_field(&msg, 1, FLARE_AUTONAT1_DIAL);
    if (rv == 0)
        rv = flare__pb_put_bytes_field(&msg, 2, dial.base, dial.len);
    if (rv == 0)
        rv = flare__autonat_frame(out, &msg, FLARE_AUTONAT_V1_MSG_MAX);
    flare_buf_free(&peer);
    flare_buf_free(&dial);
    flare_buf_free(&msg);
    return rv;
}

int flare_autonat1_encode_response(flare_buf *out, flare_autonat1_status status, const char *text,
                                   const flare_multiaddr *addr)
{
    if (!valid_status((uint64_t)status))
        return FLARE_ERR_INVALID_ARG;
    flare_buf resp, msg;
    flare_buf_init(&resp, out->mem);
    flare_buf_init(&msg, out->mem);
    int rv = flare__pb_put_varint_field(&resp, 1, (uint64_t)status);
    if (rv == 0 && text)
        rv = flare__pb_put_bytes_field(&resp, 2, (const uint8_t *)text, strlen(text));
    if (rv == 0 && addr && addr->len)
        rv = flare__pb_put_bytes_field(&resp, 3, addr->bytes, addr->len);
    if (rv == 0)
        rv = flare__pb_put_varint_field(&msg, 1, FLARE_AUTONAT1_DIAL_RESPONSE);
    if (rv == 0)
        rv = flare__pb_put_bytes_field(&msg, 3, resp.base, resp.len);
    if (rv == 0)
        rv = flare__autonat_frame(out, &msg, FLARE_AUTONAT_V1_MSG_MAX);
    flare_buf_free(&resp);
    flare_buf_free(&msg);
    return rv;
}
