/* Kademlia core: codec (against protobuf-c and bad input), distance, routing
 * table (admission, replacement cache, diversity), lookups over a model
 * network, and the record and provider stores. */
#include "support/test.h"

#include <sodium.h>
#include <stdlib.h>

#include "flare/keys.h"
#include "flare/varint.h"
#include "kad.pb-c.h"
#include "protocols/kad/kad.h"

#define S FLARE_NS_PER_S

static flare_peerid peer_n(unsigned n)
{
    uint8_t seed[32] = {0};
    memcpy(seed, &n, sizeof(n));
    seed[31] = 0x5a;
    flare_privkey k;
    flare_peerid id;
    assert_int_equal(flare_privkey_from_seed(&k, seed), 0);
    assert_int_equal(flare_peerid_from_pubkey(&id, &k.pub), 0);
    flare_privkey_clear(&k);
    return id;
}

static flare_multiaddr ma(const char *s)
{
    flare_multiaddr m;
    assert_int_equal(flare_multiaddr_parse(&m, s), 0);
    return m;
}

/* ---- codec ---- */

static void test_codec_matches_protobuf_c(void **state)
{
    (void)state;
    flare_peerid a = peer_n(1), b = peer_n(2);
    flare_multiaddr m1 = ma("/ip4/1.2.3.4/tcp/4001"), m2 = ma("/ip6/2600::1/udp/1/quic-v1");
    flare__kad_msg m;
    flare__kad_msg_init(&m, FLARE__KAD_GET_PROVIDERS);
    m.key = (flare__kad_bytes){(const uint8_t *)"somekey", 7};
    m.has_record = 1;
    m.rec_key = m.key;
    m.rec_value = (flare__kad_bytes){(const uint8_t *)"v", 1};
    m.closer[0].id = (flare__kad_bytes){a.bytes, a.len};
    m.closer[0].addrs[0] = (flare__kad_bytes){m1.bytes, m1.len};
    m.closer[0].addrs[1] = (flare__kad_bytes){m2.bytes, m2.len};
    m.closer[0].naddrs = 2;
    m.closer[0].conn = FLARE__KAD_CONNECTED;
    m.ncloser = 1;
    m.providers[0].id = (flare__kad_bytes){b.bytes, b.len};
    m.nproviders = 1;
    flare_buf out;
    flare_buf_init(&out, NULL);
    assert_int_equal(flare__kad_msg_encode(&out, &m), 0);

    /* The same message packed by protobuf-c from the schema. */
    FlareKad__Message pm = FLARE_KAD__MESSAGE__INIT;
    FlareKad__Record rec = FLARE_KAD__RECORD__INIT;
    FlareKad__Message__Peer p0 = FLARE_KAD__MESSAGE__PEER__INIT,
                            p1 = FLARE_KAD__MESSAGE__PEER__INIT;
    FlareKad__Message__Peer *cl[1] = {&p0}, *pr[1] = {&p1};
    ProtobufCBinaryData addrs[2] = {{m1.len, m1.bytes}, {m2.len, m2.bytes}};
    pm.has_type = 1;
    pm.type = FLARE_KAD__MESSAGE__MESSAGE_TYPE__GET_PROVIDERS;
    pm.has_key = 1;
    pm.key = (ProtobufCBinaryData){7, (uint8_t *)"somekey"};
    rec.has_key = 1;
    rec.key = pm.key;
    rec.has_value = 1;
    rec.value = (ProtobufCBinaryData){1, (uint8_t *)"v"};
    pm.record = &rec;
    p0.has_id = 1;
    p0.id = (ProtobufCBinaryData){a.len, a.bytes};
    p0.n_addrs = 2;
    p0.addrs = addrs;
    p0.has_connection = 1;
    p0.connection = FLARE_KAD__MESSAGE__CONNECTION_TYPE__CONNECTED;
    p1.has_id = 1;
    p1.id = (ProtobufCBinaryData){b.len, b.bytes};
    pm.n_closerpeers = 1;
    pm.closerpeers = cl;
    pm.n_providerpeers = 1;
    pm.providerpeers = pr;
    size_t sz = flare_kad__message__get_packed_size(&pm);
    uint8_t *want = malloc(sz);
    flare_kad__message__pack(&pm, want);
    size_t pre = flare_uvarint_len(sz);
    assert_int_equal(out.len, sz + pre);
    assert_memory_equal(out.base + pre, want, sz);

    /* And back. */
    flare__kad_msg d;
    assert_int_equal(flare__kad_msg_decode(&d, want, sz), 0);
    assert_int_equal(d.type, FLARE__KAD_GET_PROVIDERS);
    assert_int_equal(d.key.len, 7);
    assert_int_equal(d.has_record, 1);
    assert_int_equal(d.rec_value.len, 1);
    assert_int_equal(d.ncloser, 1);
    assert_int_equal(d.closer[0].naddrs, 2);
    assert_int_equal(d.closer[0].conn, FLARE__KAD_CONNECTED);
    assert_memory_equal(d.closer[0].id.p, a.bytes, a.len);
    assert_int_equal(d.nproviders, 1);
    assert_int_equal(d.ndropped, 0);
    free(want);
    flare_buf_free(&out);
}

/* A raw Message with n closer peers of naddrs addresses each (some bad). */
static void many_peers(flare_buf *b, size_t n, size_t naddrs, int bad_id)
{
    FlareKad__Message pm = FLARE_KAD__MESSAGE__INIT;
    FlareKad__Message__Peer *ps = calloc(n, sizeof(*ps));
    FlareKad__Message__Peer **pp = calloc(n, sizeof(*pp));
    ProtobufCBinaryData *ad = calloc(naddrs, sizeof(*ad));
    flare_multiaddr m1 = ma("/ip4/9.9.9.9/tcp/1");
    static flare_peerid ids[64];
    for (size_t i = 0; i < naddrs; i++)
        ad[i] = (ProtobufCBinaryData){m1.len, m1.bytes};
    if (naddrs)
        ad[0] = (ProtobufCBinaryData){3, (uint8_t *)"\xff\xff\xff"}; /* not a multiaddr */
    for (size_t i = 0; i < n; i++) {
        flare_kad__message__peer__init(&ps[i]);
        ids[i % 64] = peer_n((unsigned)i + 100);
        ps[i].has_id = 1;
        ps[i].id = (ProtobufCBinaryData){ids[i % 64].len, ids[i % 64].bytes};
        if (bad_id && i == 0)
            ps[i].id = (ProtobufCBinaryData){2, (uint8_t *)"\x12\x20"};
        ps[i].n_addrs = naddrs;
        ps[i].addrs = ad;
        pp[i] = &ps[i];
    }
    pm.has_type = 1;
    pm.type = FLARE_KAD__MESSAGE__MESSAGE_TYPE__FIND_NODE;
    pm.n_closerpeers = n;
    pm.closerpeers = pp;
    size_t sz = flare_kad__message__get_packed_size(&pm);
    assert_int_equal(flare_buf_reserve(b, sz), 0);
    b->len = flare_kad__message__pack(&pm, b->base);
    free(ps);
    free(pp);
    free(ad);
}

static void test_codec_bounds(void **state)
{
    (void)state;
    flare_buf b;
    flare_buf_init(&b, NULL);
    static flare__kad_msg d;
    many_peers(&b, 30, 12, 1);
    assert_int_equal(flare__kad_msg_decode(&d, b.base, b.len), 0);
    assert_int_equal(d.ncloser, FLARE__KAD_MAX_PEERS);
    for (size_t i = 0; i < d.ncloser; i++)
        assert_int_equal(d.closer[i].naddrs, FLARE__KAD_MAX_ADDRS);
    assert_true(d.ndropped >= 10 + 1);

    /* Over the message size. */
    assert_int_equal(flare__kad_msg_decode(&d, b.base, FLARE__KAD_MAX_MSG + 1),
                     FLARE_ERR_TOO_LARGE);
    flare_buf_free(&b);

    /* A key over its bound, a value over its bound. */
    uint8_t big[FLARE__KAD_MAX_VALUE + 16];
    memset(big, 'a', sizeof(big));
    flare__kad_msg m;
    flare__kad_msg_init(&m, FLARE__KAD_PUT_VALUE);
    m.has_record = 1;
    m.rec_key = (flare__kad_bytes){big, 4};
    m.rec_value = (flare__kad_bytes){big, FLARE__KAD_MAX_VALUE + 1};
    flare_buf_init(&b, NULL);
    assert_int_equal(flare__kad_msg_encode(&b, &m), FLARE_ERR_TOO_LARGE);
    assert_int_equal(b.len, 0);
    m.rec_value.len = FLARE__KAD_MAX_VALUE;
    assert_int_equal(flare__kad_msg_encode(&b, &m), 0);
    /* Patch the value length upward by hand is awkward; build raw instead. */
    flare_buf raw;
    flare_buf_init(&raw, NULL);
    static const uint8_t key_hdr[] = {0x12, 0x82, 0x02}; /* key, 258 bytes */
    assert_int_equal(flare_buf_append(&raw, key_hdr, 3), 0);
    assert_int_equal(flare_buf_append(&raw, big, 258), 0);
    assert_int_equal(flare__kad_msg_decode(&d, raw.base, raw.len), FLARE_ERR_TOO_LARGE);
    flare_buf_free(&raw);
    flare_buf_free(&b);
}

static void test_codec_bad_input(void **state)
{
    (void)state;
    static flare__kad_msg d;
    static const uint8_t bad_type[] = {0x08, 0x09};
    assert_int_equal(flare__kad_msg_decode(&d, bad_type, sizeof(bad_type)), FLARE_ERR_UNKNOWN_CODE);
    static const uint8_t type_as_bytes[] = {0x0a, 0x00};
    assert_int_equal(flare__kad_msg_decode(&d, type_as_bytes, 2), FLARE_ERR_MALFORMED);
    static const uint8_t trunc[] = {0x12, 0x05, 'a'};
    assert_true(flare__kad_msg_decode(&d, trunc, sizeof(trunc)) < 0);
    static const uint8_t rec_bad[] = {0x1a, 0x02, 0x08, 0x01}; /* Record.key as a varint */
    assert_int_equal(flare__kad_msg_decode(&d, rec_bad, sizeof(rec_bad)), FLARE_ERR_MALFORMED);
    static const uint8_t peer_trunc[] = {0x42, 0x03, 0x0a, 0x05, 0x00};
    assert_true(flare__kad_msg_decode(&d, peer_trunc, sizeof(peer_trunc)) < 0);
    /* A peer without an ID is skipped, not an error. */
    static const uint8_t no_id[] = {0x08, 0x04, 0x42, 0x02, 0x18, 0x01};
    assert_int_equal(flare__kad_msg_decode(&d, no_id, sizeof(no_id)), 0);
    assert_int_equal(d.ncloser, 0);
    assert_int_equal(d.ndropped, 1);
    /* Empty input is a PUT_VALUE with nothing (proto3 defaults). */
    assert_int_equal(flare__kad_msg_decode(&d, NULL, 0), 0);
    assert_int_equal(d.type, FLARE__KAD_PUT_VALUE);
    /* Unknown fields are skipped. */
    static const uint8_t unknown[] = {0x08, 0x05, 0xa0, 0x06, 0x01};
    assert_int_equal(flare__kad_msg_decode(&d, unknown, sizeof(unknown)), 0);
    assert_int_equal(d.type, FLARE__KAD_PING);
}

/* ---- distance ---- */

static void test_distance(void **state)
{
    (void)state;
    flare__kad_key a = {{0}}, b = {{0}}, t = {{0}};
    assert_int_equal(flare__kad_cpl(&a, &b), 256);
    b.b[0] = 0x80;
    assert_int_equal(flare__kad_cpl(&a, &b), 0);
    b.b[0] = 0;
    b.b[3] = 0x01;
    assert_int_equal(flare__kad_cpl(&a, &b), 31);
    a.b[0] = 0x01;
    assert_true(flare__kad_dist_cmp(&t, &b, &a) < 0);
    assert_true(flare__kad_dist_cmp(&t, &a, &b) > 0);
    assert_int_equal(flare__kad_dist_cmp(&t, &a, &a), 0);

    flare_prng p;
    flare_prng_seed(&p, 7);
    flare__kad_key self, r;
    flare__kad_key_of(&self, (const uint8_t *)"me", 2);
    for (int cpl = 0; cpl < 256; cpl += 7) {
        flare__kad_random_key(&r, &self, cpl, flare_prng_rng(&p));
        assert_int_equal(flare__kad_cpl(&self, &r), cpl);
    }
    /* SHA-256 of the key bytes (the spec's keyspace). */
    flare__kad_key_of(&r, (const uint8_t *)"abc", 3);
    assert_int_equal(r.b[0], 0xba);
    assert_int_equal(r.b[31], 0xad);
    /* The same digest as libsodium's at every length around the block
     * boundaries (peer IDs are 38 bytes, refresh keys 8). */
    uint8_t in[200];
    for (size_t i = 0; i < sizeof(in); i++)
        in[i] = (uint8_t)(i * 37 + 11);
    for (size_t n = 0; n <= sizeof(in); n++) {
        uint8_t want[crypto_hash_sha256_BYTES];
        crypto_hash_sha256(want, in, n);
        flare__kad_key_of(&r, in, n);
        assert_memory_equal(r.b, want, sizeof(want));
    }
}

static void test_ip_group(void **state)
{
    (void)state;
    flare_ipaddr a, b, c;
    flare_ipaddr_parse(&a, "8.8.8.1");
    flare_ipaddr_parse(&b, "8.8.8.200");
    flare_ipaddr_parse(&c, "8.8.9.1");
    assert_int_not_equal(flare__kad_ip_group(&a, 0), 0);
    assert_true(flare__kad_ip_group(&a, 0) == flare__kad_ip_group(&b, 0));
    assert_true(flare__kad_ip_group(&a, 0) != flare__kad_ip_group(&c, 0));
    flare_ipaddr_parse(&a, "2600:1:2:3::1");
    flare_ipaddr_parse(&b, "2600:1:2:ffff::1");
    flare_ipaddr_parse(&c, "2600:1:3::1");
    assert_true(flare__kad_ip_group(&a, 0) == flare__kad_ip_group(&b, 0));
    assert_true(flare__kad_ip_group(&a, 0) != flare__kad_ip_group(&c, 0));
    flare_ipaddr_parse(&a, "192.168.1.1");
    assert_int_equal(flare__kad_ip_group(&a, 0), 0);
    flare_ipaddr_parse(&a, "198.51.100.1");
    assert_int_equal(flare__kad_ip_group(&a, 0), 0);
    assert_int_not_equal(flare__kad_ip_group(&a, 1), 0);
}

/* ---- routing table ---- */

static void test_rt_admission_and_replacement(void **state)
{
    (void)state;
    flare_peerid self = peer_n(0);
    flare__kad_rt rt;
    flare__kad_rt_cfg cfg = {4, 2, 0, 0};
    flare__kad_rt_init(&rt, &self, &cfg, NULL);
    assert_int_equal(flare__kad_rt_seen(&rt, &self, 0, 1), FLARE_ERR_INVALID_ARG);

    /* Fill bucket 0 (cpl 0) with peers of that bucket. */
    flare_peerid in_b0[8];
    size_t nb0 = 0;
    for (unsigned i = 1; nb0 < 8; i++) {
        flare_peerid p = peer_n(i);
        flare__kad_key k;
        flare__kad_key_of_peer(&k, &p);
        if (flare__kad_cpl(&rt.self_key, &k) == 0)
            in_b0[nb0++] = p;
    }
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(flare__kad_rt_seen(&rt, &in_b0[i], 0, 1), FLARE__KAD_RT_ADDED);
    assert_int_equal(flare__kad_rt_seen(&rt, &in_b0[0], 0, 2), FLARE__KAD_RT_UPDATED);
    assert_int_equal(flare__kad_rt_seen(&rt, &in_b0[4], 0, 3), FLARE__KAD_RT_CACHED);
    assert_int_equal(flare__kad_rt_seen(&rt, &in_b0[5], 0, 3), FLARE__KAD_RT_CACHED);
    assert_int_equal(flare__kad_rt_seen(&rt, &in_b0[6], 0, 3), FLARE__KAD_RT_CACHED);
    assert_int_equal(rt.size, 4);
    assert_false(flare__kad_rt_has(&rt, &in_b0[4]));

    /* A failure promotes the newest replacement; the oldest was pushed out. */
    assert_int_equal(flare__kad_rt_remove(&rt, &in_b0[1]), 1);
    assert_int_equal(rt.size, 4);
    assert_true(flare__kad_rt_has(&rt, &in_b0[6]));
    assert_int_equal(flare__kad_rt_remove(&rt, &in_b0[2]), 1);
    assert_true(flare__kad_rt_has(&rt, &in_b0[5]));
    assert_int_equal(flare__kad_rt_remove(&rt, &in_b0[3]), 1);
    assert_false(flare__kad_rt_has(&rt, &in_b0[4])); /* evicted from the cache earlier */
    assert_int_equal(rt.size, 3);
    assert_int_equal(flare__kad_rt_remove(&rt, &in_b0[3]), 0);
    flare__kad_rt_free(&rt);
}

static void test_rt_diversity(void **state)
{
    (void)state;
    flare_peerid self = peer_n(0);
    flare__kad_rt rt;
    flare__kad_rt_init(&rt, &self, NULL, NULL); /* 2 per bucket, 10 per table */
    uint64_t g = 0x0400000000080808ull;
    size_t added = 0, refused = 0;
    for (unsigned i = 1; i < 400; i++) {
        flare_peerid p = peer_n(i);
        int rv = flare__kad_rt_seen(&rt, &p, g, 1);
        if (rv == FLARE__KAD_RT_ADDED)
            added++;
        else if (rv == FLARE_ERR_LIMIT)
            refused++;
    }
    assert_int_equal(added, 10); /* the table limit */
    assert_true(refused > 300);
    /* No bucket holds more than 2 of the group. */
    for (size_t i = 0; i < FLARE__KAD_BUCKETS; i++)
        assert_true(!rt.b[i] || rt.b[i]->n <= 2);
    /* Peers without a public group are not limited. */
    for (unsigned i = 400; i < 440; i++) {
        flare_peerid p = peer_n(i);
        assert_true(flare__kad_rt_seen(&rt, &p, 0, 1) >= 0);
    }
    assert_true(rt.size > 30);
    flare__kad_rt_free(&rt);
}

/* Peers of group g in the table, counted entry by entry. */
static size_t scan_group(const flare__kad_rt *rt, uint64_t g)
{
    size_t c = 0;
    for (size_t i = 0; i < FLARE__KAD_BUCKETS; i++)
        for (size_t j = 0; rt->b[i] && j < rt->b[i]->n; j++)
            c += rt->b[i]->e[j].group == g;
    return c;
}

/* Through admissions, refusals, replacements and removals, the diversity
 * limits refuse exactly the peers that the entries' groups say. */
static void test_rt_diversity_model(void **state)
{
    (void)state;
    flare_peerid self = peer_n(0);
    flare__kad_rt rt;
    flare__kad_rt_cfg cfg = {4, 3, 2, 3};
    flare__kad_rt_init(&rt, &self, &cfg, NULL);
    uint64_t rnd = 12345;
    size_t limited = 0, removed = 0;
    for (unsigned step = 0; step < 6000; step++) {
        rnd = rnd * 6364136223846793005ull + 1442695040888963407ull;
        unsigned who = 1 + (unsigned)(rnd >> 33) % 300;
        flare_peerid p = peer_n(who);
        uint64_t g = who % 5 == 0 ? 0 : 0x0400000000000000ull | (who % 11);
        if ((rnd >> 20) % 3 == 0) {
            removed += (size_t)flare__kad_rt_remove(&rt, &p);
        } else if (!flare__kad_rt_has(&rt, &p)) {
            flare__kad_key k;
            flare__kad_key_of_peer(&k, &p);
            const flare__kad_bucket *b = rt.b[flare__kad_cpl(&rt.self_key, &k)];
            size_t inb = 0;
            for (size_t j = 0; b && j < b->n; j++)
                inb += b->e[j].group == g;
            int want_limit = g && (inb >= 2 || scan_group(&rt, g) >= 3);
            int rv = flare__kad_rt_seen(&rt, &p, g, step);
            assert_int_equal(rv == FLARE_ERR_LIMIT, want_limit);
            limited += rv == FLARE_ERR_LIMIT;
        }
        for (unsigned j = 0; j < 11; j++)
            assert_true(scan_group(&rt, 0x0400000000000000ull | j) <= 3);
    }
    assert_true(limited > 100 && removed > 100);
    flare__kad_rt_free(&rt);
}

static void test_rt_closest(void **state)
{
    (void)state;
    flare_peerid self = peer_n(0);
    flare__kad_rt rt;
    flare__kad_rt_init(&rt, &self, NULL, NULL);
    for (unsigned i = 1; i <= 200; i++) {
        flare_peerid p = peer_n(i);
        flare__kad_rt_seen(&rt, &p, 0, 1);
    }
    flare__kad_key target;
    flare__kad_key_of(&target, (const uint8_t *)"target", 6);
    flare_peerid out[20];
    size_t n = flare__kad_rt_closest(&rt, &target, out, 20);
    assert_int_equal(n, 20);
    /* Sorted, and nothing in the table is closer than the 20th. */
    flare__kad_key prev, kk;
    flare__kad_key_of_peer(&prev, &out[0]);
    for (size_t i = 1; i < n; i++) {
        flare__kad_key_of_peer(&kk, &out[i]);
        assert_true(flare__kad_dist_cmp(&target, &prev, &kk) < 0);
        prev = kk;
    }
    for (size_t i = 0; flare__kad_rt_at(&rt, i); i++) {
        const flare__kad_rt_entry *e = flare__kad_rt_at(&rt, i);
        int inside = 0;
        for (size_t j = 0; j < n; j++)
            inside |= flare_peerid_equal(&e->id, &out[j]);
        if (!inside)
            assert_true(flare__kad_dist_cmp(&target, &e->key, &prev) > 0);
    }
    assert_true(flare__kad_rt_max_cpl(&rt) >= 4);
    flare__kad_rt_free(&rt);
}

/* The reference: XOR distance byte by byte, ties by table order. */
typedef struct ref_ent {
    const flare__kad_rt_entry *e;
    size_t order;
} ref_ent;

static const flare__kad_key *ref_target;

static int ref_cmp(const void *pa, const void *pb)
{
    const ref_ent *a = pa, *b = pb;
    for (int i = 0; i < 32; i++) {
        uint8_t da = a->e->key.b[i] ^ ref_target->b[i], db = b->e->key.b[i] ^ ref_target->b[i];
        if (da != db)
            return da < db ? -1 : 1;
    }
    return a->order < b->order ? -1 : a->order > b->order;
}

/* flare__kad_rt_closest against a full sort of the table for one target
 * and several result sizes. */
static void check_closest_against_sort(const flare__kad_rt *rt, const flare__kad_key *target)
{
    static ref_ent all[4096];
    size_t n = 0;
    for (const flare__kad_rt_entry *e; (e = flare__kad_rt_at(rt, n)); n++) {
        assert_true(n < 4096);
        all[n] = (ref_ent){e, n};
    }
    assert_int_equal(n, rt->size);
    ref_target = target;
    qsort(all, n, sizeof(*all), ref_cmp);
    static flare_peerid out[200];
    const size_t sizes[] = {1, 2, 7, 20, 21, 64, 65, 200};
    for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
        size_t want = sizes[si], got = flare__kad_rt_closest(rt, target, out, want);
        assert_int_equal(got, n < want ? n : want);
        for (size_t i = 0; i < got; i++)
            assert_true(flare_peerid_equal(&out[i], &all[i].e->id));
    }
}

static flare_peerid random_peer(flare_prng *p)
{
    flare_peerid id = {.len = 34};
    flare_prng_rng(p).fn(id.bytes, id.len, flare_prng_rng(p).user);
    return id;
}

/* Random tables (sparse and full, small and large buckets, with removals)
 * and targets (random, our own key, keys at every common prefix length
 * with us, the keys of members): the bucket walk must give exactly the
 * sorted order. */
static void test_rt_closest_matches_sort(void **state)
{
    (void)state;
    flare_prng p;
    flare_prng_seed(&p, 2026);
    const flare__kad_rt_cfg cfgs[] = {{20, 10, 0, 0}, {3, 2, 0, 0}, {100, 0, 0, 0}, {1, 0, 0, 0}};
    const size_t peers[] = {0, 1, 5, 60, 400, 3000};
    for (size_t ci = 0; ci < sizeof(cfgs) / sizeof(cfgs[0]); ci++)
        for (size_t pi = 0; pi < sizeof(peers) / sizeof(peers[0]); pi++) {
            flare_peerid self = random_peer(&p);
            flare__kad_rt rt;
            flare__kad_rt_init(&rt, &self, &cfgs[ci], NULL);
            for (size_t i = 0; i < peers[pi]; i++) {
                flare_peerid id = random_peer(&p);
                assert_true(flare__kad_rt_seen(&rt, &id, 0, (flare_tstamp)i) >= 0);
                if (i % 7 == 3 && rt.size) /* a failure: a replacement moves in */
                    flare__kad_rt_remove(&rt, &flare__kad_rt_at(&rt, i % rt.size)->id);
            }
            flare__kad_key t;
            for (int j = 0; j < 40; j++) {
                flare_prng_rng(&p).fn(t.b, sizeof(t.b), flare_prng_rng(&p).user);
                check_closest_against_sort(&rt, &t);
            }
            check_closest_against_sort(&rt, &rt.self_key);
            for (int cpl = 0; cpl < 256; cpl += 3) {
                flare__kad_random_key(&t, &rt.self_key, cpl, flare_prng_rng(&p));
                check_closest_against_sort(&rt, &t);
            }
            for (size_t i = 0; i < rt.size; i += 1 + rt.size / 16)
                check_closest_against_sort(&rt, &flare__kad_rt_at(&rt, i)->key);
            flare__kad_rt_free(&rt);
        }
    /* The word-wise distance against byte-wise, across word boundaries. */
    for (int i = 0; i < 20000; i++) {
        ref_ent a = {0}, b = {0};
        flare__kad_rt_entry ea, eb;
        flare__kad_key t;
        flare_prng_rng(&p).fn(t.b, sizeof(t.b), flare_prng_rng(&p).user);
        flare_prng_rng(&p).fn(ea.key.b, sizeof(ea.key.b), flare_prng_rng(&p).user);
        eb.key = ea.key;
        uint8_t pos;
        flare_prng_rng(&p).fn(&pos, 1, flare_prng_rng(&p).user);
        if (i % 4) /* equal up to a random byte */
            eb.key.b[pos % 32] ^= (uint8_t)(1u << (i % 8));
        a.e = &ea, b.e = &eb;
        ref_target = &t;
        int want = ref_cmp(&a, &b), got = flare__kad_dist_cmp(&t, &ea.key, &eb.key);
        assert_int_equal(want < 0 ? -1 : want > 0, got < 0 ? -1 : got > 0);
    }
}

/* ---- lookups over a model network ---- */

#define NET 300

typedef struct model {
    flare_peerid id[NET];
    flare__kad_rt rt[NET];
    int dead[NET];
} model;

static int idx(const model *m, const flare_peerid *p)
{
    for (int i = 0; i < NET; i++)
        if (flare_peerid_equal(&m->id[i], p))
            return i;
    return -1;
}

/* Every node but 0 offered everyone to a table of 8-peer buckets (so far
 * buckets are partial and lookups take hops); node 0 knows 5 random peers. */
static void model_build(model *m)
{
    flare_prng p;
    flare_prng_seed(&p, 42);
    flare__kad_rt_cfg cfg = {8, 0, 0, 0};
    for (int i = 0; i < NET; i++)
        m->id[i] = peer_n(1000 + (unsigned)i);
    for (int i = 0; i < NET; i++) {
        flare__kad_rt_init(&m->rt[i], &m->id[i], &cfg, NULL);
        for (int j = 0; j < NET; j++)
            if (i)
                flare__kad_rt_seen(&m->rt[i], &m->id[(j * 7 + i) % NET], 0, 1);
            else if (j < 5)
                flare__kad_rt_seen(&m->rt[i], &m->id[1 + flare_prng_next(&p) % (NET - 1)], 0, 1);
    }
}

/* Runs a lookup from node 0 with resiliency beta; returns the number of
 * queries. */
static size_t run_lookup(model *m, const flare__kad_key *target, size_t beta, size_t paths,
                         flare_peerid *res, size_t *nres)
{
    flare__kad_lookup l;
    assert_int_equal(flare__kad_lookup_init(&l, target, &m->id[0], 3, beta, 20, paths, NULL), 0);
    flare_peerid seeds[20];
    size_t ns = flare__kad_rt_closest(&m->rt[0], target, seeds, 20);
    for (size_t i = 0; i < ns; i++)
        flare__kad_lookup_seed(&l, &seeds[i]);
    flare_peerid q[32];
    size_t nq = 0;
    for (int guard = 0; guard < 10000; guard++) {
        int st;
        while ((st = flare__kad_lookup_next(&l, &q[nq])) == FLARE__KAD_L_QUERY) {
            nq++;
            /* alpha in flight until the follow-up, which asks at most k at once */
            assert_true(nq <= (l.follow ? 3 + 20 : 3));
        }
        if (st == FLARE__KAD_L_DONE)
            break;
        assert_true(nq > 0);
        /* Answer the first in flight. */
        int who = idx(m, &q[0]);
        if (m->dead[who]) {
            flare__kad_lookup_fail(&l, &q[0]);
        } else {
            flare_peerid closer[20];
            size_t nc = flare__kad_rt_closest(&m->rt[who], target, closer, 20);
            flare__kad_lookup_ok(&l, &q[0], closer, nc);
        }
        memmove(&q[0], &q[1], --nq * sizeof(q[0]));
    }
    assert_true(flare__kad_lookup_done(&l));
    *nres = flare__kad_lookup_result(&l, res, 20);
    assert_true(flare__kad_lookup_hops(&l) >= 1);
    size_t queried = l.queried;
    flare__kad_lookup_free(&l);
    return queried;
}

/* The true k closest live nodes to target. */
static size_t truth(const model *m, const flare__kad_key *target, flare_peerid *out)
{
    flare__kad_rt all;
    flare__kad_rt_cfg cfg = {NET, 0, 0, 0};
    flare_peerid nobody = peer_n(999999);
    flare__kad_rt_init(&all, &nobody, &cfg, NULL);
    for (int i = 1; i < NET; i++)
        if (!m->dead[i])
            flare__kad_rt_seen(&all, &m->id[i], 0, 1);
    size_t n = flare__kad_rt_closest(&all, target, out, 20);
    flare__kad_rt_free(&all);
    return n;
}

/* Both termination rules find the true closest peers; the resiliency rule
 * (beta 3) with fewer queries than the strict one (beta = k). */
static void test_lookup_converges(void **state)
{
    (void)state;
    model *m = calloc(1, sizeof(*m));
    model_build(m);
    /* 10% dead. */
    for (int i = 1; i < NET; i += 10)
        m->dead[i] = 1;
    for (size_t paths = 1; paths <= 3; paths += 2) {
        size_t total[2] = {0, 0};
        for (int strict = 0; strict < 2; strict++) {
            for (unsigned t = 0; t < 10; t++) {
                flare__kad_key target;
                flare__kad_key_of(&target, (const uint8_t *)&t, sizeof(t));
                flare_peerid res[20], want[20];
                size_t nres, nw = truth(m, &target, want);
                size_t queried = run_lookup(m, &target, strict ? 20 : 3, paths, res, &nres);
                total[strict] += queried;
                assert_int_equal(nres, 20);
                assert_true(queried < NET / 2);
                size_t hits = 0;
                for (size_t i = 0; i < nres; i++)
                    for (size_t j = 0; j < nw; j++)
                        hits += flare_peerid_equal(&res[i], &want[j]);
                assert_true(hits >= 18); /* the closest are found */
                assert_true(flare_peerid_equal(&res[0], &want[0]));
            }
        }
        print_message("paths %zu: %zu queries (beta 3), %zu (beta k)\n", paths, total[0], total[1]);
        assert_true(total[0] <= total[1]);
    }
    for (int i = 0; i < NET; i++)
        flare__kad_rt_free(&m->rt[i]);
    free(m);
}

/* The path of candidate id in l (-1: not a candidate). */
static int path_of(const flare__kad_lookup *l, const flare_peerid *id)
{
    for (size_t i = 0; i < l->n; i++)
        if (flare_peerid_equal(&l->c[i].id, id))
            return l->c[i].path;
    return -1;
}

/* d = 3 disjoint paths: every peer belongs to one path for good (the one
 * that first named it: a seed's, or its finder's), is queried at most
 * once, so no peer is queried by two paths; every path does work; and the
 * lookup still finds the true closest peers. */
static void test_lookup_disjoint_paths(void **state)
{
    (void)state;
    model *m = calloc(1, sizeof(*m));
    model_build(m);
    for (int i = 1; i < NET; i += 10)
        m->dead[i] = 1;
    for (unsigned t = 0; t < 10; t++) {
        flare__kad_key target;
        flare__kad_key_of(&target, (const uint8_t *)&t, sizeof(t));
        flare__kad_lookup l;
        assert_int_equal(flare__kad_lookup_init(&l, &target, &m->id[0], 3, 3, 20, 3, NULL), 0);
        flare_peerid seeds[20];
        size_t ns = flare__kad_rt_closest(&m->rt[0], &target, seeds, 20);
        for (size_t i = 0; i < ns; i++)
            flare__kad_lookup_seed(&l, &seeds[i]);
        int owner[NET], queried_by[NET];
        size_t per_path[3] = {0};
        for (int i = 0; i < NET; i++)
            owner[i] = queried_by[i] = -1;
        for (size_t i = 0; i < l.n; i++) /* seeds are dealt round-robin */
            owner[idx(m, &l.c[i].id)] = l.c[i].path;
        flare_peerid q[32];
        size_t nq = 0;
        int st = 0;
        for (int guard = 0; guard < 10000; guard++) {
            while ((st = flare__kad_lookup_next(&l, &q[nq])) == FLARE__KAD_L_QUERY) {
                int who = idx(m, &q[nq]), p = path_of(&l, &q[nq]);
                assert_true(p >= 0 && p < 3);
                assert_int_equal(queried_by[who], -1); /* never asked twice */
                assert_int_equal(p, owner[who]);       /* still its first path */
                queried_by[who] = p;
                per_path[p]++;
                nq++;
            }
            if (st == FLARE__KAD_L_DONE)
                break;
            int who = idx(m, &q[0]);
            if (m->dead[who]) {
                flare__kad_lookup_fail(&l, &q[0]);
            } else {
                flare_peerid closer[20];
                size_t nc = flare__kad_rt_closest(&m->rt[who], &target, closer, 20);
                flare__kad_lookup_ok(&l, &q[0], closer, nc);
                /* Peers first named here join the answering peer's path;
                 * those known already keep theirs. */
                for (size_t j = 0; j < nc; j++) {
                    int c = idx(m, &closer[j]), p = path_of(&l, &closer[j]);
                    if (p < 0)
                        continue; /* ourselves */
                    if (owner[c] < 0)
                        assert_int_equal(p, owner[who]);
                    else
                        assert_int_equal(p, owner[c]);
                    owner[c] = p;
                }
            }
            memmove(&q[0], &q[1], --nq * sizeof(q[0]));
        }
        assert_int_equal(st, FLARE__KAD_L_DONE);
        for (int p = 0; p < 3; p++) /* each starts from its seeds */
            assert_true(per_path[p] >= 1);
        flare_peerid res[20], want[20];
        size_t nres = flare__kad_lookup_result(&l, res, 20), nw = truth(m, &target, want), hits = 0;
        assert_int_equal(nres, 20);
        for (size_t i = 0; i < nres; i++)
            for (size_t j = 0; j < nw; j++)
                hits += flare_peerid_equal(&res[i], &want[j]);
        assert_true(hits >= 18);
        flare__kad_lookup_free(&l);
    }
    for (int i = 0; i < NET; i++)
        flare__kad_rt_free(&m->rt[i]);
    free(m);
}

static void test_lookup_edges(void **state)
{
    (void)state;
    flare_peerid self = peer_n(0), a = peer_n(1), b = peer_n(2), out;
    flare__kad_key t;
    flare__kad_key_of(&t, (const uint8_t *)"x", 1);
    flare__kad_lookup l;
    assert_int_equal(flare__kad_lookup_init(&l, &t, &self, 3, 3, 20, 1, NULL), 0);
    assert_int_equal(flare__kad_lookup_next(&l, &out), FLARE__KAD_L_DONE); /* no seeds */
    flare__kad_lookup_seed(&l, &self);                                     /* ignored */
    flare__kad_lookup_seed(&l, &a);
    flare__kad_lookup_seed(&l, &a); /* duplicate */
    assert_int_equal(l.n, 1);
    assert_int_equal(flare__kad_lookup_next(&l, &out), FLARE__KAD_L_QUERY);
    assert_int_equal(flare__kad_lookup_next(&l, &out), FLARE__KAD_L_WAIT);
    /* An answer from someone not queried changes nothing. */
    flare__kad_lookup_ok(&l, &b, &a, 1);
    assert_int_equal(l.answered, 0);
    flare__kad_lookup_ok(&l, &a, &b, 1);
    assert_int_equal(flare__kad_lookup_next(&l, &out), FLARE__KAD_L_QUERY);
    assert_true(flare_peerid_equal(&out, &b));
    flare__kad_lookup_fail(&l, &b);
    assert_int_equal(flare__kad_lookup_next(&l, &out), FLARE__KAD_L_DONE);
    flare_peerid res[4];
    assert_int_equal(flare__kad_lookup_result(&l, res, 4), 1);
    flare__kad_lookup_free(&l);

    /* A flood of closer peers stays within the candidate bound. */
    assert_int_equal(flare__kad_lookup_init(&l, &t, &self, 3, 3, 4, 1, NULL), 0);
    flare__kad_lookup_seed(&l, &a);
    assert_int_equal(flare__kad_lookup_next(&l, &out), FLARE__KAD_L_QUERY);
    flare_peerid flood[100];
    for (unsigned i = 0; i < 100; i++)
        flood[i] = peer_n(10 + i);
    flare__kad_lookup_ok(&l, &a, flood, 100);
    assert_true(l.n <= l.cap);
    assert_int_equal(l.cap, 32);
    flare__kad_lookup_free(&l);
}

/* n peers sorted by distance to t, closest first. */
static void by_distance(const flare__kad_key *t, flare_peerid *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = peer_n(500 + (unsigned)i);
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0; j--) {
            flare__kad_key a, b;
            flare__kad_key_of_peer(&a, &p[j - 1]);
            flare__kad_key_of_peer(&b, &p[j]);
            if (flare__kad_dist_cmp(t, &b, &a) >= 0)
                break;
            flare_peerid x = p[j];
            p[j] = p[j - 1];
            p[j - 1] = x;
        }
}

static int next_is(flare__kad_lookup *l, const flare_peerid *want)
{
    flare_peerid out;
    return flare__kad_lookup_next(l, &out) == FLARE__KAD_L_QUERY && flare_peerid_equal(&out, want);
}

/* The resiliency rule step by step (alpha 2, beta 2, k 6): once the two
 * closest answered, the rest of the 6 closest are asked at once (past
 * alpha), what they name is not followed, and a failure among them brings
 * in the next peer. The strict rule (beta = k) follows the answers. */
static void test_lookup_beta_rule(void **state)
{
    (void)state;
    flare_peerid self = peer_n(0), p[12];
    flare__kad_key t;
    flare__kad_key_of(&t, (const uint8_t *)"beta", 4);
    by_distance(&t, p, 12);
    /* p[0] is the closest; the lookup starts from p[1..8]. */
    for (int strict = 0; strict < 2; strict++) {
        flare__kad_lookup l;
        assert_int_equal(flare__kad_lookup_init(&l, &t, &self, 2, strict ? 6 : 2, 6, 1, NULL), 0);
        for (int i = 1; i <= 8; i++)
            flare__kad_lookup_seed(&l, &p[i]);
        flare_peerid out;
        assert_true(next_is(&l, &p[1]));
        assert_true(next_is(&l, &p[2]));
        assert_int_equal(flare__kad_lookup_next(&l, &out), FLARE__KAD_L_WAIT); /* alpha */
        flare__kad_lookup_ok(&l, &p[1], NULL, 0);
        flare__kad_lookup_ok(&l, &p[2], NULL, 0);
        if (!strict) {
            /* p[1], p[2] answered: the follow-up asks p[3..6] at once. */
            for (int i = 3; i <= 6; i++)
                assert_true(next_is(&l, &p[i]));
            assert_int_equal(flare__kad_lookup_next(&l, &out), FLARE__KAD_L_WAIT);
            assert_true(l.follow);
            assert_int_equal(l.followups, 4);
            flare__kad_lookup_ok(&l, &p[3], &p[0], 1); /* not followed */
            assert_int_equal(l.n, 8);
            flare__kad_lookup_fail(&l, &p[4]);
            assert_true(next_is(&l, &p[7])); /* in p[4]'s place */
            flare__kad_lookup_ok(&l, &p[5], NULL, 0);
            flare__kad_lookup_ok(&l, &p[6], NULL, 0);
            assert_int_equal(flare__kad_lookup_next(&l, &out), FLARE__KAD_L_WAIT);
            assert_false(flare__kad_lookup_done(&l));
            flare__kad_lookup_ok(&l, &p[7], &p[0], 1);
            assert_true(flare__kad_lookup_done(&l));
            assert_int_equal(flare__kad_lookup_next(&l, &out), FLARE__KAD_L_DONE);
            assert_int_equal(l.queried, 7);
            assert_int_equal(l.followups, 5);
            flare_peerid res[6];
            assert_int_equal(flare__kad_lookup_result(&l, res, 6), 6);
            assert_true(flare_peerid_equal(&res[0], &p[1]));
            assert_true(flare_peerid_equal(&res[3], &p[5]));
            assert_true(flare_peerid_equal(&res[5], &p[7]));
        } else {
            /* The strict rule keeps alpha and follows p[3]'s answer. */
            assert_true(next_is(&l, &p[3]));
            assert_true(next_is(&l, &p[4]));
            assert_int_equal(flare__kad_lookup_next(&l, &out), FLARE__KAD_L_WAIT);
            flare__kad_lookup_ok(&l, &p[3], &p[0], 1);
            assert_int_equal(l.n, 9);
            assert_true(next_is(&l, &p[0]));
            flare__kad_lookup_fail(&l, &p[4]);
            assert_true(next_is(&l, &p[5]));
            flare__kad_lookup_ok(&l, &p[0], NULL, 0);
            flare__kad_lookup_ok(&l, &p[5], NULL, 0);
            assert_true(next_is(&l, &p[6]));
            assert_int_equal(flare__kad_lookup_next(&l, &out), FLARE__KAD_L_WAIT);
            flare__kad_lookup_ok(&l, &p[6], NULL, 0);
            assert_int_equal(flare__kad_lookup_next(&l, &out), FLARE__KAD_L_DONE);
            assert_int_equal(l.queried, 7);
            assert_int_equal(l.followups, 0);
        }
        flare__kad_lookup_free(&l);
    }
    /* beta over k is the strict rule; 0 is the default. */
    flare__kad_lookup l;
    assert_int_equal(flare__kad_lookup_init(&l, &t, &self, 3, 50, 6, 1, NULL), 0);
    assert_int_equal(l.beta, 6);
    flare__kad_lookup_free(&l);
    assert_int_equal(flare__kad_lookup_init(&l, &t, &self, 3, 0, 20, 1, NULL), 0);
    assert_int_equal(l.beta, FLARE__KAD_BETA);
    flare__kad_lookup_free(&l);
}

/* Without the follow-up (no_followup): the lookup ends once the beta
 * closest answered; the rest of the k closest are not asked. */
static void test_lookup_no_followup(void **state)
{
    (void)state;
    flare_peerid self = peer_n(0), p[12];
    flare__kad_key t;
    flare__kad_key_of(&t, (const uint8_t *)"beta", 4);
    by_distance(&t, p, 12);
    flare__kad_lookup l;
    assert_int_equal(flare__kad_lookup_init(&l, &t, &self, 2, 2, 6, 1, NULL), 0);
    l.no_followup = 1;
    for (int i = 1; i <= 8; i++)
        flare__kad_lookup_seed(&l, &p[i]);
    flare_peerid out;
    assert_true(next_is(&l, &p[1]));
    assert_true(next_is(&l, &p[2]));
    flare__kad_lookup_ok(&l, &p[1], &p[0], 1); /* names a closer one: followed */
    assert_true(next_is(&l, &p[0]));
    assert_false(flare__kad_lookup_done(&l));
    flare__kad_lookup_ok(&l, &p[0], NULL, 0);
    /* p[0], p[1] answered: done, p[2] still out, p[3..6] never asked. */
    assert_true(flare__kad_lookup_done(&l));
    assert_int_equal(flare__kad_lookup_next(&l, &out), FLARE__KAD_L_DONE);
    assert_int_equal(l.queried, 3);
    assert_int_equal(l.followups, 0);
    assert_false(l.follow);
    flare__kad_lookup_free(&l);
}

/* ---- stores ---- */

static void test_records_pk(void **state)
{
    (void)state;
    flare__kad_records s;
    flare__kad_records_init(&s, 2, 10 * S, NULL);
    uint8_t seed[32] = {1};
    flare_privkey k;
    flare_peerid id, other = peer_n(5);
    assert_int_equal(flare_privkey_from_seed(&k, seed), 0);
    flare_peerid_from_pubkey(&id, &k.pub);
    uint8_t key[80], val[128];
    memcpy(key, "/pk/", 4);
    memcpy(key + 4, id.bytes, id.len);
    size_t klen = 4 + id.len;
    int vlen = flare_pubkey_encode(&k.pub, val, sizeof(val));
    assert_true(vlen > 0);

    /* No validator yet: nothing is accepted. */
    assert_int_equal(flare__kad_records_put(&s, key, klen, val, (size_t)vlen, 1),
                     FLARE_ERR_UNSUPPORTED);
    assert_int_equal(flare__kad_records_add_validator(&s, &flare__kad_pk_validator), 0);
    assert_int_equal(flare__kad_records_put(&s, key, klen, val, (size_t)vlen, 1), 0);
    const flare__kad_record *r = flare__kad_records_get(&s, key, klen, 2);
    assert_non_null(r);
    assert_int_equal(r->vlen, vlen);
    /* Someone else's key under this ID, garbage, another namespace. */
    uint8_t okey[80];
    memcpy(okey, "/pk/", 4);
    memcpy(okey + 4, other.bytes, other.len);
    assert_int_equal(flare__kad_records_put(&s, okey, 4 + other.len, val, (size_t)vlen, 1),
                     FLARE_ERR_PEER_ID_MISMATCH);
    assert_int_equal(flare__kad_records_put(&s, key, klen, (const uint8_t *)"xx", 2, 1),
                     FLARE_ERR_MALFORMED);
    assert_int_equal(flare__kad_records_put(&s, (const uint8_t *)"/ipns/x", 7, val, 3, 1),
                     FLARE_ERR_UNSUPPORTED);
    assert_int_equal(flare__kad_records_put(&s, (const uint8_t *)"/pk/\x00", 5, val, 3, 1),
                     FLARE_ERR_MALFORMED);
    /* The same record again refreshes it; expiry. */
    assert_int_equal(flare__kad_records_put(&s, key, klen, val, (size_t)vlen, 5 * S), 0);
    assert_non_null(flare__kad_records_get(&s, key, klen, 14 * S));
    assert_null(flare__kad_records_get(&s, key, klen, 16 * S));
    assert_int_equal(s.n, 0);
    flare__kad_records_free(&s);
    flare_privkey_clear(&k);
}

static int pick_longer(const uint8_t *key, size_t klen, const uint8_t *a, size_t alen,
                       const uint8_t *b, size_t blen, void *user)
{
    (void)key, (void)klen, (void)a, (void)b, (void)user;
    return blen > alen;
}

static int accept_all(const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen, void *user)
{
    (void)key, (void)klen, (void)val, (void)vlen, (void)user;
    return 0;
}

static void test_records_pluggable_and_bounded(void **state)
{
    (void)state;
    flare__kad_records s;
    flare__kad_records_init(&s, 2, 0, NULL);
    flare__kad_validator v = {"t", accept_all, pick_longer, NULL};
    assert_int_equal(flare__kad_records_add_validator(&s, &v), 0);
    const uint8_t *k1 = (const uint8_t *)"/t/1", *k2 = (const uint8_t *)"/t/2",
                  *k3 = (const uint8_t *)"/t/3";
    assert_int_equal(flare__kad_records_put(&s, k1, 4, (const uint8_t *)"ab", 2, 1), 0);
    assert_int_equal(flare__kad_records_put(&s, k1, 4, (const uint8_t *)"a", 1, 1),
                     FLARE_ERR_EXISTS);
    assert_int_equal(flare__kad_records_put(&s, k1, 4, (const uint8_t *)"abc", 3, 1), 0);
    assert_int_equal(flare__kad_records_get(&s, k1, 4, 1)->vlen, 3);
    assert_int_equal(flare__kad_records_put(&s, k2, 4, (const uint8_t *)"a", 1, 1), 0);
    assert_int_equal(flare__kad_records_put(&s, k3, 4, (const uint8_t *)"a", 1, 1),
                     FLARE_ERR_LIMIT);
    static uint8_t big[FLARE__KAD_MAX_VALUE + 1];
    assert_int_equal(flare__kad_records_put(&s, k1, 4, big, sizeof(big), 1), FLARE_ERR_TOO_LARGE);
    flare__kad_records_free(&s);
}

static void test_providers(void **state)
{
    (void)state;
    flare__kad_providers s;
    flare__kad_providers_init(&s, 3, 2, 10 * S, NULL);
    flare_peerid a = peer_n(1), b = peer_n(2), c = peer_n(3), out[4];
    const uint8_t *k1 = (const uint8_t *)"\x12\x20key1";
    assert_int_equal(flare__kad_providers_add(&s, k1, 6, &a, 1 * S), 0);
    assert_int_equal(flare__kad_providers_add(&s, k1, 6, &b, 2 * S), 0);
    assert_int_equal(flare__kad_providers_add(&s, k1, 6, &a, 3 * S), 0); /* refresh */
    assert_int_equal(flare__kad_providers_add(&s, k1, 6, &c, 3 * S), FLARE_ERR_LIMIT);
    assert_int_equal(flare__kad_providers_get(&s, k1, 6, 4 * S, out, 4), 2);
    assert_int_equal(flare__kad_providers_get(&s, k1, 6, 12 * S, out, 4), 1); /* b expired */
    assert_true(flare_peerid_equal(&out[0], &a));
    assert_int_equal(flare__kad_providers_get(&s, k1, 6, 14 * S, out, 4), 0);
    assert_int_equal(s.n, 0);
    /* Key count bound and key size bound. */
    for (unsigned i = 0; i < 3; i++) {
        uint8_t key[4] = {1, 2, 3, (uint8_t)i};
        assert_int_equal(flare__kad_providers_add(&s, key, 4, &a, 20 * S), 0);
    }
    uint8_t key[4] = {9, 9, 9, 9};
    assert_int_equal(flare__kad_providers_add(&s, key, 4, &a, 20 * S), FLARE_ERR_LIMIT);
    uint8_t longkey[65] = {0};
    assert_int_equal(flare__kad_providers_add(&s, longkey, 65, &a, 20 * S), FLARE_ERR_TOO_LARGE);
    flare__kad_providers_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codec_matches_protobuf_c),
        cmocka_unit_test(test_codec_bounds),
        cmocka_unit_test(test_codec_bad_input),
        cmocka_unit_test(test_distance),
        cmocka_unit_test(test_ip_group),
        cmocka_unit_test(test_rt_admission_and_replacement),
        cmocka_unit_test(test_rt_diversity),
        cmocka_unit_test(test_rt_diversity_model),
        cmocka_unit_test(test_rt_closest),
        cmocka_unit_test(test_rt_closest_matches_sort),
        cmocka_unit_test(test_lookup_converges),
        cmocka_unit_test(test_lookup_disjoint_paths),
        cmocka_unit_test(test_lookup_edges),
        cmocka_unit_test(test_lookup_beta_rule),
        cmocka_unit_test(test_lookup_no_followup),
        cmocka_unit_test(test_records_pk),
        cmocka_unit_test(test_records_pluggable_and_bounded),
        cmocka_unit_test(test_providers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
