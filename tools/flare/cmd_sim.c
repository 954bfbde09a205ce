/* flare sim: the whole flow (bootstrap, AutoNAT, DHT, relay discovery and
 * reservation, dial by peer ID, hole punch) for N nodes on the simulated
 * internet (tools/simnet/simnet.h); one summary at the end, progress on
 * stderr while it runs. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "cli.h"
#include "simnet/simnet.h"

#if defined(__SANITIZE_ADDRESS__)
#define SIM_LEAK_CHECKED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SIM_LEAK_CHECKED 1
#endif
#endif
#ifndef SIM_LEAK_CHECKED
#define SIM_LEAK_CHECKED 0
#endif

static void print_human(const simnet_summary *s, uint64_t seed)
{
    printf("flare sim: %d nodes (%d public, %d private), seed %llu\n", s->nodes, s->public_nodes,
           s->private_nodes, (unsigned long long)seed);
    printf("  private nodes with a relay reservation: %d of %d\n", s->private_with_relay,
           s->private_nodes);
    printf("  pairs dialing by peer ID: %d, found in the DHT: %d, direct after hole punch: %d "
           "(%.1f%%)\n",
           s->pairs, s->found, s->direct, 100 * s->direct_rate);
    printf("  per pairing of NAT kinds [direct, pairs]: %s\n", s->per_pairing);
    printf("  time to direct: p50 %.0f ms, p90 %.0f ms\n", s->ms_to_direct_p50,
           s->ms_to_direct_p90);
    printf("  reservations per relay: max %zu, mean %.2f over %zu relays\n",
           s->relay_reservations_max, s->relay_reservations_mean, s->relays);
    printf("  lookup hops p50: %.2f; memory: %zu bytes per node (peak)\n", s->lookup_hops_p50,
           s->bytes_per_node);
    printf("  %.1f s simulated in %.2f s wall\n", s->sim_s, s->wall_s);
}

int cmd_sim(int argc, char **argv)
{
    simnet_config c;
    simnet_summary *s = calloc(1, sizeof(*s));
    int json = 0;
    char *line = malloc(20000);
    simnet_config_default(&c);
    if (!s || !line) {
        fprintf(stderr, "flare: sim: out of memory\n");
        free(s);
        free(line);
        return 1;
    }
    if (simnet_parse_args(&c, argc, argv, "flare sim", &json)) {
        free(s);
        free(line);
        return 2;
    }
    /* The world is freed only where a leak check looks at it: otherwise its
     * millions of blocks go with the process, which exits right after the
     * summary (at 10,000 nodes deleting the hosts one by one took ~7 s). */
    c.keep_world = !SIM_LEAK_CHECKED && !getenv("FLARE_SIM_TEARDOWN");
    int rv = simnet_run(&c, cli_log >= CLI_LOG_INFO ? stderr : NULL, s);
    if (rv) {
        if (cli_json)
            cli_jsonf("error", "where", "sim", "error", flare_strerror(rv), NULL);
        else
            fprintf(stderr, "flare: sim: %s\n", flare_strerror(rv));
    } else if (cli_json) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        simnet_summary_json(s, c.seed, (double)ts.tv_sec + ts.tv_nsec / 1e9, line, 20000);
        puts(line);
    } else {
        print_human(s, c.seed);
    }
    free(s);
    free(line);
    return rv ? 1 : 0;
}
