/* Simulator core: lifecycle, scheduling on the event queue (sim_queue.c),
 * the run loop, tracing and the replay hash. */
#include <stdio.h>
#include <string.h>

#include "core/mem.h"
#include "io/sim_internal.h"

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME  0x100000001b3ULL

/* Packets are the only queue-owned events; the rest live in objects. An
 * event that cannot be queued (out of memory) is dropped. */
static void ev_lost(sim_ev *ev, void *user)
{
    flare_sim *sim = user;
    if (ev->kind == SIM_EV_PKT)
        flare__free(sim->mem, ev);
}

void flare__sim_queue_init(flare_sim *sim)
{
    flare__sim_q_init(&sim->q, sim->mem);
    sim->q.lost = ev_lost;
    sim->q.lost_user = sim;
    sim->q.rekey = flare__sim_timer_rekey;
}

flare_sim *flare_sim_new(uint64_t seed, const flare_mem *mem)
{
    flare_sim *sim = flare__calloc(mem, 1, sizeof(*sim));
    if (!sim)
        return NULL;
    sim->mem = mem;
    flare__sim_queue_init(sim);
    sim->root = sim;
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
    for (unsigned k = 0; k < (sim->par ? sim->par->n : 1); k++) {
        flare_sim *s = sim->par ? sim->par->shards[k] : sim;
        flare__sim_q_drain(&s->q, ev_lost, s);
    }
    for (size_t i = 0; i < sim->n_nodes; i++) {
        sim_node *n = sim->nodes[i];
        if (n->is_nat)
            flare__sim_nat_free(sim, (flare_sim_nat *)n);
        else
            flare__sim_host_free(sim, (flare_sim_host *)n);
    }
    for (size_t i = 0; i < sim->n_lans; i++) {
        flare__free(sim->mem, sim->lans[i]->name.s);
        flare__free(sim->mem, sim->lans[i]);
    }
    flare__free(sim->mem, sim->lans);
    flare__free(sim->mem, sim->nodes);
    flare__free(sim->mem, sim->routes);
    flare__sim_par_free(sim);
    flare__sim_q_free(&sim->q);
    flare__free(sim->mem, sim);
}

int flare__sim_name_set(const flare_mem *mem, sim_name *name, const char *s)
{
    name->s = flare__sim_strdup(mem, s);
    if (!name->s)
        return FLARE_ERR_NOMEM;
    uint64_t h = FNV_OFFSET;
    for (const char *c = name->s; *c; c++)
        h = (h ^ (uint8_t)*c) * FNV_PRIME;
    name->hash = h;
    return 0;
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

/* The replay hash takes every event and every hop of every packet, so it
 * folds words in with one multiply each (enough to tell runs apart; it
 * guards against accidents, not adversaries) instead of a full mix. */
static inline uint64_t trace_step(uint64_t h, uint64_t w)
{
    h = (h ^ w) * 0x9e3779b97f4a7c15ULL;
    return h ^ (h >> 32);
}

/* Half of a's address (an IPv4 address is its first four bytes). */
static inline uint64_t ip_word(const flare_ipaddr *a, int half)
{
    uint64_t w = 0;
    if (a->family != 4)
        memcpy(&w, a->ip + 8 * half, 8);
    else if (!half)
        memcpy(&w, a->ip, 4);
    return w;
}

/* --- events -------------------------------------------------------------- */

void flare__sim_ev_init(sim_ev *ev, int kind)
{
    memset(ev, 0, sizeof(*ev));
    ev->idx = FLARE__SIM_EV_IDLE;
    ev->kind = kind;
}

void flare__sim_ev_cancel(flare_sim *sim, sim_ev *ev)
{
    flare__sim_q_remove(&sim->q, ev);
}

/* Scheduling only fails when out of memory; the simulator then aborts the
 * event, which tests notice (a sim is a test tool, not a server). */
void flare__sim_ev_schedule(flare_sim *sim, sim_ev *ev, flare_tstamp t)
{
    flare__sim_ev_schedule_seq(sim, ev, t, sim->seq++);
}

void flare__sim_ev_schedule_seq(flare_sim *sim, sim_ev *ev, flare_tstamp t, uint64_t seq)
{
    flare__sim_q_remove(&sim->q, ev);
    if (flare__sim_q_push(&sim->q, ev, t < sim->now ? sim->now : t, seq) < 0)
        ev_lost(ev, sim);
}

/* --- run loop -------------------------------------------------------------- */

flare_tstamp flare_sim_now(const flare_sim *sim)
{
    return sim->now;
}

flare_tstamp flare_sim_next_event(const flare_sim *sim)
{
    flare_tstamp t = FLARE_TSTAMP_NEVER;
    for (unsigned k = 0; k < (sim->par ? sim->par->n : 1); k++) {
        const flare_sim *s = sim->par ? sim->par->shards[k] : sim;
        flare_tstamp top = flare__sim_q_top((sim_queue *)&s->q);
        if (top < t)
            t = top;
    }
    return t;
}

uint64_t flare_sim_events(const flare_sim *sim)
{
    uint64_t n = 0;
    for (unsigned k = 0; k < (sim->par ? sim->par->n : 1); k++)
        n += (sim->par ? sim->par->shards[k] : sim)->events;
    return n;
}

void flare_sim_set_syn_timeout(flare_sim *sim, flare_tstamp timeout)
{
    for (unsigned k = 0; k < (sim->par ? sim->par->n : 1); k++)
        (sim->par ? sim->par->shards[k] : sim)->syn_timeout = timeout;
}

void flare__sim_step_one(flare_sim *sim)
{
    sim->now = flare__sim_q_top(&sim->q);
    sim_ev *ev = flare__sim_q_pop(&sim->q);
    /* The next event's object (a timer, socket or packet) is usually cold
     * at scale: fetching it now overlaps the miss with this event's work. */
    if (sim->q.len)
        __builtin_prefetch(sim->q.heap[0].ev);
    sim->events++;
    sim->hash = trace_step(trace_step(sim->hash, sim->now), (uint64_t)ev->kind);
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
}

int flare_sim_step(flare_sim *sim)
{
    if (sim->par)
        return flare__sim_par_step(sim);
    if (flare__sim_q_top(&sim->q) == FLARE_TSTAMP_NEVER)
        return 0;
    flare__sim_step_one(sim);
    return 1;
}

void flare_sim_run_until(flare_sim *sim, flare_tstamp t)
{
    if (sim->par) {
        flare__sim_par_run(sim, t, 1);
        return;
    }
    while (flare__sim_q_top(&sim->q) <= t && flare__sim_q_len(&sim->q))
        flare__sim_step_one(sim);
    if (t > sim->now)
        sim->now = t;
}

void flare_sim_run_for(flare_sim *sim, flare_tstamp dt)
{
    flare_sim_run_until(sim, sim->now + dt);
}

int flare_sim_run_until_idle(flare_sim *sim, flare_tstamp limit)
{
    if (sim->par) {
        flare__sim_par_run(sim, limit, 0);
        return flare_sim_next_event(sim) != FLARE_TSTAMP_NEVER ? FLARE_ERR_TIMEOUT : 0;
    }
    while (flare__sim_q_top(&sim->q) <= limit && flare__sim_q_len(&sim->q))
        flare__sim_step_one(sim);
    return flare__sim_q_len(&sim->q) ? FLARE_ERR_TIMEOUT : 0;
}

/* --- tracing --------------------------------------------------------------- */

void flare_sim_set_trace(flare_sim *sim, flare_sim_trace_cb cb, void *user)
{
    for (unsigned k = 0; k < (sim->par ? sim->par->n : 1); k++) {
        flare_sim *s = sim->par ? sim->par->shards[k] : sim;
        s->trace = cb;
        s->trace_user = user;
    }
}

uint64_t flare_sim_trace_hash(const flare_sim *sim)
{
    if (!sim->par)
        return sim->hash;
    uint64_t h = FNV_OFFSET;
    for (unsigned k = 0; k < sim->par->n; k++)
        h = flare__sim_mix(h, sim->par->shards[k]->hash);
    return h;
}

void flare__sim_trace(flare_sim *sim, const sim_name *node, flare_sim_verdict v, const sim_pkt *p)
{
    /* Everything a trace record holds: time, node, verdict, protocol,
     * flags, addresses (family, IP, port) and length. */
    uint64_t h = trace_step(sim->hash, sim->now);
    h = trace_step(h, (uint64_t)v << 56 | (uint64_t)p->proto << 48 | (uint64_t)p->flags << 40 |
                          (uint64_t)p->src.family << 36 | (uint64_t)p->dst.family << 32 |
                          (uint64_t)p->src.port << 16 | p->dst.port);
    h = trace_step(h, (uint64_t)p->len);
    if (p->src.family == 4 && p->dst.family == 4) {
        uint32_t s4, d4;
        memcpy(&s4, p->src.ip, 4);
        memcpy(&d4, p->dst.ip, 4);
        h = trace_step(h, (uint64_t)s4 << 32 | d4);
    } else {
        h = trace_step(trace_step(h, ip_word(&p->src, 0)), ip_word(&p->src, 1));
        h = trace_step(trace_step(h, ip_word(&p->dst, 0)), ip_word(&p->dst, 1));
    }
    sim->hash = trace_step(h, node->hash);
    if (!sim->trace)
        return;
    flare_sim_trace_rec r;
    memset(&r, 0, sizeof(r));
    r.time = sim->now;
    r.node = node->s;
    r.verdict = v;
    r.proto = p->proto;
    r.flags = p->flags;
    r.src = p->src;
    r.dst = p->dst;
    r.len = p->len;
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
