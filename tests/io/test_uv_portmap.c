/* The libuv driver's port mapping helpers that need no network: the default
 * gateway from /proc/net/route agrees with `ip route`'s view (when the
 * machine has a default route), and family 6 is not offered. UPnP itself
 * is exercised in the NAT lab (lab/scenarios/portmap.sh), where a router
 * namespace runs miniupnpd. */
#include "support/test.h"

#include <stdio.h>
#include <string.h>

#include "flare/uvio.h"

static void test_gateway(void **state)
{
    (void)state;
    uv_loop_t loop;
    flare_uvio *u;
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(flare_uvio_new(&u, &loop, NULL), 0);
    flare_io *io = flare_uvio_io(u);
    assert_non_null(io->ops->gateway);
    assert_non_null(io->ops->upnp);
    flare_ipaddr gw, local;
    assert_int_equal(io->ops->gateway(io, 6, &gw, &local), FLARE_ERR_UNSUPPORTED);
    int rv = io->ops->gateway(io, 4, &gw, &local);
    /* The kernel's own answer: the first default route's gateway. */
    FILE *p = popen("ip -4 route show default 2>/dev/null | awk '{print $3; exit}'", "r");
    char want[64] = "";
    if (p) {
        if (!fgets(want, sizeof(want), p))
            want[0] = 0;
        pclose(p);
    }
    want[strcspn(want, "\n")] = 0;
    if (want[0]) {
        assert_int_equal(rv, 0);
        flare_ipaddr w;
        assert_int_equal(flare_ipaddr_parse(&w, want), 0);
        assert_true(flare_ipaddr_same_ip(&gw, &w));
        assert_int_equal(local.family, 4);
    } else {
        assert_int_equal(rv, FLARE_ERR_NOT_FOUND);
    }
    flare_io_upnp_req bad = {0};
    flare_io_upnp *op;
    assert_int_not_equal(io->ops->upnp(io, &bad, NULL, NULL, &op), 0); /* not IPv4 */
    flare_uvio_del(u);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gateway),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
