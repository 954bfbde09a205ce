/* flare demo: the whole Flare flow on the simulated network (no root
 * needed): a public relay, a private listener behind one NAT, a private
 * dialer behind another, link delays; prints the timeline and a summary. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "host/simworld.h"

static int parse_nat(const char *s, flare_sim_nat_config *c)
{
    flare_sim_nat_config_default(c); /* EIM + port preservation, APDF, drop */
    if (strcmp(s, "eim") == 0 || strcmp(s, "cone") == 0)
        return 0;
    if (strcmp(s, "sym") == 0 || strcmp(s, "symmetric") == 0) {
        c->mapping = FLARE_SIM_APD;
        c->port_preservation = 0;
        return 0;
    }
    if (strcmp(s, "fw") == 0) { /* stateful firewall, no translation: EIM with preservation */
        c->filtering = FLARE_SIM_APD;
        return 0;
    }
    return -1;
}

static void rtt_done(flare_host *h, const flare_peerid *p, int status, flare_tstamp rtt, void *u)
{
    (void)h;
    (void)p;
    if (status == 0)
        *(flare_tstamp *)u = rtt;
}

int cmd_demo(int argc, char **argv)
{
    dw_params p;
    dw_params_default(&p);
    const char *an = "eim", *bn = "eim";
    int delay = 25;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--a-nat") == 0 && i + 1 < argc)
            an = argv[++i];
        else if (strcmp(argv[i], "--b-nat") == 0 && i + 1 < argc)
            bn = argv[++i];
        else if (strcmp(argv[i], "--delay-ms") == 0 && i + 1 < argc) {
            if (cli_parse_int(argv[i], argv[i + 1], 0, 10000, &delay))
                return 2;
            i++;
        } else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
            if (cli_parse_u64(argv[i], argv[i + 1], 0, UINT64_MAX, &p.seed))
                return 2;
            i++;
        } else if (strcmp(argv[i], "--sim") != 0) {
            fprintf(stderr, "usage: flare demo [--sim] [--a-nat eim|sym|fw] [--b-nat ...] "
                            "[--delay-ms N] [--seed N]\n");
            return 2;
        }
    }
    if (parse_nat(an, &p.nat_a) || parse_nat(bn, &p.nat_b)) {
        fprintf(stderr, "flare demo: NAT types are eim, sym or fw\n");
        return 2;
    }
    p.delay_a = p.delay_b = p.delay_r = (flare_tstamp)delay * FLARE_NS_PER_MS;
    p.log = stdout;
    printf("flare demo on the simulated network (deterministic, seed %llu)\n"
           "  relay R 198.51.100.10 (public)\n"
           "  A 10.0.1.2 behind NAT-A 203.0.113.1 (%s)   dials B through R\n"
           "  B 10.0.2.2 behind NAT-B 203.0.113.2 (%s)   reserves a slot on R\n"
           "  %d ms one-way on every router link\n\n",
           (unsigned long long)p.seed, an, bn, delay);
    dw_world w;
    if (dw_setup(&w, &p)) {
        printf("setup failed: no reservation or no relayed connection\n");
        return 1;
    }
    printf("%9.3f s  A  relayed connection to B is up (limited, Noise end to end)\n",
           flare_sim_now(w.sim) / 1e9);
    dw_run_punch(&w, 60 * FLARE_NS_PER_S);
    int direct = dw_direct(&w);
    flare_tstamp direct_rtt = 0;
    if (direct) {
        flare_host_ping(w.a.h, flare_host_peerid(w.b.h), rtt_done, &direct_rtt);
        flare_sim_run_for(w.sim, 2 * FLARE_NS_PER_S);
    }
    printf("\nsummary\n");
    printf("  result:                %s\n", direct ? "DIRECT connection between A and B"
                                                   : "stayed on the relay (hole punch failed)");
    if (!direct && w.b.punch_reason)
        printf("  reason:                %s\n", w.b.punch_reason);
    printf("  attempts:              %u\n", w.b.attempt);
    printf("  RTT over the relay:    %.1f ms\n", w.b.relay_rtt / 1e6);
    if (direct) {
        char a[512];
        flare_multiaddr_to_string(&w.b.direct_addr, a, sizeof(a));
        printf("  RTT direct (ping):     %.1f ms\n", direct_rtt / 1e6);
        printf("  relayed -> direct:     %.0f ms\n", (w.b.done_at - w.relayed_up) / 1e6);
        printf("  B's direct peer addr:  %s\n", a);
    }
    dw_free(&w);
    return direct ? 0 : 3;
}
