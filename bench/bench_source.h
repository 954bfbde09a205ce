/* A bulk source for the benchmarks: writes `left` bytes to a stream in
 * 64 KiB chunks and resumes from on_writable when the stream pushes back.
 * Header-only (each benchmark is one executable). */
#ifndef FLARE_BENCH_SOURCE_H
#define FLARE_BENCH_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#include "flare/host.h"

#define BENCH_SRC_CHUNK 65536

typedef struct src {
    flare_stream *s;
    size_t left;
} src;

static void src_push(src *x)
{
    static const uint8_t zeros[BENCH_SRC_CHUNK];
    while (x->left > 0) {
        size_t n = x->left < BENCH_SRC_CHUNK ? x->left : BENCH_SRC_CHUNK;
        int rv = flare_stream_write(x->s, zeros, BENCH_SRC_CHUNK);
        if (rv < 0)
            return;
        x->left -= n;
        if (rv == 1)
            return; /* on_writable resumes */
    }
}

static void src_writable(flare_stream *s, void *user)
{
    (void)s;
    src_push(user);
}

static const flare_stream_cbs src_cbs = {.on_writable = src_writable};

#endif
