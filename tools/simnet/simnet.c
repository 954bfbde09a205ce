/* The whole-flow scenario on the simulated internet (simnet.h). */
#include "simnet/simnet.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "flare/kad.h"
#include "services/kad_svc.h"
#include "simnet/slab.h"

#define MS FLARE_NS_PER_MS
#define S  FLARE_NS_PER_S

/* Private nodes' NATs: 89% endpoint-independent mapping, 11% symmetric
 * (address-and-port-dependent mapping), after the share of symmetric NATs
 * that Trautwein et al. (2025) cite; every NAT filters by address and port
 * (docs/benchmarks.md, "The default NAT mix"). */
const simnet_mix simnet_default_mix[] = {
    {FLARE_SIM_EI, FLARE_SIM_APD, 89},
    {FLARE_SIM_APD, FLARE_SIM_APD, 11},
};
const int simnet_default_nmix = (int)(sizeof(simnet_default_mix) / sizeof(simnet_default_mix[0]));

/* ---- configuration ---------------------------------------------------------------- */

void simnet_config_default(simnet_config *c)
{
    memset(c, 0, sizeof(*c));
    c->nodes = 200;
    c->seed = 1;
    c->pairs = 20;
    c->public_pct = 30;
    c->join_s = 60;
    c->dial_s = 60;
    c->threads = 1;
    memcpy(c->mix, simnet_default_mix, sizeof(simnet_default_mix));
    c->nmix = simnet_default_nmix;
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

int simnet_load_mix(simnet_config *c, const char *file)
{
    FILE *f = fopen(file, "r");
    char line[256];
    int n = 0, lineno = 0;
    double total = 0;
    if (!f) {
        fprintf(stderr, "--nat-mix %s: %s\n", file, strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof(line), f)) {
        char m[16], fl[16], extra[2];
        double wgt;
        lineno++;
        char *hash = strchr(line, '#');
        if (hash)
            *hash = 0;
        if (sscanf(line, " %1s", extra) != 1)
            continue; /* blank */
        if (sscanf(line, "%15s %15s %lf %1s", m, fl, &wgt, extra) != 3 || n >= SIMNET_MAX_MIX ||
            parse_beh(m, &c->mix[n].mapping) || parse_beh(fl, &c->mix[n].filtering) ||
            !isfinite(wgt) || wgt < 0) {
            fprintf(stderr,
                    "--nat-mix %s:%d: want \"MAPPING FILTERING WEIGHT\" (ei|ad|apd, weight >= 0, "
                    "at most %d lines)\n",
                    file, lineno, SIMNET_MAX_MIX);
            fclose(f);
            return -1;
        }
        c->mix[n++].weight = wgt;
        total += wgt;
    }
    fclose(f);
    if (n == 0 || total <= 0) {
        fprintf(stderr, "--nat-mix %s: no NAT with a weight above 0\n", file);
        return -1;
    }
    c->nmix = n;
    return 0;
}

static int bad(const char *prog, const char *flag, const char *v, const char *want)
{
    fprintf(stderr, "%s: %s: '%s' is not %s\n", prog, flag, v ? v : "", want);
    return -1;
}

static int num(const char *prog, const char *flag, const char *v, double min, double max, int whole,
               double *out)
{
    char want[96];
    snprintf(want, sizeof(want), "a %s from %g to %g", whole ? "whole number" : "number", min, max);
    if (!v || ((v[0] < '0' || v[0] > '9') && v[0] != '.'))
        return bad(prog, flag, v, want);
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (errno || *end || !isfinite(d) || d < min || d > max || (whole && d != floor(d)))
        return bad(prog, flag, v, want);
    *out = d;
    return 0;
}

int simnet_parse_args(simnet_config *c, int argc, char **argv, const char *prog, int *json)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        double d;
        if (strcmp(a, "--json") == 0) {
            *json = 1;
            continue;
        }
        if (!v) {
            fprintf(stderr, "%s: unknown flag or missing value: %s\n", prog, a);
            return -1;
        }
        i++;
        if (strcmp(a, "--nodes") == 0) {
            if (num(prog, a, v, 10, 100000, 1, &d))
                return -1;
            c->nodes = (int)d;
        } else if (strcmp(a, "--seed") == 0) {
            if (num(prog, a, v, 0, 9007199254740992.0, 1, &d))
                return -1;
            c->seed = (uint64_t)d;
        } else if (strcmp(a, "--pairs") == 0) {
            if (num(prog, a, v, 0, 50000, 1, &d))
                return -1;
            c->pairs = (int)d;
        } else if (strcmp(a, "--public") == 0) {
            if (num(prog, a, v, 0, 100, 0, &d))
                return -1;
            c->public_pct = d;
        } else if (strcmp(a, "--join-s") == 0) {
            if (num(prog, a, v, 1, 86400, 0, &d))
                return -1;
            c->join_s = d;
        } else if (strcmp(a, "--dial-s") == 0) {
            if (num(prog, a, v, 1, 86400, 0, &d))
                return -1;
            c->dial_s = d;
        } else if (strcmp(a, "--conn-low") == 0) {
            if (num(prog, a, v, 1, 1000000, 1, &d))
                return -1;
            c->conn_low = (int)d;
        } else if (strcmp(a, "--conn-high") == 0) {
            if (num(prog, a, v, 1, 1000000, 1, &d))
                return -1;
            c->conn_high = (int)d;
        } else if (strcmp(a, "--security") == 0) {
            if (strcmp(v, "noise") && strcmp(v, "plaintext"))
                return bad(prog, a, v, "noise or plaintext");
            c->plaintext = strcmp(v, "plaintext") == 0;
        } else if (strcmp(a, "--threads") == 0) {
            if (num(prog, a, v, 1, 64, 1, &d))
                return -1;
            c->threads = (int)d;
        } else if (strcmp(a, "--nat-mix") == 0) {
            if (simnet_load_mix(c, v))
                return -1;
        } else {
            fprintf(stderr, "%s: unknown flag: %s\n", prog, a);
            return -1;
        }
    }
    if ((c->conn_low != 0) != (c->conn_high != 0) || c->conn_low > c->conn_high) {
        fprintf(stderr, "%s: --conn-low and --conn-high go together, low <= high\n", prog);
        return -1;
    }
    return 0;
}

/* ---- the world -------------------------------------------------------------------- */

/* Allocator hooks counting every live byte (bytes_per_node is their peak). */
static _Thread_local unsigned tls_slot; /* 1 + this thread's slot, 0: none yet */
static atomic_uint next_slot;

static atomic_llong *slot_of(simnet_counting *c)
{
    if (!tls_slot)
        tls_slot =
            1 + atomic_fetch_add_explicit(&next_slot, 1, memory_order_relaxed) % SIMNET_SLOTS;
    return &c->slot[tls_slot - 1].live;
}

static void count(simnet_counting *c, long long n)
{
    if (c->threaded) {
        atomic_fetch_add_explicit(slot_of(c), n, memory_order_relaxed);
        return;
    }
    c->live += (size_t)n;
    if (c->live > c->peak)
        c->peak = c->live;
}

/* After a parallel window (no thread allocates): the live sum, the peak. */
static void count_sample(void *u)
{
    simnet_counting *c = u;
    if (!c->threaded)
        return;
    long long sum = 0;
    for (int i = 0; i < SIMNET_SLOTS; i++)
        sum += atomic_load_explicit(&c->slot[i].live, memory_order_relaxed);
    c->live = (size_t)sum;
    if (c->live > c->peak)
        c->peak = c->live;
}

/* The blocks come from the slab allocator (slab.h); the counting stays on
 * the sizes asked for, so bytes_per_node means what it did with malloc. */
static void *c_malloc(size_t n, void *u)
{
    simnet_counting *c = u;
    void *p = simnet_slab_alloc(c->slab, n);
    if (p)
        count(c, (long long)n);
    return p;
}

static void c_free(void *q, void *u)
{
    simnet_counting *c = u;
    if (!q)
        return;
    count(c, -(long long)simnet_slab_free(c->slab, q));
}

static void *c_calloc(size_t k, size_t n, void *u)
{
    simnet_counting *c = u;
    void *p = simnet_slab_calloc(c->slab, k, n);
    if (p)
        count(c, (long long)(k * n));
    return p;
}

static void *c_realloc(void *q, size_t n, void *u)
{
    simnet_counting *c = u;
    size_t old = q ? simnet_slab_size(c->slab, q) : 0;
    void *p = simnet_slab_realloc(c->slab, q, n);
    if (p)
        count(c, (long long)n - (long long)old);
    return p;
}

static double wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int simnet_init(simnet *w, const simnet_config *c, FILE *progress)
{
    memset(w, 0, sizeof(*w));
    w->cfg = *c;
    w->progress = progress;
    w->t0 = wall();
    flare_prng_seed(&w->rng, c->seed);
    w->count.slab = simnet_slab_new(SIMNET_SLAB_AUTO);
    if (!w->count.slab)
        return FLARE_ERR_NOMEM;
    w->mem = (flare_mem){&w->count, c_malloc, c_free, c_calloc, c_realloc};
    const char *diag = getenv("SIMNET_DIAG");
    w->diag = diag && *diag && strcmp(diag, "0") != 0;
    /* The diagnosis reads other nodes' state from a node's callback: serial. */
    int threads = w->diag ? 1 : c->threads;
    w->count.threaded = threads > 1;
    /* Room for churn: as many nodes again may join later. */
    w->cap = c->nodes * 2;
    w->n = calloc((size_t)w->cap, sizeof(*w->n));
    w->sim = flare_sim_new(c->seed, &w->mem);
    if (!w->n || !w->sim)
        return FLARE_ERR_NOMEM;
    /* Room for a few records per node and its Noise signatures; outside
     * w->mem, as one per process rather than per node (2 MiB at 10,000). */
    size_t sig_entries = (size_t)w->cap * 8;
    if (sig_entries > FLARE_SIG_CACHE_MAX_ENTRIES)
        sig_entries = FLARE_SIG_CACHE_MAX_ENTRIES;
    if (flare_sig_cache_new(&w->sigc, sig_entries ? sig_entries : 1, NULL) != 0)
        return FLARE_ERR_NOMEM;
    if (threads > 1) {
        /* The run depends on the partitions, not on the threads: 2 to 8
         * threads give the same run, and 8 partitions even out the work
         * of the windows better than 2. */
        unsigned parts = threads > SIMNET_PARTITIONS ? (unsigned)threads : SIMNET_PARTITIONS;
        int rv = flare_sim_set_partitions(w->sim, parts, (unsigned)threads);
        if (rv)
            return rv;
        flare_sim_set_window_cb(w->sim, count_sample, &w->count);
        const char *prof = getenv("SIMNET_PARPROF");
        if (prof && *prof && strcmp(prof, "0") != 0)
            flare_sim_set_par_profile(w->sim, 1);
    }
    w->npub = (int)(c->nodes * c->public_pct / 100);
    if (w->npub < 4)
        w->npub = 4;
    return 0;
}

static void on_event(flare_host *h, const flare_host_event *ev, void *user)
{
    simnet_node *n = user;
    if (ev->type == FLARE_HOST_EV_CONN_OPENED)
        n->conns_opened++;
    else if (ev->type == FLARE_HOST_EV_RESERVATION_OK)
        n->rsv_ok++;
    else if (ev->type == FLARE_HOST_EV_HOLEPUNCH && !ev->u.holepunch.error && !n->punched)
        n->punched = flare_io_now(flare_host_io(h));
    else if (ev->type == FLARE_HOST_EV_DHT && !n->ready && strcmp(ev->u.dht.reason, "ready") == 0)
        n->ready = flare_io_now(flare_host_io(h));
    if (ev->type == FLARE_HOST_EV_HOLEPUNCH && !n->punch_over)
        n->punch_over = flare_io_now(flare_host_io(h));
}

static int pick_mix(simnet *w)
{
    const simnet_mix *mix = w->cfg.mix;
    double total = 0, r;
    for (int i = 0; i < w->cfg.nmix; i++)
        total += mix[i].weight;
    r = (double)(flare_prng_next(&w->rng) >> 11) / (double)(1ull << 53) * total;
    for (int i = 0; i < w->cfg.nmix; i++) {
        if (r < mix[i].weight)
            return i;
        r -= mix[i].weight;
    }
    return w->cfg.nmix - 1;
}

/* Node i's addresses: a /24 of its own for every public node (the DHT's
 * diversity limits then hold no one back), one per NAT. */
static void node_ip(char *out, size_t cap, int first_octet, int i)
{
    snprintf(out, cap, "%d.%d.%d.1", first_octet + i / 62500, i / 250 % 250, i % 250 + 1);
}

static int host_make(simnet *w, simnet_node *n, int i, flare_sim_lan *lan)
{
    flare_host_settings c;
    flare_host_settings_default(&c);
    c.doc_addrs_public = 1; /* the simulator's addresses count as public */
    c.autonat_boot_delay = 2 * S;
    c.enable_autorelay = n->priv;
    c.sig_cache = w->sigc;
    if (w->cfg.plaintext)
        c.security = "/plaintext/2.0.0";
    if (w->cfg.conn_high) {
        c.conn_low_water = (size_t)w->cfg.conn_low;
        c.conn_high_water = (size_t)w->cfg.conn_high;
    }
    char name[16];
    snprintf(name, sizeof(name), "%s%d", n->priv ? "priv" : "pub", i);
    n->sh = flare_sim_host_new(w->sim, name);
    if (!n->sh)
        return FLARE_ERR_NOMEM;
    int rv = flare_sim_host_add_addr(n->sh, lan, n->ip);
    if (rv)
        return rv;
    flare_sim_link_set(n->sh, &(flare_sim_link){.delay = 10 * MS});
    uint8_t seed[32] = {0};
    memcpy(seed, &i, sizeof(i));
    memcpy(seed + 8, &w->cfg.seed, sizeof(w->cfg.seed));
    seed[31] = 0xd7;
    flare_privkey k;
    if ((rv = flare_privkey_from_seed(&k, seed)) != 0 ||
        (rv = flare_host_new(&n->h, flare_sim_host_io(n->sh), &k, &c, &w->mem)) != 0)
        return rv;
    flare_host_set_event_cb(n->h, on_event, n);
    flare_multiaddr ma;
    char s[64];
    snprintf(s, sizeof(s), "/ip4/%s/tcp/4001", n->ip);
    if ((rv = flare_multiaddr_parse(&ma, s)) != 0)
        return rv;
    return flare_host_listen(n->h, &ma);
}

#define SIMNET_NBOOT 3  /* bootstrap peers per joiner */
#define SIMNET_FIXED 3  /* the fixed bootstrap nodes: the first three */
#define SIMNET_DRAWS 64 /* random draws for them, at most */

/* Can node j (before i) be a bootstrap peer? One of the fixed bootstrap
 * nodes, or a public node whose DHT table holds a peer (it joined). */
static int boot_ok(simnet *w, int j, const int *out, int n)
{
    const simnet_node *b = &w->n[j];
    if (!b->h || b->priv || (j >= SIMNET_FIXED && !flare_kad_routing_table_size(b->h)))
        return 0;
    for (int k = 0; k < n; k++)
        if (out[k] == j)
            return 0;
    return 1;
}

/* Node i's bootstrap peers (SIMNET_NBOOT at most, into out): drawn at
 * random among the fixed bootstrap nodes and the public nodes that joined
 * before it, as a node's list in practice holds a few well-known peers or
 * peers it remembers from an earlier run; the load of the joins then
 * spreads over the network instead of piling on three nodes. */
static int pick_boot(simnet *w, int i, int *out)
{
    int n = 0;
    for (int t = 0; t < SIMNET_DRAWS && n < SIMNET_NBOOT && i > 0; t++) {
        int j = (int)(flare_prng_next(&w->rng) % (uint64_t)i);
        if (boot_ok(w, j, out, n))
            out[n++] = j;
    }
    for (int j = 0; j < SIMNET_FIXED && j < i && n < SIMNET_NBOOT; j++)
        if (boot_ok(w, j, out, n))
            out[n++] = j; /* few candidates yet: the fixed ones */
    return n;
}

int simnet_add_node(simnet *w, int priv)
{
    if (w->nn >= w->cap)
        return FLARE_ERR_LIMIT;
    int i = w->nn++, rv;
    simnet_node *n = &w->n[i];
    flare_sim_lan *lan = flare_sim_internet(w->sim);
    n->priv = priv;
    n->pair = -1;
    if (priv) {
        char name[32], out[32];
        n->mix = pick_mix(w);
        snprintf(name, sizeof(name), "lan%d", i);
        node_ip(out, sizeof(out), 40, i);
        flare_sim_nat_config nc;
        flare_sim_nat_config_default(&nc);
        nc.mapping = w->cfg.mix[n->mix].mapping;
        nc.filtering = w->cfg.mix[n->mix].filtering;
        lan = flare_sim_lan_new(w->sim, name);
        if (!lan ||
            !flare_sim_nat_new(w->sim, name, flare_sim_internet(w->sim), out, lan, "10.0.0.1", &nc))
            return FLARE_ERR_NOMEM;
        snprintf(n->ip, sizeof(n->ip), "10.0.0.2");
    } else {
        node_ip(n->ip, sizeof(n->ip), 20, i);
        n->relay = i % 2 == 1;
    }
    if ((rv = host_make(w, n, i, lan)) != 0)
        return rv;
    if (n->relay && (rv = flare_host_enable_relay_server(n->h, NULL)) != 0)
        return rv;
    flare_kad_settings ks;
    flare_kad_settings_default(&ks);
    ks.mode = priv ? FLARE_KAD_MODE_AUTO : FLARE_KAD_MODE_SERVER;
    ks.request_timeout = 5 * S;
    flare_multiaddr boot[SIMNET_NBOOT];
    int b[SIMNET_NBOOT], nb = pick_boot(w, i, b);
    for (int k = 0; k < nb; k++) {
        char s[128];
        snprintf(s, sizeof(s), "/ip4/%s/tcp/4001", w->n[b[k]].ip);
        if ((rv = flare_multiaddr_parse(&boot[k], s)) != 0 ||
            (rv = flare_multiaddr_with_peerid(&boot[k], flare_host_peerid(w->n[b[k]].h))) != 0)
            return rv;
    }
    ks.bootstrap = nb ? boot : NULL;
    ks.nbootstrap = (size_t)nb;
    n->added = flare_sim_now(w->sim);
    rv = flare_kad_enable(n->h, &ks);
    return rv ? rv : i;
}

void simnet_leave(simnet *w, int i)
{
    if (!w->n[i].h)
        return;
    flare_host_del(w->n[i].h);
    w->n[i].h = NULL;
}

void simnet_run_s(simnet *w, double s)
{
    flare_sim_run_for(w->sim, (flare_tstamp)(s * 1e9));
}

static void say(simnet *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(simnet *w, const char *fmt, ...)
{
    if (!w->progress)
        return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(w->progress, fmt, ap);
    va_end(ap);
    /* Connections and events tell where a run's cost comes from. */
    unsigned long long conns = 0;
    for (int i = 0; i < w->nn; i++)
        conns += w->n[i].conns_opened;
    fprintf(w->progress, " (%.1f s wall, %.0f s simulated, %llu connections opened, %llu events)\n",
            wall() - w->t0, (double)flare_sim_now(w->sim) / 1e9, conns,
            (unsigned long long)flare_sim_events(w->sim));
    fflush(w->progress);
}

#define CHECK_STEP  (100 * MS) /* phase-end checks: between runs, so any thread count agrees */
#define SETTLE_MIN  (5 * S)    /* after the last join */
#define PHASE_GRACE (2 * S)    /* after the phase's work is done */

static int all_reserved(simnet *w)
{
    for (int i = 0; i < w->nn; i++)
        if (w->n[i].h && w->n[i].priv && !w->n[i].rsv_ok)
            return 0;
    return 1;
}

/* Runs up to `limit` from now, in CHECK_STEP runs; stops PHASE_GRACE after
 * done(w) first holds, and not before `min` from now. */
static void run_until(simnet *w, flare_tstamp limit, flare_tstamp min, int (*done)(simnet *))
{
    flare_tstamp t0 = flare_sim_now(w->sim), end = t0 + limit, done_at = 0;
    for (flare_tstamp now = t0; now < end; now = flare_sim_now(w->sim)) {
        if (!done_at && done(w))
            done_at = now;
        if (done_at && now >= done_at + PHASE_GRACE && now >= t0 + min)
            break;
        flare_sim_run_for(w->sim, end - now < CHECK_STEP ? end - now : CHECK_STEP);
    }
}

int simnet_join(simnet *w)
{
    int nodes = w->cfg.nodes;
    int every = nodes / 10 > 100 ? nodes / 10 : 100;
    /* Joins spread over the first half of the join time. */
    flare_tstamp step = (flare_tstamp)(w->cfg.join_s / 2 * 1e9) / (flare_tstamp)nodes;
    for (int i = 0; i < nodes; i++) {
        int rv = simnet_add_node(w, i >= w->npub);
        if (rv < 0) {
            if (w->progress)
                fprintf(w->progress, "node %d: %s\n", i, flare_strerror(rv));
            return rv;
        }
        flare_sim_run_for(w->sim, step);
        if ((i + 1) % every == 0 || i + 1 == nodes)
            say(w, "joined %d of %d nodes", i + 1, nodes);
    }
    run_until(w, (flare_tstamp)(w->cfg.join_s / 2 * 1e9), SETTLE_MIN, all_reserved);
    int with_relay = 0, reachable = 0, unready = 0;
    unsigned long long refused = 0;
    double ready_max = 0;
    for (int i = 0; i < w->nn; i++) {
        simnet_node *n = &w->n[i];
        flare_rcmgr_usage u;
        if (n->h && flare_host_rcmgr_stat(n->h, &(flare_rcmgr_scope){FLARE_RCMGR_SYSTEM}, &u) == 0)
            refused += u.refused_conns;
        if (i > 0 && !n->ready)
            unready++;
        else if (i > 0 && (double)(n->ready - n->added) / 1e9 > ready_max)
            ready_max = (double)(n->ready - n->added) / 1e9;
    }
    for (int i = w->npub; i < w->nn; i++) {
        with_relay += w->n[i].rsv_ok > 0;
        reachable += flare_host_reachability(w->n[i].h, 4) == FLARE_REACH_PUBLIC;
    }
    say(w,
        "join done: %d of %d private nodes hold a reservation, %d found themselves reachable; "
        "DHT ready within %.1f s of joining (%d not yet); %llu connections refused at the limits",
        with_relay, w->nn - w->npub, reachable, ready_max, unready, refused);
    return 0;
}

/* ---- pairs ------------------------------------------------------------------------ */

static double pct(double *v, int n, double p);

typedef struct find_ctx {
    simnet *w;
    int pi;
} find_ctx;

/* ---- diagnosis of lookups by ID that fail (SIMNET_DIAG=1) --------------------------- */

#define DIAG_K 20

/* Live DHT servers, closest to key first: their node indexes into out (cap). */
static int diag_closest(simnet *w, const flare__kad_key *key, int *out, int cap)
{
    int n = 0;
    for (int i = 0; i < w->nn; i++) {
        kad_t *k = w->n[i].h ? kad_get(w->n[i].h) : NULL;
        if (!k || !k->server)
            continue;
        flare__kad_key ki;
        flare__kad_key_of_peer(&ki, &w->n[i].h->id);
        int j = n < cap ? n++ : cap;
        if (j == cap) {
            flare__kad_key kl;
            flare__kad_key_of_peer(&kl, &w->n[out[cap - 1]].h->id);
            if (flare__kad_dist_cmp(key, &ki, &kl) >= 0)
                continue;
            j = cap - 1;
        }
        while (j > 0) {
            flare__kad_key kp;
            flare__kad_key_of_peer(&kp, &w->n[out[j - 1]].h->id);
            if (flare__kad_dist_cmp(key, &kp, &ki) <= 0)
                break;
            out[j] = out[j - 1];
            j--;
        }
        out[j] = i;
    }
    return n;
}

static int diag_knows(simnet *w, int server, const flare_peerid *target)
{
    flare_multiaddr tmp[1];
    flare_host *h = w->n[server].h;
    return flare__peerstore_addrs(h->peerstore, target, flare_io_now(h->io), tmp, 1) > 0;
}

static int diag_index_of(simnet *w, const flare_peerid *id)
{
    for (int i = 0; i < w->nn; i++)
        if (w->n[i].h && flare_peerid_equal(&w->n[i].h->id, id))
            return i;
    return -1;
}

/* One line per failed lookup: how many of the 20 servers closest to the
 * target know addresses of it (and hold a connection to it), how many of
 * the lookup's candidates did, and how far the lookup got among them. */
static void diag_failed(simnet *w, flare_host *h, int pi, int status)
{
    simnet_pair *pr = &w->p[pi];
    const flare_peerid *target = &w->n[pr->b].h->id;
    flare__kad_key key;
    flare__kad_key_of_peer(&key, target);
    int g[DIAG_K], ng = diag_closest(w, &key, g, DIAG_K), know = 0, conn = 0, g_ok = 0;
    kad_query *q = kad_get(h)->queries;
    while (q && !(q->kind == Q_FIND_PEER && flare_peerid_equal(&q->target, target)))
        q = q->next;
    for (int i = 0; i < ng; i++) {
        know += diag_knows(w, g[i], target);
        conn += flare_host_conn_to(w->n[g[i]].h, target) != NULL;
        for (size_t c = 0; q && c < q->l.n; c++)
            g_ok += q->l.c[c].state == FLARE__KAD_C_OK &&
                    flare_peerid_equal(&q->l.c[c].id, &w->n[g[i]].h->id);
    }
    /* Candidates the lookup heard from, and those of them that know the target. */
    int ok = 0, ok_know = 0, cands = q ? (int)q->l.n : -1, cpl_best = -1;
    for (size_t c = 0; q && c < q->l.n; c++) {
        if (q->l.c[c].state != FLARE__KAD_C_OK)
            continue;
        ok++;
        int idx = diag_index_of(w, &q->l.c[c].id);
        if (idx >= 0 && diag_knows(w, idx, target))
            ok_know++;
        int cpl = flare__kad_cpl(&key, &q->l.c[c].key);
        if (cpl > cpl_best)
            cpl_best = cpl;
    }
    /* What the closest server that answered would answer now. */
    int learnt = 0, best_rt = -1, best_rt_cpl = -1;
    for (size_t c = 0; q && c < q->l.n; c++)
        learnt += q->l.c[c].hop > 0;
    for (size_t c = 0; q && c < q->l.n && best_rt < 0; c++) {
        int idx = q->l.c[c].state == FLARE__KAD_C_OK ? diag_index_of(w, &q->l.c[c].id) : -1;
        if (idx < 0 || !kad_get(w->n[idx].h))
            continue;
        kad_t *kb = kad_get(w->n[idx].h);
        flare_peerid ids[DIAG_K];
        size_t nb = flare__kad_rt_closest(&kb->rt, &key, ids, DIAG_K);
        best_rt = (int)kb->rt.size;
        for (size_t j = 0; j < nb; j++) {
            flare__kad_key kj;
            flare__kad_key_of_peer(&kj, &ids[j]);
            if (flare__kad_cpl(&key, &kj) > best_rt_cpl)
                best_rt_cpl = flare__kad_cpl(&key, &kj);
        }
    }
    fprintf(w->progress,
            "diag: pair %d: finder table %zu peers (server %d), %d candidates learnt from answers; "
            "the closest that answered: table %d, its closest to the target now at cpl %d\n",
            pi, kad_get(h)->rt.size, kad_get(h)->server, learnt, best_rt, best_rt_cpl);
    int all_know = 0;
    for (int i = 0; i < w->nn; i++)
        if (i != pr->b && w->n[i].h && kad_get(w->n[i].h) && kad_get(w->n[i].h)->server &&
            diag_knows(w, i, target))
            all_know++;
    flare__kad_key k0;
    flare__kad_key_of_peer(&k0, &w->n[g[0]].h->id);
    fprintf(w->progress,
            "diag: pair %d lookup failed (%s) after %.1f s: of the %d servers closest to the "
            "target %d know its addresses, %d are connected to it, the lookup heard from %d of "
            "them; %d servers in all know it; the lookup: %d candidates, %d answered (%d of "
            "them knew it), best cpl %d (closest server's cpl %d)\n",
            pi, flare_strerror(status), (double)(flare_io_now(h->io) - pr->start) / 1e9, ng, know,
            conn, g_ok, all_know, cands, ok, ok_know, cpl_best, flare__kad_cpl(&key, &k0));
    w->diag_failed++;
    w->diag_none_near += know == 0;
    w->diag_near_not_asked += know > 0 && g_ok == 0;
}

/* The dial by peer ID ended: it failed, or went direct (no punch follows). */
static void on_dialed(flare_host *h, flare_conn *c, int status, void *user)
{
    find_ctx *fc = user;
    (void)h;
    if (status || (c && !flare_conn_is_limited(c)))
        fc->w->p[fc->pi].over = 1;
}

static int pairs_over(simnet *w)
{
    for (int k = 0; k < w->np; k++) {
        const simnet_pair *pr = &w->p[k];
        if (!pr->failed && !pr->over && !w->n[pr->a].punch_over && !w->n[pr->b].punch_over)
            return 0;
    }
    return 1;
}

static void on_found(flare_host *h, int status, const flare_kad_peer *p, size_t n, void *user)
{
    find_ctx *fc = user;
    simnet_pair *pr = &fc->w->p[fc->pi];
    (void)p;
    (void)n;
    if (status) {
        pr->failed = 1;
        if (fc->w->diag && fc->w->progress)
            diag_failed(fc->w, h, fc->pi, status);
        return;
    }
    pr->found = 1;
    if (flare_host_connect(h, flare_host_peerid(fc->w->n[pr->b].h), NULL, on_dialed, fc) == 0)
        pr->connected = 1;
    else
        pr->over = 1;
}

/* How evenly the partitions' work spread over the windows and threads. */
static void par_report(simnet *w)
{
    unsigned n = flare_sim_partitions(w->sim);
    if (n < 2 || !w->progress)
        return;
    flare_sim_par_stats st;
    flare_sim_par_stats_get(w->sim, &st);
    char per[FLARE_SIM_MAX_PARTITIONS * 24] = "";
    size_t at = 0;
    for (unsigned k = 0; k < n && at < sizeof(per); k++)
        at += (size_t)snprintf(per + at, sizeof(per) - at, "%s%.1f", k ? " " : "",
                               st.events ? 100.0 * (double)st.part_events[k] / (double)st.events
                                         : 0.0);
    say(w,
        "partitions: %u, %llu windows (%llu with two or more busy); events per partition %%: %s; "
        "critical path %llu events of %llu with a thread per partition, %llu with %d threads "
        "(at best %.2fx)",
        n, (unsigned long long)st.windows, (unsigned long long)st.busy_windows, per,
        (unsigned long long)st.events_crit, (unsigned long long)st.events,
        (unsigned long long)st.events_crit_threads, w->cfg.threads,
        st.events_crit_threads ? (double)st.events / (double)st.events_crit_threads : 0.0);
    at = 0;
    for (unsigned k = 0; k < n && at < sizeof(per) && st.cpu_ns; k++)
        at += (size_t)snprintf(per + at, sizeof(per) - at, "%s%.1f", k ? " " : "",
                               100.0 * (double)st.part_cpu_ns[k] / (double)st.cpu_ns);
    if (st.cpu_ns)
        say(w, "partitions' CPU %%: %s", per);
    if (st.cpu_ns)
        say(w,
            "partitions' CPU: %.2f s in all, critical path %.2f s with %d threads (%.2fx; "
            "dealing whole partitions at best %.2f s, %.2fx), %.2f s between the windows' "
            "work on the main thread",
            (double)st.cpu_ns / 1e9, (double)st.cpu_crit_ns / 1e9, w->cfg.threads,
            st.cpu_crit_ns ? (double)st.cpu_ns / (double)st.cpu_crit_ns : 0.0,
            (double)st.cpu_floor_ns / 1e9,
            st.cpu_floor_ns ? (double)st.cpu_ns / (double)st.cpu_floor_ns : 0.0,
            (double)st.cpu_serial_ns / 1e9);
    if (st.cpu_ns)
        say(w,
            "partitions' wall: threads started %.3f s after the windows' starts in all, "
            "the main thread waited %.3f s for them",
            (double)st.lag_ns / 1e9, (double)st.wait_ns / 1e9);
}

int simnet_dial_pairs(simnet *w)
{
    int *cand = calloc((size_t)w->nn + 1, sizeof(int)), nc = 0;
    if (!cand)
        return FLARE_ERR_NOMEM;
    for (int i = 0; i < w->nn; i++)
        if (w->n[i].priv && w->n[i].h && w->n[i].rsv_ok)
            cand[nc++] = i;
    for (int i = nc - 1; i > 0; i--) {
        int j = (int)(flare_prng_next(&w->rng) % (uint64_t)(i + 1)), t = cand[i];
        cand[i] = cand[j];
        cand[j] = t;
    }
    w->np = w->cfg.pairs < nc / 2 ? w->cfg.pairs : nc / 2;
    free(w->p);
    w->p = calloc((size_t)w->np + 1, sizeof(*w->p));
    free(w->fc);
    find_ctx *fc = w->fc = calloc((size_t)w->np + 1, sizeof(*fc));
    if (!w->p || !fc) {
        free(cand);
        return FLARE_ERR_NOMEM;
    }
    flare_tstamp start = flare_sim_now(w->sim);
    for (int k = 0; k < w->np; k++) {
        simnet_pair *pr = &w->p[k];
        pr->a = cand[2 * k];
        pr->b = cand[2 * k + 1];
        pr->start = start;
        w->n[pr->a].pair = w->n[pr->b].pair = k;
        fc[k] = (find_ctx){w, k};
        if (flare_kad_find_peer(w->n[pr->a].h, flare_host_peerid(w->n[pr->b].h), on_found, &fc[k]))
            pr->failed = 1;
    }
    say(w, "%d pairs of private nodes dial each other by peer ID", w->np);
    run_until(w, (flare_tstamp)(w->cfg.dial_s * 1e9), 0, pairs_over);
    int direct = 0;
    for (int k = 0; k < w->np; k++)
        direct += w->n[w->p[k].a].punched || w->n[w->p[k].b].punched;
    say(w, "dials done: %d of %d pairs direct", direct, w->np);
    if (w->diag && w->progress) {
        int unanswered = 0;
        for (int k = 0; k < w->np; k++)
            unanswered += !w->p[k].found && !w->p[k].failed;
        double *sz = calloc((size_t)w->nn + 1, sizeof(double));
        int nsz = 0;
        for (int i = 0; sz && i < w->nn; i++)
            if (w->n[i].h && kad_get(w->n[i].h) && kad_get(w->n[i].h)->server)
                sz[nsz++] = (double)kad_get(w->n[i].h)->rt.size;
        if (sz)
            say(w, "diag: %d servers' tables: p10 %.0f p50 %.0f p90 %.0f peers", nsz,
                pct(sz, nsz, 0.1), pct(sz, nsz, 0.5), pct(sz, nsz, 0.9));
        free(sz);
        say(w,
            "diag: %d lookups failed: %d with none of the 20 closest servers knowing the "
            "target, %d the lookup never heard from those that do; %d never answered",
            w->diag_failed, w->diag_none_near, w->diag_near_not_asked, unanswered);
    }
    flare_sig_cache_stats st;
    flare_sig_cache_stats_get(w->sigc, &st);
    say(w, "signatures: %llu verified, %llu verifications skipped (cache of %zu, %llu evicted)",
        (unsigned long long)st.misses, (unsigned long long)st.hits, st.capacity,
        (unsigned long long)st.evicted);
    par_report(w);
    free(cand);
    return 0;
}

/* ---- summary ---------------------------------------------------------------------- */

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
    return v[(int)(p * (n - 1) + 0.5)];
}

static const char *bname(flare_sim_nat_behavior b)
{
    return b == FLARE_SIM_EI ? "EI" : b == FLARE_SIM_AD ? "AD" : "APD";
}

/* per_pairing: {"EI-APD/APD-APD":[direct,pairs], ...}, one key per pair of
 * NAT kinds (mapping-filtering of each side, in mix order). */
static void per_pairing(simnet *w, simnet_summary *s, const int *cells)
{
    const simnet_mix *mix = w->cfg.mix;
    int nmix = w->cfg.nmix;
    size_t o = 0, cap = sizeof(s->per_pairing);
    o += (size_t)snprintf(s->per_pairing, cap, "{");
    for (int x = 0; x < nmix; x++)
        for (int y = x; y < nmix; y++) {
            const int *c = &cells[(x * SIMNET_MAX_MIX + y) * 2];
            if (!c[0] || o >= cap)
                continue;
            o += (size_t)snprintf(s->per_pairing + o, cap - o, "%s\"%s-%s/%s-%s\":[%d,%d]",
                                  o > 1 ? "," : "", bname(mix[x].mapping), bname(mix[x].filtering),
                                  bname(mix[y].mapping), bname(mix[y].filtering), c[1], c[0]);
        }
    if (o < cap)
        snprintf(s->per_pairing + o, cap - o, "}");
}

void simnet_summarize(simnet *w, simnet_summary *s)
{
    memset(s, 0, sizeof(*s));
    int *cells = calloc(SIMNET_MAX_MIX * SIMNET_MAX_MIX * 2, sizeof(int));
    double *ms = calloc((size_t)w->np + 1, sizeof(double));
    double *hops = calloc((size_t)w->nn + 1, sizeof(double));
    int nms = 0, nh = 0;
    for (int i = 0; i < w->nn; i++) {
        simnet_node *n = &w->n[i];
        if (!n->h)
            continue;
        s->nodes++;
        if (!n->priv) {
            s->public_nodes++;
        } else {
            s->private_nodes++;
            s->private_with_relay += n->rsv_ok > 0;
            s->private_reachable += flare_host_reachability(n->h, 4) == FLARE_REACH_PUBLIC;
        }
        if (n->relay) {
            size_t r = flare_host_relay_num_reservations(n->h);
            s->relays++;
            s->relay_reservations_mean += (double)r;
            if (r > s->relay_reservations_max)
                s->relay_reservations_max = r;
        }
        kad_t *k = kad_get(n->h);
        if (k && k->lookups && hops)
            hops[nh++] = (double)k->lookup_hops / (double)k->lookups;
    }
    if (s->relays)
        s->relay_reservations_mean /= (double)s->relays;
    for (int k = 0; k < w->np && cells && ms; k++) {
        simnet_pair *pr = &w->p[k];
        simnet_node *a = &w->n[pr->a], *b = &w->n[pr->b];
        flare_tstamp t = a->punched && b->punched
                             ? (a->punched < b->punched ? a->punched : b->punched)
                             : (a->punched ? a->punched : b->punched);
        s->pairs++;
        s->found += pr->found;
        if (t) {
            s->direct++;
            ms[nms++] = (double)(t - pr->start) / 1e6;
        }
        int x = a->mix < b->mix ? a->mix : b->mix, y = a->mix < b->mix ? b->mix : a->mix;
        cells[(x * SIMNET_MAX_MIX + y) * 2]++;
        cells[(x * SIMNET_MAX_MIX + y) * 2 + 1] += t != 0;
    }
    s->direct_rate = s->pairs ? (double)s->direct / s->pairs : 0.0;
    s->ms_to_direct_p50 = pct(ms, nms, 0.5);
    s->ms_to_direct_p90 = pct(ms, nms, 0.9);
    s->lookup_hops_p50 = hops ? pct(hops, nh, 0.5) : 0;
    s->wall_s = wall() - w->t0;
    s->sim_s = (double)flare_sim_now(w->sim) / 1e9;
    count_sample(&w->count);
    s->bytes_per_node = w->nn ? w->count.peak / (size_t)w->nn : 0;
    if (cells)
        per_pairing(w, s, cells);
    else
        snprintf(s->per_pairing, sizeof(s->per_pairing), "{}");
    free(cells);
    free(ms);
    free(hops);
}

int simnet_summary_json(const simnet_summary *s, uint64_t seed, double ts, char *out, size_t cap)
{
    char tsf[48] = "";
    if (ts >= 0)
        snprintf(tsf, sizeof(tsf), "\"ts\":%.6f,", ts);
    return snprintf(
        out, cap,
        "{\"event\":\"sim_summary\",%s\"nodes\":%d,\"seed\":%llu,\"public\":%d,\"private\":%d,"
        "\"private_with_relay\":%d,\"private_reachable\":%d,\"pairs\":%d,\"found\":%d,"
        "\"direct\":%d,\"wall_s\":%.2f,\"sim_s\":%.1f,\"direct_rate\":%.3f,\"per_pairing\":%s,"
        "\"ms_to_direct_p50\":%.0f,\"ms_to_direct_p90\":%.0f,\"relays\":%zu,"
        "\"relay_reservations_max\":%zu,\"relay_reservations_mean\":%.2f,"
        "\"lookup_hops_p50\":%.2f,\"bytes_per_node\":%zu}",
        tsf, s->nodes, (unsigned long long)seed, s->public_nodes, s->private_nodes,
        s->private_with_relay, s->private_reachable, s->pairs, s->found, s->direct, s->wall_s,
        s->sim_s, s->direct_rate, s->per_pairing, s->ms_to_direct_p50, s->ms_to_direct_p90,
        s->relays, s->relay_reservations_max, s->relay_reservations_mean, s->lookup_hops_p50,
        s->bytes_per_node);
}

void simnet_free(simnet *w)
{
    for (int i = 0; i < w->nn; i++)
        if (w->n[i].h)
            flare_host_del(w->n[i].h);
    if (w->sim)
        flare_sim_del(w->sim);
    flare_sig_cache_del(w->sigc); /* after the hosts that use it */
    free(w->n);
    free(w->p);
    free(w->fc);                    /* after the hosts: a lookup still running may call back */
    simnet_slab_del(w->count.slab); /* last: every block of w->mem goes with it */
    memset(w, 0, sizeof(*w));
}

int simnet_run(const simnet_config *c, FILE *progress, simnet_summary *s)
{
    simnet *w = calloc(1, sizeof(*w));
    if (!w)
        return FLARE_ERR_NOMEM;
    int rv = simnet_init(w, c, progress);
    if (!rv)
        rv = simnet_join(w);
    if (!rv)
        rv = simnet_dial_pairs(w);
    if (!rv)
        simnet_summarize(w, s);
    if (rv || !c->keep_world) {
        simnet_free(w);
        free(w);
    }
    return rv;
}
