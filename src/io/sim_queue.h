/* The simulator's event queue: events in (time, seq) order.
 *
 * Near events (packets in flight, timers about to fire) sit in a 4-ary
 * min-heap. Far ones (keepalive and idle timers, which are most of the
 * queued events at scale) wait in a timing wheel of time buckets and enter
 * the heap only when the clock reaches their bucket. The heap thus stays
 * small enough to live in cache, and queueing or cancelling a far timer
 * touches one bucket instead of sifting a heap of every timer in the run.
 * Events beyond the wheel's reach (rare timers minutes ahead, one or two
 * per node) wait unordered in an overflow list, moved into the wheel
 * every quarter turn, instead of deepening the heap that every event
 * passes through. Which structure holds an event never changes the order:
 * an event leaves the queue only through the heap, by its (time, seq) key. */
#ifndef FLARE_IO_SIM_QUEUE_H
#define FLARE_IO_SIM_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "flare/common.h"

/* Intrusive event: embedded in the object it belongs to (five in every
 * simulated TCP socket, one in every packet and timer: kept to 8 bytes). */
typedef struct sim_ev {
    uint32_t idx; /* position in the heap or in its bucket, FLARE__SIM_EV_IDLE when not queued */
    uint16_t kind;
    uint16_t bucket; /* 0: in the heap (or not queued); FAR: overflow; else the wheel slot + 1 */
} sim_ev;
#define FLARE__SIM_EV_IDLE UINT32_MAX
#define FLARE__SIM_EV_FAR  UINT16_MAX

/* A queue slot holds the event's key, so sifting compares within the array
 * instead of chasing pointers to events all over memory. */
typedef struct sim_heap_ent {
    flare_tstamp time;
    uint64_t seq; /* schedule order: ties at equal times run first come first */
    sim_ev *ev;
} sim_heap_ent;

/* Bucket width 2^22 ns (4.2 ms), 2^14 buckets: the wheel reaches 68.7 s
 * ahead; later events go to the heap. */
#define FLARE__SIM_WHEEL_SHIFT 22
#define FLARE__SIM_WHEEL_SLOTS (1u << 14)
_Static_assert(FLARE__SIM_WHEEL_SLOTS < UINT16_MAX, "sim_ev.bucket holds a slot + 1");

/* A wheel entry packs its key in one word, the time within its bucket
 * above the seq, as the bucket gives the rest of the time: two thirds of a
 * heap slot. An event whose seq does not fit goes to the heap. */
#define FLARE__SIM_WHEEL_SEQ_BITS (64 - FLARE__SIM_WHEEL_SHIFT)
typedef struct sim_wheel_ent {
    uint64_t key; /* time & (bucket width - 1) << SEQ_BITS | seq */
    sim_ev *ev;
} sim_wheel_ent;

typedef struct sim_bucket {
    sim_wheel_ent *e; /* unordered */
    uint32_t len, cap;
} sim_bucket;

typedef struct sim_queue {
    const flare_mem *mem;
    /* Called on an event the wheel could not move into the heap for lack
     * of memory: it is no longer queued (a scheduling failure, late). */
    void (*lost)(sim_ev *ev, void *user);
    void *lost_user;
    /* Optional, called on each event the wheel moves toward the heap (due
     * at t): returns 1 after setting *nt, *nseq to a later key the event
     * wants by now (a timer pushed later while it waited), and the event
     * is queued again at that key instead of coming up early. */
    int (*rekey)(sim_ev *ev, flare_tstamp t, flare_tstamp *nt, uint64_t *nseq);
    sim_heap_ent *heap; /* 4-ary min-heap on (time, seq) */
    size_t len, cap;
    sim_bucket *wheel; /* FLARE__SIM_WHEEL_SLOTS buckets, allocated on first use */
    size_t wheel_len;  /* events in the wheel and the overflow */
    uint64_t cursor;   /* wheel events are in buckets after this one (time >> SHIFT) */
    sim_heap_ent *far; /* overflow: beyond the wheel's reach, unordered */
    uint32_t far_len, far_cap;
    uint64_t far_scan; /* the cursor at which the overflow is moved next */
} sim_queue;

void flare__sim_q_init(sim_queue *q, const flare_mem *mem);
/* Frees the queue's arrays; queued events are left alone (see drain). */
void flare__sim_q_free(sim_queue *q);
/* Queues ev (not queued now) at (t, seq); 0 or FLARE_ERR_NOMEM (ev is then
 * not queued). */
int flare__sim_q_push(sim_queue *q, sim_ev *ev, flare_tstamp t, uint64_t seq);
/* Takes ev out of the queue (no-op if not queued). */
void flare__sim_q_remove(sim_queue *q, sim_ev *ev);
/* Takes out the earliest event (see flare__sim_q_top for its time), or
 * returns NULL when empty. */
sim_ev *flare__sim_q_pop(sim_queue *q);
/* Brings the wheel's next bucket(s) into the heap when the heap does not
 * hold the earliest event; internal to flare__sim_q_top. */
void flare__sim_q_advance(sim_queue *q);
/* About how many events are due before end (those of the heap exactly,
 * the wheel's by whole buckets), cap at most; cost in proportion. */
size_t flare__sim_q_count_before(const sim_queue *q, flare_tstamp end, size_t cap);
/* Unqueues every event, calling fn on each (in no particular order). */
void flare__sim_q_drain(sim_queue *q, void (*fn)(sim_ev *ev, void *user), void *user);

static inline size_t flare__sim_q_len(const sim_queue *q)
{
    return q->len + q->wheel_len;
}

/* The earliest event's time, FLARE_TSTAMP_NEVER when empty. Afterwards the
 * earliest event is q->heap[0]. */
static inline flare_tstamp flare__sim_q_top(sim_queue *q)
{
    if (q->wheel_len && (!q->len || (q->heap[0].time >> FLARE__SIM_WHEEL_SHIFT) > q->cursor))
        flare__sim_q_advance(q);
    return q->len ? q->heap[0].time : FLARE_TSTAMP_NEVER;
}

#endif
