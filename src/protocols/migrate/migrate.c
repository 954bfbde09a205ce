/* /flare/migrate/1.0.0 messages (migrate.h). */
#include "protocols/migrate/migrate.h"

#include <string.h>

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 3; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t get(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

size_t flare__mig_encode(const flare__mig_msg *m, uint8_t *out)
{
    out[0] = (uint8_t)m->type;
    switch (m->type) {
    case FLARE__MIG_MIGRATE:
        put32(out + 1, m->stream_id);
        out[5] = m->opener;
        put64(out + 6, m->rx);
        put64(out + 14, m->floor);
        return 22;
    case FLARE__MIG_ACCEPT:
        put64(out + 1, m->rx);
        return 9;
    default:
        out[0] = FLARE__MIG_REFUSE;
        out[1] = m->reason;
        return 2;
    }
}

int flare__mig_parse(const uint8_t *in, size_t len, flare__mig_msg *m)
{
    if (len == 0)
        return 0;
    memset(m, 0, sizeof(*m));
    size_t need;
    switch (in[0]) {
    case FLARE__MIG_MIGRATE:
        need = 22;
        break;
    case FLARE__MIG_ACCEPT:
        need = 9;
        break;
    case FLARE__MIG_REFUSE:
        need = 2;
        break;
    default:
        return FLARE_ERR_PROTO;
    }
    if (len < need)
        return 0;
    m->type = (flare__mig_type)in[0];
    if (m->type == FLARE__MIG_MIGRATE) {
        m->stream_id = (uint32_t)get(in + 1, 4);
        m->opener = in[5];
        m->rx = get(in + 6, 8);
        m->floor = get(in + 14, 8);
        /* Stream id 0 is yamux's session; floor is an offset already sent. */
        if (m->stream_id == 0 || m->opener > FLARE__MIG_OPENER_RECEIVER)
            return FLARE_ERR_PROTO;
    } else if (m->type == FLARE__MIG_ACCEPT) {
        m->rx = get(in + 1, 8);
    } else {
        m->reason = in[1];
        if (m->reason < FLARE__MIG_R_UNKNOWN || m->reason > FLARE__MIG_R_MALFORMED)
            return FLARE_ERR_PROTO;
    }
    return (int)need;
}
