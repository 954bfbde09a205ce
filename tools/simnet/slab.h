/* A size-class slab allocator for the simulation (simnet's w->mem backend).
 *
 * Why: a simulated internet of thousands of hosts holds gigabytes in millions
 * of small blocks; with glibc malloc the simulator spends a tenth of its time
 * in malloc/free and, worse, its working set is spread over 4 KiB pages, so
 * nearly every access misses the TLB. Here small blocks (up to
 * SIMNET_SLAB_MAX bytes) are carved from 2 MiB-aligned chunks advised as
 * transparent huge pages, in pages of one size class that each belong to
 * one thread: no locks on the owner's path, no coalescing, and one TLB
 * entry covers 2 MiB.
 *
 * Blocks carry no header: a page (64 KiB to 512 KiB of a chunk) holds
 * blocks of one class. What a free needs is found from the address alone,
 * in compact tables outside the chunks: two bytes per 64 KiB slot (its
 * class and owning thread), a 64-byte descriptor per slot (the page's free
 * list and counts), and a bit per 16-byte granule that is set when a block
 * holds exactly its class size; any other block keeps the size asked for
 * in its own slack, at its end, so the caller can count exact live bytes
 * (simnet_slab_size) without a per-block table. The chunks come from one
 * reserved range of address space, which also tells small blocks from
 * large ones (those keep a 16-byte header).
 *
 * Threads: every thread has its own cache (the pages it took, by class,
 * and up to 15 free blocks per class at hand: a thread that frees its own
 * block and allocates again in the class touches no page). A block may be
 * freed on any thread (a packet allocated in one partition of the
 * parallel simulator and freed in another): it goes back to its page
 * through a lock-free stack the owner empties when it needs room. A page
 * whose blocks are all free serves any class of its owner, so memory
 * freed in one class does not sit idle while another maps more (the
 * blocks at hand go back to their pages before a thread takes a new
 * chunk).
 *
 * Memory goes back to the OS only at simnet_slab_del (whole chunks), except
 * large blocks (mapped on their own or from malloc), which are freed at
 * once: freed pages stay resident, as touching memory anew is what costs. */
#ifndef FLARE_SIMNET_SLAB_H
#define FLARE_SIMNET_SLAB_H

#include <stddef.h>

/* Blocks up to this many bytes come from the size classes; larger ones
 * from malloc or mmap. */
#define SIMNET_SLAB_MAX 16384

typedef enum simnet_slab_mode {
    /* The slabs, except under AddressSanitizer, where malloc keeps ASan's
     * quarantine catching use-after-free in the code under test. */
    SIMNET_SLAB_AUTO,
    SIMNET_SLAB_SLABS,  /* the slabs in every build (the allocator's tests) */
    SIMNET_SLAB_SYSTEM, /* malloc for every block (for comparisons) */
} simnet_slab_mode;

typedef struct simnet_slab simnet_slab;

/* NULL when out of memory. AUTO also honours SIMNET_ALLOC=malloc in the
 * environment, to compare against glibc with the same binary. With
 * SIMNET_SLAB_STATS=1 the first allocator's chunk and carved bytes are
 * printed on stderr at exit (or at simnet_slab_del). */
simnet_slab *simnet_slab_new(simnet_slab_mode mode);
/* Frees every chunk: blocks still allocated become invalid. NULL is a no-op. */
void simnet_slab_del(simnet_slab *s);
/* 1 when the slabs serve small blocks, 0 when everything goes to malloc. */
int simnet_slab_uses_slabs(const simnet_slab *s);

/* Aligned to 16 bytes; NULL when out of memory. n may be 0. */
void *simnet_slab_alloc(simnet_slab *s, size_t n);
void *simnet_slab_calloc(simnet_slab *s, size_t k, size_t n);
/* Keeps the first min(old, n) bytes; q NULL allocates. On failure returns
 * NULL and q stays valid. */
void *simnet_slab_realloc(simnet_slab *s, void *q, size_t n);
/* Returns the size q had (0 for NULL, a no-op). Any thread may free any
 * block. */
size_t simnet_slab_free(simnet_slab *s, void *q);
/* The size q was allocated (or last reallocated) with. */
size_t simnet_slab_size(const simnet_slab *s, const void *q);

/* Bytes in chunks and large mappings now held from the OS (statistics). */
size_t simnet_slab_mapped(const simnet_slab *s);
/* Bytes of size-class blocks handed out at least once, class sizes (what
 * the blocks take of the chunks; statistics). */
size_t simnet_slab_carved(const simnet_slab *s);

#endif
