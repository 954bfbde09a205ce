/* The simulation's size-class slab allocator (slab.h). */
#include "simnet/slab.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
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

#define CHUNK   ((size_t)2 << 20) /* one transparent huge page */
#define NCLASS  64
#define CLS_SYS NCLASS            /* from malloc */
#define CLS_MAP (NCLASS + 1)      /* a mapping of its own */
#define MAP_MIN ((size_t)1 << 20) /* blocks this large get their own huge pages */
#define LIVE    0x51ab11feu
#define FREED   0xdeadb10cu

/* Before every block. While the block is free the size field links the
 * free list, so the payload can stay poisoned under ASan. */
typedef struct hdr {
    union {
        size_t size;      /* as asked for: the caller counts exact bytes */
        struct hdr *next; /* on a free list */
    } u;
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

/* A chunk starts with this; the rest is carved into blocks. */
typedef struct chunk {
    struct chunk *next;
    size_t pad;
} chunk;

/* One thread's free lists and the chunk it carves new blocks from. */
typedef struct cache {
    hdr *free[NCLASS];
    char *bump, *end;
    const void *owner; /* the owning thread's &tl */
    struct cache *next;
} cache;

struct simnet_slab {
    int slabs;
    uint64_t id;        /* tells this allocator from an earlier one at the same address */
    pthread_mutex_t mu; /* guards caches and chunks: taken once per thread and per chunk */
    cache *caches;
    chunk *chunks;
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

/* Total block sizes (header included): 16-byte steps up to 256, then eight
 * steps per power of two (at most 12.5 % slack) up to SIMNET_SLAB_MAX. */
static unsigned class_of(size_t t)
{
    if (t <= 256)
        return t <= 16 ? 0 : (unsigned)((t - 1) / 16);
    size_t m = t - 1;
    unsigned k = 63u - (unsigned)__builtin_clzll((unsigned long long)m); /* 8..13 */
    return 16 + (k - 8) * 8 + (unsigned)(m >> (k - 3)) - 8;
}

static size_t class_size(unsigned cls)
{
    if (cls < 16)
        return (size_t)(cls + 1) * 16;
    unsigned k = 8 + (cls - 16) / 8, j = (cls - 16) % 8;
    return ((size_t)1 << k) + (size_t)(j + 1) * ((size_t)1 << (k - 3));
}
_Static_assert(SIMNET_SLAB_MAX == 16384, "class_of covers 16 B .. 16 KiB in 64 classes");

/* ---- memory from the OS ------------------------------------------------------------ */

/* len bytes (a multiple of CHUNK) aligned to CHUNK, so the kernel can back
 * them with huge pages; advised so even in THP's madvise mode. */
static void *map_aligned(size_t len)
{
    size_t span = len + CHUNK;
    char *p = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    char *a = (char *)(((uintptr_t)p + CHUNK - 1) & ~(uintptr_t)(CHUNK - 1));
    if (a > p)
        munmap(p, (size_t)(a - p));
    size_t tail = (size_t)((p + span) - (a + len));
    if (tail)
        munmap(a + len, tail);
#ifdef MADV_HUGEPAGE
    madvise(a, len, MADV_HUGEPAGE); /* only advice: 4 KiB pages work too */
#endif
    return a;
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

/* A fresh chunk for c to carve from. The rest of the old one (less than
 * one block of the class asked for, at most SIMNET_SLAB_MAX) is left. */
static int cache_refill(simnet_slab *s, cache *c)
{
    chunk *k = map_aligned(CHUNK);
    if (!k)
        return -1;
    POISON(k + 1, CHUNK - sizeof(*k));
    atomic_fetch_add_explicit(&s->mapped, CHUNK, memory_order_relaxed);
    pthread_mutex_lock(&s->mu);
    k->next = s->chunks;
    s->chunks = k;
    pthread_mutex_unlock(&s->mu);
    c->bump = (char *)(k + 1);
    c->end = (char *)k + CHUNK;
    return 0;
}

static hdr *carve(simnet_slab *s, cache *c, size_t size)
{
    if ((size_t)(c->end - c->bump) < size && cache_refill(s, c) != 0)
        return NULL;
    hdr *h = (hdr *)c->bump;
    c->bump += size;
    return h;
}

/* ---- blocks ------------------------------------------------------------------------ */

static void *small_alloc(simnet_slab *s, size_t n, unsigned cls)
{
    cache *c = cache_get(s);
    if (!c)
        return NULL;
    hdr *h = c->free[cls];
    if (h)
        c->free[cls] = h->u.next;
    else if (!(h = carve(s, c, class_size(cls))))
        return NULL;
    UNPOISON(h, sizeof(*h) + n);
    h->u.size = n;
    h->cls = cls;
    h->magic = LIVE;
    return h + 1;
}

static void *sys_alloc(size_t n)
{
    if (n > SIZE_MAX - sizeof(hdr))
        return NULL;
    hdr *h = malloc(sizeof(*h) + n);
    if (!h)
        return NULL;
    h->u.size = n;
    h->cls = CLS_SYS;
    h->magic = LIVE;
    return h + 1;
}

static void *map_alloc(simnet_slab *s, size_t n)
{
    if (n > SIZE_MAX - sizeof(maphdr) - CHUNK)
        return NULL;
    size_t len = (n + sizeof(maphdr) + CHUNK - 1) & ~(CHUNK - 1);
    maphdr *m = map_aligned(len);
    if (!m)
        return NULL;
    atomic_fetch_add_explicit(&s->mapped, len, memory_order_relaxed);
    m->len = len;
    m->h.u.size = n;
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
    if (n <= SIMNET_SLAB_MAX - sizeof(hdr))
        return small_alloc(s, n, class_of(n + sizeof(hdr)));
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

void simnet_slab_free(simnet_slab *s, void *q)
{
    if (!q)
        return;
    hdr *h = hdr_of(q);
    h->magic = FREED;
    if (h->cls < NCLASS) {
        /* The freeing thread adopts the block: no remote-free protocol,
         * and the threads' flows of packets roughly balance. */
        cache *c = cache_get(s);
        if (!c)
            return; /* out of memory for a cache: the block waits for slab_del */
        POISON(q, class_size(h->cls) - sizeof(*h));
        h->u.next = c->free[h->cls];
        c->free[h->cls] = h;
    } else if (h->cls == CLS_SYS) {
        free(h);
    } else {
        maphdr *m = maphdr_of(h);
        atomic_fetch_sub_explicit(&s->mapped, m->len, memory_order_relaxed);
        munmap(m, m->len);
    }
}

/* Whether q's block can hold n bytes without moving and without wasting
 * much of a large one. */
static int fits_in_place(simnet_slab *s, hdr *h, size_t n)
{
    if (h->cls < NCLASS)
        return n <= SIMNET_SLAB_MAX - sizeof(hdr) && class_of(n + sizeof(hdr)) == h->cls;
    if (h->cls == CLS_MAP) {
        size_t len = maphdr_of(h)->len;
        return n <= len - sizeof(maphdr) && n >= len / 4;
    }
    (void)s;
    return 0;
}

/* A malloc'd block that stays in malloc's range: realloc may grow it in
 * place and copies at most once. */
static void *sys_realloc(simnet_slab *s, hdr *h, size_t n)
{
    if (s->slabs && (n <= SIMNET_SLAB_MAX - sizeof(hdr) || n >= MAP_MIN))
        return NULL;
    if (n > SIZE_MAX - sizeof(hdr))
        return NULL;
    hdr *g = realloc(h, sizeof(*g) + n);
    if (!g)
        return NULL;
    g->u.size = n;
    return g + 1;
}

void *simnet_slab_realloc(simnet_slab *s, void *q, size_t n)
{
    if (!q)
        return simnet_slab_alloc(s, n);
    hdr *h = hdr_of(q);
    if (fits_in_place(s, h, n)) {
        if (h->cls < NCLASS) {
            POISON(q, class_size(h->cls) - sizeof(*h));
            UNPOISON(q, n);
        }
        h->u.size = n;
        return q;
    }
    if (h->cls == CLS_SYS) {
        void *p = sys_realloc(s, h, n);
        if (p)
            return p;
        if (!s->slabs)
            return NULL; /* malloc failed: q stays */
    }
    size_t old = h->u.size;
    void *p = simnet_slab_alloc(s, n);
    if (!p)
        return NULL;
    memcpy(p, q, old < n ? old : n);
    simnet_slab_free(s, q);
    return p;
}

size_t simnet_slab_size(const void *q)
{
    return hdr_of(q)->u.size;
}

/* ---- the allocator ----------------------------------------------------------------- */

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
    return s;
}

void simnet_slab_del(simnet_slab *s)
{
    if (!s)
        return;
    while (s->chunks) {
        chunk *k = s->chunks;
        s->chunks = k->next;
        UNPOISON(k, CHUNK); /* ASan keeps its shadow after munmap */
        munmap(k, CHUNK);
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
