/* The DHT in the CLI: --bootstrap, --dht-mode and --dht-disjoint-paths of the node commands, the
 * `dht` event, and `flare dht find-peer|find-providers|provide|get|put`. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "cli.h"
#include "flare/kad.h"
#include "flare/multibase.h"
#include "flare/multihash.h"
#include "flare/uvio.h"
#include "flare/varint.h"

/* ---- shared with the node commands ------------------------------------------------ */

int cli_dht_parse(cli_dht_opts *o, const char *a, const char *v)
{
    if (strcmp(a, "--bootstrap") == 0) {
        flare_multiaddr ma;
        flare_peerid id;
        if (!v || flare_multiaddr_parse(&ma, v) || flare_multiaddr_get_peerid(&ma, &id)) {
            fprintf(stderr, "flare: --bootstrap: '%s' is not a multiaddr ending with /p2p/ID\n",
                    v ? v : "");
            return -1;
        }
        if (o->nboot == CLI_DHT_MAX_BOOT) {
            fprintf(stderr, "flare: --bootstrap: at most %d peers\n", CLI_DHT_MAX_BOOT);
            return -1;
        }
        o->boot[o->nboot++] = ma;
        return 1;
    }
    if (strcmp(a, "--dht-mode") == 0) {
        if (v && strcmp(v, "auto") == 0)
            o->mode = FLARE_KAD_MODE_AUTO;
        else if (v && strcmp(v, "client") == 0)
            o->mode = FLARE_KAD_MODE_CLIENT;
        else if (v && strcmp(v, "server") == 0)
            o->mode = FLARE_KAD_MODE_SERVER;
        else {
            fprintf(stderr, "flare: --dht-mode: '%s' is not auto, client or server\n", v ? v : "");
            return -1;
        }
        o->mode_set = 1;
        return 1;
    }
    if (strcmp(a, "--dht-disjoint-paths") == 0) {
        char *end = NULL;
        unsigned long n = v ? strtoul(v, &end, 10) : 0;
        if (!v || *v < '1' || *v > '9' || *end || n > CLI_DHT_MAX_PATHS) {
            fprintf(stderr, "flare: --dht-disjoint-paths: '%s' is not 1..%d\n", v ? v : "",
                    CLI_DHT_MAX_PATHS);
            return -1;
        }
        o->disjoint_paths = (size_t)n;
        return 1;
    }
    return 0;
}

int cli_dht_enable(flare_host *h, const cli_dht_opts *o, int force)
{
    if (!force && !o->nboot && !o->mode_set)
        return 0;
    flare_kad_settings ks;
    flare_kad_settings_default(&ks);
    ks.mode = o->mode;
    ks.bootstrap = o->boot;
    ks.nbootstrap = (size_t)o->nboot;
    if (o->disjoint_paths)
        ks.disjoint_paths = o->disjoint_paths;
    int rv = flare_kad_enable(h, &ks);
    if (rv)
        fprintf(stderr, "flare: cannot start the DHT: %s\n", flare_strerror(rv));
    return rv;
}

void cli_dht_event(const flare_host_event *ev)
{
    char peers[32];
    snprintf(peers, sizeof(peers), "\001%zu", ev->u.dht.peers);
    const char *mode = ev->u.dht.server ? "server" : "client";
    if (cli_json)
        cli_jsonf("dht", "reason", ev->u.dht.reason, "mode", mode, "peers", peers, NULL);
    else if (CLI_HUMAN(CLI_LOG_INFO))
        printf("dht: %s (%s, %zu peers in the routing table)\n", ev->u.dht.reason, mode,
               ev->u.dht.peers);
}

/* "[\"/ip4/...\", ...]" as a raw JSON value. */
static const char *addr_list(const flare_multiaddr *a, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    char s[1024], q[1100];
    o += (size_t)snprintf(out + o, cap - o, "\001[");
    for (size_t i = 0; i < n && o < cap - 1200; i++) {
        if (flare_multiaddr_to_string(&a[i], s, sizeof(s)) < 0)
            continue;
        o += (size_t)snprintf(out + o, cap - o, "%s%s", o > 2 ? "," : "",
                              cli_json_str(q, sizeof(q), s));
    }
    snprintf(out + o, cap - o, "]");
    return out;
}

void cli_dht_print_peer(const char *event, const flare_kad_peer *p)
{
    char pid[FLARE_PEERID_STR_MAX], list[16384];
    flare_peerid_to_string(&p->id, pid, sizeof(pid));
    addr_list(p->addrs, p->naddrs, list, sizeof(list));
    if (cli_json && strcmp(event, "peer") == 0)
        cli_jsonf("peer", "peerId", pid, "addrs", list, NULL);
    else if (cli_json)
        cli_jsonf("provider", "peerId", pid, "addrs", list, NULL);
    else
        printf("%s %s: %s\n", event, pid, list + 1);
}

/* A CID (v0 "Qm..." or multibase v1) or a bare multihash in base58: its
 * multihash. Returns the length, or -1. */
int cli_cid_multihash(const char *s, uint8_t *out, size_t cap)
{
    uint8_t buf[256];
    int n;
    size_t len = strlen(s);
    if (len >= 2 && s[0] == 'Q' && s[1] == 'm')
        n = flare_base_decode(FLARE_MULTIBASE_BASE58BTC, s, len, buf, sizeof(buf));
    else {
        flare_multibase base;
        n = flare_multibase_decode(s, len, buf, sizeof(buf), &base);
        if (n > 0) {
            uint64_t version, codec;
            int a = flare_uvarint_decode(buf, (size_t)n, &version);
            int b = a > 0 ? flare_uvarint_decode(buf + a, (size_t)n - (size_t)a, &codec) : -1;
            if (a <= 0 || b <= 0 || version != 1)
                return -1;
            memmove(buf, buf + a + b, (size_t)n - (size_t)(a + b));
            n -= a + b;
        }
    }
    if (n <= 0 || (size_t)n > cap)
        return -1;
    flare_multihash_view mh;
    if (flare_multihash_parse_exact(buf, (size_t)n, &mh) < 0)
        return -1;
    memcpy(out, buf, (size_t)n);
    return n;
}

/* ---- flare dht ------------------------------------------------------------------------ */

typedef struct dht_cmd {
    uv_loop_t loop;
    uv_signal_t sigint, sigterm;
    uv_timer_t timeout;
    flare_uvio *uvio;
    flare_host *host;
    const char *sub, *arg, *key_text;
    uint8_t key[300], val[256]; /* val: put's value */
    size_t klen, vlen;
    flare_peerid peer;
    int started, stay, exit_code;
    int quorum; /* get: valid records that end the lookup (0: the whole lookup) */
} dht_cmd;

static void stop(dht_cmd *d, int code)
{
    d->exit_code = code;
    uv_stop(&d->loop);
}

static void fail(dht_cmd *d, int err)
{
    if (cli_json)
        cli_jsonf("error", "where", "dht", "error", flare_strerror(err), NULL);
    else
        fprintf(stderr, "dht %s: %s\n", d->sub, flare_strerror(err));
    stop(d, 1);
}

static void on_peers(flare_host *h, int status, const flare_kad_peer *p, size_t n, void *user)
{
    dht_cmd *d = user;
    (void)h;
    if (status) {
        fail(d, status);
        return;
    }
    for (size_t i = 0; i < n; i++)
        cli_dht_print_peer(strcmp(d->sub, "find-peer") == 0 ? "peer" : "provider", &p[i]);
    stop(d, 0);
}

/* The key went to n peers (put: stored by `dht put`, else provided).
 * Returns 0, or -1 after failing on status. */
static int report_stored(dht_cmd *d, int status, size_t n, int put)
{
    char num[32];
    if (status) {
        fail(d, status);
        return -1;
    }
    snprintf(num, sizeof(num), "\001%zu", n);
    const char *stored_ev = put ? "put" : "provided";
    if (cli_json)
        cli_jsonf(stored_ev, "key", d->key_text, "peers", num, NULL);
    else if (put)
        printf("stored %s on %zu peers\n", d->key_text, n);
    else
        printf("provided %s on %zu peers (republishing until Ctrl-C)\n", d->key_text, n);
    return 0;
}

static void on_provided(flare_host *h, int status, size_t n, void *user)
{
    (void)h;
    report_stored(user, status, n, 0);
}

static void on_put(flare_host *h, int status, size_t n, void *user)
{
    (void)h;
    if (report_stored(user, status, n, 1) == 0)
        stop(user, 0);
}

static void on_value(flare_host *h, int status, const uint8_t *v, size_t len, void *user)
{
    dht_cmd *d = user;
    char b64[4096];
    (void)h;
    if (status) {
        fail(d, status);
        return;
    }
    if (flare_base_encode(FLARE_MULTIBASE_BASE64, v, len, b64, sizeof(b64)) < 0)
        b64[0] = 0;
    if (cli_json)
        cli_jsonf("value", "key", d->key_text, "value", b64, NULL);
    else
        printf("value of %s: %s (base64; a valid public key of that peer)\n", d->key_text, b64);
    stop(d, 0);
}

/* The table holds peers: run the query. */
static void start_query(dht_cmd *d)
{
    flare_host *h = d->host;
    int rv;
    d->started = 1;
    if (strcmp(d->sub, "find-peer") == 0)
        rv = flare_kad_find_peer(h, &d->peer, on_peers, d);
    else if (strcmp(d->sub, "find-providers") == 0)
        rv = flare_kad_find_providers(h, d->key, d->klen, 0, on_peers, d);
    else if (strcmp(d->sub, "provide") == 0)
        rv = flare_kad_provide(h, d->key, d->klen, on_provided, d);
    else if (strcmp(d->sub, "get") == 0)
        rv = flare_kad_get_value_quorum(h, d->key, d->klen, (size_t)d->quorum, on_value, d);
    else
        rv = flare_kad_put_value(h, d->key, d->klen, d->val, d->vlen, on_put, d);
    if (rv)
        fail(d, rv);
}

static void dht_event(flare_host *h, const flare_host_event *ev, void *user)
{
    dht_cmd *d = user;
    char addr[1024], pid[FLARE_PEERID_STR_MAX];
    (void)h;
    if (ev->type == FLARE_HOST_EV_DHT) {
        cli_dht_event(ev);
        if (!d->started && strcmp(ev->u.dht.reason, "ready") == 0)
            start_query(d);
    } else if (ev->type == FLARE_HOST_EV_LISTENING) {
        flare_multiaddr full = *ev->u.listen.addr;
        flare_multiaddr_with_peerid(&full, flare_host_peerid(h));
        flare_multiaddr_to_string(&full, addr, sizeof(addr));
        flare_peerid_to_string(flare_host_peerid(h), pid, sizeof(pid));
        if (cli_json)
            cli_jsonf("listening", "addr", addr, "peerId", pid, NULL);
        else if (CLI_HUMAN(CLI_LOG_INFO))
            printf("listening on %s\n", addr);
    }
}

static void on_signal(uv_signal_t *s, int signum)
{
    (void)signum;
    stop(s->data, ((dht_cmd *)s->data)->exit_code);
}

static void on_timeout(uv_timer_t *t)
{
    dht_cmd *d = t->data;
    if (d->stay && d->started)
        return;
    fail(d, FLARE_ERR_TIMEOUT);
}

/* The key of the subcommand (and for put the value, after it in d->key). */
static int prepare_key(dht_cmd *d)
{
    if (strcmp(d->sub, "find-peer") == 0 || strcmp(d->sub, "get") == 0) {
        if (!d->arg || flare_peerid_parse(&d->peer, d->arg, strlen(d->arg))) {
            fprintf(stderr, "flare: dht %s: '%s' is not a peer ID\n", d->sub, d->arg ? d->arg : "");
            return -1;
        }
        d->key_text = d->arg;
        if (d->sub[0] == 'g') { /* the pk record of that peer */
            memcpy(d->key, "/pk/", 4);
            memcpy(d->key + 4, d->peer.bytes, d->peer.len);
            d->klen = 4 + (size_t)d->peer.len;
        }
        return 0;
    }
    if (strcmp(d->sub, "put") == 0)
        return 0; /* our own pk record, made once the host is up */
    int n = d->arg ? cli_cid_multihash(d->arg, d->key, sizeof(d->key)) : -1;
    if (n < 0) {
        fprintf(stderr, "flare: dht %s: '%s' is not a CID\n", d->sub, d->arg ? d->arg : "");
        return -1;
    }
    d->klen = (size_t)n;
    d->key_text = d->arg;
    return 0;
}

static int dht_args(int argc, char **argv, dht_cmd *d, cli_dht_opts *o, const char **listen,
                    const char **key_file, const char **seed, double *timeout)
{
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int r = cli_dht_parse(o, a, v);
        if (r < 0)
            return -1;
        if (r > 0) {
            i++;
            continue;
        }
        if (strcmp(a, "--json") == 0)
            continue;
        if (strcmp(a, "--listen") == 0 && v)
            *listen = argv[++i];
        else if (strcmp(a, "--key") == 0 && v)
            *key_file = argv[++i];
        else if (strcmp(a, "--seed") == 0 && v)
            *seed = argv[++i];
        else if (strcmp(a, "--timeout") == 0 && v) {
            if (cli_parse_seconds(a, argv[++i], 0.001, 86400, timeout))
                return -1;
        } else if (strcmp(a, "--quorum") == 0 && v && strcmp(d->sub, "get") == 0) {
            if (cli_parse_int(a, argv[++i], 0, 64, &d->quorum))
                return -1;
        } else if (a[0] != '-' && !d->arg)
            d->arg = a;
        else {
            fprintf(stderr, "flare: unexpected argument '%s'\n", a);
            return -1;
        }
    }
    if (!o->nboot) {
        fprintf(stderr, "flare: dht %s: --bootstrap MADDR is required\n", d->sub);
        return -1;
    }
    return prepare_key(d);
}

static int dht_setup(dht_cmd *d, const cli_dht_opts *o, const char *listen, const char *key_file,
                     const char *seed)
{
    flare_privkey key;
    if (cli_load_identity(&key, key_file, seed))
        return 1;
    uv_loop_init(&d->loop);
    int rv = flare_uvio_new(&d->uvio, &d->loop, NULL);
    flare_host_settings cfg;
    flare_host_settings_default(&cfg);
    if (rv == 0)
        rv = flare_host_new(&d->host, flare_uvio_io(d->uvio), &key, &cfg, NULL);
    flare_privkey_clear(&key);
    if (rv) {
        fprintf(stderr, "flare: cannot start: %s\n", flare_strerror(rv));
        return 1;
    }
    flare_host_set_event_cb(d->host, dht_event, d);
    flare_multiaddr ma;
    rv = flare_multiaddr_parse(&ma, listen);
    if (rv == 0)
        rv = flare_host_listen(d->host, &ma);
    if (rv) {
        fprintf(stderr, "flare: cannot listen on %s: %s\n", listen, flare_strerror(rv));
        return 1;
    }
    if (strcmp(d->sub, "put") == 0) { /* our own pk record */
        static char idtext[FLARE_PEERID_STR_MAX];
        d->klen = sizeof(d->key);
        d->vlen = sizeof(d->val);
        if (flare_kad_pk_record(d->host, d->key, &d->klen, d->val, &d->vlen))
            return 1;
        flare_peerid_to_string(flare_host_peerid(d->host), idtext, sizeof(idtext));
        d->key_text = idtext;
    }
    return cli_dht_enable(d->host, o, 1) ? 1 : 0;
}

int cmd_dht(int argc, char **argv)
{
    static const char *const subs[] = {"find-peer", "find-providers", "provide", "get", "put"};
    dht_cmd *d = calloc(1, sizeof(*d));
    cli_dht_opts o = {0};
    const char *listen = "/ip4/0.0.0.0/tcp/0", *key_file = NULL, *seed = NULL;
    double timeout = 60;
    size_t i = 0;
    while (argc >= 2 && i < sizeof(subs) / sizeof(subs[0]) && strcmp(argv[1], subs[i]) != 0)
        i++;
    if (!d || argc < 2 || i == sizeof(subs) / sizeof(subs[0])) {
        fprintf(stderr, "flare: dht: expected find-peer, find-providers, provide, get or put\n");
        free(d);
        return 2;
    }
    d->sub = subs[i];
    d->stay = strcmp(d->sub, "provide") == 0;
    if (dht_args(argc, argv, d, &o, &listen, &key_file, &seed, &timeout) ||
        (!d->arg && strcmp(d->sub, "put") != 0)) {
        if (!d->arg && strcmp(d->sub, "put") != 0)
            fprintf(stderr, "flare: dht %s: missing argument\n", d->sub);
        free(d);
        return 2;
    }
    int rv = dht_setup(d, &o, listen, key_file, seed);
    uv_signal_init(&d->loop, &d->sigint);
    uv_signal_init(&d->loop, &d->sigterm);
    uv_timer_init(&d->loop, &d->timeout);
    d->sigint.data = d->sigterm.data = d->timeout.data = d;
    uv_signal_start(&d->sigint, on_signal, SIGINT);
    uv_signal_start(&d->sigterm, on_signal, SIGTERM);
    uv_timer_start(&d->timeout, on_timeout, (uint64_t)(timeout * 1000), 0);
    if (rv == 0)
        uv_run(&d->loop, UV_RUN_DEFAULT);
    else
        d->exit_code = 1;
    flare_host_del(d->host);
    flare_uvio_del(d->uvio);
    uv_close((uv_handle_t *)&d->sigint, NULL);
    uv_close((uv_handle_t *)&d->sigterm, NULL);
    uv_close((uv_handle_t *)&d->timeout, NULL);
    uv_run(&d->loop, UV_RUN_DEFAULT);
    uv_loop_close(&d->loop);
    rv = d->exit_code;
    free(d);
    return rv;
}
