/* flare's own signed peer record, on the simulator: B's identify answer
 * carries a record that flare's verifier opens (B's key, B's peer ID, the
 * peer-record domain and type) and that lists B's listen addresses; asking
 * again with the addresses unchanged gives the same record (no re-signing);
 * a new listen address gives a new record with a higher sequence number
 * that lists it, and A's peerstore then holds it. */
#include <stdlib.h>

#include "support/test.h"

#include "flare/host.h"
#include "flare/identify.h"
#include "flare/lpframe.h"
#include "flare/peer_record.h"

#define MS FLARE_NS_PER_MS

typedef struct ask {
    flare_buf in;
    int done;
} ask;

static void ask_data(flare_stream *s, const uint8_t *d, size_t n, void *user)
{
    ask *a = user;
    (void)s;
    assert_int_equal(flare_buf_append(&a->in, d, n), 0);
}

static void ask_eof(flare_stream *s, void *user)
{
    ask *a = user;
    a->done = 1;
    flare_stream_close_write(s);
}

static const flare_stream_cbs ask_cbs = {.on_data = ask_data, .on_eof = ask_eof};

/* A asks B's identify itself; returns the envelope bytes B sent. */
static void ask_record(flare_sim *sim, flare_host *a, flare_host *b, flare_buf *env)
{
    ask q = {0};
    flare_buf_init(&q.in, NULL);
    assert_int_equal(
        flare_host_new_stream(a, flare_host_peerid(b), FLARE_IDENTIFY_ID, &ask_cbs, &q, 0, NULL),
        0);
    for (int i = 0; i < 50 && !q.done; i++)
        flare_sim_run_for(sim, 100 * MS);
    assert_true(q.done);
    const uint8_t *msg;
    size_t len;
    assert_true(flare_lpframe_parse(q.in.base, q.in.len, FLARE_IDENTIFY_MAX_MSG, &msg, &len) > 0);
    flare_identify_msg m;
    assert_int_equal(flare_identify_decode(&m, msg, len, NULL), 0);
    assert_non_null(m.signed_record);
    env->len = 0;
    assert_int_equal(flare_buf_append(env, m.signed_record, m.signed_record_len), 0);
    flare_identify_msg_free(&m);
    flare_buf_free(&q.in);
}

static int lists(const flare_peer_record *r, const flare_multiaddr *ma)
{
    for (size_t i = 0; i < r->naddrs; i++)
        if (r->addrs[i].len == ma->len && memcmp(r->addrs[i].data, ma->bytes, ma->len) == 0)
            return 1;
    return 0;
}

static void test_own_record(void **state)
{
    (void)state;
    flare_sim *sim = flare_sim_new(3, NULL);
    flare_test_pair pr;
    assert_int_equal(flare_test_pair_make(sim, &pr, NULL, NULL), 0);
    flare_host *a = pr.a, *b = pr.b;
    flare_multiaddr l1, l2;
    assert_int_equal(flare_multiaddr_parse(&l1, "/ip4/198.51.100.2/tcp/4001"), 0);
    assert_int_equal(flare_multiaddr_parse(&l2, "/ip4/198.51.100.2/tcp/4002"), 0);
    assert_int_equal(flare_host_dial(a, &pr.bma, NULL, NULL, NULL), 0);
    flare_sim_run_for(sim, 2000 * MS);

    flare_buf e1, e2, e3;
    flare_buf_init(&e1, NULL);
    flare_buf_init(&e2, NULL);
    flare_buf_init(&e3, NULL);
    ask_record(sim, a, b, &e1);
    flare_peer_record r1, r3;
    flare_envelope env;
    assert_int_equal(flare_peer_record_open(e1.base, e1.len, &r1, &env), 0);
    assert_true(flare_peerid_equal(&r1.peer_id, flare_host_peerid(b)));
    assert_true(flare_peerid_equal(&env.signer, flare_host_peerid(b)));
    assert_true(lists(&r1, &l1));
    assert_false(lists(&r1, &l2));
    assert_true(r1.seq > 1000000000ull * 1000000000ull); /* wall clock in ns */

    /* Nothing changed: the very same envelope. */
    ask_record(sim, a, b, &e2);
    assert_int_equal(e1.len, e2.len);
    assert_memory_equal(e1.base, e2.base, e1.len);

    /* A new listen address: a newer record listing it (B pushes it too). */
    assert_int_equal(flare_host_listen(b, &l2), 0);
    flare_sim_run_for(sim, 2000 * MS);
    ask_record(sim, a, b, &e3);
    assert_int_equal(flare_peer_record_open(e3.base, e3.len, &r3, NULL), 0);
    assert_true(r3.seq > r1.seq);
    assert_true(lists(&r3, &l1));
    assert_true(lists(&r3, &l2));
    flare_peer_info *info = malloc(sizeof(*info));
    assert_non_null(info);
    assert_int_equal(flare_host_peer_info(a, flare_host_peerid(b), info), 0);
    int has_l2 = 0;
    for (size_t i = 0; i < info->naddrs; i++)
        has_l2 |= flare_multiaddr_equal(&info->addrs[i], &l2);
    assert_true(has_l2);
    free(info);

    /* A tampered copy fails flare's verifier. */
    e3.base[e3.len - 5] ^= 1;
    assert_int_equal(flare_peer_record_open(e3.base, e3.len, &r3, NULL), FLARE_ERR_BAD_SIGNATURE);

    flare_buf_free(&e1);
    flare_buf_free(&e2);
    flare_buf_free(&e3);
    flare_host_del(a);
    flare_host_del(b);
    flare_sim_del(sim);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_own_record),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
