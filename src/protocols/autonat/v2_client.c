/* AutoNAT v2 client core: one flare_autonat2_client_req per dial-request
 * stream. The verdict needs both the server's word (DialResponse) and our
 * own evidence (the nonce on a dial-back stream). */
#include <string.h>

#include "flare/lpframe.h"
#include "protocols/autonat/autonat_int.h"

int flare_autonat2_client_req_init(flare_autonat2_client_req *c, const flare_multiaddr *addrs,
                                   size_t naddrs, uint64_t max_dial_data, flare_rng rng,
                                   flare_buf *out)
{
    memset(c, 0, sizeof(*c));
    c->addr_idx = -1;
    if (!rng.fn || !addrs || naddrs == 0 || naddrs > FLARE_AUTONAT_MAX_ADDRS)
        return FLARE_ERR_INVALID_ARG;
    for (size_t i = 0; i < naddrs; i++) {
        if (!addrs[i].len)
            return FLARE_ERR_INVALID_ARG;
        c->addrs[i] = addrs[i];
    }
    c->naddrs = naddrs;
    c->max_dial_data = max_dial_data;
    /* A zero nonce is "absent" on the wire; a server that sends no nonce
     * must not match. */
    while (c->nonce == 0) {
        uint8_t b[8];
        rng.fn(b, sizeof(b), rng.user);
        for (int i = 0; i < 8; i++)
            c->nonce = c->nonce << 8 | b[i];
    }
    c->state = FLARE_AUTONAT2_CREQ_WAIT;
    return flare_autonat2_encode_dial_request(out, c->addrs, c->naddrs, c->nonce);
}

static int send_data(flare_autonat2_client_req *c, const flare_autonat2_msg *m, flare_buf *out)
{
    static const uint8_t zeros[FLARE_AUTONAT_V2_CHUNK_MAX];
    if (c->data_sent)
        return FLARE_ERR_PROTO; /* pay once per request */
    if (m->addr_idx >= c->naddrs || m->num_bytes > c->max_dial_data)
        return FLARE_ERR_REFUSED;
    c->data_sent = 1;
    uint64_t left = m->num_bytes;
    while (left) {
        size_t n = left < sizeof(zeros) ? (size_t)left : sizeof(zeros);
        int rv = flare_autonat2_encode_dial_data_response(out, zeros, n);
        if (rv < 0)
            return rv;
        left -= n;
    }
    return 0;
}

/* Same transport and port (IPs may differ through a NAT). */
static int same_port(const flare_multiaddr *a, const flare_multiaddr *b)
{
    flare_ipaddr ia, ib;
    int pa, pb;
    if (flare_multiaddr_to_ipaddr(a, &ia, &pa) < 0 || flare_multiaddr_to_ipaddr(b, &ib, &pb) < 0)
        return 0;
    return pa == pb && ia.port == ib.port;
}

static void judge(flare_autonat2_client_req *c, const flare_autonat2_msg *m)
{
    c->outcome = FLARE_AUTONAT_NO_INFO;
    if (m->status != FLARE_AUTONAT2_OK)
        return;
    c->addr_idx = (int)m->addr_idx;
    if (m->dial_status == FLARE_AUTONAT2_DIAL_E_DIAL_ERROR) {
        c->outcome = FLARE_AUTONAT_UNREACHABLE;
    } else if (m->dial_status == FLARE_AUTONAT2_DIAL_OK && c->dial_back_seen) {
        if (!c->dial_back_local.len || same_port(&c->dial_back_local, &c->addrs[m->addr_idx]))
            c->outcome = FLARE_AUTONAT_REACHABLE;
    }
}

int flare_autonat2_client_req_recv(flare_autonat2_client_req *c, const uint8_t *in, size_t len,
                                   size_t *used, flare_buf *out)
{
    *used = 0;
    if (c->state == FLARE_AUTONAT2_CREQ_DONE)
        return FLARE_ERR_STATE;
    while (*used < len) {
        const uint8_t *msg;
        size_t mlen;
        int n = flare_lpframe_parse(in + *used, len - *used, FLARE_AUTONAT_V2_MSG_MAX, &msg, &mlen);
        if (n == FLARE_ERR_AGAIN)
            return 0;
        if (n < 0)
            return n;
        *used += (size_t)n;
        flare_autonat2_msg m;
        int rv = flare_autonat2_decode(&m, msg, mlen);
        if (rv < 0)
            return rv;
        if (m.type == FLARE_AUTONAT2_DIAL_DATA_REQUEST) {
            if ((rv = send_data(c, &m, out)) < 0)
                return rv;
        } else if (m.type == FLARE_AUTONAT2_DIAL_RESPONSE) {
            if (m.status == FLARE_AUTONAT2_OK && m.addr_idx >= c->naddrs)
                return FLARE_ERR_PROTO;
            judge(c, &m);
            c->state = FLARE_AUTONAT2_CREQ_DONE;
            return 1;
        } else {
            return FLARE_ERR_PROTO;
        }
    }
    return 0;
}

int flare_autonat2_client_req_dial_back(flare_autonat2_client_req *c, uint64_t nonce,
                                        const flare_multiaddr *local, int on_request_conn,
                                        flare_buf *out)
{
    if (c->state == FLARE_AUTONAT2_CREQ_DONE)
        return FLARE_ERR_STATE;
    if (nonce != c->nonce || on_request_conn)
        return FLARE_ERR_NOT_FOUND;
    c->dial_back_seen = 1;
    if (local)
        c->dial_back_local = *local;
    return flare_autonat2_encode_dial_back_response(out);
}
