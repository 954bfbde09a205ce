/* The host's signature cache, on the simulator: a peer's signed record
 * that A verified once is not verified again when A reconnects and is
 * identified anew (the cache counts it as a hit); with the genuine record
 * cached, a forged one (a changed signature, or changed signed bytes under
 * the cached signature) is still rejected and never enters the cache. */
#include <stdlib.h>

#include "support/test.h"

#include "flare/host.h"
#include "flare/identify.h"
#include "flare/peer_record.h"

#define MS FLARE_NS_PER_MS

enum { REC_REAL, REC_VALID, REC_BAD_SIG, REC_BAD_BYTES };

typedef struct world {
    flare_sim *sim;
    flare_sim_host *sha, *shb;
    flare_host *a, *b;
    flare_multiaddr bma;
    flare_sig_cache *cache; /* A's */
    flare_privkey bkey;
    int kind; /* what B's identify answer carries */
    int identified, signed_record, record_error;
} world;

static void on_event(flare_host *h, const flare_host_event *ev, void *user)
{
    world *w = user;
    (void)h;
    if (ev->type == FLARE_HOST_EV_IDENTIFIED && w->identified++ == 0) {
        w->signed_record = ev->u.identified.signed_record;
        w->record_error = ev->u.identified.record_error;
    }
}

/* B's record with the test's own address and sequence number. */
static void make_record(world *w, flare_buf *out)
{
    flare_multiaddr ma;
    assert_int_equal(flare_multiaddr_parse(&ma, "/ip4/198.51.100.2/tcp/2222"), 0);
    flare_bytes_view v = {ma.bytes, ma.len};
    assert_int_equal(flare_peer_record_seal(&w->bkey, UINT64_MAX / 2, &v, 1, out), 0);
    if (w->kind == REC_BAD_SIG)
        out->base[out->len - 3] ^= 0x40; /* inside the signature */
    if (w->kind == REC_BAD_BYTES) {
        /* /tcp/2222 (06 08ae) inside the payload becomes /tcp/2223. */
        int found = 0;
        for (size_t i = 0; i + 2 < out->len && !found; i++)
            if (out->base[i] == 0x06 && out->base[i + 1] == 0x08 && out->base[i + 2] == 0xae) {
                out->base[i + 2] = 0xaf;
                found = 1;
            }
        assert_true(found);
    }
}

static void fake_open(flare_stream *s, int status, void *user)
{
    world *w = user;
    if (status)
        return;
    flare_buf rec, out;
    flare_buf_init(&rec, NULL);
    flare_buf_init(&out, NULL);
    make_record(w, &rec);
    const char *protos[] = {FLARE_IDENTIFY_ID};
    flare_identify_out m = {.agent_version = "fake",
                            .pubkey = &w->bkey.pub,
                            .protocols = protos,
                            .nprotocols = 1,
                            .signed_record = rec.base,
                            .signed_record_len = rec.len};
    assert_int_equal(flare_identify_encode(&m, &out), 0);
    flare_stream_write(s, out.base, out.len);
    flare_stream_close_write(s);
    flare_buf_free(&rec);
    flare_buf_free(&out);
}

static const flare_stream_cbs fake_cbs = {.on_open = fake_open};

/* A (with its own cache, plaintext so that only records are verified) and
 * B listening. */
static void world_make(world *w)
{
    memset(w, 0, sizeof(*w));
    w->sim = flare_sim_new(1, NULL);
    assert_non_null(w->sim);
    assert_int_equal(flare_sig_cache_new(&w->cache, 64, NULL), 0);
    flare_host_settings ca, cb;
    flare_test_settings_default(&ca);
    ca.security = "/plaintext/2.0.0";
    ca.sig_cache = w->cache;
    flare_test_settings_default(&cb);
    cb.security = "/plaintext/2.0.0";
    flare_test_host_spec spa = {.name = "A",
                                .lan = flare_sim_internet(w->sim),
                                .ip = "198.51.100.1",
                                .seed = {1},
                                .cfg = &ca,
                                .on_event = on_event,
                                .user = w};
    flare_test_host_spec spb = {.name = "B",
                                .lan = flare_sim_internet(w->sim),
                                .ip = "198.51.100.2",
                                .seed = {2},
                                .cfg = &cb,
                                .listen_port = 4001};
    assert_int_equal(flare_test_host_make(w->sim, &spa, &w->sha, &w->a), 0);
    assert_int_equal(flare_test_host_make(w->sim, &spb, &w->shb, &w->b), 0);
    assert_ptr_equal(flare_host_sig_cache(w->a), w->cache);
    assert_non_null(flare_host_sig_cache(w->b)); /* its own */
    assert_ptr_not_equal(flare_host_sig_cache(w->b), w->cache);
    assert_int_equal(flare_test_tcp_addr(&w->bma, "198.51.100.2", 4001, flare_host_peerid(w->b)),
                     0);
    uint8_t bseed[32] = {2};
    assert_int_equal(flare_privkey_from_seed(&w->bkey, bseed), 0);
}

static void world_free(world *w)
{
    flare_host_del(w->a);
    flare_host_del(w->b);
    flare_sim_del(w->sim);
    flare_sig_cache_del(w->cache); /* after the host using it */
}

/* A connects to B and is identified; then the connection is closed. */
static void connect_once(world *w)
{
    w->identified = 0;
    flare_conn *c = flare_test_dial_ok(w->sim, w->a, &w->bma, 3000);
    assert_non_null(c);
    for (int i = 0; i < 50 && !w->identified; i++)
        flare_sim_run_for(w->sim, 100 * MS);
    assert_true(w->identified >= 1);
    flare_conn_close(c);
    flare_sim_run_for(w->sim, 500 * MS);
}

static flare_sig_cache_stats stats(const world *w)
{
    flare_sig_cache_stats st;
    flare_sig_cache_stats_get(w->cache, &st);
    return st;
}

static void test_record_verified_once(void **state)
{
    (void)state;
    world w;
    world_make(&w);
    w.kind = REC_REAL; /* B's own identify */
    connect_once(&w);
    assert_int_equal(w.signed_record, 1);
    assert_int_equal(w.record_error, 0);
    flare_sig_cache_stats s1 = stats(&w);
    assert_true(s1.misses >= 1); /* B's record, verified */
    assert_int_equal(s1.stored, s1.misses);
    for (int k = 0; k < 3; k++)
        connect_once(&w);
    assert_int_equal(w.signed_record, 1);
    flare_sig_cache_stats s2 = stats(&w);
    print_message("first connection: %llu verified; after 3 more: %llu verified, %llu hits\n",
                  (unsigned long long)s1.misses, (unsigned long long)s2.misses,
                  (unsigned long long)s2.hits);
    assert_true(s2.misses == s1.misses); /* not verified again */
    assert_true(s2.hits >= s1.hits + 3);
    world_free(&w);
}

static void test_forgery_with_warm_cache(void **state)
{
    (void)state;
    world w;
    world_make(&w);
    assert_int_equal(flare_host_set_handler(w.b, FLARE_IDENTIFY_ID, &fake_cbs, &w, 0), 0);
    w.kind = REC_VALID;
    connect_once(&w);
    assert_int_equal(w.signed_record, 1);
    connect_once(&w); /* the valid record again: from the cache */
    assert_int_equal(w.signed_record, 1);
    flare_sig_cache_stats s1 = stats(&w);
    assert_true(s1.hits >= 1);
    for (int kind = REC_BAD_SIG; kind <= REC_BAD_BYTES; kind++) {
        w.kind = kind;
        connect_once(&w);
        assert_int_equal(w.signed_record, 0);
        assert_int_equal(w.record_error, FLARE_ERR_BAD_SIGNATURE);
    }
    flare_sig_cache_stats s2 = stats(&w);
    assert_int_equal(s2.stored, s1.stored); /* the forgeries were not stored */
    assert_int_equal(s2.misses, s1.misses + 2);
    assert_int_equal(s2.hits, s1.hits);
    world_free(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record_verified_once),
        cmocka_unit_test(test_forgery_with_warm_cache),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
