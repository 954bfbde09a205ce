/* get_value with a quorum, on the simulator: 12 public DHT servers with a
 * test namespace "/v/" whose values are a version byte (higher wins) and
 * whose 0xff values are invalid. Most servers hold a stale version, two an
 * invalid value, one the newest. A full lookup (quorum 0) returns the
 * newest, and afterwards every server that held something else has been
 * corrected to it; the querier's own stale copy too. A quorum of 2 ends
 * the lookup after two valid records, with fewer requests. */
#include <stdlib.h>

#include "support/test.h"

#include "flare/host.h"
#include "flare/kad.h"
#include "flare/sim.h"
#include "services/kad_svc.h"
#include "support/helpers.h"
#include "support/kad_world.h"

#define MS   FLARE_NS_PER_MS
#define S    FLARE_NS_PER_S
#define NPUB 12

static int reject_ff; /* off while the test plants invalid values */

static int v_validate(const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen, void *user)
{
    (void)key, (void)klen, (void)user;
    return vlen == 1 && (!reject_ff || val[0] != 0xff) ? 0 : FLARE_ERR_MALFORMED;
}

static int v_select(const uint8_t *key, size_t klen, const uint8_t *a, size_t alen,
                    const uint8_t *b, size_t blen, void *user)
{
    (void)key, (void)klen, (void)alen, (void)blen, (void)user;
    int va = a[0] == 0xff ? -1 : a[0], vb = b[0] == 0xff ? -1 : b[0];
    return vb > va ? 1 : 0;
}

static const flare__kad_validator v_validator = {"v", v_validate, v_select, NULL};

typedef struct world {
    flare_sim *sim;
    flare_test_kad_node n[NPUB];
} world;

static void run_s(world *w, double s)
{
    flare_test_kad_run_s(w->sim, s);
}

typedef struct got {
    int calls, status;
    uint8_t v;
    size_t len;
} got;

static void value_cb(flare_host *h, int status, const uint8_t *value, size_t len, void *user)
{
    got *g = user;
    (void)h;
    g->calls++;
    g->status = status;
    g->len = len;
    g->v = len ? value[0] : 0;
}

static const uint8_t KEY[] = "/v/name";
#define KLEN (sizeof(KEY) - 1)

static void plant(world *w, int i, uint8_t v)
{
    flare__kad_records *r = &kad_get(w->n[i].h)->recs;
    /* Drop what is there: an older version must be storable. */
    flare__kad_records_free(r);
    assert_int_equal(flare__kad_records_put(r, KEY, KLEN, &v, 1, flare_io_now(w->n[i].h->io)), 0);
}

static int held(world *w, int i)
{
    const flare__kad_record *r =
        flare__kad_records_get(&kad_get(w->n[i].h)->recs, KEY, KLEN, flare_io_now(w->n[i].h->io));
    return r ? r->val[0] : -1;
}

static void plant_all(world *w)
{
    reject_ff = 0;
    for (int i = 1; i < NPUB; i++)
        plant(w, i, 1); /* stale */
    plant(w, 3, 0xff);  /* invalid */
    plant(w, 7, 0xff);
    plant(w, 9, 3); /* the newest */
    plant(w, 0, 1); /* the querier's own copy is stale too */
    reject_ff = 1;
}

/* A public server that knows validator v's keys. */
static void make_node(void *wv, int i, flare_sim_lan *lan, const char *ip)
{
    world *w = wv;
    flare_test_kad_node *n = &w->n[i];
    flare_host_settings c;
    flare_test_settings_default(&c);
    flare_test_host_spec sp = {
        .name = "pub", .lan = lan, .ip = ip, .seed = {(uint8_t)(i + 1), 0x71}, .cfg = &c};
    flare_test_kad_node_make(w->sim, n, &sp);
    flare_kad_settings ks;
    flare_kad_settings_default(&ks);
    assert_int_equal(ks.get_quorum, 0);
    ks.mode = FLARE_KAD_MODE_SERVER;
    ks.request_timeout = 5 * S;
    const flare_test_kad_node *boot = &w->n[0];
    flare_test_kad_enable(n->h, &ks, &boot, i ? 1 : 0);
    assert_int_equal(flare__kad_records_add_validator(&kad_get(n->h)->recs, &v_validator), 0);
}

static void test_quorum(void **state)
{
    (void)state;
    world *w = calloc(1, sizeof(*w));
    w->sim = flare_sim_new(21, NULL);
    flare_test_kad_add_public(w->sim, 3, 0, NPUB, make_node, w);
    run_s(w, 30);
    assert_true(flare_kad_routing_table_size(w->n[0].h) >= NPUB - 1);

    /* The whole lookup: the newest valid version wins over the stale and
     * the invalid ones, and whoever did not hold it is corrected. */
    plant_all(w);
    kad_t *k0 = kad_get(w->n[0].h);
    uint64_t sent = k0->rpcs_sent;
    got g = {0};
    assert_int_equal(flare_kad_get_value(w->n[0].h, KEY, KLEN, value_cb, &g), 0);
    for (int i = 0; i < 200 && !g.calls; i++)
        run_s(w, 0.1);
    assert_int_equal(g.calls, 1);
    assert_int_equal(g.status, 0);
    assert_int_equal(g.len, 1);
    assert_int_equal(g.v, 3);
    uint64_t full = k0->rpcs_sent - sent;
    run_s(w, 5);
    for (int i = 0; i < NPUB; i++)
        assert_int_equal(held(w, i), 3);
    assert_int_equal(g.calls, 1);

    /* A quorum of 2 stops early: a valid version, with fewer requests. */
    plant_all(w);
    sent = k0->rpcs_sent;
    got q = {0};
    assert_int_equal(flare_kad_get_value_quorum(w->n[0].h, KEY, KLEN, 2, value_cb, &q), 0);
    for (int i = 0; i < 200 && !q.calls; i++)
        run_s(w, 0.1);
    assert_int_equal(q.status, 0);
    assert_true(q.v == 1 || q.v == 3);
    assert_true(k0->rpcs_sent - sent < full);
    run_s(w, 5);

    /* Only invalid records anywhere: not found, nothing is "corrected". */
    reject_ff = 0;
    for (int i = 0; i < NPUB; i++)
        plant(w, i, 0xff);
    reject_ff = 1;
    got n = {0};
    assert_int_equal(flare_kad_get_value(w->n[0].h, KEY, KLEN, value_cb, &n), 0);
    for (int i = 0; i < 200 && !n.calls; i++)
        run_s(w, 0.1);
    assert_int_equal(n.status, FLARE_ERR_NOT_FOUND);
    run_s(w, 5);
    for (int i = 0; i < NPUB; i++)
        assert_int_equal(held(w, i), 0xff);

    for (int i = 0; i < NPUB; i++)
        flare_host_del(w->n[i].h);
    flare_sim_del(w->sim);
    free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quorum),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
