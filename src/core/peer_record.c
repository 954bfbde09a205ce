/* Peer records (libp2p/specs RFC 0003) in signed envelopes. */
#include <string.h>

#include "core/pb.h"
#include "flare/peer_record.h"
#include "flare/varint.h"

enum { F_PEER_ID = 1, F_SEQ = 2, F_ADDRS = 3 };
enum { F_ADDR_MULTIADDR = 1 };

static int check_addrs(const flare_bytes_view *addrs, size_t n)
{
    if (n > FLARE_PEER_RECORD_MAX_ADDRS)
        return FLARE_ERR_TOO_LARGE;
    if (n && !addrs)
        return FLARE_ERR_INVALID_ARG;
    for (size_t i = 0; i < n; i++) {
        if (!addrs[i].data || addrs[i].len == 0)
            return FLARE_ERR_INVALID_ARG;
        if (addrs[i].len > FLARE_PEER_RECORD_ADDR_MAX)
            return FLARE_ERR_TOO_LARGE;
    }
    return 0;
}

static int encode_body(const flare_peerid *id, uint64_t seq, const flare_bytes_view *addrs,
                       size_t n, flare_buf *out)
{
    int rv = flare__pb_put_bytes_field(out, F_PEER_ID, id->bytes, id->len);
    /* proto3: a zero seq is not written. */
    if (rv == 0 && seq)
        rv = flare__pb_put_varint_field(out, F_SEQ, seq);
    for (size_t i = 0; rv == 0 && i < n; i++) {
        /* AddressInfo { multiaddr = 1 }: tag, length, then the nested field. */
        size_t inner = 1 + (size_t)flare_uvarint_len(addrs[i].len) + addrs[i].len;
        rv = flare_buf_append_uvarint(out, (uint64_t)F_ADDRS << 3 | FLARE__PB_LEN);
        if (rv == 0)
            rv = flare_buf_append_uvarint(out, inner);
        if (rv == 0)
            rv = flare__pb_put_bytes_field(out, F_ADDR_MULTIADDR, addrs[i].data, addrs[i].len);
    }
    return rv;
}

int flare_peer_record_encode(const flare_peerid *id, uint64_t seq, const flare_bytes_view *addrs,
                             size_t naddrs, flare_buf *out)
{
    if (!id || !out || id->len == 0 || id->len > FLARE_PEERID_MAX)
        return FLARE_ERR_INVALID_ARG;
    int rv = check_addrs(addrs, naddrs);
    if (rv)
        return rv;
    size_t start = out->len;
    rv = encode_body(id, seq, addrs, naddrs, out);
    if (rv)
        out->len = start;
    return rv;
}

/* AddressInfo: the last multiaddr field wins; other fields are skipped. */
static int decode_addr(const uint8_t *in, size_t len, flare_bytes_view *addr)
{
    flare__pb_reader r;
    flare__pb_field f;
    int rv;
    addr->data = NULL;
    addr->len = 0;
    flare__pb_reader_init(&r, in, len);
    while ((rv = flare__pb_next(&r, &f)) > 0) {
        if (f.num != F_ADDR_MULTIADDR)
            continue;
        if (f.wire != FLARE__PB_LEN)
            return FLARE_ERR_MALFORMED;
        addr->data = f.data;
        addr->len = f.len;
    }
    if (rv < 0)
        return rv;
    if (addr->len == 0)
        return FLARE_ERR_MALFORMED;
    return addr->len > FLARE_PEER_RECORD_ADDR_MAX ? FLARE_ERR_TOO_LARGE : 0;
}

static int decode_field(const flare__pb_field *f, flare_peer_record *rec, int *have_id)
{
    if (f->num == F_PEER_ID) {
        if (f->wire != FLARE__PB_LEN)
            return FLARE_ERR_MALFORMED;
        int rv = flare_peerid_from_bytes(&rec->peer_id, f->data, f->len);
        if (rv)
            return rv;
        *have_id = 1;
    } else if (f->num == F_SEQ) {
        if (f->wire != FLARE__PB_VARINT)
            return FLARE_ERR_MALFORMED;
        rec->seq = f->v;
    } else if (f->num == F_ADDRS) {
        if (f->wire != FLARE__PB_LEN)
            return FLARE_ERR_MALFORMED;
        if (rec->naddrs == FLARE_PEER_RECORD_MAX_ADDRS)
            return FLARE_ERR_TOO_LARGE;
        int rv = decode_addr(f->data, f->len, &rec->addrs[rec->naddrs]);
        if (rv)
            return rv;
        rec->naddrs++;
    }
    return 0;
}

int flare_peer_record_decode(const uint8_t *in, size_t len, flare_peer_record *rec)
{
    if (!rec || (!in && len))
        return FLARE_ERR_INVALID_ARG;
    flare__pb_reader r;
    flare__pb_field f;
    int rv, have_id = 0;
    memset(rec, 0, sizeof(*rec));
    flare__pb_reader_init(&r, in, len);
    while ((rv = flare__pb_next(&r, &f)) > 0) {
        rv = decode_field(&f, rec, &have_id);
        if (rv)
            return rv;
    }
    if (rv < 0)
        return rv;
    return have_id ? 0 : FLARE_ERR_MALFORMED;
}

int flare_peer_record_seal(const flare_privkey *k, uint64_t seq, const flare_bytes_view *addrs,
                           size_t naddrs, flare_buf *out)
{
    if (!k || !out)
        return FLARE_ERR_INVALID_ARG;
    flare_peerid id;
    int rv = flare_peerid_from_pubkey(&id, &k->pub);
    if (rv)
        return rv;
    flare_buf body;
    flare_buf_init(&body, out->mem);
    rv = flare_peer_record_encode(&id, seq, addrs, naddrs, &body);
    if (rv == 0)
        rv = flare_envelope_seal(k, FLARE_PEER_RECORD_DOMAIN, FLARE_PEER_RECORD_TYPE,
                                 FLARE_PEER_RECORD_TYPE_LEN, body.base, body.len, out);
    flare_buf_free(&body);
    return rv;
}

int flare_peer_record_open(const uint8_t *in, size_t len, flare_peer_record *rec,
                           flare_envelope *env)
{
    return flare_peer_record_open_cached(in, len, NULL, rec, env);
}

int flare_peer_record_open_cached(const uint8_t *in, size_t len, flare_sig_cache *cache,
                                  flare_peer_record *rec, flare_envelope *env)
{
    if (!rec)
        return FLARE_ERR_INVALID_ARG;
    flare_envelope local;
    if (!env)
        env = &local;
    int rv = flare_envelope_open_cached(in, len, FLARE_PEER_RECORD_DOMAIN, FLARE_PEER_RECORD_TYPE,
                                        FLARE_PEER_RECORD_TYPE_LEN, cache, env);
    if (rv)
        return rv;
    rv = flare_peer_record_decode(env->payload, env->payload_len, rec);
    if (rv)
        return rv;
    return flare_peerid_equal(&rec->peer_id, &env->signer) ? 0 : FLARE_ERR_PEER_ID_MISMATCH;
}
