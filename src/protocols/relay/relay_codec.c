/* Circuit Relay v2 message codecs (see include/flare/relay.h). Decoding uses
 * the non-allocating protobuf reader so a relay under load allocates nothing
 * per request and every peer error has a precise code. */
#include <string.h>

#include "core/pb.h"
#include "flare/lpframe.h"
#include "flare/relay.h"

const uint8_t FLARE_RELAY_VOUCHER_TYPE[2] = {0x03, 0x02};

/* Field numbers of HopMessage and StopMessage (they differ after peer). */
typedef struct msg_fields {
    uint32_t type, peer, reservation, limit, status, max_type;
} msg_fields;
static const msg_fields hop_fields = {1, 2, 3, 4, 5, FLARE_RELAY_HOP_STATUS};
static const msg_fields stop_fields = {1, 2, 0, 3, 4, FLARE_RELAY_STOP_STATUS};

const char *flare_relay_status_name(uint32_t status)
{
    switch (status) {
    case FLARE_RELAY_STATUS_UNUSED:
        return "UNUSED";
    case FLARE_RELAY_STATUS_OK:
        return "OK";
    case FLARE_RELAY_STATUS_RESERVATION_REFUSED:
        return "RESERVATION_REFUSED";
    case FLARE_RELAY_STATUS_RESOURCE_LIMIT_EXCEEDED:
        return "RESOURCE_LIMIT_EXCEEDED";
    case FLARE_RELAY_STATUS_PERMISSION_DENIED:
        return "PERMISSION_DENIED";
    case FLARE_RELAY_STATUS_CONNECTION_FAILED:
        return "CONNECTION_FAILED";
    case FLARE_RELAY_STATUS_NO_RESERVATION:
        return "NO_RESERVATION";
    case FLARE_RELAY_STATUS_MALFORMED_MESSAGE:
        return "MALFORMED_MESSAGE";
    case FLARE_RELAY_STATUS_UNEXPECTED_MESSAGE:
        return "UNEXPECTED_MESSAGE";
    default:
        return "?";
    }
}

int flare_relay_status_valid(uint32_t status)
{
    return status != FLARE_RELAY_STATUS_UNUSED && strcmp(flare_relay_status_name(status), "?") != 0;
}

void flare_relay_msg_init(flare_relay_msg *m, uint32_t type)
{
    memset(m, 0, sizeof(*m));
    m->type = type;
}

/* Keeps a valid address (up to the cap); counts the rest. */
static void keep_addr(flare_relay_bytes *arr, size_t *n, size_t *skipped, const uint8_t *p,
                      size_t len)
{
    flare_multiaddr ma;
    if (*n >= FLARE_RELAY_MAX_ADDRS || flare_multiaddr_from_bytes(&ma, p, len) != 0) {
        (*skipped)++;
        return;
    }
    arr[*n].p = p;
    arr[*n].len = len;
    (*n)++;
}

static int decode_peer(const uint8_t *in, size_t len, flare_relay_msg *m)
{
    flare__pb_reader r;
    flare__pb_field f;
    int rv, have_id = m->has_peer; /* a merged second Peer may omit id */
    flare__pb_reader_init(&r, in, len);
    while ((rv = flare__pb_next(&r, &f)) == 1) {
        if (f.num != 1 && f.num != 2)
            continue;
        if (f.wire != FLARE__PB_LEN)
            return FLARE_ERR_MALFORMED;
        if (f.num == 1) {
            if ((rv = flare_peerid_from_bytes(&m->peer, f.data, f.len)) != 0)
                return rv;
            have_id = 1;
        } else {
            keep_addr(m->peer_addrs, &m->npeer_addrs, &m->peer_addrs_skipped, f.data, f.len);
        }
    }
    if (rv < 0)
        return rv;
    if (!have_id)
        return FLARE_ERR_MALFORMED;
    m->has_peer = 1;
    return 0;
}

static int decode_reservation(const uint8_t *in, size_t len, flare_relay_msg *m)
{
    flare__pb_reader r;
    flare__pb_field f;
    int rv;
    flare__pb_reader_init(&r, in, len);
    while ((rv = flare__pb_next(&r, &f)) == 1) {
        if (f.num < 1 || f.num > 3)
            continue;
        if (f.wire != (f.num == 1 ? FLARE__PB_VARINT : FLARE__PB_LEN))
            return FLARE_ERR_MALFORMED;
        if (f.num == 1) {
            m->expire = f.v;
            m->has_expire = 1;
        } else if (f.num == 2) {
            keep_addr(m->rsvp_addrs, &m->nrsvp_addrs, &m->rsvp_addrs_skipped, f.data, f.len);
        } else {
            m->voucher.p = f.data;
            m->voucher.len = f.len;
        }
    }
    if (rv < 0)
        return rv;
    m->has_reservation = 1;
    return 0;
}

static int decode_limit(const uint8_t *in, size_t len, flare_relay_msg *m)
{
    flare__pb_reader r;
    flare__pb_field f;
    int rv;
    flare__pb_reader_init(&r, in, len);
    while ((rv = flare__pb_next(&r, &f)) == 1) {
        if (f.num != 1 && f.num != 2)
            continue;
        if (f.wire != FLARE__PB_VARINT)
            return FLARE_ERR_MALFORMED;
        if (f.num == 1) {
            /* proto uint32: protobuf-c and go truncate; a relay sending more
             * than 32 bits is broken, say so. */
            if (f.v > UINT32_MAX)
                return FLARE_ERR_OUT_OF_RANGE;
            m->limit.duration = (uint32_t)f.v;
        } else {
            m->limit.data = f.v;
        }
    }
    if (rv < 0)
        return rv;
    m->has_limit = 1;
    return 0;
}

static int decode_enum_field(const flare__pb_field *f, uint32_t *out)
{
    if (f->wire != FLARE__PB_VARINT)
        return FLARE_ERR_MALFORMED;
    if (f->v > UINT32_MAX)
        return FLARE_ERR_UNKNOWN_CODE;
    *out = (uint32_t)f->v;
    return 0;
}

static int decode_field(const msg_fields *fl, const flare__pb_field *f, flare_relay_msg *m,
                        int *have_type)
{
    int rv;
    if (f->num == fl->type) {
        if ((rv = decode_enum_field(f, &m->type)) != 0)
            return rv;
        if (m->type > fl->max_type)
            return FLARE_ERR_UNKNOWN_CODE;
        *have_type = 1;
        return 0;
    }
    if (f->num == fl->status) {
        if ((rv = decode_enum_field(f, &m->status)) != 0)
            return rv;
        if (!flare_relay_status_valid(m->status))
            return FLARE_ERR_UNKNOWN_CODE;
        m->has_status = 1;
        return 0;
    }
    if (f->num != fl->peer && f->num != fl->limit && f->num != fl->reservation)
        return 0; /* unknown field */
    if (f->wire != FLARE__PB_LEN)
        return FLARE_ERR_MALFORMED;
    if (f->num == fl->peer)
        return decode_peer(f->data, f->len, m);
    if (f->num == fl->limit)
        return decode_limit(f->data, f->len, m);
    return decode_reservation(f->data, f->len, m);
}

static int decode_msg(const msg_fields *fl, const uint8_t *in, size_t len, flare_relay_msg *m)
{
    flare__pb_reader r;
    flare__pb_field f;
    int rv, have_type = 0;
    flare_relay_msg_init(m, 0);
    if (len > FLARE_RELAY_MSG_MAX)
        return FLARE_ERR_TOO_LARGE;
    flare__pb_reader_init(&r, in, len);
    while ((rv = flare__pb_next(&r, &f)) == 1) {
        if ((rv = decode_field(fl, &f, m, &have_type)) != 0)
            return rv;
    }
    if (rv < 0)
        return rv;
    /* go, rust and js all send type explicitly (even the zero RESERVE /
     * CONNECT), so a message without one is not something we guess at. */
    return have_type ? 0 : FLARE_ERR_MALFORMED;
}

int flare_relay_hop_decode(const uint8_t *in, size_t len, flare_relay_msg *m)
{
    return decode_msg(&hop_fields, in, len, m);
}

int flare_relay_stop_decode(const uint8_t *in, size_t len, flare_relay_msg *m)
{
    return decode_msg(&stop_fields, in, len, m);
}

/* --- encoding --- */

static int put_submsg(flare_buf *b, uint32_t num, const flare_buf *sub)
{
    return flare__pb_put_bytes_field(b, num, sub->base ? sub->base : (const uint8_t *)"", sub->len);
}

static int encode_peer(const flare_relay_msg *m, flare_buf *sub)
{
    int rv = flare__pb_put_bytes_field(sub, 1, m->peer.bytes, m->peer.len);
    for (size_t i = 0; rv == 0 && i < m->npeer_addrs; i++)
        rv = flare__pb_put_bytes_field(sub, 2, m->peer_addrs[i].p, m->peer_addrs[i].len);
    return rv;
}

static int encode_reservation(const flare_relay_msg *m, flare_buf *sub)
{
    int rv = 0;
    if (m->has_expire)
        rv = flare__pb_put_varint_field(sub, 1, m->expire);
    for (size_t i = 0; rv == 0 && i < m->nrsvp_addrs; i++)
        rv = flare__pb_put_bytes_field(sub, 2, m->rsvp_addrs[i].p, m->rsvp_addrs[i].len);
    if (rv == 0 && m->voucher.len)
        rv = flare__pb_put_bytes_field(sub, 3, m->voucher.p, m->voucher.len);
    return rv;
}

static int encode_limit(const flare_relay_limit *l, flare_buf *sub)
{
    int rv = 0;
    if (l->duration)
        rv = flare__pb_put_varint_field(sub, 1, l->duration);
    if (rv == 0 && l->data)
        rv = flare__pb_put_varint_field(sub, 2, l->data);
    return rv;
}

/* Writes one embedded message built by fn into body. */
static int put_embedded(flare_buf *body, uint32_t num, const flare_relay_msg *m,
                        int (*fn)(const flare_relay_msg *, flare_buf *))
{
    flare_buf sub;
    flare_buf_init(&sub, body->mem);
    int rv = fn(m, &sub);
    if (rv == 0)
        rv = put_submsg(body, num, &sub);
    flare_buf_free(&sub);
    return rv;
}

static int limit_fn(const flare_relay_msg *m, flare_buf *sub)
{
    return encode_limit(&m->limit, sub);
}

static int encode_body(const msg_fields *fl, const flare_relay_msg *m, flare_buf *body)
{
    int rv = flare__pb_put_varint_field(body, fl->type, m->type);
    if (rv == 0 && m->has_peer)
        rv = put_embedded(body, fl->peer, m, encode_peer);
    if (rv == 0 && m->has_reservation && fl->reservation)
        rv = put_embedded(body, fl->reservation, m, encode_reservation);
    if (rv == 0 && m->has_limit && (m->limit.duration || m->limit.data))
        rv = put_embedded(body, fl->limit, m, limit_fn);
    if (rv == 0 && m->has_status)
        rv = flare__pb_put_varint_field(body, fl->status, m->status);
    return rv;
}

static int encode_msg(const msg_fields *fl, const flare_relay_msg *m, flare_buf *out)
{
    if (m->type > fl->max_type || m->npeer_addrs > FLARE_RELAY_MAX_ADDRS ||
        m->nrsvp_addrs > FLARE_RELAY_MAX_ADDRS || (m->has_peer && m->peer.len == 0) ||
        (m->has_status && !flare_relay_status_valid(m->status)))
        return FLARE_ERR_INVALID_ARG;
    flare_buf body;
    flare_buf_init(&body, out->mem);
    int rv = encode_body(fl, m, &body);
    if (rv == 0 && body.len > FLARE_RELAY_MSG_MAX)
        rv = FLARE_ERR_TOO_LARGE;
    if (rv == 0)
        rv = flare_lpframe_append(out, body.base, body.len);
    flare_buf_free(&body);
    return rv;
}

int flare_relay_hop_encode(const flare_relay_msg *m, flare_buf *out)
{
    return encode_msg(&hop_fields, m, out);
}

int flare_relay_stop_encode(const flare_relay_msg *m, flare_buf *out)
{
    return encode_msg(&stop_fields, m, out);
}
