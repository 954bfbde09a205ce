#include <stdlib.h>

#include "flare/common.h"

static void *def_malloc(size_t size, void *user)
{
    (void)user;
    return malloc(size);
}

static void def_free(void *ptr, void *user)
{
    (void)user;
    free(ptr);
}

static void *def_calloc(size_t nmemb, size_t size, void *user)
{
    (void)user;
    return calloc(nmemb, size);
}

static void *def_realloc(void *ptr, size_t size, void *user)
{
    (void)user;
    return realloc(ptr, size);
}

static const flare_mem default_mem = {NULL, def_malloc, def_free, def_calloc, def_realloc};

const flare_mem *flare_mem_default(void)
{
    return &default_mem;
}
