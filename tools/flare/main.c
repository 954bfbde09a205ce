/* flare: the command-line tool. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "flare/version.h"

int cli_json;

/* Flags that take no value: an argument after one of these is not its value,
 * so "-v"/"-q"/"-h" there are ours. */
static int is_boolean_flag(const char *a)
{
    static const char *const b[] = {"--json",          "--keep-alive",
                                    "--auto-relay",    "--no-holepunch",
                                    "--no-migrate",    "--hard-punch",
                                    "--port-map",      "--no-port-map",
                                    "--share-listen",  "--no-stun-server",
                                    "--allow-testnet", "--allow-private",
                                    "--sim",           "-v",
                                    "--verbose",       "-q",
                                    "--quiet"};
    for (size_t i = 0; i < sizeof(b) / sizeof(b[0]); i++)
        if (strcmp(a, b[i]) == 0)
            return 1;
    return a[0] != '-'; /* a positional argument */
}

/* Takes -v/-q/-h out of argv (they may come anywhere, but not as the value
 * of a flag such as --message). Returns argc after removal; *help set if
 * -h/--help was given. */
static int global_flags(int argc, char **argv, int *help)
{
    int o = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int flag_pos = i == 1 || is_boolean_flag(argv[i - 1]);
        if (flag_pos && (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0))
            cli_log = CLI_LOG_DEBUG;
        else if (flag_pos && (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0))
            cli_log = CLI_LOG_ERROR;
        else if (flag_pos && (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0))
            *help = 1;
        else
            argv[o++] = argv[i];
    }
    return o;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* events reach pipes and logs at once */
    const char *env = getenv("FLARE_LOG");
    if (env && *env) {
        int l = cli_parse_log_level(env);
        if (l < 0)
            fprintf(stderr, "flare: warning: FLARE_LOG='%s' is not error, warn, info or debug\n",
                    env);
        else
            cli_log = l;
    }
    int help = 0;
    argc = global_flags(argc, argv, &help);
    if (argc >= 2 && (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0)) {
        printf("flare %s\n", flare_version()); /* the library's, as loaded */
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "help") == 0) {
        if (argc >= 3 && cli_command_help(argv[2]) == 0)
            return 0;
        help = 1;
        argc = 1;
    }
    if (argc < 2) {
        cli_usage(help ? stdout : stderr);
        return help ? 0 : 2;
    }
    const char *cmd = argv[1];
    if (!cli_is_command(cmd)) {
        fprintf(stderr, "flare: unknown command '%s'\n", cmd);
        cli_usage(stderr);
        return 2;
    }
    if (help)
        return cli_command_help(cmd) == 0 ? 0 : 2;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--json") == 0)
            cli_json = 1;
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
    if (strcmp(cmd, "stun") == 0)
        return cmd_stun(argc - 1, argv + 1);
    if (strcmp(cmd, "dht") == 0)
        return cmd_dht(argc - 1, argv + 1);
    if (strcmp(cmd, "sim") == 0)
        return cmd_sim(argc - 1, argv + 1);
    return cmd_autonat(argc - 1, argv + 1);
}
