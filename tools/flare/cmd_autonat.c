/* flare autonat MADDR...: ask AutoNAT servers (v2 first, v1 as fallback)
 * whether we are reachable, print the verdict per address and per IP
 * version, and exit. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "cli.h"
#include "flare/uvio.h"

#define MAX_SERVERS 16
#define MAX_LISTEN  8

typedef struct an_cli {
    uv_loop_t loop;
    uv_timer_t timeout;
    uv_signal_t sigint;
    flare_uvio *uvio;
    flare_host *host;
    size_t nservers;
    flare_peerid servers[MAX_SERVERS];
    int settled[MAX_SERVERS]; /* identified or failed */
    int probing, done, exit_code;
} an_cli;

static void finish(an_cli *c, int code)
{
    if (c->done)
        return;
    c->done = 1;
    c->exit_code = code;
    uv_stop(&c->loop);
}

static void print_verdict(an_cli *c, int status)
{
    char a[1024];
    flare_multiaddr addrs[32];
    flare_reach_state st[32];
    size_t n = flare_host_reachability_addrs(c->host, addrs, st, 32);
    for (size_t i = 0; i < n; i++) {
        if (flare_multiaddr_to_string(&addrs[i], a, sizeof(a)) < 0)
            snprintf(a, sizeof(a), "?");
        if (cli_json)
            cli_jsonf("autonat_addr", "addr", a, "state", flare_reach_state_name(st[i]), NULL);
        else
            printf("%s: %s\n", a, flare_reach_state_name(st[i]));
    }
    const char *v4 = flare_reach_state_name(flare_host_reachability(c->host, 4));
    const char *v6 = flare_reach_state_name(flare_host_reachability(c->host, 6));
    const char *st_name = status ? flare_strerror(status) : "ok";
    if (cli_json)
        cli_jsonf("autonat", "ip4", v4, "ip6", v6, "status", st_name, NULL);
    else
        printf("reachability: IPv4 %s, IPv6 %s (%s)\n", v4, v6, st_name);
}

static void probe_done(flare_host *h, int status, void *user)
{
    an_cli *c = user;
    (void)h;
    print_verdict(c, status);
    finish(c, status ? 1 : 0);
}

static void maybe_probe(an_cli *c)
{
    if (c->probing)
        return;
    for (size_t i = 0; i < c->nservers; i++)
        if (!c->settled[i])
            return;
    c->probing = 1;
    int rv = flare_host_autonat_probe(c->host, probe_done, c);
    if (rv) {
        fprintf(stderr, "flare: autonat: %s\n", flare_strerror(rv));
        finish(c, 1);
    }
}

static void settle(an_cli *c, const flare_peerid *p)
{
    for (size_t i = 0; i < c->nservers; i++)
        if (p && flare_peerid_equal(p, &c->servers[i]))
            c->settled[i] = 1;
    maybe_probe(c);
}

/* The server's AutoNAT protocols, from identify. */
static void print_server(flare_host *h, const flare_peerid *p)
{
    char pid[FLARE_PEERID_STR_MAX], q[FLARE_PROTOCOL_MAX + 8], list[1024] = "\001[";
    size_t o = strlen(list);
    const char *ids[] = {FLARE_AUTONAT_V2_DIAL_REQUEST_ID, FLARE_AUTONAT_V1_PROTOCOL_ID};
    for (size_t i = 0; i < 2; i++)
        if (flare_host_peer_supports(h, p, ids[i]))
            o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s", o > 2 ? "," : "",
                                  cli_json_str(q, sizeof(q), ids[i]));
    snprintf(list + o, sizeof(list) - o, "]");
    if (flare_peerid_to_string(p, pid, sizeof(pid)) < 0)
        snprintf(pid, sizeof(pid), "?");
    if (cli_json)
        cli_jsonf("autonat_server", "peerId", pid, "protocols", list, NULL);
    else
        printf("server %s: %s\n", pid, list + 1);
}

static void on_event(flare_host *h, const flare_host_event *ev, void *user)
{
    an_cli *c = user;
    char a[1024];
    if (ev->type == FLARE_HOST_EV_IDENTIFIED) {
        for (size_t i = 0; i < c->nservers; i++)
            if (!c->settled[i] && flare_peerid_equal(ev->u.identified.peer, &c->servers[i]))
                print_server(h, ev->u.identified.peer);
        settle(c, ev->u.identified.peer);
    } else if (ev->type == FLARE_HOST_EV_REACHABILITY) {
        char fam[16];
        snprintf(fam, sizeof(fam), "\001%d", ev->u.reachability.family);
        if (cli_json)
            cli_jsonf("reachability", "family", fam, "state",
                      flare_reach_state_name(ev->u.reachability.reach), NULL);
    } else if (ev->type == FLARE_HOST_EV_DIAL_FAILED && !cli_json) {
        if (flare_multiaddr_to_string(ev->u.failed.addr, a, sizeof(a)) < 0)
            snprintf(a, sizeof(a), "?");
        fprintf(stderr, "dial %s: %s\n", a, flare_strerror(ev->u.failed.error));
    }
}

typedef struct dial_ctx {
    an_cli *c;
    size_t idx;
} dial_ctx;

static void on_dialed(flare_host *h, flare_conn *conn, int status, void *user)
{
    dial_ctx *d = user;
    (void)h;
    (void)conn;
    if (status) {
        if (cli_json)
            cli_jsonf("dial_failed", "error", flare_strerror(status), NULL);
        d->c->settled[d->idx] = 1;
        maybe_probe(d->c);
    }
}

static void on_timeout(uv_timer_t *t)
{
    an_cli *c = t->data;
    print_verdict(c, FLARE_ERR_TIMEOUT);
    finish(c, 1);
}

static void on_sigint(uv_signal_t *s, int signum)
{
    (void)signum;
    finish(s->data, 130);
}

int cmd_autonat(int argc, char **argv)
{
    const char *servers[MAX_SERVERS], *listen[MAX_LISTEN], *key_file = NULL, *seed = NULL;
    size_t ns = 0, nl = 0;
    double timeout_s = 60;
    int allow_private = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (strcmp(a, "--json") == 0)
            continue;
        else if (strcmp(a, "--listen") == 0 && more && nl < MAX_LISTEN)
            listen[nl++] = argv[++i];
        else if (strcmp(a, "--key") == 0 && more)
            key_file = argv[++i];
        else if (strcmp(a, "--seed") == 0 && more)
            seed = argv[++i];
        else if (strcmp(a, "--allow-private") == 0)
            allow_private = 1;
        else if (strcmp(a, "--timeout") == 0 && more) {
            if (cli_parse_seconds(a, argv[++i], 0.001, 86400, &timeout_s))
                return 2;
        } else if (a[0] != '-' && ns < MAX_SERVERS)
            servers[ns++] = a;
        else {
            fprintf(stderr, "flare: unexpected argument '%s'\n", a);
            return 2;
        }
    }
    if (ns == 0) {
        fprintf(stderr, "usage: flare autonat MADDR... [--listen MADDR...] [--timeout S] "
                        "[--json]\n");
        return 2;
    }
    if (nl == 0)
        listen[nl++] = "/ip4/0.0.0.0/tcp/0";
    flare_privkey key;
    if (cli_load_identity(&key, key_file, seed))
        return 1;
    an_cli *c = calloc(1, sizeof(*c));
    dial_ctx *ctx = calloc(ns, sizeof(*ctx));
    if (!c || !ctx) {
        free(c);
        free(ctx);
        return 1;
    }
    uv_loop_init(&c->loop);
    int rv = flare_uvio_new(&c->uvio, &c->loop, NULL);
    flare_host_settings cfg;
    flare_host_settings_default(&cfg);
    cfg.autonat_allow_private = allow_private;
    if (rv == 0)
        rv = flare_host_new(&c->host, flare_uvio_io(c->uvio), &key, &cfg, NULL);
    flare_privkey_clear(&key);
    if (rv == 0)
        flare_host_set_event_cb(c->host, on_event, c);
    for (size_t i = 0; i < nl && rv == 0; i++) {
        flare_multiaddr ma;
        rv = flare_multiaddr_parse(&ma, listen[i]);
        if (rv == 0)
            rv = flare_host_listen(c->host, &ma);
        if (rv) {
            fprintf(stderr, "flare: cannot listen on %s: %s\n", listen[i], flare_strerror(rv));
            cli_multiaddr_hint(listen[i]);
        }
    }
    for (size_t i = 0; i < ns && rv == 0; i++) {
        flare_multiaddr ma;
        rv = flare_multiaddr_parse(&ma, servers[i]);
        if (rv == 0 && flare_multiaddr_get_peerid(&ma, &c->servers[i]) != 0)
            rv = FLARE_ERR_INVALID_ARG;
        c->nservers = i + 1;
        ctx[i].c = c;
        ctx[i].idx = i;
        if (rv == 0)
            rv = flare_host_dial(c->host, &ma, NULL, on_dialed, &ctx[i]);
        if (rv) {
            fprintf(stderr, "flare: cannot dial %s (needs /p2p/PEER_ID): %s\n", servers[i],
                    flare_strerror(rv));
            cli_multiaddr_hint(servers[i]);
        }
    }
    uv_timer_init(&c->loop, &c->timeout);
    uv_signal_init(&c->loop, &c->sigint);
    c->timeout.data = c->sigint.data = c;
    if (rv == 0) {
        uv_timer_start(&c->timeout, on_timeout, (uint64_t)(timeout_s * 1000), 0);
        uv_signal_start(&c->sigint, on_sigint, SIGINT);
        uv_run(&c->loop, UV_RUN_DEFAULT);
    } else {
        c->exit_code = c->host ? 2 : 1;
    }
    flare_host_del(c->host);
    if (c->uvio)
        flare_uvio_del(c->uvio);
    uv_close((uv_handle_t *)&c->timeout, NULL);
    uv_close((uv_handle_t *)&c->sigint, NULL);
    uv_run(&c->loop, UV_RUN_DEFAULT);
    uv_loop_close(&c->loop);
    int code = c->exit_code;
    free(ctx);
    free(c);
    return code;
}
