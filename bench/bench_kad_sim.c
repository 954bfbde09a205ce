/* The whole Flare flow on a simulated internet (tools/simnet/simnet.h), as
 * `flare sim` runs it: the same flags, the same summary line on stdout,
 * progress on stderr.
 *
 *   bench_kad_sim [--nodes N] [--seed S] [--pairs P] [--public PCT]
 *                 [--nat-mix FILE] [--join-s S] [--dial-s S]
 *                 [--conn-low N --conn-high N] [--security noise|plaintext]
 *                 [--threads N] [--json] */
#include <stdio.h>

#include "simnet/simnet.h"

int main(int argc, char **argv)
{
    simnet_config c;
    simnet_summary s;
    char line[20000];
    int json = 0;
    simnet_config_default(&c);
    if (simnet_parse_args(&c, argc, argv, "bench_kad_sim", &json))
        return 2;
    int rv = simnet_run(&c, stderr, &s);
    if (rv) {
        fprintf(stderr, "bench_kad_sim: %s\n", flare_strerror(rv));
        return 1;
    }
    simnet_summary_json(&s, c.seed, -1, line, sizeof(line));
    puts(line);
    return 0;
}
