/* The libuv driver's tests' set-up: a loop with the flare driver on it and a
 * 10 s watchdog that stops the loop and sets timed_out (it does not keep
 * the loop alive). Header-only, and apart from helpers.h so that only these
 * tests see <uv.h>. */
#ifndef FLARE_TEST_UV_ENV_H
#define FLARE_TEST_UV_ENV_H

#include <string.h>
#include <uv.h>

#include "flare/uvio.h"

typedef struct flare_test_uv {
    uv_loop_t loop;
    uv_timer_t guard;
    flare_uvio *u;
    flare_io *io;
    int timed_out;
} flare_test_uv;

static void flare_test_uv_guard(uv_timer_t *t)
{
    flare_test_uv *e = t->data;
    e->timed_out = 1;
    uv_stop(&e->loop);
}

/* Returns 0, or the uv_loop_init / flare_uvio_new error. */
static inline int flare_test_uv_init(flare_test_uv *e)
{
    memset(e, 0, sizeof(*e));
    int rv = uv_loop_init(&e->loop);
    if (rv || (rv = flare_uvio_new(&e->u, &e->loop, NULL)))
        return rv;
    e->io = flare_uvio_io(e->u);
    uv_timer_init(&e->loop, &e->guard);
    e->guard.data = e;
    uv_timer_start(&e->guard, flare_test_uv_guard, 10000, 0);
    uv_unref((uv_handle_t *)&e->guard);
    return 0;
}

/* Deletes the driver and closes the loop: returns uv_loop_close's result
 * (UV_EBUSY when a handle of the driver was left open). */
static inline int flare_test_uv_free(flare_test_uv *e)
{
    flare_uvio_del(e->u);
    uv_close((uv_handle_t *)&e->guard, NULL);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    return uv_loop_close(&e->loop);
}

#endif
