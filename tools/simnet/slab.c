/* The simulation's size-class slab allocator (slab.h). */
#include "simnet/slab.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#if defined(__SANITIZE_ADDRESS__)
#define SLAB_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SLAB_ASAN 1
#endif
#endif

#ifdef SLAB_ASAN
#include <sanitizer/asan_interface.h>
/* Free and not yet carved memory stays poisoned, so the allocator's own
 * tests still see use-after-free and overruns into a block's slack. */
#define POISON(p, n)   ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n)   ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define CHUNK      ((size_t)2 << 20) /* one transparent huge page */
#define SLOT_SHIFT 16
#define SLOT       ((size_t)1 << SLOT_SHIFT) /* pages are 1 to 8 slots of one chunk */
#define NSLOT      (CHUNK / SLOT)
#define NSIZE      128               /* size classes */
#define NCLASS     256               /* page classes: a size class, times exact fit or not */
#define TC_MAX     15                /* free blocks a thread keeps at hand per class */
#define TAIL_ONE   0xffu             /* a block's last byte: one byte less than its class */
#define NKIND      4                 /* page lengths: 1, 2, 4 and 8 slots */
#define CLS_SYS    1u                /* a header's cls: from malloc */
#define CLS_MAP    2u                /* a mapping of its own */
#define MAP_MIN    ((size_t)1 << 20) /* blocks this large get their own huge pages */
#define LIVE       0x51ab11feu
#define FREED      0xdeadb10cu
/* Address space reserved for the chunks (never touched unless used); the
 * reservation halves until the kernel grants it. */
#define REGION_MAX ((size_t)256 << 30)
#define REGION_MIN ((size_t)64 << 20)

/* Large blocks (and small ones once the region is full) carry a header;
 * small blocks in the region carry none. */
typedef struct hdr {
    size_t size; /* as asked for: the caller counts exact bytes */
    uint32_t cls;
    uint32_t magic;
} hdr;
_Static_assert(sizeof(hdr) == 16, "the header keeps payloads 16-byte aligned");

/* A large block's own mapping starts with its length, then the header. */
typedef struct maphdr {
    size_t len;
    size_t pad;
    hdr h;
} maphdr;

/* A page's descriptor: one cache line per slot in an array outside the
 * chunks, found from a block's address by a shift. In the chunks the
 * descriptors would all sit at 64 KiB strides, which map to a handful of
 * cache sets and miss nearly every time; the array is compact. A page of
 * several slots is described by its first slot's entry; the others' back
 * says how far back that is.
 *
 * The page's memory is nb blocks of one class. The thread that took the
 * page owns it: only it allocates from it and touches free, used and the lists; other threads push
 * the blocks they free on remote, and the page on the owner's pending stack when remote was empty.
 * A page whose blocks are all free goes back to its owner's empty pages, for any class. */
typedef struct page {
    char *free;                /* the owner's free blocks, linked through their first word */
    _Atomic(uintptr_t) remote; /* blocks other threads freed, the same way */
    struct page *next, *prev; /* on the owner's list of the class (pages with room) or of empties */
    struct page *rnext;       /* on the owner's pending stack */
    struct cache *owner;
    uint32_t used, carved; /* blocks out (remote frees counted when collected), carved */
    uint8_t cls, kind, state;
    uint8_t back; /* in a later slot of a page: how many slots back it starts */
} page;
_Static_assert(sizeof(page) <= 64, "a descriptor is one cache line");

enum { PG_AVAIL, PG_FULL, PG_EMPTY };

typedef struct class_info {
    uint32_t size, nb, slots;
} class_info;

static class_info ci[NCLASS];
static pthread_once_t ci_once = PTHREAD_ONCE_INIT;

/* What a free needs first, in a table small enough to stay cached (two
 * bytes per 64 KiB): the slot's class and its owner's cache index. */
typedef struct slot_info {
    uint8_t cls;
    uint8_t owner; /* the owning cache's idx; 0 for none */
} slot_info;

/* A thread's blocks at hand for a class: its own blocks it freed, handed
 * out again without touching their pages (a stack). */
typedef struct front {
    uint32_t n;
    char *v[TC_MAX];
} front;

/* One thread's blocks at hand and pages with room by class (the head
 * serves), its empty pages by length, and the chunk it takes new pages
 * from. */
typedef struct cache {
    front tc[NCLASS];
    page *avail[NCLASS];
    page *empty[NKIND];
    char *next_slot; /* in the current chunk */
    size_t slots_left;
    _Atomic(page *) pending; /* pages with blocks on their remote stacks */
    size_t carved;           /* class bytes of the blocks carved in its pages (statistics) */
    const void *owner;       /* the owning thread's &tl */
    struct cache *next;
    unsigned idx;  /* 1.. in the slot table; 0 (no front caches) past 255 threads */
    size_t fronts; /* blocks in tc */
} cache;

struct simnet_slab {
    int slabs;
    uint64_t id;        /* tells this allocator from an earlier one at the same address */
    pthread_mutex_t mu; /* guards caches and the region's bump: once per thread and per chunk */
    cache *caches;
    char *base;          /* the region; small blocks are those in [base, base + used) */
    size_t reserved;     /* its length */
    _Atomic size_t used; /* bytes of it made chunks */
    page *pages;         /* one descriptor per slot of the region */
    size_t pages_len;
    slot_info *slots; /* one per slot of the region */
    size_t slots_len;
    unsigned ncache;
    atomic_size_t mapped;
};

/* The calling thread's cache of the allocator it used last: the hot path
 * then costs one compare. Its address also names the thread. */
static _Thread_local struct {
    uint64_t id;
    cache *c;
} tl;
static atomic_uint_fast64_t next_id = 1;

/* ---- size classes ---------------------------------------------------------------- */

/* 16-byte steps up to 1 KiB (sizes are mostly multiples of 8 or 16, so no
 * slack but alignment), then sixteen steps per power of two (at most
 * 6.25 % slack) up to SIMNET_SLAB_MAX. */
static unsigned class_of(size_t n)
{
    if (n <= 1024)
        return n ? (unsigned)((n - 1) / 16) : 0;
    size_t m = n - 1;
    unsigned k = 63u - (unsigned)__builtin_clzll((unsigned long long)m); /* 10..13 */
    return 64 + (k - 10) * 16 + (unsigned)(m >> (k - 4)) - 16;
}

static size_t class_size(unsigned cls)
{
    if (cls < 64)
        return (size_t)(cls + 1) * 16;
    unsigned k = 10 + (cls - 64) / 16, j = (cls - 64) % 16;
    return ((size_t)1 << k) + (size_t)(j + 1) * ((size_t)1 << (k - 4));
}
_Static_assert(SIMNET_SLAB_MAX == 16384, "class_of covers 0 .. 16 KiB in 128 classes");
_Static_assert(NCLASS == 2 * NSIZE && NSIZE == 128, "two page classes per size class");

static void ci_init(void)
{
    for (unsigned c = 0; c < NCLASS; c++) {
        class_info *k = &ci[c];
        k->size = (uint32_t)class_size(c / 2);
        /* Pages of several slots for large classes keep the tail small. */
        k->slots = k->size <= 2048 ? 1 : k->size <= 4096 ? 2 : k->size <= 8192 ? 4 : 8;
        k->nb = (uint32_t)(k->slots * SLOT / k->size);
    }
}

/* ---- memory from the OS ------------------------------------------------------------ */

/* len bytes (a multiple of CHUNK) aligned to CHUNK, so the kernel can back
 * them with huge pages; advised so even in THP's madvise mode. */
static void *map_aligned(size_t len, int prot)
{
    size_t span = len + CHUNK;
    int fl = MAP_PRIVATE | MAP_ANONYMOUS | (prot == PROT_NONE ? MAP_NORESERVE : 0);
    char *p = mmap(NULL, span, prot, fl, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    char *a = (char *)(((uintptr_t)p + CHUNK - 1) & ~(uintptr_t)(CHUNK - 1));
    if (a > p)
        munmap(p, (size_t)(a - p));
    size_t tail = (size_t)((p + span) - (a + len));
    if (tail)
        munmap(a + len, tail);
#ifdef MADV_HUGEPAGE
    if (prot != PROT_NONE)
        madvise(a, len, MADV_HUGEPAGE); /* only advice: 4 KiB pages work too */
#endif
    return a;
}

/* The region: address space only (PROT_NONE costs no memory and no
 * commit); chunks become usable one at a time. */
static void region_reserve(simnet_slab *s)
{
    for (size_t len = REGION_MAX; len >= REGION_MIN; len /= 2) {
        size_t mlen = (len >> SLOT_SHIFT) * sizeof(page);
        page *m = mmap(NULL, mlen, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (m == MAP_FAILED)
            continue;
        size_t slen = (len >> SLOT_SHIFT) * sizeof(slot_info);
        void *si = mmap(NULL, slen, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        char *b = si == MAP_FAILED ? NULL : map_aligned(len, PROT_NONE);
        if (!b) {
            munmap(m, mlen);
            if (si != MAP_FAILED)
                munmap(si, slen);
            continue;
        }
        s->slots = si;
        s->slots_len = slen;
        s->base = b;
        s->reserved = len;
        s->pages = m;
        s->pages_len = mlen;
        return;
    }
}

/* A fresh chunk from the region, NULL once it is full. */
static char *chunk_new(simnet_slab *s)
{
    pthread_mutex_lock(&s->mu);
    size_t u = atomic_load_explicit(&s->used, memory_order_relaxed);
    char *k = NULL;
    if (s->base && s->reserved - u >= CHUNK &&
        mprotect(s->base + u, CHUNK, PROT_READ | PROT_WRITE) == 0) {
        k = s->base + u;
#ifdef MADV_HUGEPAGE
        madvise(k, CHUNK, MADV_HUGEPAGE);
#endif
        atomic_store_explicit(&s->used, u + CHUNK, memory_order_release);
        atomic_fetch_add_explicit(&s->mapped, CHUNK, memory_order_relaxed);
        POISON(k, CHUNK);
    }
    pthread_mutex_unlock(&s->mu);
    return k;
}

/* ---- per-thread caches ------------------------------------------------------------- */

static cache *cache_find(simnet_slab *s)
{
    cache *c;
    pthread_mutex_lock(&s->mu);
    for (c = s->caches; c; c = c->next)
        if (c->owner == (const void *)&tl)
            break;
    if (!c && (c = calloc(1, sizeof(*c))) != NULL) {
        /* A thread that ended may leave a cache whose owner address a new
         * thread gets: that thread then simply inherits it. */
        c->owner = &tl;
        c->idx = s->ncache < 255 ? ++s->ncache : 0;
        c->next = s->caches;
        s->caches = c;
    }
    pthread_mutex_unlock(&s->mu);
    return c;
}

static cache *cache_get(simnet_slab *s)
{
    if (tl.id == s->id)
        return tl.c;
    cache *c = cache_find(s);
    if (c) {
        tl.id = s->id;
        tl.c = c;
    }
    return c;
}

static unsigned kind_of(size_t slots)
{
    return slots == 1 ? 0 : slots == 2 ? 1 : slots == 4 ? 2 : 3;
}

static void empty_push(cache *c, page *p, unsigned kind)
{
    p->state = PG_EMPTY;
    p->back = 0;
    p->kind = (uint8_t)kind;
    p->next = c->empty[kind];
    c->empty[kind] = p;
}

static page *desc_of(const simnet_slab *s, const char *mem)
{
    return &s->pages[(size_t)(mem - s->base) >> SLOT_SHIFT];
}

static char *mem_of(const simnet_slab *s, const page *p)
{
    return s->base + ((size_t)(p - s->pages) << SLOT_SHIFT);
}

/* A page of 2^kind slots: an empty page of that length, for one slot a
 * longer empty page cut up, else the chunk. The slots a chunk has left
 * when a longer page does not fit become empty one-slot pages. */
static page *page_take(simnet_slab *s, cache *c, unsigned kind)
{
    page *e = c->empty[kind];
    if (!e && kind == 0)
        for (unsigned k = 1; k < NKIND && !e; k++)
            if ((e = c->empty[k]) != NULL) {
                c->empty[k] = e->next;
                for (size_t i = 1; i < (size_t)1 << k; i++)
                    empty_push(c, e + i, 0);
                return e;
            }
    if (e) {
        c->empty[kind] = e->next;
        return e;
    }
    size_t k = (size_t)1 << kind;
    if (c->slots_left < k) {
        for (; c->slots_left; c->slots_left--, c->next_slot += SLOT)
            empty_push(c, desc_of(s, c->next_slot), 0);
        char *chunk = chunk_new(s);
        if (!chunk)
            return NULL;
        c->next_slot = chunk;
        c->slots_left = NSLOT;
    }
    page *p = desc_of(s, c->next_slot);
    c->next_slot += k * SLOT;
    c->slots_left -= k;
    return p;
}

/* A new page becomes the head; a full page that got room goes second, so
 * the head keeps serving and the page can still empty and leave. */
static void avail_push(cache *c, page *p)
{
    page *h = c->avail[p->cls];
    p->state = PG_AVAIL;
    if (h && p->used) {
        p->prev = h;
        p->next = h->next;
        if (h->next)
            h->next->prev = p;
        h->next = p;
        return;
    }
    p->prev = NULL;
    p->next = h;
    if (h)
        h->prev = p;
    c->avail[p->cls] = p;
}

static void avail_unlink(cache *c, page *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        c->avail[p->cls] = p->next;
    if (p->next)
        p->next->prev = p->prev;
}

static page *page_new(simnet_slab *s, cache *c, unsigned cls)
{
    const class_info *k = &ci[cls];
    page *p = page_take(s, c, kind_of(k->slots));
    if (!p)
        return NULL;
    for (uint32_t i = 1; i < k->slots; i++)
        p[i].back = (uint8_t)i;
    slot_info *si = &s->slots[p - s->pages];
    for (uint32_t i = 0; i < k->slots; i++)
        si[i] = (slot_info){(uint8_t)cls, (uint8_t)c->idx};
    p->back = 0;
    p->free = NULL;
    atomic_init(&p->remote, 0);
    p->owner = c;
    p->used = p->carved = 0;
    p->cls = (uint8_t)cls;
    p->kind = (uint8_t)kind_of(k->slots);
    avail_push(c, p);
    return p;
}

/* A page all of whose blocks are free: empty, for any class. */
static void page_release(const simnet_slab *s, cache *c, page *p)
{
    if (p->state == PG_AVAIL)
        avail_unlink(c, p);
    c->carved -= (size_t)p->carved * ci[p->cls].size;
    POISON(mem_of(s, p), SLOT << p->kind);
    empty_push(c, p, p->kind);
}

/* The free-list link in a free block's first word: reached around the
 * poison, so the rest of the allocator's code sees free blocks poisoned. */
static char *link_get(char *b)
{
    UNPOISON(b, sizeof(char *));
    char *n;
    memcpy(&n, b, sizeof(n));
    POISON(b, sizeof(char *));
    return n;
}

static void link_set(char *b, char *next)
{
    UNPOISON(b, sizeof(char *));
    memcpy(b, &next, sizeof(next));
    POISON(b, sizeof(char *));
}

/* ---- blocks ------------------------------------------------------------------------ */

static int in_region(const simnet_slab *s, const void *q)
{
    return (uintptr_t)q - (uintptr_t)s->base <
           atomic_load_explicit(&((simnet_slab *)s)->used, memory_order_relaxed);
}

/* A small block's page and class. */
static page *block_page(const simnet_slab *s, const void *q, unsigned *cls)
{
    page *p = &s->pages[((uintptr_t)q - (uintptr_t)s->base) >> SLOT_SHIFT];
    p -= p->back;
    assert(p->owner); /* a pointer into no page (state is the owner's: not read here) */
    *cls = p->cls;
    return p;
}

/* The page class of a block of n bytes: its size class, and whether n
 * fills it exactly. An exact fit's size is its class's; any other block
 * keeps the size asked for in its own slack, at its end: a uint16
 * (little-endian: the last byte is at most 0x40), or TAIL_ONE when the
 * slack is one byte. A free thus reads the line the caller most likely
 * just used, or nothing, instead of a table. */
static unsigned pclass_of(size_t n)
{
    unsigned c = class_of(n) * 2;
    return c + (n == ci[c].size);
}

/* The block's slack is poisoned under ASan: the tail is reached around it,
 * and the poison then set again from the size. */
static size_t block_size(unsigned cls, const void *q)
{
    size_t cs = ci[cls].size;
    if (cls & 1)
        return cs;
    const unsigned char *b = q;
    UNPOISON(b + cs - 2, 2);
    size_t n = b[cs - 1] == TAIL_ONE ? cs - 1 : ((size_t)b[cs - 1] << 8 | b[cs - 2]);
    POISON(b, cs);
    UNPOISON(b, n);
    return n;
}

/* Records block q's size, n bytes of it live (unpoisoned). */
static void block_set(unsigned cls, void *q, size_t n)
{
    if (cls & 1)
        return;
    size_t cs = ci[cls].size;
    unsigned char *b = q;
    UNPOISON(b + cs - 2, 2);
    if (cs - n == 1) {
        b[cs - 1] = TAIL_ONE;
    } else {
        b[cs - 2] = (unsigned char)n;
        b[cs - 1] = (unsigned char)(n >> 8);
    }
    POISON(b, cs);
    UNPOISON(b, n);
}

static void local_free(const simnet_slab *s, cache *c, page *p, char *q)
{
    link_set(q, p->free);
    p->free = q;
    if (--p->used == 0 && c->avail[p->cls] != p)
        page_release(
            s, c, p); /* the head stays: a class that frees its last block often allocates again */
    else if (p->state == PG_FULL)
        avail_push(c, p);
}

/* Lock-free pushes: only the owner empties the stacks, all at once. */
static void remote_free(page *p, char *q)
{
    uintptr_t old = atomic_load_explicit(&p->remote, memory_order_relaxed);
    /* Only q is written: a block below it on the stack may already be the
     * owner's again (taken, reallocated, even pushed anew), so a pusher
     * must not read or write it. */
    do
        link_set(q, (char *)old);
    while (!atomic_compare_exchange_weak_explicit(&p->remote, &old, (uintptr_t)q,
                                                  memory_order_acq_rel, memory_order_relaxed));
    if (old)
        return; /* the page is on the pending stack already */
    cache *o = p->owner;
    page *h = atomic_load_explicit(&o->pending, memory_order_relaxed);
    do
        p->rnext = h;
    while (!atomic_compare_exchange_weak_explicit(&o->pending, &h, p, memory_order_release,
                                                  memory_order_relaxed));
}

static void *sys_alloc(size_t n)
{
    if (n > SIZE_MAX - sizeof(hdr))
        return NULL;
    hdr *h = malloc(sizeof(*h) + n);
    if (!h)
        return NULL;
    h->size = n;
    h->cls = CLS_SYS;
    h->magic = LIVE;
    return h + 1;
}

/* Takes the blocks other threads freed into the owner's pages. */
static void collect(const simnet_slab *s, cache *c)
{
    page *p = atomic_exchange_explicit(&c->pending, NULL, memory_order_acquire);
    while (p) {
        page *nx = p->rnext; /* before remote empties: p may be pushed again */
        /* Release: the read of rnext comes before the next pusher's write. */
        char *b = (char *)atomic_exchange_explicit(&p->remote, 0, memory_order_acq_rel);
        uint32_t k = 0;
        while (b) {
            char *bn = link_get(b);
            link_set(b, p->free);
            p->free = b;
            b = bn;
            k++;
        }
        p->used -= k;
        if (p->used == 0 && c->avail[p->cls] != p)
            page_release(s, c, p);
        else if (p->state == PG_FULL)
            avail_push(c, p);
        p = nx;
    }
}

/* The blocks at hand go back to their pages. */
static void front_flush(simnet_slab *s, cache *c)
{
    for (unsigned k = 0; k < NCLASS; k++)
        for (front *f = &c->tc[k]; f->n;) {
            unsigned cls;
            char *q = f->v[--f->n];
            local_free(s, c, block_page(s, q, &cls), q);
        }
    c->fronts = 0;
}

/* Whether a page of 2^kind slots would take a new chunk. */
static int needs_chunk(const cache *c, unsigned kind)
{
    for (unsigned k = kind; k < (kind ? kind + 1 : NKIND); k++)
        if (c->empty[k])
            return 0;
    return c->slots_left < (size_t)1 << kind;
}

/* The head of the class's pages with room (full pages leave the list). */
static page *page_with_room(simnet_slab *s, cache *c, unsigned cls)
{
    if (atomic_load_explicit(&c->pending, memory_order_relaxed))
        collect(s, c);
    page *p;
    while ((p = c->avail[cls]) != NULL && !p->free && p->carved == ci[cls].nb) {
        avail_unlink(c, p);
        p->state = PG_FULL;
    }
    if (!p && c->fronts && needs_chunk(c, kind_of(ci[cls].slots))) {
        /* Blocks at hand may be all that keeps pages from emptying: the
         * memory is used again before the region grows. */
        front_flush(s, c);
        return page_with_room(s, c, cls);
    }
    return p ? p : page_new(s, c, cls);
}

static void *small_alloc(simnet_slab *s, size_t n)
{
    unsigned cls = pclass_of(n);
    cache *c = cache_get(s);
    if (!c)
        return NULL;
    front *f = &c->tc[cls];
    if (f->n) {
        char *q = f->v[--f->n];
        c->fronts--;
        UNPOISON(q, n);
        block_set(cls, q, n);
        return q;
    }
    page *p = c->avail[cls];
    if (!p || (!p->free && p->carved == ci[cls].nb))
        if (!(p = page_with_room(s, c, cls)))
            return sys_alloc(n); /* the region is full */
    char *b = p->free;
    if (b) {
        p->free = link_get(b);
        /* The next allocation of the class takes it: its line is likely
         * cold (freed a while ago), so fetch it now, off the critical path. */
        __builtin_prefetch(p->free, 1);
    } else {
        b = mem_of(s, p) + (size_t)p->carved * ci[cls].size;
        p->carved++;
        c->carved += ci[cls].size;
    }
    p->used++;
    UNPOISON(b, n);
    block_set(cls, b, n);
    return b;
}

static void *map_alloc(simnet_slab *s, size_t n)
{
    if (n > SIZE_MAX - sizeof(maphdr) - CHUNK)
        return NULL;
    size_t len = (n + sizeof(maphdr) + CHUNK - 1) & ~(CHUNK - 1);
    maphdr *m = map_aligned(len, PROT_READ | PROT_WRITE);
    if (!m)
        return NULL;
    atomic_fetch_add_explicit(&s->mapped, len, memory_order_relaxed);
    m->len = len;
    m->h.size = n;
    m->h.cls = CLS_MAP;
    m->h.magic = LIVE;
    return &m->h + 1;
}

static hdr *hdr_of(const void *q)
{
    hdr *h = (hdr *)q - 1;
    assert(h->magic == LIVE); /* a double free or a foreign pointer */
    return h;
}

static maphdr *maphdr_of(hdr *h)
{
    return (maphdr *)((char *)h - offsetof(maphdr, h));
}

void *simnet_slab_alloc(simnet_slab *s, size_t n)
{
    if (!s->slabs)
        return sys_alloc(n);
    if (n <= SIMNET_SLAB_MAX)
        return small_alloc(s, n);
    return n < MAP_MIN ? sys_alloc(n) : map_alloc(s, n);
}

void *simnet_slab_calloc(simnet_slab *s, size_t k, size_t n)
{
    if (n && k > SIZE_MAX / n)
        return NULL;
    void *p = simnet_slab_alloc(s, k * n);
    if (p)
        memset(p, 0, k * n);
    return p;
}

size_t simnet_slab_free(simnet_slab *s, void *q)
{
    if (!q)
        return 0;
    size_t n;
    if (in_region(s, q)) {
        slot_info si = s->slots[((uintptr_t)q - (uintptr_t)s->base) >> SLOT_SHIFT];
        unsigned cls = si.cls;
        n = block_size(cls, q);
        POISON(q, ci[cls].size);
        cache *c = cache_get(s);
        if (c && c->idx && si.owner == c->idx) {
            front *f = &c->tc[cls];
            if (f->n < TC_MAX) {
                f->v[f->n++] = q;
                c->fronts++;
                return n;
            }
        }
        page *p = block_page(s, q, &cls);
        if (p->owner == c)
            local_free(s, c, p, q);
        else
            remote_free(p, q);
        return n;
    }
    hdr *h = hdr_of(q);
    n = h->size;
    h->magic = FREED;
    if (h->cls == CLS_SYS) {
        free(h);
    } else {
        maphdr *m = maphdr_of(h);
        atomic_fetch_sub_explicit(&s->mapped, m->len, memory_order_relaxed);
        munmap(m, m->len);
    }
    return n;
}

/* A malloc'd block that stays in malloc's range: realloc may grow it in
 * place and copies at most once. */
static void *sys_realloc(simnet_slab *s, hdr *h, size_t n)
{
    if (s->slabs && (n <= SIMNET_SLAB_MAX || n >= MAP_MIN))
        return NULL;
    if (n > SIZE_MAX - sizeof(hdr))
        return NULL;
    hdr *g = realloc(h, sizeof(*g) + n);
    if (!g)
        return NULL;
    g->size = n;
    return g + 1;
}

void *simnet_slab_realloc(simnet_slab *s, void *q, size_t n)
{
    if (!q)
        return simnet_slab_alloc(s, n);
    size_t old;
    if (in_region(s, q)) {
        unsigned cls = s->slots[((uintptr_t)q - (uintptr_t)s->base) >> SLOT_SHIFT].cls;
        old = block_size(cls, q);
        if (n <= SIMNET_SLAB_MAX && pclass_of(n) == cls) {
            POISON(q, ci[cls].size);
            UNPOISON(q, n);
            block_set(cls, q, n);
            return q;
        }
    } else {
        hdr *h = hdr_of(q);
        if (h->cls == CLS_MAP) {
            /* In place while it wastes no more than three quarters. */
            size_t len = maphdr_of(h)->len;
            if (n <= len - sizeof(maphdr) && n >= len / 4) {
                h->size = n;
                return q;
            }
        } else {
            void *p = sys_realloc(s, h, n);
            if (p)
                return p;
            if (!s->slabs)
                return NULL; /* malloc failed: q stays */
        }
        old = h->size;
    }
    void *p = simnet_slab_alloc(s, n);
    if (!p)
        return NULL;
    memcpy(p, q, old < n ? old : n);
    simnet_slab_free(s, q);
    return p;
}

size_t simnet_slab_size(const simnet_slab *s, const void *q)
{
    if (in_region(s, q)) {
        unsigned cls;
        (void)block_page(s, q, &cls);
        return block_size(cls, q);
    }
    return hdr_of(q)->size;
}

/* ---- the allocator ----------------------------------------------------------------- */

/* SIMNET_SLAB_STATS=1: the first allocator's use of the region, on stderr
 * at exit (the CLI keeps its world to the end). */
static simnet_slab *stats_of;

static void stats_print(void)
{
    simnet_slab *s = stats_of;
    if (s)
        fprintf(stderr, "slab: %zu MiB of chunks, %zu MiB carved now\n",
                atomic_load(&s->used) >> 20, simnet_slab_carved(s) >> 20);
}

static void stats_want(simnet_slab *s)
{
    const char *e = getenv("SIMNET_SLAB_STATS");
    if (!e || !*e || strcmp(e, "0") == 0 || !s->slabs || stats_of)
        return;
    stats_of = s;
    atexit(stats_print);
}

static int want_slabs(simnet_slab_mode mode)
{
    if (mode != SIMNET_SLAB_AUTO)
        return mode == SIMNET_SLAB_SLABS;
#ifdef SLAB_ASAN
    return 0;
#else
    const char *e = getenv("SIMNET_ALLOC");
    return !(e && strcmp(e, "malloc") == 0);
#endif
}

simnet_slab *simnet_slab_new(simnet_slab_mode mode)
{
    pthread_once(&ci_once, ci_init);
    simnet_slab *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    if (pthread_mutex_init(&s->mu, NULL) != 0) {
        free(s);
        return NULL;
    }
    s->slabs = want_slabs(mode);
    s->id = atomic_fetch_add_explicit(&next_id, 1, memory_order_relaxed);
    atomic_init(&s->mapped, 0);
    atomic_init(&s->used, 0);
    if (s->slabs)
        region_reserve(s); /* without one, every block comes from malloc */
    stats_want(s);
    return s;
}

void simnet_slab_del(simnet_slab *s)
{
    if (!s)
        return;
    if (stats_of == s) {
        stats_print();
        stats_of = NULL;
    }
    if (s->base) {
        UNPOISON(s->base, atomic_load(&s->used)); /* ASan keeps its shadow after munmap */
        munmap(s->base, s->reserved);
        munmap(s->pages, s->pages_len);
        munmap(s->slots, s->slots_len);
    }
    while (s->caches) {
        cache *c = s->caches;
        s->caches = c->next;
        free(c);
    }
    pthread_mutex_destroy(&s->mu);
    free(s);
}

int simnet_slab_uses_slabs(const simnet_slab *s)
{
    return s->slabs;
}

size_t simnet_slab_mapped(const simnet_slab *s)
{
    return atomic_load_explicit(&((simnet_slab *)s)->mapped, memory_order_relaxed);
}

size_t simnet_slab_carved(const simnet_slab *s)
{
    size_t sum = 0;
    pthread_mutex_lock(&((simnet_slab *)s)->mu);
    for (const cache *c = s->caches; c; c = c->next)
        sum += c->carved;
    pthread_mutex_unlock(&((simnet_slab *)s)->mu);
    return sum;
}
