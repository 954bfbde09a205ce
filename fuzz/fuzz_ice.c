/* Feeds fuzz input as datagrams to an ICE agent (full or lite, either
 * role) with remote candidates and credentials set: checks, responses and
 * garbage, with time passing between them, and the agent's own output
 * polled after each. Byte 0 picks the mode; then records of
 * [len][time step][bytes]. */
#include "flare/ice.h"
#include "flare/stun.h"

#include <stdlib.h>
#include <string.h>

#include "input_head.h"

static void rand_fill(uint8_t *dst, size_t len, void *user)
{
    (void)user;
    memset(dst, 0x5a, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t mode;
    if (!flare_fuzz_mode_input(&data, &size, &mode))
        return 0;
    flare_ice_settings cfg;
    flare_ice_settings_default(&cfg);
    cfg.lite = mode & 1;
    cfg.controlling = (mode >> 1) & 1;
    cfg.allow_private = 1;
    flare_ice_agent *a;
    flare_rng rng = {rand_fill, NULL};
    if (flare_ice_agent_new(&a, &cfg, "ufz1", "pwdpwdpwdpwdpwdpwdpwdp", rng, NULL) != 0)
        return 0;
    flare_ipaddr local, peer;
    flare_ipaddr_parse(&local, "10.0.0.1:4000");
    flare_ipaddr_parse(&peer, "10.0.0.2:5000");
    flare_ice_add_local(a, FLARE_ICE_HOST, &local, &local);
    flare_ice_candidate c = {.type = FLARE_ICE_HOST, .addr = peer};
    flare_ice_add_remote(a, &c);
    flare_ice_set_remote_credentials(a, "ufp1", "pwdpwdpwdpwdpwdpwdpwdp");
    flare_tstamp now = 1;
    flare_ice_start(a, now);
    while (size >= 2) {
        size_t len = data[0] * 4u;
        now += (flare_tstamp)data[1] * 20 * FLARE_NS_PER_MS;
        data += 2;
        size -= 2;
        if (len > size)
            len = size;
        flare_ice_input(a, &local, &peer, data, len, now);
        data += len;
        size -= len;
        uint8_t out[512];
        flare_ipaddr f, t;
        int n;
        int guard = 0;
        while ((n = flare_ice_poll_send(a, now, out, sizeof(out), &f, &t)) > 0 && guard++ < 64)
            if (!flare_stun_is_stun(out, (size_t)n))
                abort();
        if (n < 0)
            abort();
        flare_ice_selected(a, &f, &t);
        flare_ice_expiry(a);
    }
    flare_ice_agent_del(a);
    return 0;
}
