/* AutoNAT v2 codec (proto3 Message, see proto/autonat_v2.proto). proto3
 * leaves zero values off the wire, so absent fields read as zero and the
 * encoders omit zeros (byte-identical to go-libp2p). */
#include <string.h>

#include "core/pb.h"
#include "flare/lpframe.h"
#include "protocols/autonat/autonat_int.h"

typedef int (*field_fn)(flare_autonat2_msg *m, const flare__pb_field *f);

static int walk(flare_autonat2_msg *m, const uint8_t *in, size_t len, field_fn fn)
{
    flare__pb_reader r;
    flare__pb_field f;
    int rv;
    flare__pb_reader_init(&r, in, len);
    while ((rv = flare__pb_next(&r, &f)) == 1)
        if ((rv = fn(m, &f)) < 0)
            return rv;
    return rv;
}

static int dial_request_field(flare_autonat2_msg *m, const flare__pb_field *f)
{
    if (f->num == 1) {
        if (f->wire != FLARE__PB_LEN)
            return FLARE_ERR_MALFORMED;
        if (m->naddrs >= FLARE_AUTONAT_MAX_ADDRS)
            return FLARE_ERR_TOO_LARGE;
        if (flare_multiaddr_from_bytes(&m->addrs[m->naddrs], f->data, f->len) < 0)
            m->addrs[m->naddrs].len = 0; /* keep indexes aligned */
        m->naddrs++;
    } else if (f->num == 2) {
        if (f->wire != FLARE__PB_I64)
            return FLARE_ERR_MALFORMED;
        m->nonce = f->v;
    }
    return 0;
}

static int valid_dial_status(uint64_t v)
{
    return v == FLARE_AUTONAT2_DIAL_UNUSED || v == FLARE_AUTONAT2_DIAL_E_DIAL_ERROR ||
           v == FLARE_AUTONAT2_DIAL_E_DIAL_BACK_ERROR || v == FLARE_AUTONAT2_DIAL_OK;
}

static int valid_status(uint64_t v)
{
    return v == FLARE_AUTONAT2_E_INTERNAL_ERROR || v == FLARE_AUTONAT2_E_REQUEST_REJECTED ||
           v == FLARE_AUTONAT2_E_DIAL_REFUSED || v == FLARE_AUTONAT2_OK;
}

static int varint_field(const flare__pb_field *f)
{
    return f->wire == FLARE__PB_VARINT ? 0 : FLARE_ERR_MALFORMED;
}

static int dial_response_field(flare_autonat2_msg *m, const flare__pb_field *f)
{
    if (f->num < 1 || f->num > 3)
        return 0;
    if (varint_field(f) < 0)
        return FLARE_ERR_MALFORMED;
    if (f->num == 1) {
        if (!valid_status(f->v))
            return FLARE_ERR_UNKNOWN_CODE;
        m->status = (flare_autonat2_status)f->v;
    } else if (f->num == 2) {
        if (f->v > UINT32_MAX)
            return FLARE_ERR_OUT_OF_RANGE;
        m->addr_idx = (uint32_t)f->v;
    } else {
        if (!valid_dial_status(f->v))
            return FLARE_ERR_UNKNOWN_CODE;
        m->dial_status = (flare_autonat2_dial_status)f->v;
    }
    return 0;
}

static int dial_data_request_field(flare_autonat2_msg *m, const flare__pb_field *f)
{
    if (f->num != 1 && f->num != 2)
        return 0;
    if (varint_field(f) < 0)
        return FLARE_ERR_MALFORMED;
    if (f->num == 1) {
        if (f->v > UINT32_MAX)
            return FLARE_ERR_OUT_OF_RANGE;
        m->addr_idx = (uint32_t)f->v;
    } else {
        m->num_bytes = f->v;
    }
    return 0;
}

static int dial_data_response_field(flare_autonat2_msg *m, const flare__pb_field *f)
{
    if (f->num != 1)
        return 0;
    if (f->wire != FLARE__PB_LEN)
        return FLARE_ERR_MALFORMED;
    if (f->len > FLARE_AUTONAT_V2_CHUNK_MAX)
        return FLARE_ERR_TOO_LARGE;
    m->data = f->data;
    m->data_len = f->len;
    return 0;
}

int flare_autonat2_decode(flare_autonat2_msg *m, const uint8_t *in, size_t len)
{
    static const field_fn fns[5] = {NULL, dial_request_field, dial_response_field,
                                    dial_data_request_field, dial_data_response_field};
    flare__pb_reader r;
    flare__pb_field f, body = {0};
    int rv;
    memset(m, 0, sizeof(*m));
    flare__pb_reader_init(&r, in, len);
    while ((rv = flare__pb_next(&r, &f)) == 1) {
        if (f.num < 1 || f.num > 4)
            continue;
        if (f.wire != FLARE__PB_LEN)
            return FLARE_ERR_MALFORMED;
        /* Several oneof members means a confused peer: refuse. */
        if (body.num && body.num != f.num)
            return FLARE_ERR_MALFORMED;
        body = f;
    }
    if (rv < 0)
        return rv;
    if (!body.num)
        return FLARE_ERR_MALFORMED;
    m->type = (flare_autonat2_type)body.num;
    return walk(m, body.data, body.len, fns[body.num]);
}

/* Wraps inner as Message field num and frames it. */
static int put_message(flare_buf *out, uint32_t num, const flare_buf *inner)
{
    flare_buf msg;
    flare_buf_init(&msg, out->mem);
    int rv = flare__pb_put_bytes_field(&msg, num, inner->base, inner->len);
    if (rv == 0)
        rv = flare__autonat_frame(out, &msg, FLARE_AUTONAT_V2_MSG_MAX);
    flare_buf_free(&msg);
    return rv;
}

static int put_varint_nz(flare_buf *b, uint32_t num, uint64_t v)
{
    return v ? flare__pb_put_varint_field(b, num, v) : 0;
}

int flare_autonat2_encode_dial_request(flare_buf *out, const flare_multiaddr *addrs, size_t naddrs,
                                       uint64_t nonce)
{
    if (naddrs && !addrs)
        return FLARE_ERR_INVALID_ARG;
    flare_buf b;
    flare_buf_init(&b, out->mem);
    int rv = 0;
    for (size_t i = 0; rv == 0 && i < naddrs; i++)
        rv = flare__pb_put_bytes_field(&b, 1, addrs[i].bytes, addrs[i].len);
    if (rv == 0 && nonce)
        rv = flare__autonat_put_fixed64(&b, 2, nonce);
    if (rv == 0)
        rv = put_message(out, FLARE_AUTONAT2_DIAL_REQUEST, &b);
    flare_buf_free(&b);
    return rv;
}

int flare_autonat2_encode_dial_response(flare_buf *out, flare_autonat2_status status,
                                        uint32_t addr_idx, flare_autonat2_dial_status ds)
{
    if (!valid_status((uint64_t)status) || !valid_dial_status((uint64_t)ds))
        return FLARE_ERR_INVALID_ARG;
    flare_buf b;
    flare_buf_init(&b, out->mem);
    int rv = put_varint_nz(&b, 1, (uint64_t)status);
    if (rv == 0)
        rv = put_varint_nz(&b, 2, addr_idx);
    if (rv == 0)
        rv = put_varint_nz(&b, 3, (uint64_t)ds);
    if (rv == 0)
        rv = put_message(out, FLARE_AUTONAT2_DIAL_RESPONSE, &b);
    flare_buf_free(&b);
    return rv;
}

int flare_autonat2_encode_dial_data_request(flare_buf *out, uint32_t addr_idx, uint64_t num_bytes)
{
    flare_buf b;
    flare_buf_init(&b, out->mem);
    int rv = put_varint_nz(&b, 1, addr_idx);
    if (rv == 0)
        rv = put_varint_nz(&b, 2, num_bytes);
    if (rv == 0)
        rv = put_message(out, FLARE_AUTONAT2_DIAL_DATA_REQUEST, &b);
    flare_buf_free(&b);
    return rv;
}

int flare_autonat2_encode_dial_data_response(flare_buf *out, const uint8_t *data, size_t len)
{
    if (len > FLARE_AUTONAT_V2_CHUNK_MAX || (len && !data))
        return FLARE_ERR_INVALID_ARG;
    flare_buf b;
    flare_buf_init(&b, out->mem);
    int rv = len ? flare__pb_put_bytes_field(&b, 1, data, len) : 0;
    if (rv == 0)
        rv = put_message(out, FLARE_AUTONAT2_DIAL_DATA_RESPONSE, &b);
    flare_buf_free(&b);
    return rv;
}

int flare_autonat2_encode_dial_back(flare_buf *out, uint64_t nonce)
{
    flare_buf b;
    flare_buf_init(&b, out->mem);
    int rv = nonce ? flare__autonat_put_fixed64(&b, 1, nonce) : 0;
    if (rv == 0)
        rv = flare__autonat_frame(out, &b, FLARE_AUTONAT_V2_MSG_MAX);
    flare_buf_free(&b);
    return rv;
}

int flare_autonat2_encode_dial_back_response(flare_buf *out)
{
    /* status OK is 0: proto3 sends an empty message. */
    return flare_lpframe_append(out, NULL, 0);
}

static int parse_frame(const uint8_t *in, size_t len, size_t *used, const uint8_t **msg,
                       size_t *msglen)
{
    int n = flare_lpframe_parse(in, len, FLARE_AUTONAT_V2_MSG_MAX, msg, msglen);
    if (n < 0)
        return n;
    *used = (size_t)n;
    return 0;
}

/* The fields of the framed message at in whose only known field is number
 * 1, of wire type wire: *v is its (last) value, 0 without one; another wire
 * type is malformed, and with nonzero_err set a nonzero value fails with
 * that error. */
static int parse_field1(const uint8_t *in, size_t len, size_t *used, int wire, int nonzero_err,
                        uint64_t *v)
{
    const uint8_t *msg;
    size_t mlen;
    int rv = parse_frame(in, len, used, &msg, &mlen);
    if (rv < 0)
        return rv;
    flare__pb_reader r;
    flare__pb_field f;
    *v = 0;
    flare__pb_reader_init(&r, msg, mlen);
    while ((rv = flare__pb_next(&r, &f)) == 1) {
        if (f.num != 1)
            continue;
        if (f.wire != wire)
            return FLARE_ERR_MALFORMED;
        if (nonzero_err && f.v != 0)
            return nonzero_err;
        *v = f.v;
    }
    return rv;
}

int flare_autonat2_parse_dial_back(const uint8_t *in, size_t len, size_t *used, uint64_t *nonce)
{
    return parse_field1(in, len, used, FLARE__PB_I64, 0, nonce);
}

int flare_autonat2_parse_dial_back_response(const uint8_t *in, size_t len, size_t *used)
{
    uint64_t status;
    return parse_field1(in, len, used, FLARE__PB_VARINT, FLARE_ERR_UNKNOWN_CODE, &status);
}
