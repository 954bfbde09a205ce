/* Feeds fuzz input to the NAT-PMP and PCP parsers (both sides) and, as
 * gateway answers, to a client core in each of its waiting states. Byte 0
 * picks the state and timing; the rest is datagrams split at byte 1. */
#include "flare/portmap.h"

#include <stdlib.h>
#include <string.h>

#include "input_head.h"

static void rand_fill(uint8_t *dst, size_t len, void *user)
{
    (void)user;
    memset(dst, 0x5a, len);
}

static void check_client(flare_portmap_client *c)
{
    flare_portmap_ev ev;
    while (flare_portmap_client_poll_event(c, &ev))
        if (ev.lifetime > c->cfg.lifetime)
            abort();
    uint8_t out[FLARE_PCP_MAX_MSG];
    if (flare_portmap_client_poll_send(c, out, sizeof(out)) > FLARE_PCP_MAP_LEN)
        abort();
    if (flare_portmap_client_mapped(c) && (!c->external.port || c->external.family != 4))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t mode;
    size_t split;
    if (!flare_fuzz_split_input(&data, &size, &mode, &split))
        return 0;

    flare_pcp_resp pr;
    flare_natpmp_resp nr;
    flare_natpmp_req nq;
    flare_pcp_map m;
    flare_ipaddr client;
    uint32_t lt;
    if (flare_pcp_parse(&pr, data, size) == 0 && size > FLARE_PCP_MAX_MSG)
        abort();
    flare_natpmp_parse(&nr, data, size);
    flare_natpmp_parse_req(&nq, data, size);
    flare_pcp_parse_map_req(data, size, &lt, &client, &m);

    flare_ipaddr me, gw;
    flare_ipaddr_parse(&me, "192.168.1.20:4001");
    flare_ipaddr_parse(&gw, "192.168.1.1:5351");
    flare_portmap_settings s;
    flare_portmap_settings_default(&s);
    s.enable_pcp = !(mode & 4);
    flare_portmap_client c;
    if (flare_portmap_client_init(&c, &s, mode & 1, &me, &gw, (flare_rng){rand_fill, NULL}))
        abort();
    flare_tstamp now = 1000;
    flare_portmap_client_start(&c, now);
    if (mode & 2) /* a NAT-PMP gateway that gave its address: waiting for the mapping */
        flare_portmap_client_input(
            &c, &gw, (const uint8_t[]){0, 128, 0, 0, 0, 0, 0, 9, 198, 51, 100, 1}, 12, now);
    check_client(&c);
    flare_portmap_client_input(&c, &gw, data, split, now + (mode >> 4) * FLARE_NS_PER_S);
    check_client(&c);
    flare_portmap_client_timeout(&c, flare_portmap_client_deadline(&c));
    flare_portmap_client_input(&c, &gw, data + split, size - split,
                               flare_portmap_client_deadline(&c));
    check_client(&c);
    flare_portmap_client_stop(&c, now);
    check_client(&c);
    return 0;
}
