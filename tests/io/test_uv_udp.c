/* libuv driver, UDP batching: datagrams sent while a socket is corked leave
 * together (sendmmsg, UDP GSO runs) and arrive intact and in order, mixed
 * sizes and destinations included; a second corked socket sends at once;
 * closing a corked socket sends its queue; FLARE_IO_UDP_BATCH reports the
 * end of each read batch. */
#include "support/test.h"

#include "flare/uvio.h"
#include "support/uv_env.h"

typedef flare_test_uv env; /* support/uv_env.h */

static void env_init(env *e)
{
    assert_int_equal(flare_test_uv_init(e), 0);
}

static void env_free(env *e)
{
    assert_int_equal(flare_test_uv_free(e), 0);
}

#define MAXD 160

/* A receiver: datagram i (sent i-th to it) has size sz[i] and every byte
 * i; order[] records the arrival order. */
typedef struct rx {
    env *e;
    flare_io_udp *u;
    flare_ipaddr addr;
    size_t sz[MAXD];
    int order[MAXD];
    int want, stop_at, got, ends, bad, last_was_end;
} rx;

static void rx_cb(flare_io_udp *u, const flare_ipaddr *from, const uint8_t *d, size_t n, void *user)
{
    rx *r = user;
    (void)u;
    if (!d) {
        assert_null(from);
        assert_int_equal(n, 0);
        r->ends++;
        r->last_was_end = 1;
        if (r->got == (r->stop_at ? r->stop_at : r->want))
            uv_stop(&r->e->loop);
        return;
    }
    r->last_was_end = 0;
    int i = n > 0 ? d[0] : -1;
    if (r->got >= MAXD || i < 0 || i >= r->want || n != r->sz[i]) {
        r->bad++;
        return;
    }
    r->order[r->got++] = i;
    for (size_t k = 0; k < n; k++)
        if (d[k] != (uint8_t)i)
            r->bad++;
}

static void rx_open(env *e, rx *r)
{
    memset(r, 0, sizeof(*r));
    r->e = e;
    flare_ipaddr lo;
    flare_ipaddr_v4(&lo, 127, 0, 0, 1, 0);
    assert_int_equal(e->io->ops->udp_bind(e->io, &lo, FLARE_IO_UDP_BATCH, rx_cb, r, &r->u), 0);
    assert_int_equal(e->io->ops->udp_addr(r->u, &r->addr), 0);
}

static void no_rx(flare_io_udp *u, const flare_ipaddr *from, const uint8_t *d, size_t n, void *user)
{
    (void)u;
    (void)from;
    (void)d;
    (void)n;
    (void)user;
}

static flare_io_udp *tx_open(env *e)
{
    flare_ipaddr lo;
    flare_io_udp *u;
    flare_ipaddr_v4(&lo, 127, 0, 0, 1, 0);
    assert_int_equal(e->io->ops->udp_bind(e->io, &lo, 0, no_rx, NULL, &u), 0);
    return u;
}

static void send_to(env *e, flare_io_udp *u, rx *r, size_t len)
{
    static uint8_t buf[2000];
    int i = r->want++;
    assert_true(i < MAXD && i < 256 && len >= 1 && len <= sizeof(buf));
    r->sz[i] = len;
    memset(buf, i, len);
    assert_int_equal(e->io->ops->udp_send(u, &r->addr, buf, len), 0);
}

static void run(env *e)
{
    uv_run(&e->loop, UV_RUN_DEFAULT);
    assert_false(e->timed_out);
}

/* Runs of equal sizes (GSO), a short one ending a run, sizes growing again,
 * two destinations interleaved, and more than one queue's worth. */
static void test_cork_mixed(void **state)
{
    (void)state;
    env e;
    rx r1, r2;
    env_init(&e);
    rx_open(&e, &r1);
    rx_open(&e, &r2);
    flare_io_udp *a = tx_open(&e);
    assert_non_null(e.io->ops->udp_cork);
    e.io->ops->udp_cork(a, 1);
    e.io->ops->udp_cork(a, 1); /* nested */
    for (int i = 0; i < 30; i++)
        send_to(&e, a, &r1, 1200);
    send_to(&e, a, &r1, 300);
    send_to(&e, a, &r1, 1200);
    send_to(&e, a, &r2, 1200);
    send_to(&e, a, &r1, 1200);
    send_to(&e, a, &r2, 1);
    for (int i = 0; i < 80; i++) /* past the queue's 64 datagrams */
        send_to(&e, a, &r1, 100 + (size_t)(i % 3) * 200);
    e.io->ops->udp_cork(a, 0);
    e.io->ops->udp_cork(a, 0);
    while (r1.got < r1.want || r2.got < r2.want)
        run(&e);
    assert_int_equal(r1.got, r1.want);
    assert_int_equal(r2.got, r2.want);
    assert_int_equal(r1.bad + r2.bad, 0);
    for (int i = 0; i < r1.got; i++)
        assert_int_equal(r1.order[i], i);
    for (int i = 0; i < r2.got; i++)
        assert_int_equal(r2.order[i], i);
    assert_true(r1.ends >= 1);
    e.io->ops->udp_close(a);
    e.io->ops->udp_close(r1.u);
    e.io->ops->udp_close(r2.u);
    env_free(&e);
}

/* While one socket holds the queue, another corked socket sends at once;
 * closing a corked socket sends what it queued. */
static void test_cork_two_and_close(void **state)
{
    (void)state;
    env e;
    rx r;
    env_init(&e);
    rx_open(&e, &r);
    flare_io_udp *a = tx_open(&e), *b = tx_open(&e);
    e.io->ops->udp_cork(a, 1);
    e.io->ops->udp_cork(b, 1);
    send_to(&e, a, &r, 700);
    send_to(&e, b, &r, 800); /* at once: a holds the queue */
    r.stop_at = 1;           /* stop once b's datagram is in */
    run(&e);                 /* b's arrives, a's waits in the queue */
    assert_int_equal(r.got, 1);
    assert_int_equal(r.order[0], 1);
    r.stop_at = 0;
    e.io->ops->udp_close(a); /* sends a's queue */
    e.io->ops->udp_cork(b, 0);
    run(&e);
    assert_int_equal(r.got, 2);
    assert_int_equal(r.order[1], 0);
    assert_int_equal(r.bad, 0);
    assert_true(r.last_was_end);
    e.io->ops->udp_close(b);
    e.io->ops->udp_close(r.u);
    env_free(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cork_mixed),
        cmocka_unit_test(test_cork_two_and_close),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
