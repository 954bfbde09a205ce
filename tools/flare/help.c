/* Usage texts (flare COMMAND --help), log levels (-v, -q, FLARE_LOG) and
 * hints for common input mistakes. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"

int cli_log = CLI_LOG_INFO;

static const char *const policy_text =
    "  --deny-peer ID, --allow-peer ID     refuse / only accept these peers (repeatable)\n"
    "  --deny-ip CIDR, --allow-ip CIDR     refuse / only accept these subnets (repeatable)\n"
    "  --conn-low N, --conn-high N         connection manager water marks\n"
    "  --conn-grace S                      never trim connections younger than S seconds\n"
    "  --keepalive S                       yamux ping after S idle seconds (default 30, 0 off)\n"
    "  --security LIST                     security protocols in preference order: noise,tls\n"
    "                                      (default noise; the listener accepts those listed)\n"
    "  --max-conns N, --max-mem BYTES, ... resource limits (docs/cli.md lists all --max-*)\n";

static const char *const node_text =
    "  --key FILE | --seed HEX             identity (FILE created 0600 when missing)\n"
    "  --listen MADDR                      listen address (repeatable)\n"
    "  --relay RELAY_MADDR                 keep a reservation on this relay\n"
    "  --connect MADDR                     dial MADDR at start and keep it (repeatable)\n"
    "  --auto-relay                        pick relays by itself while private\n"
    "  --autonat-boot-delay MS             first AutoNAT round after MS ms (default 15000)\n"
    "  --no-holepunch                      keep relayed connections relayed\n"
    "  --no-migrate                        streams stay on the relay after a punch\n"
    "  --no-webrtc                         no WebRTC over relays (/p2p-circuit/webrtc)\n"
    "  --allow-private-addrs               dial private addresses peers give (punch, ICE)\n"
    "  --hard-punch                        also punch symmetric NATs (flare peers, off)\n"
    "  --port-map / --no-port-map          map private listen ports on the router (off)\n"
    "  --port-map-protocols LIST           pcp,nat-pmp,upnp (default all; implies --port-map)\n"
    "  --share-listen                      another node may listen on the same address\n"
    "  --stun-listen MADDR                 also serve STUN on /ip4|ip6/ADDR/udp/PORT\n"
    "  --no-stun-server                    do not answer STUN on the UDP listen ports\n"
    "  --tls-cert FILE --tls-key FILE      certificate and key (PEM) of /tls/ws listeners\n"
    "  --tls-ca FILE                       CA certificates (PEM) trusted by wss dials\n"
    "  --allow-testnet                     TEST-NET ranges count as public (the NAT lab)\n"
    "  --bootstrap MADDR                   join the Kademlia DHT through this peer (repeatable)\n"
    "  --dht-mode auto|client|server       DHT mode (default auto: server once public)\n"
    "  --dht-disjoint-paths N              lookups over N disjoint paths (1..16, default 1)\n";

static const char *const common_text =
    "  --json                              one JSON event per line on stdout\n"
    "  -v, --verbose / -q, --quiet         more (debug) / less (errors only) output\n"
    "  -h, --help                          this help\n";

static const struct {
    const char *name, *synopsis, *what;
    int node, policy;
} cmds[] = {
    {"id", "flare id [--key FILE | --seed HEX] [--json]",
     "Prints the peer ID of an identity (and creates the key file when missing).\n", 0, 0},
    {"multiaddr", "flare multiaddr ADDR [--json]",
     "Parses and explains a multiaddr: binary form, components, class, peer ID.\n", 0, 0},
    {"listen", "flare listen [--listen MADDR...] [--echo PROTO] [options] [--json]",
     "Runs a node until Ctrl-C; --echo PROTO serves an echo protocol. Prints the\n"
     "addresses others can dial and the `flare dial` command to run next.\n",
     1, 1},
    {"dial",
     "flare dial MADDR|PEER_ID [--echo PROTO --message TEXT | --message-file FILE | --echo-bytes "
     "N]\n"
     "           [--wait-holepunch S] [--bootstrap MADDR...]\n"
     "           [options]",
     "Connects to MADDR (ending with /p2p/PEER_ID; or a bare PEER_ID, whose addresses\n"
     "are looked up in the DHT: needs --bootstrap), waits for identify and with\n"
     "--echo/--message (or --message-file, at most 1 MiB) checks an echo round trip. With "
     "--wait-holepunch S it first\n"
     "waits up to S seconds for the hole punch and sends the message over the\n"
     "direct connection when there is one. --echo-bytes N instead keeps one stream\n"
     "echoing N paced bytes from the start, across the hole punch (it moves to the\n"
     "direct connection). --keep-alive keeps running.\n"
     "Exit: 0 done, 1 failure, 2 usage, 3 hole punch failed, 4 no hole punch in time.\n",
     1, 1},
    {"ping", "flare ping MADDR [-c N] [options] [--json]",
     "Connects to MADDR and pings it every second, N times (default 1). --tls-ca FILE\n"
     "trusts these CA certificates for a /tls/ws address.\n",
     0, 1},
    {"relay",
     "flare relay [--listen MADDR...] [--relay-data BYTES] [--relay-duration S] [--relay-ttl S]\n"
     "            [--relay-max-reservations N] [--relay-max-per-ip N] [--relay-max-circuits N]\n"
     "            [--relay-circuits-per-peer N] [options] [--json]",
     "Runs a public Circuit Relay v2 relay until Ctrl-C (default listen /ip4/0.0.0.0/tcp/4001\n"
     "and /ip4/0.0.0.0/udp/4001/quic-v1).\n",
     1, 1},
    {"autonat",
     "flare autonat MADDR... [--listen MADDR...] [--key FILE | --seed HEX] [--timeout S]\n"
     "              [--allow-private] [--json]",
     "Asks AutoNAT servers whether our addresses are reachable; exit 0 with a verdict.\n", 0, 0},
    {"stun", "flare stun SERVER [--timeout S] [--json]",
     "Asks a STUN server (HOST:PORT, default port 3478, or /ip4|ip6/ADDR/udp/PORT) for our\n"
     "reflexive address (one Binding request, RFC 8489 retransmissions) and prints it.\n",
     0, 0},
    {"dht",
     "flare dht find-peer PEER_ID | find-providers CID | provide CID | get PEER_ID [--quorum N]\n"
     "          | put\n"
     "          --bootstrap MADDR... [--listen MADDR] [--key FILE | --seed HEX]\n"
     "          [--dht-mode auto|client|server] [--dht-disjoint-paths N] [--timeout S] [--json]",
     "Kademlia DHT queries: a peer's addresses, a CID's providers, announcing a\n"
     "CID (stays up and republishes until Ctrl-C), a peer's public key record\n"
     "(get), publishing ours (put). Exit 0 found/done, 1 not found or timeout.\n",
     0, 0},
    {"sim",
     "flare sim [--nodes N] [--seed S] [--pairs P] [--nat-mix FILE] [--public PCT]\n"
     "          [--join-s S] [--dial-s S] [--conn-low N --conn-high N]\n"
     "          [--security noise|plaintext] [--threads N] [--json]",
     "The whole flow for N nodes on the simulated internet: bootstrap, AutoNAT, DHT,\n"
     "relay discovery and reservation, then P pairs of private nodes dial each other\n"
     "by peer ID and hole punch. Prints a summary (one sim_summary event with --json),\n"
     "progress on stderr. Defaults: 200 nodes, seed 1, 20 pairs, 30% public, the NAT\n"
     "mix of docs/benchmarks.md, 60 s to join, 60 s to dial, Noise (plaintext: the\n"
     "same flow without Noise's key agreements, for speed; never on a real network),\n"
     "1 thread (N > 1: 8 partitions of the network in parallel, the same summary for\n"
     "any N from 2 to 8).\n",
     0, 0},
    {"demo",
     "flare demo [--sim] [--a-nat eim|sym|fw] [--b-nat eim|sym|fw] [--delay-ms N] [--seed N]",
     "Hole punching on the deterministic simulated network, step by step (no root).\n", 0, 0},
};
#define NCMDS (sizeof(cmds) / sizeof(cmds[0]))

void cli_usage(FILE *f)
{
    fprintf(f, "usage: flare [-v|-q] <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < NCMDS; i++) {
        const char *nl = strchr(cmds[i].what, '\n');
        fprintf(f, "  %-10s %.*s\n", cmds[i].name, (int)(nl - cmds[i].what), cmds[i].what);
    }
    fprintf(f, "\n`flare COMMAND --help` for a command's options; `flare --version`.\n"
               "Log level: -v (debug), -q (errors only) or FLARE_LOG=error|warn|info|debug.\n"
               "docs/cli.md (man flare) lists every flag, JSON event and exit code.\n");
}

int cli_command_help(const char *cmd)
{
    for (size_t i = 0; i < NCMDS; i++) {
        if (strcmp(cmds[i].name, cmd) != 0)
            continue;
        printf("usage: %s\n\n%s\noptions:\n", cmds[i].synopsis, cmds[i].what);
        if (cmds[i].node)
            fputs(node_text, stdout);
        if (cmds[i].policy)
            fputs(policy_text, stdout);
        fputs(common_text, stdout);
        return 0;
    }
    return -1;
}

int cli_is_command(const char *cmd)
{
    for (size_t i = 0; i < NCMDS; i++)
        if (strcmp(cmds[i].name, cmd) == 0)
            return 1;
    return 0;
}

int cli_parse_log_level(const char *s)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    if (!s)
        return -1;
    for (int i = 0; i < 4; i++)
        if (strcasecmp(s, names[i]) == 0)
            return i;
    if (strcasecmp(s, "warning") == 0)
        return CLI_LOG_WARN;
    return -1;
}

/* "127.0.0.1:4001", "[::1]:4001" or "host:4001": what people type for an
 * address; the multiaddr form is printed as a hint. */
void cli_multiaddr_hint(const char *s)
{
    const char *colon = strrchr(s, ':');
    if (!s[0] || s[0] == '/' || !colon || !colon[1])
        return;
    for (const char *p = colon + 1; *p; p++)
        if (!isdigit((unsigned char)*p))
            return;
    const char *port = colon + 1;
    size_t hl = (size_t)(colon - s);
    if (s[0] == '[' && hl > 2 && s[hl - 1] == ']') {
        fprintf(stderr, "flare: hint: multiaddrs look like /ip6/%.*s/tcp/%s\n", (int)(hl - 2),
                s + 1, port);
        return;
    }
    int dotted = 1;
    for (size_t i = 0; i < hl; i++)
        if (!isdigit((unsigned char)s[i]) && s[i] != '.')
            dotted = 0;
    fprintf(stderr, "flare: hint: multiaddrs look like /%s/%.*s/tcp/%s\n", dotted ? "ip4" : "dns",
            (int)hl, s, port);
}
