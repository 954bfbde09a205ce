/* DCUtR HolePunch codec (proto/dcutr.proto) and address selection. */
#include "protocols/dcutr/dcutr_int.h"

#include <string.h>

#include "core/pb.h"
#include "flare/varint.h"

enum { F_TYPE = 1, F_OBSADDRS = 2 };

static int addr_seen(const flare_multiaddr *list, size_t n, const flare_multiaddr *ma)
{
    for (size_t i = 0; i < n; i++)
        if (flare_multiaddr_equal(&list[i], ma))
            return 1;
    return 0;
}

/* Keeps one ObsAddrs entry if it is usable; a bad entry is only counted. */
static void take_addr(flare_dcutr_msg *m, const uint8_t *p, size_t len)
{
    flare_multiaddr *slot = &m->addrs[m->naddrs];
    if (m->naddrs == FLARE_DCUTR_MAX_ADDRS || flare_multiaddr_from_bytes(slot, p, len) != 0 ||
        flare_multiaddr_is_relayed(slot) || addr_seen(m->addrs, m->naddrs, slot)) {
        m->ndropped++;
        return;
    }
    m->naddrs++;
}

/* Walks a message; addresses are kept in m when it is not NULL. */
static int decode(const uint8_t *in, size_t len, flare_dcutr_type *out_type, flare_dcutr_msg *m)
{
    flare__pb_reader r;
    flare__pb_field f;
    int rv, have_type = 0;
    uint64_t type = 0;

    if (len > FLARE_DCUTR_MAX_MSG)
        return FLARE_ERR_TOO_LARGE;
    flare__pb_reader_init(&r, in, len);
    while ((rv = flare__pb_next(&r, &f)) > 0) {
        if (f.num == F_TYPE) {
            if (f.wire != FLARE__PB_VARINT)
                return FLARE_ERR_MALFORMED;
            type = f.v; /* protobuf: the last occurrence wins */
            have_type = 1;
        } else if (f.num == F_OBSADDRS) {
            if (f.wire != FLARE__PB_LEN)
                return FLARE_ERR_MALFORMED;
            if (m)
                take_addr(m, f.data, f.len);
        }
    }
    if (rv < 0)
        return rv;
    if (!have_type)
        return FLARE_ERR_MALFORMED;
    if (type != FLARE_DCUTR_CONNECT && type != FLARE_DCUTR_SYNC)
        return FLARE_ERR_UNKNOWN_CODE;
    *out_type = (flare_dcutr_type)type;
    return 0;
}

int flare_dcutr_msg_decode(flare_dcutr_msg *m, const uint8_t *in, size_t len)
{
    m->naddrs = 0;
    m->ndropped = 0;
    m->type = 0;
    int rv = decode(in, len, &m->type, m);
    if (rv)
        m->naddrs = 0;
    return rv;
}

int flare__dcutr_msg_type(const uint8_t *in, size_t len, flare_dcutr_type *type)
{
    return decode(in, len, type, NULL);
}

static int encode_body(flare_buf *out, flare_dcutr_type type, const flare_multiaddr *addrs,
                       size_t n)
{
    int rv = flare__pb_put_varint_field(out, F_TYPE, (uint64_t)type);
    for (size_t i = 0; rv == 0 && i < n; i++)
        rv = flare__pb_put_bytes_field(out, F_OBSADDRS, addrs[i].bytes, addrs[i].len);
    return rv;
}

static size_t body_size(flare_dcutr_type type, const flare_multiaddr *addrs, size_t n)
{
    size_t sz = 1 + flare_uvarint_len((uint64_t)type);
    for (size_t i = 0; i < n; i++)
        sz += 1 + flare_uvarint_len(addrs[i].len) + addrs[i].len;
    return sz;
}

int flare_dcutr_msg_encode(flare_buf *out, flare_dcutr_type type, const flare_multiaddr *addrs,
                           size_t n)
{
    if (!out || (type != FLARE_DCUTR_CONNECT && type != FLARE_DCUTR_SYNC) || (n && !addrs))
        return FLARE_ERR_INVALID_ARG;
    /* Sized first so the prefix is written once and out stays untouched on
     * error. */
    size_t sz = body_size(type, addrs, n);
    if (sz > FLARE_DCUTR_MAX_MSG)
        return FLARE_ERR_TOO_LARGE;
    size_t start = out->len;
    int rv = flare_buf_append_uvarint(out, sz);
    if (rv == 0)
        rv = encode_body(out, type, addrs, n);
    if (rv)
        out->len = start;
    return rv;
}

/* ---- address selection ---- */

static const flare_dcutr_addr_settings default_opts = {.struct_size = sizeof(default_opts),
                                                       .max = FLARE_DCUTR_MAX_ADDRS,
                                                       .max_dials = FLARE_DCUTR_MAX_DIALS};

void flare_dcutr_addr_settings_default(flare_dcutr_addr_settings *s)
{
    *s = default_opts;
}

/* Shape check: ip, then tcp or udp+quic-v1, then at most one /p2p/. */
static int transport_ok(const flare_multiaddr *ma, int allow_quic)
{
    flare_ma_component c;
    uint64_t code[5];
    size_t off = 0, n = 0;
    while (n < 5 && flare_multiaddr_next(ma, &off, &c) == 1)
        code[n++] = c.code;
    if (n < 2 || n == 5 || (code[0] != FLARE_MA_IP4 && code[0] != FLARE_MA_IP6))
        return 0;
    size_t end;
    if (code[1] == FLARE_MA_TCP)
        end = 2;
    else if (allow_quic && code[1] == FLARE_MA_UDP && n >= 3 && code[2] == FLARE_MA_QUIC_V1)
        end = 3;
    else
        return 0;
    return n == end || (n == end + 1 && code[end] == FLARE_MA_P2P);
}

static int scope_ok(flare_ma_class c, const flare_dcutr_addr_settings *opts)
{
    if (flare_ma_class_is_public(c, opts->doc_is_public))
        return 1;
    return opts->allow_private && (c == FLARE_MA_PRIVATE || c == FLARE_MA_LOOPBACK ||
                                   c == FLARE_MA_LINK_LOCAL || c == FLARE_MA_CGNAT);
}

/* The same IP, transport and port, whatever follows (/p2p/ or not). */
static int same_endpoint_seen(const flare_multiaddr *list, size_t n, const flare_multiaddr *ma)
{
    flare_ipaddr a, b;
    int pa, pb;
    if (flare_multiaddr_to_ipaddr(ma, &a, &pa))
        return addr_seen(list, n, ma);
    for (size_t i = 0; i < n; i++)
        if (flare_multiaddr_to_ipaddr(&list[i], &b, &pb) == 0 && pa == pb &&
            flare_ipaddr_equal(&a, &b))
            return 1;
    return 0;
}

int flare_dcutr_addr_usable(const flare_multiaddr *ma, const flare_dcutr_addr_settings *opts)
{
    if (!opts)
        opts = &default_opts;
    if (opts->struct_size != sizeof(*opts))
        return 0;
    if (!ma || ma->len == 0 || flare_multiaddr_is_relayed(ma))
        return 0;
    if (!scope_ok(flare_multiaddr_classify(ma), opts))
        return 0;
    return transport_ok(ma, opts->allow_quic);
}

int flare_dcutr_dial_addrs(const flare_multiaddr *in, size_t n,
                           const flare_dcutr_addr_settings *opts, flare_multiaddr *out, size_t cap)
{
    if ((n && !in) || (cap && !out))
        return FLARE_ERR_INVALID_ARG;
    if (!opts)
        opts = &default_opts;
    if (opts->struct_size != sizeof(*opts))
        return FLARE_ERR_INVALID_ARG;
    size_t max = opts->max_dials;
    if (max > cap)
        max = cap;
    size_t have = 0;
    for (size_t i = 0; i < n && have < max; i++) {
        if (!flare_dcutr_addr_usable(&in[i], opts) || same_endpoint_seen(out, have, &in[i]))
            continue;
        out[have++] = in[i];
    }
    return (int)have;
}

static size_t add_usable(const flare_multiaddr *in, size_t n, const flare_dcutr_addr_settings *opts,
                         flare_multiaddr *out, size_t have, size_t max)
{
    for (size_t i = 0; i < n && have < max; i++) {
        if (flare_dcutr_addr_usable(&in[i], opts) && !addr_seen(out, have, &in[i]))
            out[have++] = in[i];
    }
    return have;
}

int flare_dcutr_select_addrs(const flare_multiaddr *confirmed, size_t nconfirmed,
                             const flare_multiaddr *candidates, size_t ncandidates,
                             const flare_dcutr_addr_settings *opts, flare_multiaddr *out,
                             size_t cap)
{
    if ((nconfirmed && !confirmed) || (ncandidates && !candidates) || (cap && !out))
        return FLARE_ERR_INVALID_ARG;
    if (!opts)
        opts = &default_opts;
    if (opts->struct_size != sizeof(*opts))
        return FLARE_ERR_INVALID_ARG;
    size_t max = opts->max;
    if (max > cap)
        max = cap;
    size_t n = add_usable(confirmed, nconfirmed, opts, out, 0, max);
    n = add_usable(candidates, ncandidates, opts, out, n, max);
    return (int)n;
}

int flare_dcutr_should_dial_direct(const flare_multiaddr *addrs, size_t n, int doc_is_public)
{
    for (size_t i = 0; addrs && i < n; i++) {
        if (!flare_multiaddr_is_relayed(&addrs[i]) &&
            flare_ma_class_is_public(flare_multiaddr_classify(&addrs[i]), doc_is_public))
            return 1;
    }
    return 0;
}

flare_dcutr_verdict flare_dcutr_should_punch(const flare_dcutr_punch_hint *h)
{
    if (h->have_direct_conn)
        return FLARE_DCUTR_SKIP_DIRECT_EXISTS;
    if (h->our_addrs == 0 || (h->their_addrs_known && h->their_addrs == 0))
        return FLARE_DCUTR_SKIP_NO_ADDRS;
    /* Two endpoint-dependent mappings never line up (each side's SYN goes
     * to a port the other's NAT did not allocate for it). */
    if (h->our_nat == FLARE_DCUTR_NAT_EDM && h->their_nat == FLARE_DCUTR_NAT_EDM)
        return FLARE_DCUTR_SKIP_BOTH_SYMMETRIC;
    return FLARE_DCUTR_PUNCH;
}

const char *flare_dcutr_verdict_name(flare_dcutr_verdict v)
{
    switch (v) {
    case FLARE_DCUTR_PUNCH:
        return "punch";
    case FLARE_DCUTR_SKIP_DIRECT_EXISTS:
        return "skip-direct-exists";
    case FLARE_DCUTR_SKIP_NO_ADDRS:
        return "skip-no-addrs";
    case FLARE_DCUTR_SKIP_BOTH_SYMMETRIC:
        return "skip-both-symmetric";
    }
    return "unknown";
}
