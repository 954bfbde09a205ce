/* Partitioned simulation: conservative parallel discrete-event simulation
 * over the shards of one flare_sim (docs/ARCHITECTURE.md, "Parallel runs").
 *
 * Every node belongs to one shard: NAT boxes to the root (shard 0), a host
 * to the least loaded shard. A shard's thread runs only its own
 * nodes' events, so a host, its sockets and timers, and a NAT's table are touched
 * by one thread at a time. Nodes of different shards meet only on LANs: a
 * packet a node puts on its link whose next hop on the LAN is a node of
 * another shard skips the LAN-arrival event and goes, with its uplink and
 * downlink delay both applied, to that shard's inbox. The smallest such
 * delay over every LAN holding nodes of two shards is the lookahead L: no
 * shard can affect another sooner. Time then advances in windows [T, T + L)
 * from the earliest pending event T; within a window the shards run in
 * parallel (the threads take them one at a time, those with the most
 * events due first), at its end the inboxes are merged into the queues in a fixed
 * order (target, source shard, posting order). A run thus depends on the
 * number of shards, never on thread timing. Without lookahead (a
 * zero-delay or rate-limited link between shards) or with a trace callback,
 * the shards run serially, in (time, shard) order. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/mem.h"
#include "io/sim_internal.h"

typedef struct sim_pool sim_pool;

typedef struct sim_worker {
    sim_pool *pool;
    unsigned tid;    /* 1.. (the caller's thread is 0) */
    uint64_t lag_ns; /* profiling: from the windows' starts to this worker's */
} sim_worker;

struct sim_pool {
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    /* Window number: workers start when it changes. They spin a while
     * before sleeping, and so does the caller's thread waiting for them:
     * a window's work is a few ms, and waking a sleeping thread costs a
     * good part of that. The sleepers and waiting counts (changed under mu,
     * read by the other side after its own change) say who needs a signal. */
    atomic_uint_fast64_t gen;
    atomic_uint pending; /* workers still running the window */
    atomic_uint sleepers;
    atomic_uint waiting;
    atomic_int quit;
    flare_sim *root;
    atomic_uint next; /* the next shard to take in this window */
    uint64_t go_ns;   /* profiling: when this window started */
    pthread_t *th;
    unsigned nth;
    sim_worker wk[FLARE__SIM_MAX_SHARDS];
};

/* --- setup ------------------------------------------------------------------ */

static flare_sim *shard_new(flare_sim *root, unsigned k)
{
    flare_sim *s = flare__calloc(root->mem, 1, sizeof(*s));
    if (!s)
        return NULL;
    s->mem = root->mem;
    flare__sim_queue_init(s);
    s->root = root;
    s->shard = k;
    s->seed = root->seed;
    s->now = root->now;
    s->hash = root->hash;
    s->syn_timeout = root->syn_timeout;
    s->trace = root->trace;
    s->trace_user = root->trace_user;
    /* Each shard's links draw from a stream of their own. */
    flare_prng_seed(&s->prng, root->seed ^ 0x6c696e6b73ULL ^ ((uint64_t)k * 0x9e3779b97f4a7c15ULL));
    return s;
}

int flare_sim_set_partitions(flare_sim *sim, unsigned n, unsigned threads)
{
    if (threads == 0)
        threads = n;
    if (sim->root != sim || n == 0 || n > FLARE__SIM_MAX_SHARDS || threads > n || sim->par ||
        sim->n_nodes || flare__sim_q_len(&sim->q))
        return FLARE_ERR_INVALID_ARG;
    if (n == 1)
        return 0;
    sim_par *par = flare__calloc(sim->mem, 1, sizeof(*par));
    if (!par)
        return FLARE_ERR_NOMEM;
    par->n = n;
    par->threads = threads;
    par->full = 1;
    par->shards = flare__calloc(sim->mem, n, sizeof(*par->shards));
    par->out = flare__calloc(sim->mem, (size_t)n * n, sizeof(*par->out));
    if (!par->shards || !par->out) {
        flare__free(sim->mem, par->shards);
        flare__free(sim->mem, par->out);
        flare__free(sim->mem, par);
        return FLARE_ERR_NOMEM;
    }
    par->shards[0] = sim;
    for (unsigned k = 0; k < n; k++)
        par->order[k] = k;
    for (unsigned k = 1; k < n; k++) {
        if (!(par->shards[k] = shard_new(sim, k))) {
            for (unsigned j = 1; j < k; j++)
                flare__free(sim->mem, par->shards[j]);
            flare__free(sim->mem, par->shards);
            flare__free(sim->mem, par->out);
            flare__free(sim->mem, par);
            return FLARE_ERR_NOMEM;
        }
    }
    sim->par = par;
    return 0;
}

unsigned flare_sim_partitions(const flare_sim *sim)
{
    return sim->root->par ? sim->root->par->n : 1;
}

void flare_sim_set_window_cb(flare_sim *sim, flare_sim_window_cb cb, void *user)
{
    if (!sim->root->par)
        return;
    sim->root->par->window_cb = cb;
    sim->root->par->window_user = user;
}

/* A new host goes to the least loaded shard, ties to the lowest, a NAT
 * (all in the root) counting as half a host: in flare sim a NAT's packets
 * cost about half of what its host's events do, so the shards' work stays
 * about even whatever the share of hosts behind NATs. */
flare_sim *flare__sim_shard_for_host(flare_sim *root, size_t i)
{
    sim_par *par = root->par;
    if (!par)
        return root;
    size_t hosts = 0, best = 0;
    for (unsigned k = 0; k < par->n; k++)
        hosts += par->hosts[k];
    /* Loads in half hosts. */
    size_t best_load = 2 * par->hosts[0] + (i - hosts);
    for (unsigned k = 1; k < par->n; k++)
        if (2 * par->hosts[k] < best_load) {
            best_load = 2 * par->hosts[k];
            best = k;
        }
    par->hosts[best]++;
    return par->shards[best];
}

void flare__sim_par_iface_new(flare_sim *sim, sim_iface *ifc)
{
    sim_par *par = sim->root->par;
    if (!par)
        return;
    if (par->npend == par->pend_cap) {
        size_t cap = par->pend_cap ? par->pend_cap * 2 : 64;
        sim_iface **a = flare__realloc(sim->mem, par->pend, cap * sizeof(*a));
        if (!a) {
            par->full = 1;
            return;
        }
        par->pend = a;
        par->pend_cap = cap;
    }
    par->pend[par->npend++] = ifc;
    ifc->la_pending = 1;
}

void flare__sim_par_link_changed(flare_sim *sim, const sim_node *node)
{
    sim_par *par = sim->root->par;
    if (!par)
        return;
    /* A link counted already may have grown slower: start over. */
    for (size_t i = 0; i < node->n_ifaces; i++)
        if (!node->ifaces[i]->la_pending)
            par->full = 1;
}

static void pool_stop(sim_pool *pool, const flare_mem *mem)
{
    pthread_mutex_lock(&pool->mu);
    atomic_store(&pool->quit, 1);
    pthread_cond_broadcast(&pool->go);
    pthread_mutex_unlock(&pool->mu);
    for (unsigned i = 0; i < pool->nth; i++)
        pthread_join(pool->th[i], NULL);
    pthread_mutex_destroy(&pool->mu);
    pthread_cond_destroy(&pool->go);
    pthread_cond_destroy(&pool->done);
    flare__free(mem, pool->th);
    flare__free(mem, pool);
}

void flare__sim_par_free(flare_sim *root)
{
    sim_par *par = root->par;
    if (!par)
        return;
    if (par->pool)
        pool_stop(par->pool, root->mem);
    for (size_t i = 0; i < (size_t)par->n * par->n; i++) {
        for (size_t j = 0; j < par->out[i].n; j++)
            flare__free(root->mem, par->out[i].m[j].p);
        flare__free(root->mem, par->out[i].m);
    }
    for (unsigned k = 1; k < par->n; k++) {
        flare__sim_q_free(&par->shards[k]->q);
        flare__free(root->mem, par->shards[k]);
    }
    flare__free(root->mem, par->shards);
    flare__free(root->mem, par->out);
    flare__free(root->mem, par->mind);
    flare__free(root->mem, par->rated);
    flare__free(root->mem, par->pend);
    flare__free(root->mem, par);
    root->par = NULL;
}

/* --- lookahead ---------------------------------------------------------------- */

/* The per-(LAN, shard) arrays cover every LAN id; 0 or FLARE_ERR_NOMEM. */
static int la_grow(flare_sim *root)
{
    sim_par *par = root->par;
    size_t want = root->n_lans + 1, n = par->n;
    if (want <= par->mind_lans)
        return 0;
    size_t cap = par->mind_lans ? par->mind_lans : 64;
    while (cap < want)
        cap *= 2;
    flare_tstamp *m = flare__realloc(root->mem, par->mind, cap * n * sizeof(*m));
    if (!m)
        return FLARE_ERR_NOMEM;
    par->mind = m;
    uint8_t *r = flare__realloc(root->mem, par->rated, cap * n);
    if (!r)
        return FLARE_ERR_NOMEM;
    par->rated = r;
    for (size_t i = par->mind_lans * n; i < cap * n; i++) {
        m[i] = FLARE_TSTAMP_NEVER;
        r[i] = 0;
    }
    par->mind_lans = cap;
    return 0;
}

static void la_count(sim_par *par, const sim_iface *ifc)
{
    size_t at = (size_t)ifc->lan->id * par->n + ifc->shard;
    if (ifc->link.delay < par->mind[at])
        par->mind[at] = ifc->link.delay;
    par->rated[at] |= ifc->link.rate != 0;
}

/* Lowers the lookahead to what LAN id allows between its shards. */
static void la_lan(sim_par *par, size_t lan)
{
    const flare_tstamp *m = &par->mind[lan * par->n];
    size_t present = 0, with_rate = 0;
    for (size_t k = 0; k < par->n; k++) {
        present += m[k] != FLARE_TSTAMP_NEVER;
        with_rate += par->rated[lan * par->n + k];
    }
    if (present < 2)
        return;
    if (with_rate)
        par->lookahead = 0;
    for (size_t k = 0; k < par->n; k++)
        for (size_t j = k + 1; j < par->n; j++)
            if (m[k] != FLARE_TSTAMP_NEVER && m[j] != FLARE_TSTAMP_NEVER &&
                m[k] + m[j] < par->lookahead)
                par->lookahead = m[k] + m[j];
}

/* The smallest uplink + downlink delay between interfaces of different
 * shards on one LAN; 0 when a link between shards is rate-limited (its
 * transmitter queue would be shared); FLARE_TSTAMP_NEVER when no LAN joins
 * two shards. Interfaces added since the last call are counted in;
 * a link changed after it was counted makes it start over. */
flare_tstamp flare_sim_lookahead(flare_sim *sim)
{
    flare_sim *root = sim->root;
    sim_par *par = root->par;
    if (!par)
        return FLARE_TSTAMP_NEVER;
    if (!par->full && !par->npend)
        return par->lookahead;
    if (la_grow(root) < 0) {
        par->lookahead = 0; /* run serially */
        return 0;
    }
    if (par->full) {
        for (size_t i = 0; i < par->mind_lans * par->n; i++) {
            par->mind[i] = FLARE_TSTAMP_NEVER;
            par->rated[i] = 0;
        }
        for (size_t i = 0; i < root->n_nodes; i++)
            for (size_t j = 0; j < root->nodes[i]->n_ifaces; j++)
                la_count(par, root->nodes[i]->ifaces[j]);
        par->lookahead = FLARE_TSTAMP_NEVER;
        for (size_t lan = 1; lan <= root->n_lans; lan++)
            la_lan(par, lan);
    } else {
        for (size_t i = 0; i < par->npend; i++)
            la_count(par, par->pend[i]);
        for (size_t i = 0; i < par->npend; i++)
            la_lan(par, par->pend[i]->lan->id);
    }
    for (size_t i = 0; i < par->npend; i++)
        par->pend[i]->la_pending = 0;
    par->npend = 0;
    par->full = 0;
    return par->lookahead;
}

/* --- packets between shards ----------------------------------------------------- */

static void outbox_push(flare_sim *sim, unsigned to, flare_tstamp t, sim_pkt *p)
{
    sim_par *par = sim->root->par;
    sim_outbox *o = &par->out[(size_t)sim->shard * par->n + to];
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 256;
        sim_msg *m = flare__realloc(sim->mem, o->m, cap * sizeof(*m));
        if (!m) { /* out of memory: the packet is lost, as a failed schedule loses it */
            flare__free(sim->mem, p);
            return;
        }
        o->m = m;
        o->cap = cap;
    }
    o->m[o->n++] = (sim_msg){t, p};
}

/* The downlink to `to` of a packet on its LAN at time at_lan, computed by
 * the sending shard: loss and jitter from its own PRNG; the link has no
 * rate (else there is no lookahead) and so no transmitter state. */
static void post_down(flare_sim *sim, sim_iface *to, sim_pkt *p, flare_tstamp at_lan)
{
    const flare_sim_link *l = &to->link;
    const sim_name *who = &to->node->name;
    flare_tstamp extra = 0;
    while (l->loss > 0 && flare__sim_uniform(&sim->prng) < l->loss) {
        if (p->proto != SIM_TCP || (p->flags & FLARE_SIM_SYN) || extra > 60 * FLARE_NS_PER_S) {
            flare__sim_trace(sim, who, FLARE_SIM_DROP_LOSS, p);
            flare__free(sim->mem, p);
            return;
        }
        flare__sim_trace(sim, who, FLARE_SIM_RETRANSMITTED, p);
        extra += FLARE_SIM_RTO;
    }
    flare_tstamp t = at_lan + l->delay + extra;
    if (l->jitter)
        t += (flare_tstamp)(flare__sim_uniform(&sim->prng) * (double)(l->jitter + 1));
    /* Only a route that appeared while the packet was on the uplink lands
     * here with less than the lookahead left: it arrives at the window's end. */
    if (t < sim->win_end)
        t = sim->win_end;
    p->at_node = 1;
    p->iface = to;
    p->lan = to->lan;
    outbox_push(sim, to->shard, t, p);
}

void flare__sim_par_post(flare_sim *sim, sim_iface *to, sim_pkt *p, flare_tstamp t)
{
    post_down(sim, to, p, t);
}

void flare__sim_par_lan_cross(flare_sim *sim, sim_iface *to, sim_pkt *p)
{
    if (sim->win_end) {
        post_down(sim, to, p, sim->now);
        return;
    }
    /* Serial: the target shard's clock is this one's. */
    flare__sim_link_send(sim->root->par->shards[to->shard], to, 1, p);
}

/* --- serial run ---------------------------------------------------------------- */

static flare_sim *earliest(flare_sim *root)
{
    sim_par *par = root->par;
    flare_sim *best = NULL;
    flare_tstamp best_top = FLARE_TSTAMP_NEVER;
    for (unsigned k = 0; k < par->n; k++) {
        flare_sim *s = par->shards[k];
        flare_tstamp top = flare__sim_q_top(&s->q);
        if (flare__sim_q_len(&s->q) && (!best || top < best_top)) {
            best = s;
            best_top = top;
        }
    }
    return best;
}

int flare__sim_par_step(flare_sim *root)
{
    flare_sim *s = earliest(root);
    if (!s)
        return 0;
    for (unsigned k = 0; k < root->par->n; k++)
        root->par->shards[k]->now = s->q.heap[0].time;
    flare__sim_step_one(s);
    return 1;
}

/* --- parallel windows ------------------------------------------------------------ */

static void shard_run(flare_sim *s, flare_tstamp end)
{
    while (flare__sim_q_top(&s->q) < end)
        flare__sim_step_one(s);
}

static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts))
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Runs shard k's window on thread tid, noting the thread and its CPU time. */
static void shard_window(sim_par *par, unsigned k, unsigned tid)
{
    flare_sim *s = par->shards[k];
    uint64_t c0 = par->profile ? thread_cpu_ns() : 0;
    shard_run(s, s->win_end);
    par->win_cpu[k] = par->profile ? thread_cpu_ns() - c0 : 0;
    par->win_thr[k] = tid;
}

/* Takes shards until none is left: with fewer threads than shards the work
 * still spreads. */
static void take_shards(sim_pool *pool, unsigned tid)
{
    sim_par *par = pool->root->par;
    unsigned i;
    while ((i = atomic_fetch_add_explicit(&pool->next, 1, memory_order_relaxed)) < par->n)
        shard_window(par, par->order[i], tid);
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* How long a thread spins for the other side before it sleeps: longer than
 * the hand-over between two windows, so that a busy run seldom sleeps. It
 * yields while it spins, so that on a loaded machine it gives way. */
#define SPIN_NS 100000

/* Spins until *v differs from old or quit is set, for SPIN_NS at most;
 * returns whether it did. */
static int spin_change(sim_pool *pool, atomic_uint_fast64_t *v, uint64_t old)
{
    uint64_t t0 = mono_ns();
    for (;;) {
        if (atomic_load(v) != old || atomic_load_explicit(&pool->quit, memory_order_relaxed))
            return 1;
        if (mono_ns() - t0 > SPIN_NS)
            return 0;
        sched_yield();
    }
}

static void *worker(void *arg)
{
    sim_worker *wk = arg;
    sim_pool *pool = wk->pool;
    uint64_t seen = 0;
    for (;;) {
        if (!spin_change(pool, &pool->gen, seen)) {
            pthread_mutex_lock(&pool->mu);
            atomic_fetch_add(&pool->sleepers, 1);
            while (atomic_load(&pool->gen) == seen && !atomic_load(&pool->quit))
                pthread_cond_wait(&pool->go, &pool->mu);
            atomic_fetch_sub(&pool->sleepers, 1);
            pthread_mutex_unlock(&pool->mu);
        }
        if (atomic_load(&pool->quit))
            break;
        seen = atomic_load(&pool->gen);
        if (pool->root->par->profile)
            wk->lag_ns += mono_ns() - pool->go_ns;
        take_shards(pool, wk->tid);
        if (atomic_fetch_sub(&pool->pending, 1) == 1 && atomic_load(&pool->waiting)) {
            pthread_mutex_lock(&pool->mu);
            pthread_cond_signal(&pool->done);
            pthread_mutex_unlock(&pool->mu);
        }
    }
    return NULL;
}

/* Runs a window's shards on every thread. */
static void pool_window(sim_pool *pool)
{
    atomic_store_explicit(&pool->next, 0, memory_order_relaxed);
    atomic_store(&pool->pending, pool->nth);
    sim_par *par = pool->root->par;
    if (par->profile)
        pool->go_ns = mono_ns();
    atomic_fetch_add(&pool->gen, 1);
    if (atomic_load(&pool->sleepers)) {
        pthread_mutex_lock(&pool->mu);
        pthread_cond_broadcast(&pool->go);
        pthread_mutex_unlock(&pool->mu);
    }
    take_shards(pool, 0);
    uint64_t w0 = par->profile ? mono_ns() : 0, t0 = mono_ns();
    while (atomic_load(&pool->pending)) {
        if (mono_ns() - t0 <= SPIN_NS) {
            sched_yield();
            continue;
        }
        pthread_mutex_lock(&pool->mu);
        atomic_store(&pool->waiting, 1);
        while (atomic_load(&pool->pending))
            pthread_cond_wait(&pool->done, &pool->mu);
        atomic_store(&pool->waiting, 0);
        pthread_mutex_unlock(&pool->mu);
    }
    if (par->profile) {
        par->st.wait_ns += mono_ns() - w0;
        for (unsigned i = 0; i < pool->nth; i++) {
            par->st.lag_ns += pool->wk[i].lag_ns;
            pool->wk[i].lag_ns = 0;
        }
    }
}

static sim_pool *pool_start(flare_sim *root)
{
    sim_pool *pool = flare__calloc(root->mem, 1, sizeof(*pool));
    if (!pool)
        return NULL;
    pool->root = root;
    /* Sized by the partitions, not the threads, so that what the run holds
     * (which a counting allocator may report) is the same for any number
     * of threads. */
    pool->th = flare__calloc(root->mem, root->par->n, sizeof(*pool->th));
    if (!pool->th || pthread_mutex_init(&pool->mu, NULL)) {
        flare__free(root->mem, pool->th);
        flare__free(root->mem, pool);
        return NULL;
    }
    pthread_cond_init(&pool->go, NULL);
    pthread_cond_init(&pool->done, NULL);
    for (unsigned i = 0; i + 1 < root->par->threads; i++) {
        pool->wk[i] = (sim_worker){pool, i + 1, 0};
        if (pthread_create(&pool->th[i], NULL, worker, &pool->wk[i]))
            break;
        pool->nth++;
    }
    return pool;
}

/* Largest first: the threads take the shards with the most events due in
 * the window first, so that none is left with a big one at the end while
 * the others wait (the order changes which thread runs a shard, never
 * what it does). Ties in shard order. */
static void order_shards(sim_par *par, flare_tstamp end)
{
    size_t due[FLARE__SIM_MAX_SHARDS];
    for (unsigned k = 0; k < par->n; k++)
        due[k] = flare__sim_q_count_before(&par->shards[k]->q, end, 1u << 16);
    for (unsigned i = 0; i < par->n; i++) {
        unsigned k = i, j = i;
        for (; j > 0 && due[par->order[j - 1]] < due[k]; j--)
            par->order[j] = par->order[j - 1];
        par->order[j] = k;
    }
}

static void run_window(flare_sim *root, flare_tstamp end)
{
    sim_par *par = root->par;
    unsigned busy = 0;
    for (unsigned k = 0; k < par->n; k++) {
        flare_sim *s = par->shards[k];
        s->win_end = end;
        busy += flare__sim_q_top(&s->q) < end;
        par->win_ev0[k] = s->events;
    }
    if (busy > 1 && par->threads > 1 && !par->pool)
        par->pool = pool_start(root);
    sim_pool *pool = par->pool;
    if (busy <= 1 || !pool || !pool->nth) {
        /* One shard with work (or no threads): no need to wake anyone. */
        for (unsigned k = 0; k < par->n; k++)
            shard_window(par, k, 0);
    } else {
        order_shards(par, end);
        pool_window(pool);
    }
    for (unsigned k = 0; k < par->n; k++) {
        par->shards[k]->win_end = 0;
        par->win_ev[k] = par->shards[k]->events - par->win_ev0[k];
    }
}

/* The most a thread ran of w[] (by shard) when the shards go, in
 * par->order, to the thread with the least so far. */
static uint64_t dealt_max(const sim_par *par, const uint64_t *w)
{
    uint64_t load[FLARE__SIM_MAX_SHARDS] = {0}, most = 0;
    unsigned nt = par->threads ? par->threads : 1;
    for (unsigned i = 0; i < par->n; i++) {
        unsigned k = par->order[i], t = 0;
        if (!w[k])
            continue;
        for (unsigned j = 1; j < nt; j++)
            if (load[j] < load[t])
                t = j;
        load[t] += w[k];
        if (load[t] > most)
            most = load[t];
    }
    return most;
}

/* Adds the window just run to the statistics. */
static void account(sim_par *par)
{
    flare_sim_par_stats *st = &par->st;
    uint64_t most = 0, cpu_thr[FLARE__SIM_MAX_SHARDS] = {0}, cpu_most = 0, cpu_part = 0;
    uint64_t cpu_all = 0;
    unsigned busy = 0;
    st->windows++;
    for (unsigned k = 0; k < par->n; k++) {
        uint64_t e = par->win_ev[k];
        busy += e > 0;
        st->events += e;
        st->part_events[k] += e;
        if (e > most)
            most = e;
        st->cpu_ns += par->win_cpu[k];
        st->part_cpu_ns[k] += par->win_cpu[k];
        cpu_thr[par->win_thr[k]] += par->win_cpu[k];
        cpu_all += par->win_cpu[k];
        if (par->win_cpu[k] > cpu_part)
            cpu_part = par->win_cpu[k];
    }
    uint64_t even = cpu_all / (par->threads ? par->threads : 1);
    st->cpu_floor_ns += cpu_part > even ? cpu_part : even;
    for (unsigned t = 0; t < par->n; t++)
        if (cpu_thr[t] > cpu_most)
            cpu_most = cpu_thr[t];
    st->busy_windows += busy > 1;
    st->events_crit += most;
    st->events_crit_threads += dealt_max(par, par->win_ev);
    st->cpu_crit_ns += cpu_most;
}

void flare_sim_par_stats_get(const flare_sim *sim, flare_sim_par_stats *st)
{
    const sim_par *par = sim->root->par;
    if (par)
        *st = par->st;
    else
        memset(st, 0, sizeof(*st));
}

void flare_sim_set_par_profile(flare_sim *sim, int on)
{
    if (sim->root->par)
        sim->root->par->profile = on != 0;
}

/* Inboxes into queues: by target, then source shard, then posting order, so
 * ties at equal times break the same way in every run. */
static void merge(flare_sim *root)
{
    sim_par *par = root->par;
    for (unsigned to = 0; to < par->n; to++)
        for (unsigned from = 0; from < par->n; from++) {
            sim_outbox *o = &par->out[(size_t)from * par->n + to];
            for (size_t i = 0; i < o->n; i++)
                flare__sim_ev_schedule(par->shards[to], &o->m[i].p->ev, o->m[i].time);
            o->n = 0;
        }
}

void flare__sim_par_run(flare_sim *root, flare_tstamp t, int set_now)
{
    sim_par *par = root->par;
    flare_tstamp la = flare_sim_lookahead(root);
    int parallel = la > 0 && !root->trace;
    for (;;) {
        flare_tstamp first = flare_sim_next_event(root);
        if (first == FLARE_TSTAMP_NEVER || first > t)
            break;
        if (!parallel) {
            flare__sim_par_step(root);
            continue;
        }
        /* Events before end run in this window; end <= t + 1. */
        flare_tstamp end = t - first >= la ? first + la : t == FLARE_TSTAMP_NEVER ? t : t + 1;
        uint64_t c0 = par->profile ? thread_cpu_ns() : 0;
        run_window(root, end);
        merge(root);
        if (par->profile) {
            uint64_t own = 0;
            for (unsigned k = 0; k < par->n; k++)
                own += par->win_thr[k] == 0 ? par->win_cpu[k] : 0;
            par->st.cpu_serial_ns += thread_cpu_ns() - c0 - own;
        }
        account(par);
        if (par->window_cb)
            par->window_cb(par->window_user);
    }
    /* Every shard's clock ends at the same time. */
    flare_tstamp now = set_now ? t : 0;
    for (unsigned k = 0; k < par->n; k++)
        if (par->shards[k]->now > now)
            now = par->shards[k]->now;
    for (unsigned k = 0; k < par->n; k++)
        par->shards[k]->now = now;
}
