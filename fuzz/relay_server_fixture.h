/* The relay server the relay fuzz targets feed: made once per process, from
 * a fixed seed so that runs reproduce. */
#ifndef FLARE_FUZZ_RELAY_SERVER_FIXTURE_H
#define FLARE_FUZZ_RELAY_SERVER_FIXTURE_H

#include <stdlib.h>

#include "flare/relay_server.h"

static flare_relay_server *fuzz_relay_server(uint64_t seed)
{
    static flare_relay_server *s;
    static flare_privkey k;
    static flare_prng p;
    if (!s) {
        flare_relay_server_settings cfg;
        flare_prng_seed(&p, seed);
        flare_privkey_generate(&k, flare_prng_rng(&p));
        flare_relay_server_settings_default(&cfg);
        cfg.key = &k;
        if (flare_relay_server_new(&s, &cfg, NULL, flare_prng_rng(&p)) != 0)
            abort();
    }
    return s;
}

#endif
