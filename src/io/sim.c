/* Simulator core: lifecycle, the event queue (binary heap on (time, seq)),
 * the run loop, tracing and the replay hash. */
#include <stdio.h>
#include <string.h>

#include "core/mem.h"
#include "io/sim_internal.h"

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME  0x100000001b3ULL

flare_sim *flare_sim_new(uint64_t seed, const flare_mem *mem)
{
    flare_sim *sim = flare__calloc(mem, 1, sizeof(*sim));
    if (!sim)
        return NULL;
    sim->mem = mem;
    sim->seed = seed;
    sim->hash = FNV_OFFSET;
    sim->syn_timeout = 5 * FLARE_NS_PER_S;
    flare_prng_seed(&sim->prng, seed ^ 0x6c696e6b73ULL); /* "links" */
    sim->internet = flare_sim_lan_new(sim, "internet");
    if (!sim->internet) {
        flare_sim_del(sim);
        return NULL;
    }
    return sim;
}

void flare_sim_del(flare_sim *sim)
{
    if (!sim)
        return;
    /* Packets are the only heap-owned events; the rest live in objects. */
    for (size_t i = 0; i < sim->heap_len; i++) {
        sim->heap[i]->idx = SIZE_MAX;
        if (sim->heap[i]->kind == SIM_EV_PKT)
            flare__free(sim->mem, sim->heap[i]);
    }
    sim->heap_len = 0;
    for (size_t i = 0; i < sim->n_nodes; i++) {
        sim_node *n = sim->nodes[i];
        if (n->is_nat)
            flare__sim_nat_free(sim, (flare_sim_nat *)n);
        else
            flare__sim_host_free(sim, (flare_sim_host *)n);
    }
    for (size_t i = 0; i < sim->n_lans; i++) {
        flare__free(sim->mem, sim->lans[i]->name);
        flare__free(sim->mem, sim->lans[i]);
    }
    flare__free(sim->mem, sim->lans);
    flare__free(sim->mem, sim->nodes);
    flare__free(sim->mem, sim->routes);
    flare__free(sim->mem, sim->heap);
    flare__free(sim->mem, sim);
}

char *flare__sim_strdup(const flare_mem *mem, const char *s)
{
    size_t n = strlen(s ? s : "") + 1;
    char *d = flare__malloc(mem, n);
    if (d)
        memcpy(d, s ? s : "", n);
    return d;
}

double flare__sim_uniform(flare_prng *p)
{
    return (double)(flare_prng_next(p) >> 11) * (1.0 / 9007199254740992.0);
}

/* --- heap ------------------------------------------------------------------ */

static int ev_less(const sim_ev *a, const sim_ev *b)
{
    return a->time < b->time || (a->time == b->time && a->seq < b->seq);
}

static void heap_set(flare_sim *sim, size_t i, sim_ev *ev)
{
    sim->heap[i] = ev;
    ev->idx = i;
}

static void heap_up(flare_sim *sim, size_t i)
{
    sim_ev *ev = sim->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!ev_less(ev, sim->heap[parent]))
            break;
        heap_set(sim, i, sim->heap[parent]);
        i = parent;
    }
    heap_set(sim, i, ev);
}

static void heap_down(flare_sim *sim, size_t i)
{
    sim_ev *ev = sim->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= sim->heap_len)
            break;
        if (c + 1 < sim->heap_len && ev_less(sim->heap[c + 1], sim->heap[c]))
            c++;
        if (!ev_less(sim->heap[c], ev))
            break;
        heap_set(sim, i, sim->heap[c]);
        i = c;
    }
    heap_set(sim, i, ev);
}

void flare__sim_ev_init(sim_ev *ev, int kind)
{
    memset(ev, 0, sizeof(*ev));
    ev->idx = SIZE_MAX;
    ev->kind = kind;
}

void flare__sim_ev_cancel(flare_sim *sim, sim_ev *ev)
{
    size_t i = ev->idx;
    if (i == SIZE_MAX)
        return;
    ev->idx = SIZE_MAX;
    sim_ev *last = sim->heap[--sim->heap_len];
    if (i == sim->heap_len)
        return;
    heap_set(sim, i, last);
    heap_up(sim, i);
    heap_down(sim, last->idx);
}

/* Scheduling only fails when out of memory; the simulator then aborts the
 * event, which tests notice (a sim is a test tool, not a server). */
void flare__sim_ev_schedule(flare_sim *sim, sim_ev *ev, flare_tstamp t)
{
    flare__sim_ev_cancel(sim, ev);
    if (sim->heap_len == sim->heap_cap) {
        size_t cap = sim->heap_cap ? sim->heap_cap * 2 : 64;
        sim_ev **h = flare__realloc(sim->mem, sim->heap, cap * sizeof(*h));
        if (!h) {
            if (ev->kind == SIM_EV_PKT)
                flare__free(sim->mem, ev);
            return;
        }
        sim->heap = h;
        sim->heap_cap = cap;
    }
    ev->time = t < sim->now ? sim->now : t;
    ev->seq = sim->seq++;
    sim->heap[sim->heap_len] = ev;
    ev->idx = sim->heap_len++;
    heap_up(sim, ev->idx);
}

/* --- run loop -------------------------------------------------------------- */

flare_tstamp flare_sim_now(const flare_sim *sim)
{
    return sim->now;
}

flare_tstamp flare_sim_next_event(const flare_sim *sim)
{
    return sim->heap_len ? sim->heap[0]->time : FLARE_TSTAMP_NEVER;
}

uint64_t flare_sim_events(const flare_sim *sim)
{
    return sim->events;
}

void flare_sim_set_syn_timeout(flare_sim *sim, flare_tstamp timeout)
{
    sim->syn_timeout = timeout;
}

void flare__sim_hash(flare_sim *sim, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        sim->hash = (sim->hash ^ b[i]) * FNV_PRIME;
}

int flare_sim_step(flare_sim *sim)
{
    if (sim->heap_len == 0)
        return 0;
    sim_ev *ev = sim->heap[0];
    flare__sim_ev_cancel(sim, ev);
    sim->now = ev->time;
    sim->events++;
    uint64_t rec[2] = {ev->time, (uint64_t)ev->kind};
    flare__sim_hash(sim, rec, sizeof(rec));
    switch (ev->kind) {
    case SIM_EV_PKT:
        flare__sim_pkt_event(sim, (sim_pkt *)ev);
        break;
    case SIM_EV_TIMER:
        flare__sim_timer_event(sim, ev);
        break;
    default:
        flare__sim_sock_event(sim, ev);
        break;
    }
    return 1;
}

void flare_sim_run_until(flare_sim *sim, flare_tstamp t)
{
    while (sim->heap_len && sim->heap[0]->time <= t)
        flare_sim_step(sim);
    if (t > sim->now)
        sim->now = t;
}

void flare_sim_run_for(flare_sim *sim, flare_tstamp dt)
{
    flare_sim_run_until(sim, sim->now + dt);
}

int flare_sim_run_until_idle(flare_sim *sim, flare_tstamp limit)
{
    while (sim->heap_len && sim->heap[0]->time <= limit)
        flare_sim_step(sim);
    return sim->heap_len ? FLARE_ERR_TIMEOUT : 0;
}

/* --- tracing --------------------------------------------------------------- */

void flare_sim_set_trace(flare_sim *sim, flare_sim_trace_cb cb, void *user)
{
    sim->trace = cb;
    sim->trace_user = user;
}

uint64_t flare_sim_trace_hash(const flare_sim *sim)
{
    return sim->hash;
}

void flare__sim_trace(flare_sim *sim, const char *node, flare_sim_verdict v, const sim_pkt *p)
{
    flare_sim_trace_rec r;
    memset(&r, 0, sizeof(r));
    r.time = sim->now;
    r.node = node;
    r.verdict = v;
    r.proto = p->proto;
    r.flags = p->flags;
    r.src = p->src;
    r.dst = p->dst;
    r.len = p->len;
    uint64_t h[4] = {r.time, (uint64_t)v << 16 | (uint64_t)r.proto << 8 | r.flags, r.len,
                     (uint64_t)r.src.port << 16 | r.dst.port};
    flare__sim_hash(sim, h, sizeof(h));
    flare__sim_hash(sim, r.src.ip, sizeof(r.src.ip));
    flare__sim_hash(sim, r.dst.ip, sizeof(r.dst.ip));
    flare__sim_hash(sim, node, strlen(node));
    if (sim->trace)
        sim->trace(&r, sim->trace_user);
}

static const char *verdict_name(flare_sim_verdict v)
{
    static const char *names[] = {"SENT",          "DELIVERED",    "FORWARDED",    "HAIRPINNED",
                                  "DROP_LOSS",     "DROP_QUEUE",   "DROP_NOROUTE", "DROP_FILTER",
                                  "DROP_NOSOCKET", "RETRANSMITTED"};
    return (unsigned)v < sizeof(names) / sizeof(names[0]) ? names[v] : "?";
}

int flare_sim_trace_format(const flare_sim_trace_rec *r, char *out, size_t cap)
{
    char src[FLARE_IPADDR_STR_MAX] = "?", dst[FLARE_IPADDR_STR_MAX] = "?", fl[5];
    size_t k = 0;
    flare_ipaddr_to_string(&r->src, src, sizeof(src));
    flare_ipaddr_to_string(&r->dst, dst, sizeof(dst));
    if (r->flags & FLARE_SIM_SYN)
        fl[k++] = 'S';
    if (r->flags & FLARE_SIM_ACK)
        fl[k++] = 'A';
    if (r->flags & FLARE_SIM_FIN)
        fl[k++] = 'F';
    if (r->flags & FLARE_SIM_RST)
        fl[k++] = 'R';
    if (k == 0)
        fl[k++] = '.';
    fl[k] = 0;
    int n = snprintf(out, cap, "%llu.%09llu %s %s %s %s %s -> %s len=%zu",
                     (unsigned long long)(r->time / FLARE_NS_PER_S),
                     (unsigned long long)(r->time % FLARE_NS_PER_S), r->node,
                     verdict_name(r->verdict), r->proto == SIM_TCP ? "TCP" : "UDP",
                     r->proto == SIM_TCP ? fl : "-", src, dst, r->len);
    if (n < 0)
        return FLARE_ERR_INTERNAL;
    return (size_t)n >= cap ? (int)(cap ? cap - 1 : 0) : n;
}

void flare_sim_trace_file(const flare_sim_trace_rec *rec, void *user)
{
    char line[256];
    flare_sim_trace_format(rec, line, sizeof(line));
    fprintf(user ? (FILE *)user : stderr, "%s\n", line);
}
