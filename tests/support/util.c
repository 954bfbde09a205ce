#include <stdlib.h>

#include "support/test.h"

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

size_t flare_test_unhex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = strlen(hex);
    assert_int_equal(n % 2, 0);
    assert_true(n / 2 <= cap);
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        assert_true(hi >= 0 && lo >= 0);
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return n / 2;
}

char *flare_test_read_source_file(const char *rel, size_t *len)
{
    const char *dir = getenv("FLARE_SOURCE_DIR");
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir ? dir : ".", rel);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        free(buf);
        return NULL;
    }
    fclose(f);
    buf[n] = 0;
    if (len)
        *len = (size_t)n;
    return buf;
}

/* A size header before each block. */
static void *h_malloc(size_t n, void *u)
{
    size_t *p = malloc(n + sizeof(max_align_t));
    if (!p)
        return NULL;
    *p = n;
    flare_test_heap *h = u;
    h->bytes += (long)n;
    if (h->bytes > h->peak)
        h->peak = h->bytes;
    return (char *)p + sizeof(max_align_t);
}

static void h_free(void *q, void *u)
{
    if (!q)
        return;
    size_t *p = (size_t *)(void *)((char *)q - sizeof(max_align_t));
    ((flare_test_heap *)u)->bytes -= (long)*p;
    free(p);
}

static void *h_calloc(size_t k, size_t n, void *u)
{
    void *q = h_malloc(k * n, u);
    if (q)
        memset(q, 0, k * n);
    return q;
}

static void *h_realloc(void *q, size_t n, void *u)
{
    if (!q)
        return h_malloc(n, u);
    size_t old = *(size_t *)(void *)((char *)q - sizeof(max_align_t));
    void *r = h_malloc(n, u);
    if (!r)
        return NULL;
    memcpy(r, q, old < n ? old : n);
    h_free(q, u);
    return r;
}

flare_mem flare_test_heap_mem(flare_test_heap *heap)
{
    return (flare_mem){heap, h_malloc, h_free, h_calloc, h_realloc};
}
