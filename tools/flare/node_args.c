/* The flags of the node commands (flare listen, dial, ping, relay). */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node.h"

/* --security LIST: names (noise, tls) or protocol IDs, comma separated, into
 * the host's form (protocol IDs). Returns 0 or -1 (reported). */
static int parse_security(const char *v, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = 0;
    for (const char *p = v; *p;) {
        size_t len = strcspn(p, ",");
        const char *id = NULL;
        if (len == 5 && strncmp(p, "noise", 5) == 0)
            id = "/noise";
        else if (len == 3 && strncmp(p, "tls", 3) == 0)
            id = "/tls/1.0.0";
        else if ((len == 6 && strncmp(p, "/noise", 6) == 0) ||
                 (len == 10 && strncmp(p, "/tls/1.0.0", 10) == 0))
            id = p;
        size_t idlen = id == p ? len : id ? strlen(id) : 0;
        if (!id || n + idlen + 2 > cap) {
            fprintf(stderr, "flare: --security: '%.*s' is not noise or tls\n", (int)len, p);
            return -1;
        }
        if (n)
            out[n++] = ',';
        memcpy(out + n, id, idlen);
        n += idlen;
        out[n] = 0;
        p += len + (p[len] == ',');
    }
    if (n == 0) {
        fprintf(stderr, "flare: --security: empty list\n");
        return -1;
    }
    return 0;
}

/* A policy flag of node_opts; returns 1 if it was one (i advanced), 0 if
 * not, -1 on a bad value (reported). */
static int parse_policy(int argc, char **argv, int *i, node_opts *o)
{
    const char *a = argv[*i];
    if (*i + 1 >= argc)
        return 0;
    const char *v = argv[*i + 1];
    if (strcmp(a, "--deny-peer") == 0 || strcmp(a, "--allow-peer") == 0 ||
        strcmp(a, "--deny-ip") == 0 || strcmp(a, "--allow-ip") == 0) {
        flare_peerid p;
        flare_ipaddr ip;
        unsigned prefix;
        int bad = strstr(a, "peer") ? flare_peerid_parse(&p, v, strlen(v)) != 0
                                    : flare_cidr_parse(v, &ip, &prefix) != 0;
        if (bad || o->ngate == MAX_RULES) {
            fprintf(stderr, "flare: %s: '%s' is not %s%s\n", a, v,
                    strstr(a, "peer") ? "a peer ID" : "an IP address or CIDR subnet",
                    bad ? "" : " (too many rules)");
            return -1;
        }
        o->gate_flag[o->ngate] = a;
        o->gate_val[o->ngate++] = v;
    } else if (strcmp(a, "--conn-low") == 0 || strcmp(a, "--conn-high") == 0) {
        if (cli_parse_int(a, v, 0, 1 << 20, a[7] == 'l' ? &o->conn_low : &o->conn_high))
            return -1;
    } else if (strcmp(a, "--conn-grace") == 0) {
        if (cli_parse_int(a, v, 0, 86400, &o->conn_grace))
            return -1;
    } else if (strcmp(a, "--keepalive") == 0) {
        if (cli_parse_int(a, v, 0, 86400, &o->keepalive))
            return -1;
    } else if (strcmp(a, "--security") == 0) {
        if (parse_security(v, o->security, sizeof(o->security)))
            return -1;
    } else {
        return 0;
    }
    (*i)++;
    return 1;
}

/* Installs the gater rules of o on h. Returns 0 or the first error. */
int apply_policy(flare_host *h, const node_opts *o)
{
    for (int i = 0; i < o->ngate; i++) {
        const char *f = o->gate_flag[i];
        flare_gater_list list = strncmp(f, "--deny", 6) == 0 ? FLARE_GATER_DENY : FLARE_GATER_ALLOW;
        flare_peerid p;
        flare_ipaddr ip;
        unsigned prefix;
        int rv;
        if (strstr(f, "peer")) {
            rv = flare_peerid_parse(&p, o->gate_val[i], strlen(o->gate_val[i]));
            if (rv == 0)
                rv = flare_host_gater_peer(h, list, &p, 1);
        } else {
            rv = flare_cidr_parse(o->gate_val[i], &ip, &prefix);
            if (rv == 0)
                rv = flare_host_gater_subnet(h, list, &ip, prefix, 1);
        }
        if (rv) {
            fprintf(stderr, "flare: %s %s: %s\n", f, o->gate_val[i], flare_strerror(rv));
            return rv;
        }
    }
    return 0;
}

/* ---- resource manager flags (--max-*) ---------------------------------------------- */

/* Each flag sets one size_t field of flare_host_settings (0 = no limit). */
static const struct {
    const char *name;
    size_t off;
} rc_flags[] = {
    {"--max-conns", offsetof(flare_host_settings, max_connections)},
    {"--max-conns-inbound", offsetof(flare_host_settings, limits.conns_inbound)},
    {"--max-conns-outbound", offsetof(flare_host_settings, limits.conns_outbound)},
    {"--max-conns-per-ip", offsetof(flare_host_settings, limits.conns_per_ip)},
    {"--max-conns-per-subnet", offsetof(flare_host_settings, limits.conns_per_subnet)},
    {"--max-conns-per-peer", offsetof(flare_host_settings, max_connections_per_peer)},
    {"--max-handshakes", offsetof(flare_host_settings, limits.handshakes)},
    {"--max-handshakes-per-ip", offsetof(flare_host_settings, limits.handshakes_per_ip)},
    {"--max-handshakes-per-subnet", offsetof(flare_host_settings, limits.handshakes_per_subnet)},
    {"--max-streams-per-conn", offsetof(flare_host_settings, max_streams_per_conn)},
    {"--max-streams-per-peer", offsetof(flare_host_settings, limits.streams_per_peer_inbound)},
    {"--max-mem", offsetof(flare_host_settings, limits.mem)},
    {"--max-mem-per-peer", offsetof(flare_host_settings, limits.mem_per_peer)},
    {"--max-mem-per-conn", offsetof(flare_host_settings, limits.mem_per_conn)},
};
#define RC_NFLAGS (sizeof(rc_flags) / sizeof(rc_flags[0]))

/* 1 if a is a --max-* flag (then val is parsed: a count, or bytes with an
 * optional K, M or G suffix), 0 if not ours, -1 for a bad value. */
static int parse_rc_flag(node_opts *o, const char *a, const char *val)
{
    size_t i = 0;
    while (i < RC_NFLAGS && strcmp(a, rc_flags[i].name) != 0)
        i++;
    if (i == RC_NFLAGS)
        return 0;
    uint64_t v;
    size_t b;
    int mem = strncmp(a, "--max-mem", 9) == 0;
    if (mem ? cli_parse_bytes(a, val, &b) : cli_parse_u64(a, val, 0, SIZE_MAX, &v))
        return -1;
    o->rc_val[i] = mem ? b : (size_t)v;
    o->rc_set |= 1u << i;
    return 1;
}

/* --max-conns alone splits into 3/4 inbound and 1/4 outbound, as the
 * defaults do, so that inbound never takes the slots of our own dials. */
void apply_rc_flags(const node_opts *o, flare_host_settings *cfg)
{
    for (size_t i = 0; i < RC_NFLAGS; i++)
        if (o->rc_set & (1u << i))
            *(size_t *)(void *)((char *)cfg + rc_flags[i].off) = o->rc_val[i];
    if ((o->rc_set & 1u) && !(o->rc_set & 6u)) {
        cfg->limits.conns_inbound = cfg->max_connections - cfg->max_connections / 4;
        cfg->limits.conns_outbound = cfg->max_connections / 4;
    }
    if (o->rc_set & (1u << 10))
        cfg->limits.streams_per_peer_outbound = cfg->limits.streams_per_peer_inbound;
}

/* --relay-NAME VALUE for `flare relay`: the server's limits. 0 is a real
 * value: no limit for data and duration, nothing allowed for the maxima;
 * a reservation TTL must be at least 1 s. */
static int parse_relay_limit(flare_relay_server_settings *c, const char *name, const char *val)
{
    uint64_t v;
    if (strcmp(name, "--relay-data") == 0) {
        if (cli_parse_u64(name, val, 0, UINT64_MAX, &v))
            return -1;
        c->limit_data = v;
        return 0;
    }
    uint32_t *dst = strcmp(name, "--relay-duration") == 0            ? &c->limit_duration
                    : strcmp(name, "--relay-ttl") == 0               ? &c->reservation_ttl
                    : strcmp(name, "--relay-max-reservations") == 0  ? &c->max_reservations
                    : strcmp(name, "--relay-max-per-ip") == 0        ? &c->max_reservations_per_ip
                    : strcmp(name, "--relay-max-circuits") == 0      ? &c->max_circuits
                    : strcmp(name, "--relay-circuits-per-peer") == 0 ? &c->max_circuits_per_peer
                                                                     : NULL;
    if (!dst) {
        fprintf(stderr, "flare: unknown flag '%s'\n", name);
        return -1;
    }
    if (cli_parse_u64(name, val, dst == &c->reservation_ttl ? 1 : 0, 0xffffffffULL, &v))
        return -1;
    *dst = (uint32_t)v;
    return 0;
}

int parse_common(int argc, char **argv, node *n, node_opts *o, int need_target)
{
    int pr;
    o->conn_low = o->conn_high = o->conn_grace = o->keepalive = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (strcmp(a, "--json") == 0)
            continue;
        else if (strcmp(a, "--key") == 0 && more)
            o->key_file = argv[++i];
        else if (strcmp(a, "--seed") == 0 && more)
            o->seed = argv[++i];
        else if (strcmp(a, "--listen") == 0 && more && o->nlisten < MAX_LISTEN)
            o->listen[o->nlisten++] = argv[++i];
        else if (strcmp(a, "--echo") == 0 && more) {
            n->echo_proto = argv[++i];
            size_t len = strlen(n->echo_proto);
            if (len == 0 || len >= FLARE_PROTOCOL_MAX || n->echo_proto[0] != '/') {
                fprintf(stderr,
                        "flare: --echo: a protocol ID starts with '/' and has at most %d "
                        "bytes\n",
                        FLARE_PROTOCOL_MAX - 1);
                return 2;
            }
        } else if (strcmp(a, "--message") == 0 && more)
            n->message = argv[++i];
        else if (strcmp(a, "--echo-bytes") == 0 && more) {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(argv[++i], &end, 10);
            if (errno || *end || v == 0 || v > (1ull << 40) || argv[i][0] == '-') {
                fprintf(stderr, "flare: --echo-bytes: 1..2^40 bytes\n");
                return 2;
            }
            n->echo_bytes = v;
        } else if (strcmp(a, "--message-file") == 0 && more)
            n->message_file = argv[++i];
        else if ((strcmp(a, "-c") == 0 || strcmp(a, "--count") == 0) && more) {
            if (cli_parse_int(a, argv[++i], 1, 1000000, &n->ping_count))
                return 2;
        } else if (strcmp(a, "--relay") == 0 && more && o->nrelays < MAX_LISTEN)
            o->relays[o->nrelays++] = argv[++i];
        else if (strcmp(a, "--wait-holepunch") == 0 && more) {
            if (cli_parse_int(a, argv[++i], 0, 86400, &n->wait_holepunch))
                return 2;
        } else if (strcmp(a, "--allow-testnet") == 0)
            n->allow_testnet = 1;
        else if (strcmp(a, "--autonat-boot-delay") == 0 && more) {
            int ms;
            if (cli_parse_int(a, argv[++i], 0, 86400000, &ms))
                return 2;
            n->autonat_boot_ms = ms;
            n->autonat_boot_set = 1;
        } else if (strcmp(a, "--keep-alive") == 0)
            n->keep_running = 1;
        else if (strcmp(a, "--auto-relay") == 0)
            n->auto_relay = 1;
        else if (strcmp(a, "--connect") == 0 && more && o->nconnect < MAX_LISTEN)
            o->connect[o->nconnect++] = argv[++i];
        else if (strcmp(a, "--no-holepunch") == 0)
            n->no_holepunch = 1;
        else if (strcmp(a, "--no-webrtc") == 0)
            n->no_webrtc = 1;
        else if (strcmp(a, "--allow-private-addrs") == 0)
            n->allow_private_addrs = 1;
        else if (strcmp(a, "--hard-punch") == 0)
            n->hard_punch = 1;
        else if (strcmp(a, "--no-migrate") == 0)
            n->no_migrate = 1;
        else if (strcmp(a, "--port-map") == 0)
            n->port_map = 1;
        else if (strcmp(a, "--no-port-map") == 0)
            n->port_map = 0;
        else if (strcmp(a, "--port-map-protocols") == 0 && more) {
            n->port_map_protocols = argv[++i];
            n->port_map = 1;
        } else if (strcmp(a, "--share-listen") == 0)
            n->share_listen = 1;
        else if (strcmp(a, "--stun-listen") == 0 && more)
            n->stun_listen = argv[++i];
        else if (strcmp(a, "--no-stun-server") == 0)
            n->no_stun_server = 1;
        else if (strcmp(a, "--tls-cert") == 0 && more)
            o->tls_cert = argv[++i];
        else if (strcmp(a, "--tls-key") == 0 && more)
            o->tls_key = argv[++i];
        else if (strcmp(a, "--tls-ca") == 0 && more)
            o->tls_ca = argv[++i];
        else if ((pr = cli_dht_parse(&n->dht, a, more ? argv[i + 1] : NULL)) != 0) {
            if (pr < 0)
                return 2;
            i++;
        } else if ((pr = parse_policy(argc, argv, &i, o)) != 0) {
            if (pr < 0)
                return 2;
        } else if (o->relay_cfg && strncmp(a, "--relay-", 8) == 0 && more) {
            if (parse_relay_limit(o->relay_cfg, a, argv[i + 1]))
                return 2;
            i++;
        } else if (strncmp(a, "--max-", 6) == 0) {
            int r = parse_rc_flag(o, a, more ? argv[i + 1] : NULL);
            if (r == 0)
                fprintf(stderr, "flare: unknown option %s\n", a);
            if (r <= 0)
                return 2; /* a bad value was reported by the parser */
            i++;
        } else if (a[0] != '-' && !o->target && need_target)
            o->target = a;
        else {
            fprintf(stderr, "flare: unexpected argument '%s'\n", a);
            return 2;
        }
    }
    if (need_target && !o->target) {
        fprintf(stderr, "flare: missing MADDR\n");
        return 2;
    }
    if (!o->tls_cert != !o->tls_key) {
        fprintf(stderr, "flare: --tls-cert and --tls-key go together\n");
        return 2;
    }
    return 0;
}
