/* identify message encoding and decoding (protobuf-c). */
#include <string.h>

#include "core/mem.h"
#include "core/pb.h"
#include "flare/identify.h"
#include "flare/lpframe.h"
#include "identify.pb-c.h"

int flare_identify_encode(const flare_identify_out *m, flare_buf *out)
{
    FlareIdentify__Identify msg = FLARE_IDENTIFY__IDENTIFY__INIT;
    uint8_t key[FLARE_PUBKEY_PROTO_MAX];
    ProtobufCBinaryData addrs[FLARE_IDENTIFY_MAX_ADDRS];
    msg.protocolversion =
        (char *)(m->protocol_version ? m->protocol_version : FLARE_IDENTIFY_PROTOCOL_VERSION);
    msg.agentversion = (char *)m->agent_version;
    if (m->pubkey) {
        int n = flare_pubkey_encode(m->pubkey, key, sizeof(key));
        if (n < 0)
            return n;
        msg.has_publickey = 1;
        msg.publickey.data = key;
        msg.publickey.len = (size_t)n;
    }
    size_t nl = m->nlisten < FLARE_IDENTIFY_MAX_ADDRS ? m->nlisten : FLARE_IDENTIFY_MAX_ADDRS;
    for (size_t i = 0; i < nl; i++) {
        addrs[i].data = (uint8_t *)m->listen[i].bytes;
        addrs[i].len = m->listen[i].len;
    }
    msg.n_listenaddrs = nl;
    msg.listenaddrs = addrs;
    if (m->observed) {
        msg.has_observedaddr = 1;
        msg.observedaddr.data = (uint8_t *)m->observed->bytes;
        msg.observedaddr.len = m->observed->len;
    }
    msg.n_protocols = m->nprotocols;
    msg.protocols = (char **)m->protocols;
    if (m->signed_record) {
        msg.has_signedpeerrecord = 1;
        msg.signedpeerrecord.data = (uint8_t *)m->signed_record;
        msg.signedpeerrecord.len = m->signed_record_len;
    }
    size_t len = flare_identify__identify__get_packed_size(&msg);
    if (len > FLARE_IDENTIFY_MAX_MSG)
        return FLARE_ERR_TOO_LARGE;
    int rv = flare_buf_reserve(out, len + 10);
    if (rv)
        return rv;
    rv = flare_buf_append_uvarint(out, len);
    if (rv)
        return rv;
    flare_identify__identify__pack(&msg, out->base + out->len);
    out->len += len;
    return 0;
}

static int copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap)
        return FLARE_ERR_TOO_LARGE;
    memcpy(dst, src, n + 1);
    return 0;
}

static int decode_lists(flare_identify_msg *m, const FlareIdentify__Identify *pb)
{
    const flare_mem *mem = m->mem;
    m->has_listen_addrs = pb->n_listenaddrs > 0;
    size_t na =
        pb->n_listenaddrs < FLARE_IDENTIFY_MAX_ADDRS ? pb->n_listenaddrs : FLARE_IDENTIFY_MAX_ADDRS;
    if (na) {
        m->listen = flare__calloc(mem, na, sizeof(flare_multiaddr));
        if (!m->listen)
            return FLARE_ERR_NOMEM;
    }
    for (size_t i = 0; i < na; i++)
        if (flare_multiaddr_from_bytes(&m->listen[m->nlisten], pb->listenaddrs[i].data,
                                       pb->listenaddrs[i].len) == 0)
            m->nlisten++;
    m->has_protocols = pb->n_protocols > 0;
    size_t np = pb->n_protocols < FLARE_IDENTIFY_MAX_PROTOCOLS ? pb->n_protocols
                                                               : FLARE_IDENTIFY_MAX_PROTOCOLS;
    if (np) {
        m->protocols = flare__calloc(mem, np, sizeof(char *));
        if (!m->protocols)
            return FLARE_ERR_NOMEM;
    }
    for (size_t i = 0; i < np; i++) {
        size_t n = strlen(pb->protocols[i]);
        if (n == 0 || n > 1024)
            continue; /* not a protocol id anyone can negotiate */
        char *p = flare__malloc(mem, n + 1);
        if (!p)
            return FLARE_ERR_NOMEM;
        memcpy(p, pb->protocols[i], n + 1);
        m->protocols[m->nprotocols++] = p;
    }
    return 0;
}

static int decode_fields(flare_identify_msg *m, const FlareIdentify__Identify *pb)
{
    if (pb->protocolversion) {
        m->has_protocol_version = 1;
        if (copy_str(m->protocol_version, sizeof(m->protocol_version), pb->protocolversion))
            m->protocol_version[0] = 0;
    }
    if (pb->agentversion) {
        m->has_agent_version = 1;
        if (copy_str(m->agent_version, sizeof(m->agent_version), pb->agentversion)) {
            memcpy(m->agent_version, pb->agentversion, sizeof(m->agent_version) - 1);
            m->agent_version[sizeof(m->agent_version) - 1] = 0;
        }
    }
    if (pb->has_publickey) {
        int rv = flare_pubkey_decode(&m->pubkey, pb->publickey.data, pb->publickey.len);
        if (rv)
            return rv;
        m->has_pubkey = 1;
    }
    if (pb->has_observedaddr &&
        flare_multiaddr_from_bytes(&m->observed, pb->observedaddr.data, pb->observedaddr.len) == 0)
        m->has_observed = 1;
    if (pb->has_signedpeerrecord && pb->signedpeerrecord.len > 0) {
        m->signed_record = flare__malloc(m->mem, pb->signedpeerrecord.len);
        if (!m->signed_record)
            return FLARE_ERR_NOMEM;
        memcpy(m->signed_record, pb->signedpeerrecord.data, pb->signedpeerrecord.len);
        m->signed_record_len = pb->signedpeerrecord.len;
    }
    return decode_lists(m, pb);
}

int flare_identify_decode(flare_identify_msg *m, const uint8_t *in, size_t len,
                          const flare_mem *mem)
{
    memset(m, 0, sizeof(*m));
    m->mem = flare__mem(mem);
    if (len > FLARE_IDENTIFY_MAX_MSG)
        return FLARE_ERR_TOO_LARGE;
    ProtobufCAllocator alloc = flare__pb_allocator(m->mem);
    FlareIdentify__Identify *pb = flare_identify__identify__unpack(&alloc, len, in);
    if (!pb)
        return FLARE_ERR_MALFORMED;
    int rv = decode_fields(m, pb);
    flare_identify__identify__free_unpacked(pb, &alloc);
    if (rv)
        flare_identify_msg_free(m);
    return rv;
}

void flare_identify_msg_free(flare_identify_msg *m)
{
    if (!m->mem)
        return;
    for (size_t i = 0; i < m->nprotocols; i++)
        flare__free(m->mem, m->protocols[i]);
    flare__free(m->mem, m->protocols);
    flare__free(m->mem, m->listen);
    flare__free(m->mem, m->signed_record);
    m->protocols = NULL;
    m->listen = NULL;
    m->signed_record = NULL;
    m->nprotocols = m->nlisten = 0;
}
