/* The whole Flare flow on a simulated internet: N nodes, a share of them
 * public (DHT servers, every other one a Circuit Relay v2 relay), the rest
 * private behind NATs drawn from a mix of mapping and filtering behaviours.
 * Every node bootstraps from one of three bootstrap nodes; private nodes run
 * AutoNAT, join the DHT as clients, find relays through it (AutoRelay, no
 * relay configured) and reserve. Then disjoint random pairs of private
 * nodes with a reservation dial each other by peer ID (DHT lookup, relayed
 * connection, DCUtR). Prints one JSON line, progress on stderr.
 *
 *   bench_kad_sim [--nodes N] [--seed S] [--pairs P] [--public PCT]
 *                 [--nat-mix FILE] [--join-s S] [--conn-low N --conn-high N] [--json]
 *
 * --nat-mix FILE: lines "MAPPING FILTERING WEIGHT" (ei|ad|apd), e.g.
 * "ei apd 50"; the default is in default_mix below (docs/benchmarks.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "flare/host.h"
#include "flare/kad.h"
#include "flare/sim.h"
#include "support/helpers.h"
#include "services/kad_svc.h"

#define MS FLARE_NS_PER_MS
#define S  FLARE_NS_PER_S

typedef struct counting {
    size_t live, peak;
} counting;

static void *c_malloc(size_t n, void *u)
{
    counting *c = u;
    size_t *p = malloc(n + sizeof(size_t) * 2);
    if (!p)
        return NULL;
    p[0] = n;
    c->live += n;
    if (c->live > c->peak)
        c->peak = c->live;
    return p + 2;
}
static void c_free(void *q, void *u)
{
    if (!q)
        return;
    size_t *p = (size_t *)q - 2;
    ((counting *)u)->live -= p[0];
    free(p);
}
static void *c_calloc(size_t k, size_t n, void *u)
{
    void *p = c_malloc(k * n, u);
    if (p)
        memset(p, 0, k * n);
    return p;
}
static void *c_realloc(void *q, size_t n, void *u)
{
    if (!q)
        return c_malloc(n, u);
    size_t old = ((size_t *)q - 2)[0];
    void *p = c_malloc(n, u);
    if (p) {
        memcpy(p, q, old < n ? old : n);
        c_free(q, u);
    }
    return p;
}

typedef struct mix_entry {
    flare_sim_nat_behavior mapping, filtering;
    double weight;
} mix_entry;

/* Private nodes' NATs. An assumption close to the measurements cited in
 * docs/benchmarks.md: four in five map endpoint-independently (most of
 * them filter by address and port), one in five is symmetric. */
static mix_entry default_mix[] = {
    {FLARE_SIM_EI, FLARE_SIM_EI, 10},   {FLARE_SIM_EI, FLARE_SIM_AD, 20},
    {FLARE_SIM_EI, FLARE_SIM_APD, 50},  {FLARE_SIM_AD, FLARE_SIM_APD, 5},
    {FLARE_SIM_APD, FLARE_SIM_APD, 15},
};

typedef struct node {
    flare_sim_host *sh;
    flare_host *h;
    char ip[32];
    int priv, mix;
    int rsv_ok;
    int pair;             /* index in pairs, -1 */
    flare_tstamp punched; /* holepunch success time (0: none) */
} node;

typedef struct pair {
    int a, b;
    flare_tstamp start, direct_at;
    int found, connected, direct, failed;
} pair;

typedef struct world {
    flare_sim *sim;
    node *n;
    int nn;
    pair *p;
    int np;
} world;

static const char *bname(flare_sim_nat_behavior b)
{
    return b == FLARE_SIM_EI ? "EI" : b == FLARE_SIM_AD ? "AD" : "APD";
}

static int parse_beh(const char *s, flare_sim_nat_behavior *b)
{
    if (strcmp(s, "ei") == 0)
        *b = FLARE_SIM_EI;
    else if (strcmp(s, "ad") == 0)
        *b = FLARE_SIM_AD;
    else if (strcmp(s, "apd") == 0)
        *b = FLARE_SIM_APD;
    else
        return -1;
    return 0;
}

static void on_event(flare_host *h, const flare_host_event *ev, void *user)
{
    node *n = user;
    (void)h;
    if (ev->type == FLARE_HOST_EV_RESERVATION_OK)
        n->rsv_ok++;
    else if (ev->type == FLARE_HOST_EV_HOLEPUNCH && !ev->u.holepunch.error && !n->punched)
        n->punched = flare_io_now(flare_host_io(h));
}

static flare_prng rng;

static int pick_mix(const mix_entry *mix, int nmix)
{
    double total = 0, r;
    for (int i = 0; i < nmix; i++)
        total += mix[i].weight;
    r = (double)(flare_prng_next(&rng) >> 11) / (double)(1ull << 53) * total;
    for (int i = 0; i < nmix; i++) {
        if (r < mix[i].weight)
            return i;
        r -= mix[i].weight;
    }
    return nmix - 1;
}

static int conn_low = 0, conn_high = 0; /* --conn-low/--conn-high (0: the host's) */

static int make_node(world *w, int i, int npub, const mix_entry *mix, int nmix,
                     const flare_mem *mem)
{
    node *n = &w->n[i];
    flare_sim_lan *inet = flare_sim_internet(w->sim), *lan = inet;
    n->priv = i >= npub;
    n->pair = -1;
    if (n->priv) {
        char name[32], out[32];
        n->mix = pick_mix(mix, nmix);
        snprintf(name, sizeof(name), "lan%d", i);
        snprintf(out, sizeof(out), "12.%d.%d.1", i / 250, i % 250 + 1);
        flare_sim_nat_config nc;
        flare_sim_nat_config_default(&nc);
        nc.mapping = mix[n->mix].mapping;
        nc.filtering = mix[n->mix].filtering;
        lan = flare_sim_lan_new(w->sim, name);
        if (!lan || !flare_sim_nat_new(w->sim, name, inet, out, lan, "10.0.0.1", &nc))
            return FLARE_ERR_NOMEM;
        snprintf(n->ip, sizeof(n->ip), "10.0.0.2");
    } else {
        snprintf(n->ip, sizeof(n->ip), "11.%d.%d.1", i / 250, i % 250 + 1);
    }
    flare_host_settings c;
    flare_test_settings_default(&c);
    c.autonat_boot_delay = 2 * S;
    c.enable_autorelay = n->priv;
    if (conn_high) {
        c.conn_low_water = (size_t)conn_low;
        c.conn_high_water = (size_t)conn_high;
    }
    flare_test_host_spec sp = {.name = n->priv ? "priv" : "pub",
                               .lan = lan,
                               .ip = n->ip,
                               .link = {.delay = 10 * MS},
                               .cfg = &c,
                               .on_event = on_event,
                               .user = n,
                               .listen_port = 4001,
                               .mem = mem};
    memcpy(sp.seed, &i, sizeof(i));
    sp.seed[31] = 0xd7;
    int rv = flare_test_host_make(w->sim, &sp, &n->sh, &n->h);
    if (rv)
        return rv;
    if (!n->priv && i % 2 == 1 && (rv = flare_host_enable_relay_server(n->h, NULL)) != 0)
        return rv;
    flare_kad_settings ks;
    flare_kad_settings_default(&ks);
    ks.mode = n->priv ? FLARE_KAD_MODE_AUTO : FLARE_KAD_MODE_SERVER;
    ks.request_timeout = 5 * S;
    flare_multiaddr boot;
    if (i > 0) {
        int b = (int)(flare_prng_next(&rng) % (uint64_t)(i < 3 ? i : 3));
        if ((rv = flare_test_tcp_addr(&boot, w->n[b].ip, 4001, flare_host_peerid(w->n[b].h))) != 0)
            return rv;
        ks.bootstrap = &boot;
        ks.nbootstrap = 1;
    }
    return flare_kad_enable(n->h, &ks);
}

typedef struct find_ctx {
    world *w;
    int pi;
} find_ctx;

static void on_found(flare_host *h, int status, const flare_kad_peer *p, size_t n, void *user)
{
    find_ctx *fc = user;
    pair *pr = &fc->w->p[fc->pi];
    (void)p;
    (void)n;
    if (status) {
        pr->failed = 1;
        return;
    }
    pr->found = 1;
    if (flare_host_connect(h, flare_host_peerid(fc->w->n[pr->b].h), NULL, NULL, NULL) == 0)
        pr->connected = 1;
}

static double wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, int n, double p)
{
    if (!n)
        return 0;
    qsort(v, (size_t)n, sizeof(*v), cmp_d);
    int i = (int)(p * (n - 1) + 0.5);
    return v[i];
}

static int load_mix(const char *file, mix_entry *mix, int cap)
{
    FILE *f = fopen(file, "r");
    char m[16], fl[16];
    double wgt;
    int n = 0;
    if (!f)
        return -1;
    while (n < cap && fscanf(f, "%15s %15s %lf", m, fl, &wgt) == 3) {
        if (parse_beh(m, &mix[n].mapping) || parse_beh(fl, &mix[n].filtering) || wgt < 0) {
            fclose(f);
            return -1;
        }
        mix[n++].weight = wgt;
    }
    fclose(f);
    return n;
}

int main(int argc, char **argv)
{
    int nodes = 200, pairs = 20, json = 0;
    double public_pct = 30, join_s = 60;
    uint64_t seed = 1;
    mix_entry mixbuf[32];
    mix_entry *mix = default_mix;
    int nmix = (int)(sizeof(default_mix) / sizeof(default_mix[0]));
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--json") == 0)
            json = 1;
        else if (strcmp(a, "--nodes") == 0 && v)
            nodes = atoi(argv[++i]);
        else if (strcmp(a, "--pairs") == 0 && v)
            pairs = atoi(argv[++i]);
        else if (strcmp(a, "--seed") == 0 && v)
            seed = strtoull(argv[++i], NULL, 10);
        else if (strcmp(a, "--public") == 0 && v)
            public_pct = atof(argv[++i]);
        else if (strcmp(a, "--conn-low") == 0 && v)
            conn_low = atoi(argv[++i]);
        else if (strcmp(a, "--conn-high") == 0 && v)
            conn_high = atoi(argv[++i]);
        else if (strcmp(a, "--join-s") == 0 && v)
            join_s = atof(argv[++i]);
        else if (strcmp(a, "--nat-mix") == 0 && v) {
            nmix = load_mix(argv[++i], mixbuf, 32);
            if (nmix <= 0) {
                fprintf(stderr, "bench_kad_sim: bad --nat-mix file\n");
                return 2;
            }
            mix = mixbuf;
        } else {
            fprintf(stderr, "usage: bench_kad_sim [--nodes N] [--seed S] [--pairs P] [--public PCT]"
                            " [--nat-mix FILE] [--join-s S] [--json]\n");
            return 2;
        }
    }
    if (nodes < 10 || nodes > 100000) {
        fprintf(stderr, "bench_kad_sim: --nodes 10..100000\n");
        return 2;
    }
    flare_prng_seed(&rng, seed);
    counting cnt = {0, 0};
    flare_mem mem = {&cnt, c_malloc, c_free, c_calloc, c_realloc};
    double t0 = wall();
    world w = {0};
    w.sim = flare_sim_new(seed, &mem);
    w.nn = nodes;
    w.n = calloc((size_t)nodes, sizeof(*w.n));
    int npub = (int)(nodes * public_pct / 100);
    if (npub < 4)
        npub = 4;
    /* Joins spread over the first half of the join time. */
    flare_tstamp step = (flare_tstamp)(join_s / 2 * 1e9) / (flare_tstamp)nodes;
    for (int i = 0; i < nodes; i++) {
        int rv = make_node(&w, i, npub, mix, nmix, &mem);
        if (rv) {
            fprintf(stderr, "bench_kad_sim: node %d: %s\n", i, flare_strerror(rv));
            return 1;
        }
        flare_sim_run_for(w.sim, step);
        if (i % 500 == 499)
            fprintf(stderr, "joined %d nodes, %.1f s wall\n", i + 1, wall() - t0);
    }
    flare_sim_run_for(w.sim, (flare_tstamp)(join_s / 2 * 1e9));
    int with_relay = 0, nprivate = nodes - npub, reachable = 0;
    for (int i = npub; i < nodes; i++) {
        with_relay += w.n[i].rsv_ok > 0;
        reachable += flare_host_reachability(w.n[i].h, 4) == FLARE_REACH_PUBLIC;
    }
    fprintf(stderr,
            "join done: %d/%d private nodes hold a reservation (%d found reachable), %.1f s wall\n",
            with_relay, nprivate, reachable, wall() - t0);

    /* Disjoint random pairs of private nodes with a reservation. */
    int *cand = calloc((size_t)nodes, sizeof(int)), nc = 0;
    for (int i = npub; i < nodes; i++)
        if (w.n[i].rsv_ok)
            cand[nc++] = i;
    for (int i = nc - 1; i > 0; i--) {
        int j = (int)(flare_prng_next(&rng) % (uint64_t)(i + 1)), t = cand[i];
        cand[i] = cand[j];
        cand[j] = t;
    }
    w.np = pairs < nc / 2 ? pairs : nc / 2;
    w.p = calloc((size_t)(w.np ? w.np : 1), sizeof(*w.p));
    find_ctx *fc = calloc((size_t)(w.np ? w.np : 1), sizeof(*fc));
    flare_tstamp start = flare_sim_now(w.sim);
    for (int k = 0; k < w.np; k++) {
        pair *pr = &w.p[k];
        pr->a = cand[2 * k];
        pr->b = cand[2 * k + 1];
        pr->start = start;
        w.n[pr->a].pair = w.n[pr->b].pair = k;
        fc[k] = (find_ctx){&w, k};
        if (flare_kad_find_peer(w.n[pr->a].h, flare_host_peerid(w.n[pr->b].h), on_found, &fc[k]))
            pr->failed = 1;
    }
    flare_sim_run_for(w.sim, 60 * S);
    /* Results. */
    int direct = 0, found = 0;
    double *ms = calloc((size_t)(w.np ? w.np : 1), sizeof(double));
    int nms = 0;
    int cells[8][8][2] = {{{0}}};
    for (int k = 0; k < w.np; k++) {
        pair *pr = &w.p[k];
        node *a = &w.n[pr->a], *b = &w.n[pr->b];
        flare_tstamp t = a->punched && b->punched
                             ? (a->punched < b->punched ? a->punched : b->punched)
                             : (a->punched ? a->punched : b->punched);
        found += pr->found;
        if (t) {
            direct++;
            ms[nms++] = (double)(t - pr->start) / 1e6;
        }
        int x = a->mix < b->mix ? a->mix : b->mix, y = a->mix < b->mix ? b->mix : a->mix;
        cells[x][y][0]++;
        cells[x][y][1] += t != 0;
    }
    size_t max_rsv = 0, sum_rsv = 0, nrelays = 0;
    for (int i = 0; i < npub; i++) {
        if (i % 2 != 1)
            continue;
        size_t r = flare_host_relay_num_reservations(w.n[i].h);
        nrelays++;
        sum_rsv += r;
        if (r > max_rsv)
            max_rsv = r;
    }
    double *hops = calloc((size_t)nodes, sizeof(double));
    int nh = 0;
    for (int i = 0; i < nodes; i++) {
        kad_t *k = kad_get(w.n[i].h);
        if (k && k->lookups)
            hops[nh++] = (double)k->lookup_hops / (double)k->lookups;
    }
    double wall_s = wall() - t0, sim_s = (double)flare_sim_now(w.sim) / 1e9;
    char per[4096] = "{";
    size_t o = 1;
    for (int x = 0; x < nmix; x++)
        for (int y = x; y < nmix; y++)
            if (cells[x][y][0])
                o += (size_t)snprintf(per + o, sizeof(per) - o, "%s\"%s-%s/%s-%s\":[%d,%d]",
                                      o > 1 ? "," : "", bname(mix[x].mapping),
                                      bname(mix[x].filtering), bname(mix[y].mapping),
                                      bname(mix[y].filtering), cells[x][y][1], cells[x][y][0]);
    snprintf(per + o, sizeof(per) - o, "}");
    double p50 = pct(ms, nms, 0.5), p90 = pct(ms, nms, 0.9), hop50 = pct(hops, nh, 0.5);
    printf("{\"event\":\"sim_summary\",\"nodes\":%d,\"public\":%d,\"private_with_relay\":%d,"
           "\"private_reachable\":%d,\"private\":%d,\"pairs\":%d,\"found\":%d,\"wall_s\":%.2f,"
           "\"sim_s\":%.1f,"
           "\"direct_rate\":%.3f,\"per_pairing\":%s,\"ms_to_direct_p50\":%.0f,"
           "\"ms_to_direct_p90\":%.0f,\"relay_reservations_max\":%zu,"
           "\"relay_reservations_mean\":%.2f,\"lookup_hops_p50\":%.2f,\"bytes_per_node\":%zu}\n",
           nodes, npub, with_relay, reachable, nprivate, w.np, found, wall_s, sim_s,
           w.np ? (double)direct / w.np : 0.0, per, p50, p90, max_rsv,
           nrelays ? (double)sum_rsv / (double)nrelays : 0.0, hop50, cnt.peak / (size_t)nodes);
    (void)json;
    for (int i = 0; i < nodes; i++)
        flare_host_del(w.n[i].h);
    flare_sim_del(w.sim);
    free(ms);
    free(hops);
    free(cand);
    free(fc);
    free(w.p);
    free(w.n);
    return 0;
}
