/* The simulator's event queue (see sim_queue.h). */
#include <string.h>

#include "core/mem.h"
#include "io/sim_queue.h"

/* Four children per node: half the levels of a binary heap, and the
 * children of a node share one or two cache lines. */
#define HEAP_D    4
#define SLOT_MASK (FLARE__SIM_WHEEL_SLOTS - 1)
/* Events due within this many buckets go straight into the heap: packets
 * in flight (a few link delays ahead) would only pass through the wheel. */
#define WHEEL_NEAR 8

void flare__sim_q_init(sim_queue *q, const flare_mem *mem)
{
    memset(q, 0, sizeof(*q));
    q->mem = mem;
}

void flare__sim_q_free(sim_queue *q)
{
    if (q->wheel)
        for (size_t i = 0; i < FLARE__SIM_WHEEL_SLOTS; i++)
            flare__free(q->mem, q->wheel[i].e);
    flare__free(q->mem, q->wheel);
    flare__free(q->mem, q->heap);
    flare__free(q->mem, q->far);
    q->wheel = NULL;
    q->heap = NULL;
    q->far = NULL;
    q->len = q->cap = q->wheel_len = 0;
    q->far_len = q->far_cap = 0;
}

/* --- heap ------------------------------------------------------------------ */

static int ent_less(const sim_heap_ent *a, const sim_heap_ent *b)
{
    return a->time < b->time || (a->time == b->time && a->seq < b->seq);
}

static void heap_place(sim_queue *q, size_t i, const sim_heap_ent *e)
{
    q->heap[i] = *e;
    e->ev->idx = i;
}

static void heap_up(sim_queue *q, size_t i, sim_heap_ent e)
{
    while (i > 0) {
        size_t parent = (i - 1) / HEAP_D;
        if (!ent_less(&e, &q->heap[parent]))
            break;
        heap_place(q, i, &q->heap[parent]);
        i = parent;
    }
    heap_place(q, i, &e);
}

static void heap_down(sim_queue *q, size_t i, sim_heap_ent e)
{
    size_t n = q->len;
    for (;;) {
        size_t c = HEAP_D * i + 1;
        if (c >= n)
            break;
        size_t end = n - c > HEAP_D ? c + HEAP_D : n, best = c;
        for (size_t k = c + 1; k < end; k++)
            if (ent_less(&q->heap[k], &q->heap[best]))
                best = k;
        if (!ent_less(&q->heap[best], &e))
            break;
        heap_place(q, i, &q->heap[best]);
        i = best;
    }
    heap_place(q, i, &e);
}

static int heap_push(sim_queue *q, const sim_heap_ent *e)
{
    if (q->len == q->cap) {
        if (q->cap >= UINT32_MAX / 2) /* sim_ev.idx */
            return FLARE_ERR_NOMEM;
        size_t cap = q->cap ? q->cap * 2 : 64;
        sim_heap_ent *h = flare__realloc(q->mem, q->heap, cap * sizeof(*h));
        if (!h)
            return FLARE_ERR_NOMEM;
        q->heap = h;
        q->cap = cap;
    }
    e->ev->bucket = 0;
    heap_up(q, q->len++, *e);
    return 0;
}

static void heap_remove(sim_queue *q, size_t i)
{
    sim_heap_ent last = q->heap[--q->len];
    if (i == q->len)
        return;
    if (i > 0 && ent_less(&last, &q->heap[(i - 1) / HEAP_D]))
        heap_up(q, i, last);
    else
        heap_down(q, i, last);
}

/* --- wheel ----------------------------------------------------------------- */

static int bucket_push(sim_queue *q, uint32_t slot, const sim_heap_ent *e)
{
    const uint64_t off_mask = ((uint64_t)1 << FLARE__SIM_WHEEL_SHIFT) - 1;
    if (!q->wheel) {
        q->wheel = flare__calloc(q->mem, FLARE__SIM_WHEEL_SLOTS, sizeof(*q->wheel));
        if (!q->wheel)
            return FLARE_ERR_NOMEM;
    }
    sim_bucket *b = &q->wheel[slot];
    if (b->len == b->cap) {
        if (b->cap >= UINT32_MAX / 2)
            return FLARE_ERR_NOMEM;
        uint32_t cap = b->cap ? b->cap * 2 : 8;
        sim_wheel_ent *a = flare__realloc(q->mem, b->e, (size_t)cap * sizeof(*a));
        if (!a)
            return FLARE_ERR_NOMEM;
        b->e = a;
        b->cap = cap;
    }
    e->ev->idx = b->len;
    e->ev->bucket = slot + 1;
    b->e[b->len].key = (e->time & off_mask) << FLARE__SIM_WHEEL_SEQ_BITS | e->seq;
    b->e[b->len++].ev = e->ev;
    q->wheel_len++;
    return 0;
}

/* Order within a bucket does not matter: the last entry fills the hole. */
static void bucket_remove(sim_queue *q, sim_ev *ev)
{
    sim_bucket *b = &q->wheel[ev->bucket - 1];
    size_t i = ev->idx;
    if (i != --b->len) {
        b->e[i] = b->e[b->len];
        b->e[i].ev->idx = i;
    }
    q->wheel_len--;
}

/* --- overflow --------------------------------------------------------------- */

static int far_push(sim_queue *q, const sim_heap_ent *e)
{
    if (q->far_len == q->far_cap) {
        if (q->far_cap >= UINT32_MAX / 2)
            return FLARE_ERR_NOMEM;
        uint32_t cap = q->far_cap ? q->far_cap * 2 : 64;
        sim_heap_ent *a = flare__realloc(q->mem, q->far, (size_t)cap * sizeof(*a));
        if (!a)
            return FLARE_ERR_NOMEM;
        q->far = a;
        q->far_cap = cap;
    }
    /* Moved a quarter turn from now at the latest: by then it is still at
     * least three quarters of a turn ahead, within reach. */
    if (!q->far_len)
        q->far_scan = q->cursor + FLARE__SIM_WHEEL_SLOTS / 4;
    e->ev->idx = q->far_len;
    e->ev->bucket = FLARE__SIM_EV_FAR;
    q->far[q->far_len++] = *e;
    q->wheel_len++;
    return 0;
}

static void far_remove(sim_queue *q, sim_ev *ev)
{
    uint32_t i = ev->idx;
    if (i != --q->far_len) {
        q->far[i] = q->far[q->far_len];
        q->far[i].ev->idx = i;
    }
    q->wheel_len--;
}

/* Where an event at e->time goes: the heap when due soon (or its seq does
 * not fit a wheel key), the wheel within its reach, else the overflow. */
static int place(sim_queue *q, const sim_heap_ent *e)
{
    uint64_t b = e->time >> FLARE__SIM_WHEEL_SHIFT;
    if (b <= q->cursor + WHEEL_NEAR || e->seq >> FLARE__SIM_WHEEL_SEQ_BITS)
        return heap_push(q, e);
    if (b - q->cursor < FLARE__SIM_WHEEL_SLOTS)
        return bucket_push(q, (uint32_t)(b & SLOT_MASK), e);
    return far_push(q, e);
}

static void lose(sim_queue *q, sim_ev *ev)
{
    ev->idx = FLARE__SIM_EV_IDLE;
    ev->bucket = 0;
    if (q->lost)
        q->lost(ev, q->lost_user);
}

/* Moves the overflow's events now within the wheel's reach into it. */
static void far_move(sim_queue *q)
{
    for (uint32_t i = 0; i < q->far_len;) {
        sim_heap_ent e = q->far[i];
        if ((e.time >> FLARE__SIM_WHEEL_SHIFT) - q->cursor >= FLARE__SIM_WHEEL_SLOTS) {
            i++;
            continue;
        }
        far_remove(q, e.ev); /* the last entry takes slot i */
        if (place(q, &e) < 0)
            lose(q, e.ev);
    }
    q->far_scan = q->cursor + FLARE__SIM_WHEEL_SLOTS / 4;
}

void flare__sim_q_advance(sim_queue *q)
{
    while (q->wheel_len && (!q->len || (q->heap[0].time >> FLARE__SIM_WHEEL_SHIFT) > q->cursor)) {
        q->cursor++;
        if (q->far_len && q->cursor >= q->far_scan)
            far_move(q);
        if (!q->wheel)
            continue; /* only overflow events so far */
        sim_bucket *b = &q->wheel[q->cursor & SLOT_MASK];
        const uint64_t seq_mask = ((uint64_t)1 << FLARE__SIM_WHEEL_SEQ_BITS) - 1;
        for (uint32_t i = 0; i < b->len; i++) {
            sim_ev *ev = b->e[i].ev;
            sim_heap_ent e = {q->cursor << FLARE__SIM_WHEEL_SHIFT |
                                  b->e[i].key >> FLARE__SIM_WHEEL_SEQ_BITS,
                              b->e[i].key & seq_mask, ev};
            if (q->rekey && q->rekey(ev, e.time, &e.time, &e.seq)) {
                /* Later than this bucket: another one, or the heap. */
                if (place(q, &e) < 0)
                    lose(q, ev);
            } else if (heap_push(q, &e) < 0) {
                lose(q, ev);
            }
        }
        /* A bucket fills again only a wheel turn later: what it held goes
         * back to the allocator meanwhile. */
        q->wheel_len -= b->len;
        flare__free(q->mem, b->e);
        b->e = NULL;
        b->len = b->cap = 0;
    }
}

/* --- queue ----------------------------------------------------------------- */

int flare__sim_q_push(sim_queue *q, sim_ev *ev, flare_tstamp t, uint64_t seq)
{
    sim_heap_ent e = {t, seq, ev};
    int rv = place(q, &e);
    if (rv < 0) {
        ev->idx = FLARE__SIM_EV_IDLE;
        ev->bucket = 0;
    }
    return rv;
}

void flare__sim_q_remove(sim_queue *q, sim_ev *ev)
{
    if (ev->idx == FLARE__SIM_EV_IDLE)
        return;
    if (ev->bucket == FLARE__SIM_EV_FAR)
        far_remove(q, ev);
    else if (ev->bucket)
        bucket_remove(q, ev);
    else
        heap_remove(q, ev->idx);
    ev->idx = FLARE__SIM_EV_IDLE;
    ev->bucket = 0;
}

sim_ev *flare__sim_q_pop(sim_queue *q)
{
    if (flare__sim_q_top(q) == FLARE_TSTAMP_NEVER)
        return NULL;
    sim_ev *ev = q->heap[0].ev;
    uint64_t b = q->heap[0].time >> FLARE__SIM_WHEEL_SHIFT;
    heap_remove(q, 0);
    ev->idx = FLARE__SIM_EV_IDLE;
    /* An empty wheel follows the clock, so that it is not left behind
     * when the clock jumps further than its reach. */
    if (!q->wheel_len && b > q->cursor)
        q->cursor = b;
    return ev;
}

void flare__sim_q_drain(sim_queue *q, void (*fn)(sim_ev *ev, void *user), void *user)
{
    for (size_t i = 0; q->wheel && i < FLARE__SIM_WHEEL_SLOTS; i++) {
        sim_bucket *b = &q->wheel[i];
        for (uint32_t k = 0; k < b->len; k++) {
            b->e[k].ev->idx = FLARE__SIM_EV_IDLE;
            b->e[k].ev->bucket = 0;
            fn(b->e[k].ev, user);
        }
        b->len = 0;
    }
    for (uint32_t i = 0; i < q->far_len; i++) {
        q->far[i].ev->idx = FLARE__SIM_EV_IDLE;
        q->far[i].ev->bucket = 0;
        fn(q->far[i].ev, user);
    }
    q->far_len = 0;
    q->wheel_len = 0;
    for (size_t i = 0; i < q->len; i++) {
        q->heap[i].ev->idx = FLARE__SIM_EV_IDLE;
        fn(q->heap[i].ev, user);
    }
    q->len = 0;
}

size_t flare__sim_q_count_before(const sim_queue *q, flare_tstamp end, size_t cap)
{
    /* Depth-first over the heap, skipping the subtrees of later events: a
     * 4-ary heap of any size is under 32 levels, each leaving at most 3
     * siblings behind on the stack. */
    size_t stack[4 * 32 + 4], top = 0, n = 0;
    if (q->len)
        stack[top++] = 0;
    while (top && n < cap) {
        size_t i = stack[--top];
        if (q->heap[i].time >= end)
            continue;
        n++;
        for (size_t c = i * HEAP_D + 1; c <= i * HEAP_D + HEAP_D && c < q->len; c++)
            stack[top++] = c;
    }
    /* Whole buckets of the wheel up to end's: an estimate. */
    uint64_t last = end >> FLARE__SIM_WHEEL_SHIFT;
    for (uint64_t b = q->cursor + 1; q->wheel_len && q->wheel && b <= last &&
                                     b - q->cursor <= FLARE__SIM_WHEEL_SLOTS && n < cap;
         b++)
        n += q->wheel[b & SLOT_MASK].len;
    return n < cap ? n : cap;
}
