/* flare demo: the whole Flare flow on the simulated network (no root
 * needed): a public relay, a private listener behind one NAT, a private
 * dialer behind another, link delays; prints the timeline and a summary. */
#include <stdio.h> /* fopencookie (_GNU_SOURCE, set by CMake): the timeline goes through explain() */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "flare/sim_world.h"

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

/* Each DCUtR step of the timeline, in words. */
static const struct {
    const char *step, *words;
} steps[] = {
    {"relay-up", "the relayed connection is up: DCUtR starts on it"},
    {"direct-dial", "first a plain direct dial to the other's known addresses (a NAT drops it)"},
    {"connect-sent", "sends CONNECT over the relay: \"here are my public addresses\""},
    {"connect-received", "got the other's CONNECT with its public addresses"},
    {"rtt", "measured the round trip over the relay"},
    {"sync-sent", "sends SYNC, then waits half a round trip so both dials leave together"},
    {"sync-received", "got SYNC: dials at once"},
    {"dial-start", "dials the other's public address from its listen port: its SYN opens a hole "
                   "in its own NAT for the other's SYN"},
    {"direct-up", "the two dials met: a direct TCP connection through both NATs"},
    {"attempt-failed", "this attempt failed (a symmetric NAT picks a new port per destination, "
                       "so the other side dialed the wrong one); retrying up to 3 attempts"},
    {"gave-up", "gives up: the connection stays on the relay"},
};

/* fopencookie write: passes lines through, adding the words for a step. */
static char line_buf[1024];
static size_t line_len;

static ssize_t explain(void *cookie, const char *buf, size_t size)
{
    (void)cookie;
    for (size_t i = 0; i < size; i++) {
        if (line_len < sizeof(line_buf) - 1)
            line_buf[line_len++] = buf[i];
        if (buf[i] != '\n')
            continue;
        line_buf[line_len] = 0;
        fputs(line_buf, stdout);
        const char *d = strstr(line_buf, " dcutr ");
        for (size_t k = 0; d && k < sizeof(steps) / sizeof(steps[0]); k++) {
            size_t l = strlen(steps[k].step);
            if (strncmp(d + 7, steps[k].step, l) == 0 && d[7 + l] == ' ')
                printf("%16s-> %s\n", "", steps[k].words);
        }
        line_len = 0;
    }
    return (ssize_t)size;
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
    flare_sim_world_settings p;
    flare_sim_world_settings_default(&p);
    const char *an = "eim", *bn = "eim";
    int delay = 25, relay_delay = -1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--a-nat") == 0 && i + 1 < argc)
            an = argv[++i];
        else if (strcmp(argv[i], "--b-nat") == 0 && i + 1 < argc)
            bn = argv[++i];
        else if (strcmp(argv[i], "--delay-ms") == 0 && i + 1 < argc) {
            if (cli_parse_int(argv[i], argv[i + 1], 0, 10000, &delay))
                return 2;
            i++;
        } else if (strcmp(argv[i], "--relay-delay-ms") == 0 && i + 1 < argc) {
            if (cli_parse_int(argv[i], argv[i + 1], 0, 10000, &relay_delay))
                return 2;
            i++;
        } else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
            if (cli_parse_u64(argv[i], argv[i + 1], 0, UINT64_MAX, &p.seed))
                return 2;
            i++;
        } else if (strcmp(argv[i], "--sim") != 0) {
            fprintf(stderr, "usage: flare demo [--sim] [--a-nat eim|sym|fw] [--b-nat ...] "
                            "[--delay-ms N] [--relay-delay-ms N] [--seed N]\n");
            return 2;
        }
    }
    if (parse_nat(an, &p.nat_a) || parse_nat(bn, &p.nat_b)) {
        fprintf(stderr, "flare demo: NAT types are eim, sym or fw\n");
        return 2;
    }
    if (relay_delay < 0)
        relay_delay = delay;
    p.delay_a = p.delay_b = (flare_tstamp)delay * FLARE_NS_PER_MS;
    p.delay_r = (flare_tstamp)relay_delay * FLARE_NS_PER_MS;
    cookie_io_functions_t io = {.write = explain};
    FILE *timeline = fopencookie(NULL, "w", io);
    if (timeline)
        setvbuf(timeline, NULL, _IOLBF, 0);
    p.log = timeline ? timeline : stdout;
    printf(
        "flare demo on the simulated network (deterministic, seed %llu)\n"
        "  relay R 198.51.100.10 (public, %d ms link)\n"
        "  A 10.0.1.2 behind NAT-A 203.0.113.1 (%s, %d ms)   the dialer: reaches B through R\n"
        "  B 10.0.2.2 behind NAT-B 203.0.113.2 (%s, %d ms)   the listener: reserves a slot on R,\n"
        "                                                   starts DCUtR when A arrives\n\n",
        (unsigned long long)p.seed, relay_delay, an, delay, bn, delay);
    flare_sim_world w;
    if (flare_sim_world_setup(&w, &p)) {
        printf("setup failed: no reservation or no relayed connection\n");
        if (timeline)
            fclose(timeline);
        return 1;
    }
    printf("%9.3f s  A  relayed connection to B is up (limited, Noise end to end)\n",
           flare_sim_now(w.sim) / 1e9);
    flare_sim_world_run_punch(&w, 60 * FLARE_NS_PER_S);
    int direct = flare_sim_world_direct(&w);
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
    flare_sim_world_free(&w);
    if (timeline)
        fclose(timeline);
    return direct ? 0 : 3;
}
