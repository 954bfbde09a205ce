/* WebSocket dials by name on the libuv driver (real resolver, loopback): a
 * /dns4/localhost address reaches a ws listener, and a host deleted while
 * its name lookup is in flight leaves nothing behind (the lookup's late
 * callback only frees it). */
#include <uv.h>

#include "support/test.h"

#include "flare/host.h"
#include "flare/uvio.h"

static void on_dial(flare_host *h, flare_conn *c, int status, void *user)
{
    (void)h;
    (void)c;
    *(int *)user = status;
}

static flare_host *make_host(flare_uvio *u, uint8_t seedb)
{
    uint8_t seed[32] = {seedb};
    flare_privkey k;
    assert_int_equal(flare_privkey_from_seed(&k, seed), 0);
    flare_host *h = NULL;
    assert_int_equal(flare_host_new(&h, flare_uvio_io(u), &k, NULL, NULL), 0);
    return h;
}

static void run_until(uv_loop_t *loop, int *flag, int ms)
{
    uint64_t end = uv_now(loop) + (uint64_t)ms;
    while (*flag == 1 && uv_now(loop) < end)
        uv_run(loop, UV_RUN_ONCE);
}

static void test_dial_by_name(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    flare_uvio *u;
    assert_int_equal(flare_uvio_new(&u, &loop, NULL), 0);
    flare_host *a = make_host(u, 1), *b = make_host(u, 2);
    flare_multiaddr ma;
    assert_int_equal(flare_multiaddr_parse(&ma, "/ip4/127.0.0.1/tcp/0/ws"), 0);
    assert_int_equal(flare_host_listen(a, &ma), 0);
    assert_int_equal(flare_host_listen_addrs(a, &ma, 1), 1);
    char s[256], d[300];
    flare_multiaddr_to_string(&ma, s, sizeof(s));
    const char *port = strstr(s, "/tcp/");
    assert_non_null(port);
    snprintf(d, sizeof(d), "/dns4/localhost%s", port);
    assert_int_equal(flare_multiaddr_parse(&ma, d), 0);
    assert_int_equal(flare_multiaddr_with_peerid(&ma, flare_host_peerid(a)), 0);
    int status = 1;
    assert_int_equal(flare_host_dial(b, &ma, NULL, on_dial, &status), 0);
    run_until(&loop, &status, 5000);
    assert_int_equal(status, 0);
    flare_conn *c = flare_host_conn_to(b, flare_host_peerid(a));
    assert_non_null(c);
    assert_string_equal(flare_conn_transport(c), "ws");
    /* A second host starts a lookup and is deleted at once. */
    flare_host *e = make_host(u, 3);
    int st2 = 1;
    assert_int_equal(flare_host_dial(e, &ma, NULL, on_dial, &st2), 0);
    flare_host_del(e);
    flare_host_del(a);
    flare_host_del(b);
    flare_uvio_del(u);
    uv_run(&loop, UV_RUN_DEFAULT); /* the lookup ends here, cancelled */
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_dial_by_name)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
