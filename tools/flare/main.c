/* flare: the command-line tool. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

int cli_json;

static void usage(void)
{
    fprintf(
        stderr,
        "usage: flare <command> [options]\n"
        "  id [--key FILE | --seed HEX] [--json]         print (and create) an identity\n"
        "  multiaddr ADDR [--json]                        inspect a multiaddr\n"
        "  listen --listen MADDR... [--key F|--seed H] [--echo PROTO] [--json]\n"
        "  dial MADDR [--echo PROTO --message TEXT] [--listen MADDR...] [--json]\n"
        "  ping MADDR [-c N] [--json]\n"
        "  relay --listen MADDR... [--key F|--seed H] [--relay-data B] [--relay-duration S]\n"
        "        [--relay-ttl S] [--relay-max-reservations N] [--relay-max-per-ip N]\n"
        "        [--relay-max-circuits N] [--relay-circuits-per-peer N] [--json]  a public relay\n"
        "  listen and dial also take: --relay RELAY_MADDR (keep a reservation there),\n"
        "        --connect MADDR (keep a peer), --auto-relay (pick relays when private),\n"
        "        --no-holepunch, --allow-testnet (TEST-NET counts as public)\n"
        "  listen, dial, relay, ping also take (repeatable): --deny-peer ID, --allow-peer ID,\n"
        "        --deny-ip CIDR, --allow-ip CIDR, --conn-low N, --conn-high N, --conn-grace S\n"
        "  listen, dial, relay also take: --share-listen (another node may listen there too)\n"
        "  demo [--a-nat eim|sym|fw] [--b-nat ...] [--delay-ms N]   hole punching, simulated\n"
        "  autonat MADDR... [--listen MADDR...] [--timeout S] [--json]  are we reachable?\n"
        "See docs/cli.md for the events printed with --json.\n");
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* events reach pipes and logs at once */
    if (argc < 2) {
        usage();
        return 2;
    }
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--json") == 0)
            cli_json = 1;
    const char *cmd = argv[1];
    if (strcmp(cmd, "id") == 0)
        return cmd_id(argc - 1, argv + 1);
    if (strcmp(cmd, "multiaddr") == 0)
        return cmd_multiaddr(argc - 1, argv + 1);
    if (strcmp(cmd, "listen") == 0)
        return cmd_listen(argc - 1, argv + 1);
    if (strcmp(cmd, "dial") == 0)
        return cmd_dial(argc - 1, argv + 1);
    if (strcmp(cmd, "ping") == 0)
        return cmd_ping(argc - 1, argv + 1);
    if (strcmp(cmd, "relay") == 0)
        return cmd_relay(argc - 1, argv + 1);
    if (strcmp(cmd, "demo") == 0)
        return cmd_demo(argc - 1, argv + 1);
    if (strcmp(cmd, "autonat") == 0)
        return cmd_autonat(argc - 1, argv + 1);
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage();
        return 0;
    }
    fprintf(stderr, "flare: unknown command '%s'\n", cmd);
    usage();
    return 2;
}
