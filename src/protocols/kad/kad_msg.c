/* Kademlia message codec (libp2p/specs kad-dht):
 *   Record  { bytes key = 1; bytes value = 2; string timeReceived = 5; }
 *   Peer    { bytes id = 1; repeated bytes addrs = 2; ConnectionType connection = 3; }
 *   Message { MessageType type = 1; bytes key = 2; Record record = 3;
 *             repeated Peer closerPeers = 8; repeated Peer providerPeers = 9;
 *             int32 clusterLevelRaw = 10; } */
#include <string.h>

#include "core/mem.h"
#include "core/pb.h"
#include "flare/varint.h"
#include "protocols/kad/kad.h"

enum { M_TYPE = 1, M_KEY = 2, M_RECORD = 3, M_CLOSER = 8, M_PROVIDERS = 9, M_CLUSTER = 10 };
enum { R_KEY = 1, R_VALUE = 2, R_TIME = 5 };
enum { P_ID = 1, P_ADDRS = 2, P_CONN = 3 };

#define MAX_TIME_STR 64

void flare__kad_msg_init(flare__kad_msg *m, flare__kad_type t)
{
    memset(m, 0, sizeof(*m));
    m->type = (int)t;
}

static int decode_record(flare__kad_msg *m, const uint8_t *in, size_t len)
{
    flare__pb_reader r;
    flare__pb_field f;
    int rv;
    flare__pb_reader_init(&r, in, len);
    while ((rv = flare__pb_next(&r, &f)) > 0) {
        if (f.num != R_KEY && f.num != R_VALUE && f.num != R_TIME)
            continue;
        if (f.wire != FLARE__PB_LEN)
            return FLARE_ERR_MALFORMED;
        flare__kad_bytes b = {f.data, f.len};
        if (f.num == R_KEY) {
            if (f.len > FLARE__KAD_MAX_KEY)
                return FLARE_ERR_TOO_LARGE;
            m->rec_key = b;
        } else if (f.num == R_VALUE) {
            if (f.len > FLARE__KAD_MAX_VALUE)
                return FLARE_ERR_TOO_LARGE;
            m->rec_value = b;
        } else {
            if (f.len > MAX_TIME_STR)
                return FLARE_ERR_TOO_LARGE;
            m->rec_time = b;
        }
    }
    if (rv < 0)
        return rv;
    m->has_record = 1;
    return 0;
}

static int valid_addr(const uint8_t *p, size_t len)
{
    flare_multiaddr ma;
    return flare_multiaddr_from_bytes(&ma, p, len) == 0;
}

/* Decodes one Peer into *p; returns 1 if it is usable, 0 to skip it, or a
 * protobuf error. */
static int decode_peer(flare__kad_msg *m, flare__kad_peer *p, const uint8_t *in, size_t len)
{
    flare__pb_reader r;
    flare__pb_field f;
    int rv, have_id = 0;
    memset(p, 0, sizeof(*p));
    flare__pb_reader_init(&r, in, len);
    while ((rv = flare__pb_next(&r, &f)) > 0) {
        if (f.num == P_CONN) {
            if (f.wire != FLARE__PB_VARINT)
                return FLARE_ERR_MALFORMED;
            p->conn = f.v <= FLARE__KAD_CANNOT_CONNECT ? (int)f.v : 0;
            continue;
        }
        if (f.num != P_ID && f.num != P_ADDRS)
            continue;
        if (f.wire != FLARE__PB_LEN)
            return FLARE_ERR_MALFORMED;
        if (f.num == P_ID) {
            p->id = (flare__kad_bytes){f.data, f.len};
            have_id = 1;
        } else if (p->naddrs < FLARE__KAD_MAX_ADDRS && valid_addr(f.data, f.len)) {
            p->addrs[p->naddrs++] = (flare__kad_bytes){f.data, f.len};
        } else {
            m->ndropped++;
        }
    }
    if (rv < 0)
        return rv;
    flare_peerid id;
    if (!have_id || flare_peerid_from_bytes(&id, p->id.p, p->id.len) != 0)
        return 0;
    return 1;
}

static int take_peer(flare__kad_msg *m, int providers, const uint8_t *in, size_t len)
{
    flare__kad_peer *list = providers ? m->providers : m->closer;
    size_t *n = providers ? &m->nproviders : &m->ncloser;
    if (*n == FLARE__KAD_MAX_PEERS) {
        m->ndropped++;
        return 0;
    }
    int rv = decode_peer(m, &list[*n], in, len);
    if (rv < 0)
        return rv;
    if (rv == 1)
        (*n)++;
    else
        m->ndropped++;
    return 0;
}

static int decode_field(flare__kad_msg *m, const flare__pb_field *f, int *have_type)
{
    switch (f->num) {
    case M_TYPE:
        if (f->wire != FLARE__PB_VARINT)
            return FLARE_ERR_MALFORMED;
        if (f->v > FLARE__KAD_PING)
            return FLARE_ERR_UNKNOWN_CODE;
        m->type = (int)f->v;
        *have_type = 1;
        return 0;
    case M_CLUSTER:
        if (f->wire != FLARE__PB_VARINT)
            return FLARE_ERR_MALFORMED;
        m->cluster_level = (int32_t)(uint32_t)f->v;
        return 0;
    case M_KEY:
    case M_RECORD:
    case M_CLOSER:
    case M_PROVIDERS:
        if (f->wire != FLARE__PB_LEN)
            return FLARE_ERR_MALFORMED;
        break;
    default:
        return 0; /* unknown fields are skipped */
    }
    if (f->num == M_KEY) {
        if (f->len > FLARE__KAD_MAX_KEY)
            return FLARE_ERR_TOO_LARGE;
        m->key = (flare__kad_bytes){f->data, f->len};
        return 0;
    }
    if (f->num == M_RECORD)
        return decode_record(m, f->data, f->len);
    return take_peer(m, f->num == M_PROVIDERS, f->data, f->len);
}

/* Everything but the peer slots: a slot is written whole (decode_peer)
 * before its count covers it, so the ~6 KB of slots need no clearing. */
static void reset_header(flare__kad_msg *m)
{
    m->type = FLARE__KAD_PUT_VALUE;
    m->cluster_level = 0;
    m->key = (flare__kad_bytes){0};
    m->has_record = 0;
    m->rec_key = m->rec_value = m->rec_time = (flare__kad_bytes){0};
    m->ncloser = m->nproviders = m->ndropped = 0;
}

int flare__kad_msg_decode(flare__kad_msg *m, const uint8_t *in, size_t len)
{
    flare__pb_reader r;
    flare__pb_field f;
    int rv, have_type = 0;
    reset_header(m);
    if (len > FLARE__KAD_MAX_MSG)
        return FLARE_ERR_TOO_LARGE;
    flare__pb_reader_init(&r, in, len);
    while ((rv = flare__pb_next(&r, &f)) > 0)
        if ((rv = decode_field(m, &f, &have_type)) < 0)
            break;
    if (rv < 0) {
        reset_header(m);
        return rv;
    }
    /* proto3: an absent type is PUT_VALUE (0). */
    (void)have_type;
    return 0;
}

/* ---- encoding ---- */

/* Protobuf varints use all 64 bits (a negative int32 takes 10 bytes). */
static size_t pb_varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static size_t field_len(size_t len)
{
    return 1 + flare_uvarint_len(len) + len;
}

static size_t peer_size(const flare__kad_peer *p)
{
    size_t sz = field_len(p->id.len);
    for (size_t i = 0; i < p->naddrs; i++)
        sz += field_len(p->addrs[i].len);
    if (p->conn)
        sz += 1 + flare_uvarint_len((uint64_t)p->conn);
    return sz;
}

static size_t record_size(const flare__kad_msg *m)
{
    size_t sz = field_len(m->rec_key.len) + field_len(m->rec_value.len);
    if (m->rec_time.len)
        sz += field_len(m->rec_time.len);
    return sz;
}

/* The sizes of the peers (closer, then providers) go to psz: each is
 * needed twice, in the total and in its own length prefix. */
static size_t body_size(const flare__kad_msg *m, size_t psz[2 * FLARE__KAD_MAX_PEERS])
{
    size_t sz = 1 + flare_uvarint_len((uint64_t)m->type);
    if (m->key.len)
        sz += field_len(m->key.len);
    if (m->has_record)
        sz += field_len(record_size(m));
    for (size_t i = 0; i < m->ncloser + m->nproviders; i++) {
        psz[i] = peer_size(i < m->ncloser ? &m->closer[i] : &m->providers[i - m->ncloser]);
        sz += field_len(psz[i]);
    }
    if (m->cluster_level)
        sz += 1 + pb_varint_len((uint64_t)(int64_t)m->cluster_level);
    return sz;
}

static int put_peer(flare_buf *out, uint32_t num, const flare__kad_peer *p, size_t size)
{
    /* Field numbers 8 and 9: one-byte tags. */
    int rv = flare_buf_append_byte(out, (uint8_t)(num << 3 | FLARE__PB_LEN));
    if (rv == 0)
        rv = flare_buf_append_uvarint(out, size);
    if (rv == 0)
        rv = flare__pb_put_bytes_field(out, P_ID, p->id.p, p->id.len);
    for (size_t i = 0; rv == 0 && i < p->naddrs; i++)
        rv = flare__pb_put_bytes_field(out, P_ADDRS, p->addrs[i].p, p->addrs[i].len);
    if (rv == 0 && p->conn)
        rv = flare__pb_put_varint_field(out, P_CONN, (uint64_t)p->conn);
    return rv;
}

static int put_record(flare_buf *out, const flare__kad_msg *m)
{
    int rv = flare_buf_append_byte(out, (uint8_t)(M_RECORD << 3 | FLARE__PB_LEN));
    if (rv == 0)
        rv = flare_buf_append_uvarint(out, record_size(m));
    if (rv == 0)
        rv = flare__pb_put_bytes_field(out, R_KEY, m->rec_key.p, m->rec_key.len);
    if (rv == 0)
        rv = flare__pb_put_bytes_field(out, R_VALUE, m->rec_value.p, m->rec_value.len);
    if (rv == 0 && m->rec_time.len)
        rv = flare__pb_put_bytes_field(out, R_TIME, m->rec_time.p, m->rec_time.len);
    return rv;
}

static int encode_body(flare_buf *out, const flare__kad_msg *m,
                       const size_t psz[2 * FLARE__KAD_MAX_PEERS])
{
    int rv = flare__pb_put_varint_field(out, M_TYPE, (uint64_t)m->type);
    if (rv == 0 && m->key.len)
        rv = flare__pb_put_bytes_field(out, M_KEY, m->key.p, m->key.len);
    if (rv == 0 && m->has_record)
        rv = put_record(out, m);
    for (size_t i = 0; rv == 0 && i < m->ncloser; i++)
        rv = put_peer(out, M_CLOSER, &m->closer[i], psz[i]);
    for (size_t i = 0; rv == 0 && i < m->nproviders; i++)
        rv = put_peer(out, M_PROVIDERS, &m->providers[i], psz[m->ncloser + i]);
    if (rv == 0 && m->cluster_level)
        rv = flare__pb_put_varint_field(out, M_CLUSTER, (uint64_t)(int64_t)m->cluster_level);
    return rv;
}

static int check_bounds(const flare__kad_msg *m)
{
    if (m->type < 0 || m->type > FLARE__KAD_PING || m->ncloser > FLARE__KAD_MAX_PEERS ||
        m->nproviders > FLARE__KAD_MAX_PEERS || m->key.len > FLARE__KAD_MAX_KEY)
        return FLARE_ERR_INVALID_ARG;
    if (m->has_record &&
        (m->rec_key.len > FLARE__KAD_MAX_KEY || m->rec_value.len > FLARE__KAD_MAX_VALUE))
        return FLARE_ERR_TOO_LARGE;
    for (size_t i = 0; i < m->ncloser + m->nproviders; i++) {
        const flare__kad_peer *p = i < m->ncloser ? &m->closer[i] : &m->providers[i - m->ncloser];
        if (p->naddrs > FLARE__KAD_MAX_ADDRS || !p->id.len)
            return FLARE_ERR_INVALID_ARG;
    }
    return 0;
}

int flare__kad_msg_encode(flare_buf *out, const flare__kad_msg *m)
{
    if (!out || !m)
        return FLARE_ERR_INVALID_ARG;
    int rv = check_bounds(m);
    if (rv)
        return rv;
    size_t psz[2 * FLARE__KAD_MAX_PEERS];
    size_t sz = body_size(m, psz);
    if (sz > FLARE__KAD_MAX_MSG)
        return FLARE_ERR_TOO_LARGE;
    size_t start = out->len;
    /* All of it at once: an answer of 20 peers would otherwise grow the
     * buffer from empty through half a dozen reallocations. */
    rv = flare_buf_reserve(out, flare_uvarint_len(sz) + sz);
    if (rv == 0)
        rv = flare_buf_append_uvarint(out, sz);
    if (rv == 0)
        rv = encode_body(out, m, psz);
    if (rv == 0 && out->len - start != sz + flare_uvarint_len(sz))
        rv = FLARE_ERR_INTERNAL;
    if (rv)
        out->len = start;
    return rv;
}
