/* Internal allocation helpers over flare_mem. */
#ifndef FLARE_CORE_MEM_H
#define FLARE_CORE_MEM_H

#include "flare/common.h"

static inline const flare_mem *flare__mem(const flare_mem *m)
{
    return m ? m : flare_mem_default();
}
static inline void *flare__malloc(const flare_mem *m, size_t n)
{
    m = flare__mem(m);
    return m->malloc(n, m->user);
}
static inline void *flare__calloc(const flare_mem *m, size_t k, size_t n)
{
    m = flare__mem(m);
    return m->calloc(k, n, m->user);
}
static inline void *flare__realloc(const flare_mem *m, void *p, size_t n)
{
    m = flare__mem(m);
    return m->realloc(p, n, m->user);
}
static inline void flare__free(const flare_mem *m, void *p)
{
    m = flare__mem(m);
    m->free(p, m->user);
}

#endif
