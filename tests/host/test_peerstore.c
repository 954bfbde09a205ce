/* The peerstore: growth past the old 4,096 cap, LRU eviction of
 * disconnected peers only, compact records, allocation failure. */
#include "support/test.h"

#include <stdlib.h>

#include "host/host_int.h"

#define S FLARE_NS_PER_S

static flare_multiaddr addr_of(unsigned n)
{
    char s[64];
    flare_multiaddr m;
    snprintf(s, sizeof(s), "/ip4/10.%u.%u.%u/tcp/%u", (n >> 16) & 255, (n >> 8) & 255, n & 255,
             1000 + n % 50000);
    assert_int_equal(flare_multiaddr_parse(&m, s), 0);
    return m;
}

/* ---- tests -------------------------------------------------------------------------- */

static void test_many_peers(void **state)
{
    (void)state;
    flare_test_heap cnt = {0};
    flare_mem mem = flare_test_heap_mem(&cnt);
    struct flare__peerstore *ps = flare__peerstore_new(&mem);
    assert_non_null(ps);
    const unsigned n = 12000; /* three times the old hard cap */
    flare__peerstore_set_max_peers(ps, 20000);
    static const char *const protos[] = {"/ipfs/id/1.0.0", "/libp2p/circuit/relay/0.2.0/hop"};
    for (unsigned i = 0; i < n; i++) {
        flare_peerid p = flare_test_pid(i);
        flare_multiaddr a = addr_of(i);
        assert_int_equal(flare__peerstore_add_addr(ps, &p, &a, FLARE_TSTAMP_NEVER), 0);
        assert_int_equal(flare__peerstore_set_protocols(ps, &p, protos, i % 3 ? 2 : 1), 0);
    }
    assert_int_equal(flare__peerstore_count(ps), n);
    /* Every peer is found after the table grew, with its own data. */
    flare_peer_info *info = malloc(sizeof(*info));
    for (unsigned i = 0; i < n; i += 7) {
        flare_peerid p = flare_test_pid(i);
        flare_multiaddr a = addr_of(i);
        assert_int_equal(flare__peerstore_get(ps, &p, 0, info), 0);
        assert_true(flare_peerid_equal(&info->id, &p));
        assert_int_equal(info->naddrs, 1);
        assert_true(flare_multiaddr_equal(&info->addrs[0], &a));
        assert_int_equal(info->nprotocols, i % 3 ? 2 : 1);
        assert_int_equal(flare__peerstore_supports(ps, &p, protos[1]), i % 3 ? 1 : 0);
    }
    flare_peerid missing = flare_test_pid(n + 1);
    assert_int_equal(flare__peerstore_get(ps, &missing, 0, info), FLARE_ERR_NOT_FOUND);
    free(info);
    flare__peerstore_del(ps);
    assert_int_equal(cnt.blocks, 0);
}

static void test_default_cap_evicts(void **state)
{
    (void)state;
    struct flare__peerstore *ps = flare__peerstore_new(NULL);
    const unsigned n = FLARE__PEERSTORE_MAX_PEERS + 1000;
    for (unsigned i = 0; i < n; i++) {
        flare_peerid p = flare_test_pid(i);
        flare_multiaddr a = addr_of(i);
        assert_int_equal(flare__peerstore_add_addr(ps, &p, &a, FLARE_TSTAMP_NEVER), 0);
    }
    /* Bounded, and the newest peers are the ones kept (no silent drop of
     * newcomers as with the old cap). */
    assert_int_equal(flare__peerstore_count(ps), FLARE__PEERSTORE_MAX_PEERS);
    flare_peerid first = flare_test_pid(0), last = flare_test_pid(n - 1),
                 edge = flare_test_pid(n - FLARE__PEERSTORE_MAX_PEERS);
    flare_peerid gone = flare_test_pid(n - FLARE__PEERSTORE_MAX_PEERS - 1);
    assert_false(flare__peerstore_has(ps, &first));
    assert_false(flare__peerstore_has(ps, &gone));
    assert_true(flare__peerstore_has(ps, &edge));
    assert_true(flare__peerstore_has(ps, &last));
    flare__peerstore_del(ps);
}

static void add(struct flare__peerstore *ps, unsigned n)
{
    flare_peerid p = flare_test_pid(n);
    flare_multiaddr a = addr_of(n);
    assert_int_equal(flare__peerstore_add_addr(ps, &p, &a, FLARE_TSTAMP_NEVER), 0);
}

static int has(struct flare__peerstore *ps, unsigned n)
{
    flare_peerid p = flare_test_pid(n);
    return flare__peerstore_has(ps, &p);
}

static void test_lru_order(void **state)
{
    (void)state;
    struct flare__peerstore *ps = flare__peerstore_new(NULL);
    flare__peerstore_set_max_peers(ps, 4);
    for (unsigned i = 1; i <= 4; i++)
        add(ps, i);
    /* Use 1 (lookup) and 2 (protocol query): 3 is now the oldest, then 4. */
    flare_peer_info *info = malloc(sizeof(*info));
    flare_peerid p1 = flare_test_pid(1), p2 = flare_test_pid(2);
    assert_int_equal(flare__peerstore_get(ps, &p1, 0, info), 0);
    assert_int_equal(flare__peerstore_supports(ps, &p2, "/x"), 0);
    add(ps, 5);
    assert_false(has(ps, 3));
    assert_true(has(ps, 1) && has(ps, 2) && has(ps, 4) && has(ps, 5));
    add(ps, 6);
    assert_false(has(ps, 4));
    add(ps, 7);
    assert_false(has(ps, 1));
    /* Updating a record counts as use. */
    add(ps, 2);
    add(ps, 8);
    assert_false(has(ps, 5));
    assert_true(has(ps, 2) && has(ps, 6) && has(ps, 7) && has(ps, 8));
    assert_int_equal(flare__peerstore_count(ps), 4);
    /* Shrinking the bound evicts the oldest at once. */
    flare__peerstore_set_max_peers(ps, 2);
    assert_int_equal(flare__peerstore_count(ps), 2);
    assert_true(has(ps, 2) && has(ps, 8));
    free(info);
    flare__peerstore_del(ps);
}

static void test_connected_kept(void **state)
{
    (void)state;
    struct flare__peerstore *ps = flare__peerstore_new(NULL);
    flare__peerstore_set_max_peers(ps, 3);
    flare_peerid p1 = flare_test_pid(1), p2 = flare_test_pid(2);
    assert_int_equal(flare__peerstore_conn_opened(ps, &p1), 0);
    assert_int_equal(flare__peerstore_conn_opened(ps, &p2), 0);
    assert_int_equal(flare__peerstore_conn_opened(ps, &p2), 0); /* second connection */
    for (unsigned i = 10; i < 100; i++)
        add(ps, i);
    /* The connected peers are the oldest yet survive; one slot is left. */
    assert_true(has(ps, 1) && has(ps, 2) && has(ps, 99));
    assert_int_equal(flare__peerstore_count(ps), 3);
    /* All pinned: the store exceeds its bound rather than drop a connected peer. */
    flare_peerid p3 = flare_test_pid(3), p4 = flare_test_pid(4);
    assert_int_equal(flare__peerstore_conn_opened(ps, &p3), 0);
    assert_int_equal(flare__peerstore_conn_opened(ps, &p4), 0);
    assert_false(has(ps, 99));
    assert_int_equal(flare__peerstore_count(ps), 4);
    flare__peerstore_set_max_peers(ps, 1);
    assert_int_equal(flare__peerstore_count(ps), 4);
    /* p1 disconnects: evictable again, but as the most recent entry it stays
     * until something new needs the room. */
    flare__peerstore_conn_closed(ps, &p1);
    assert_true(has(ps, 1));
    flare__peerstore_conn_closed(ps, &p2); /* one of two connections */
    add(ps, 50);
    assert_false(has(ps, 1));
    assert_true(has(ps, 2) && has(ps, 3) && has(ps, 4) && has(ps, 50));
    /* p2's last connection closes: as the most recent evictable peer it
     * stays, and the store sheds the older 50 to get back to its bound. */
    flare__peerstore_conn_closed(ps, &p2);
    assert_false(has(ps, 50));
    assert_true(has(ps, 2));
    add(ps, 51);
    assert_false(has(ps, 2));
    assert_true(has(ps, 51));
    /* A close without an open is ignored. */
    flare_peerid stranger = flare_test_pid(77);
    flare__peerstore_conn_closed(ps, &stranger);
    flare__peerstore_conn_closed(ps, &p1);
    assert_true(has(ps, 3) && has(ps, 4));
    flare__peerstore_del(ps);
}

static void test_records(void **state)
{
    (void)state;
    flare_test_heap cnt = {0};
    flare_mem mem = flare_test_heap_mem(&cnt);
    struct flare__peerstore *ps = flare__peerstore_new(&mem);
    flare_peerid p = flare_test_pid(1);
    flare_peer_info *info = malloc(sizeof(*info));
    /* An address ending in the peer's own /p2p/ is stored bare. */
    char s[256], ps_s[128];
    assert_true(flare_peerid_to_string(&p, ps_s, sizeof(ps_s)) > 0);
    snprintf(s, sizeof(s), "/ip4/1.2.3.4/tcp/4001/p2p/%s", ps_s);
    flare_multiaddr full, bare;
    assert_int_equal(flare_multiaddr_parse(&full, s), 0);
    assert_int_equal(flare_multiaddr_parse(&bare, "/ip4/1.2.3.4/tcp/4001"), 0);
    assert_int_equal(flare__peerstore_add_addr(ps, &p, &full, 10 * S), 0);
    assert_int_equal(flare__peerstore_add_addr(ps, &p, &bare, 20 * S), 0); /* same: extends */
    assert_int_equal(flare__peerstore_get(ps, &p, 15 * S, info), 0);
    assert_int_equal(info->naddrs, 1);
    assert_true(flare_multiaddr_equal(&info->addrs[0], &bare));
    assert_int_equal(flare__peerstore_get(ps, &p, 20 * S, info), 0);
    assert_int_equal(info->naddrs, 0); /* expired */
    /* Past 16 addresses the one expiring first is replaced. */
    for (unsigned i = 0; i < FLARE_PEER_MAX_ADDRS + 4; i++) {
        flare_multiaddr a = addr_of(i);
        assert_int_equal(flare__peerstore_add_addr(ps, &p, &a, (100 + i) * S), 0);
    }
    assert_int_equal(flare__peerstore_get(ps, &p, 0, info), 0);
    assert_int_equal(info->naddrs, FLARE_PEER_MAX_ADDRS);
    for (size_t i = 0; i < info->naddrs; i++) {
        flare_multiaddr early = addr_of(0);
        assert_false(flare_multiaddr_equal(&info->addrs[i], &early));
        assert_false(flare_multiaddr_equal(&info->addrs[i], &bare));
    }
    /* Key, agent and protocols come back intact. */
    flare_privkey k;
    uint8_t seed[32] = {7};
    assert_int_equal(flare_privkey_from_seed(&k, seed), 0);
    assert_int_equal(flare__peerstore_set_key(ps, &p, &k.pub), 0);
    assert_int_equal(flare__peerstore_set_agent(ps, &p, "go-libp2p/0.36", "ipfs/0.1.0"), 0);
    const char *protos[] = {"/a/1", "/b/2", "/c/3"};
    assert_int_equal(flare__peerstore_set_protocols(ps, &p, protos, 3), 0);
    assert_int_equal(flare__peerstore_set_protocols(ps, &p, protos + 1, 2), 0); /* replaces */
    assert_int_equal(flare__peerstore_get(ps, &p, 0, info), 0);
    assert_true(info->has_pubkey);
    assert_int_equal(info->pubkey.type, k.pub.type);
    assert_int_equal(info->pubkey.len, k.pub.len);
    assert_memory_equal(info->pubkey.data, k.pub.data, k.pub.len);
    assert_string_equal(info->agent_version, "go-libp2p/0.36");
    assert_string_equal(info->protocol_version, "ipfs/0.1.0");
    assert_int_equal(info->nprotocols, 2);
    assert_string_equal(info->protocols[0], "/b/2");
    assert_int_equal(flare__peerstore_supports(ps, &p, "/a/1"), 0);
    assert_int_equal(flare__peerstore_supports(ps, &p, "/c/3"), 1);
    /* An empty peer ID is refused. */
    flare_peerid none = {0};
    assert_int_equal(flare__peerstore_add_addr(ps, &none, &bare, S), FLARE_ERR_INVALID_ARG);
    assert_int_equal(flare__peerstore_conn_opened(ps, &none), FLARE_ERR_INVALID_ARG);
    free(info);
    flare__peerstore_del(ps);
    assert_int_equal(cnt.blocks, 0);
}

/* Fails each allocation in turn during a workload that grows the table and
 * evicts: every call returns 0 or NOMEM, nothing leaks, lookups stay right. */
static void test_alloc_failure(void **state)
{
    (void)state;
    static const char *const protos[] = {"/ipfs/id/1.0.0", "/ipfs/ping/1.0.0"};
    flare_privkey k;
    uint8_t seed[32] = {9};
    assert_int_equal(flare_privkey_from_seed(&k, seed), 0);
    flare_peer_info *info = malloc(sizeof(*info));
    for (long fail = 1;; fail++) {
        flare_test_heap cnt = {.fail_at = fail};
        flare_mem mem = flare_test_heap_mem(&cnt);
        struct flare__peerstore *ps = flare__peerstore_new(&mem);
        if (!ps) {
            assert_int_equal(cnt.blocks, 0);
            continue;
        }
        flare__peerstore_set_max_peers(ps, 100);
        for (unsigned i = 0; i < 150; i++) {
            flare_peerid p = flare_test_pid(i);
            flare_multiaddr a = addr_of(i);
            int rv;
            if (i % 10 == 0) {
                rv = flare__peerstore_conn_opened(ps, &p);
                assert_true(rv == 0 || rv == FLARE_ERR_NOMEM);
            }
            rv = flare__peerstore_add_addr(ps, &p, &a, FLARE_TSTAMP_NEVER);
            assert_true(rv == 0 || rv == FLARE_ERR_NOMEM);
            rv = flare__peerstore_set_protocols(ps, &p, protos, 2);
            assert_true(rv == 0 || rv == FLARE_ERR_NOMEM);
            rv = flare__peerstore_set_key(ps, &p, &k.pub);
            assert_true(rv == 0 || rv == FLARE_ERR_NOMEM);
            rv = flare__peerstore_set_agent(ps, &p, "flare", "ipfs/0.1.0");
            assert_true(rv == 0 || rv == FLARE_ERR_NOMEM);
        }
        int done = cnt.calls < fail; /* the workload no longer reaches the failure */
        cnt.fail_at = 0;
        /* After the failure everything works again. */
        flare_peerid p = flare_test_pid(149);
        flare_multiaddr a = addr_of(999);
        assert_int_equal(flare__peerstore_add_addr(ps, &p, &a, FLARE_TSTAMP_NEVER), 0);
        assert_int_equal(flare__peerstore_get(ps, &p, 0, info), 0);
        assert_true(info->naddrs >= 1);
        assert_true(flare_multiaddr_equal(&info->addrs[info->naddrs - 1], &a));
        assert_true(flare__peerstore_count(ps) <= 100 + 15);
        flare__peerstore_del(ps);
        assert_int_equal(cnt.blocks, 0);
        if (done)
            break;
    }
    free(info);
}

/* Bytes a store of n peers holds, each listing protos (n of them). */
static long held_with(const char *const *protos, size_t np, unsigned n)
{
    flare_test_heap cnt = {0};
    flare_mem mem = flare_test_heap_mem(&cnt);
    struct flare__peerstore *ps = flare__peerstore_new(&mem);
    assert_non_null(ps);
    for (unsigned i = 0; i < n; i++) {
        flare_peerid p = flare_test_pid(i);
        assert_int_equal(flare__peerstore_set_protocols(ps, &p, protos, np), 0);
        assert_int_equal(flare__peerstore_supports(ps, &p, np ? protos[np - 1] : "x"), np != 0);
    }
    long bytes = cnt.bytes;
    /* Replacing and dropping lists lets go of every shared string; a
     * shorter list is its own. */
    for (unsigned i = 0; i < n; i++) {
        flare_peerid p = flare_test_pid(i);
        assert_int_equal(flare__peerstore_set_protocols(ps, &p, protos, i % 2 ? np / 2 : 0), 0);
    }
    for (unsigned i = 0; i < n && np > 1; i++) {
        flare_peerid p = flare_test_pid(i);
        assert_int_equal(flare__peerstore_supports(ps, &p, protos[0]), i % 2);
        assert_false(flare__peerstore_supports(ps, &p, protos[np - 1]));
    }
    flare__peerstore_del(ps);
    assert_int_equal(cnt.blocks, 0);
    return bytes;
}

/* Peers list the same protocol IDs: the store keeps one copy of each and
 * one copy of the whole list, so a peer's list costs next to nothing (it
 * cost its pointers, 96 bytes here, when lists were per peer). */
static void test_shared_protocols(void **state)
{
    (void)state;
    static const char *const protos[] = {"/ipfs/id/1.0.0",
                                         "/ipfs/id/push/1.0.0",
                                         "/ipfs/ping/1.0.0",
                                         "/ipfs/kad/1.0.0",
                                         "/libp2p/autonat/1.0.0",
                                         "/libp2p/autonat/2/dial-request",
                                         "/libp2p/dcutr",
                                         "/libp2p/circuit/relay/0.2.0/hop",
                                         "/libp2p/circuit/relay/0.2.0/stop",
                                         "/libp2p/autonat/2/dial-back",
                                         "/libp2p/fetch/0.0.1",
                                         "/meshsub/1.1.0"};
    const size_t np = sizeof(protos) / sizeof(protos[0]);
    const unsigned n = 200;
    long per_peer = (held_with(protos, np, n) - held_with(protos, 0, n)) / (long)n;
    print_message("peerstore bytes per peer for %zu protocols: %ld\n", np, per_peer);
    assert_true(per_peer >= 0);
    assert_true(per_peer < 16);
}

/* Signed peer records: their addresses come first, replace those of an
 * older record, an older record is refused, and unsigned addresses (gossip)
 * never push certified ones out of a full entry. */
static void test_certified(void **state)
{
    (void)state;
    struct flare__peerstore *ps = flare__peerstore_new(NULL);
    assert_non_null(ps);
    flare_peerid p = flare_test_pid(1);
    flare_multiaddr forged = addr_of(1), a = addr_of(2), b = addr_of(3), out[FLARE_PEER_MAX_ADDRS];
    assert_int_equal(flare__peerstore_add_addr(ps, &p, &forged, 100 * S), 0);
    /* Without a record: everything, in either call. */
    assert_int_equal(flare__peerstore_addrs_certified(ps, &p, 0, out, 8), 1);
    flare_multiaddr rec1[2] = {a, b};
    assert_int_equal(flare__peerstore_add_record(ps, &p, 10, rec1, 2, 100 * S), 0);
    assert_int_equal(flare__peerstore_addrs(ps, &p, 0, out, 8), 3);
    assert_true(flare_multiaddr_equal(&out[0], &a) || flare_multiaddr_equal(&out[0], &b));
    assert_true(flare_multiaddr_equal(&out[2], &forged)); /* unsigned: last */
    assert_int_equal(flare__peerstore_addrs_certified(ps, &p, 0, out, 8), 2);
    for (size_t i = 0; i < 2; i++)
        assert_false(flare_multiaddr_equal(&out[i], &forged));
    /* An older record changes nothing; a newer one withdraws b. */
    flare_multiaddr only_b[1] = {b};
    assert_int_equal(flare__peerstore_add_record(ps, &p, 9, only_b, 1, 100 * S), FLARE_ERR_EXISTS);
    assert_int_equal(flare__peerstore_addrs_certified(ps, &p, 0, out, 8), 2);
    flare_multiaddr only_a[1] = {a};
    assert_int_equal(flare__peerstore_add_record(ps, &p, 11, only_a, 1, 100 * S), 0);
    assert_int_equal(flare__peerstore_addrs_certified(ps, &p, 0, out, 8), 1);
    assert_true(flare_multiaddr_equal(&out[0], &a));
    assert_int_equal(flare__peerstore_addrs(ps, &p, 0, out, 8), 2); /* a, forged */
    /* A flood of unsigned addresses keeps the certified one. */
    for (unsigned i = 100; i < 100 + 3 * FLARE_PEER_MAX_ADDRS; i++) {
        flare_multiaddr x = addr_of(i);
        assert_int_equal(flare__peerstore_add_addr(ps, &p, &x, 1000 * S), 0);
    }
    assert_int_equal(flare__peerstore_addrs_certified(ps, &p, 0, out, 8), 1);
    assert_true(flare_multiaddr_equal(&out[0], &a));
    /* Once the certified address expired, the others are passed on. */
    assert_int_equal(flare__peerstore_addrs_certified(ps, &p, 200 * S, out, 8), 8);
    flare__peerstore_del(ps);
}

/* ---- the address block against a model of the rules ---------------------------------- */

/* The rules as plainly as they can be written: what a peer's address list
 * must hold, in which order, after each change. */
typedef struct model_addr {
    flare_multiaddr ma;
    flare_tstamp expires;
    int certified, worked;
} model_addr;

typedef struct model {
    model_addr a[FLARE_PEER_MAX_ADDRS];
    size_t n;
    int has_record;
    uint64_t seq;
} model;

static void model_add(model *m, const flare_multiaddr *ma, flare_tstamp exp, int cert)
{
    for (size_t i = 0; i < m->n; i++) {
        if (flare_multiaddr_equal(&m->a[i].ma, ma)) {
            if (exp > m->a[i].expires)
                m->a[i].expires = exp;
            m->a[i].certified |= cert;
            return;
        }
    }
    model_addr na = {.ma = *ma, .expires = exp, .certified = cert};
    if (m->n < FLARE_PEER_MAX_ADDRS) {
        m->a[m->n++] = na;
        return;
    }
    size_t v = 0; /* uncertified first, then the one expiring first; first of equals */
    for (size_t i = 1; i < m->n; i++)
        if (m->a[i].certified < m->a[v].certified ||
            (m->a[i].certified == m->a[v].certified && m->a[i].expires < m->a[v].expires))
            v = i;
    if (!m->a[v].certified || cert)
        m->a[v] = na;
}

static int model_record(model *m, uint64_t seq, const flare_multiaddr *l, size_t n,
                        flare_tstamp exp)
{
    if (m->has_record && seq < m->seq)
        return FLARE_ERR_EXISTS;
    for (size_t i = 0; i < m->n;) {
        int keep = !m->a[i].certified;
        for (size_t j = 0; j < n && !keep; j++)
            keep = flare_multiaddr_equal(&m->a[i].ma, &l[j]);
        if (keep)
            i++;
        else
            m->a[i] = m->a[--m->n]; /* the last takes its place */
    }
    m->has_record = 1;
    m->seq = seq;
    for (size_t j = 0; j < n; j++)
        model_add(m, &l[j], exp, 1);
    return 0;
}

static size_t model_addrs(const model *m, flare_tstamp now, flare_multiaddr *out, size_t cap,
                          int only_cert)
{
    size_t n = 0;
    for (int pass = 1; pass >= 0 && !(pass == 0 && only_cert && n); pass--)
        for (size_t i = 0; i < m->n && n < cap; i++)
            if (m->a[i].expires > now && m->a[i].certified == pass)
                out[n++] = m->a[i].ma;
    return n;
}

/* Addresses of mixed lengths (the block pads each record) come and go by
 * gossip and by records; after every change each list equals the model's,
 * in order. */
static void test_addr_block_model(void **state)
{
    (void)state;
    flare_test_heap cnt = {0};
    flare_mem mem = flare_test_heap_mem(&cnt);
    struct flare__peerstore *ps = flare__peerstore_new(&mem);
    flare_multiaddr pool[24];
    for (unsigned i = 0; i < 24; i++) {
        char s[128];
        if (i % 3 == 0)
            snprintf(s, sizeof(s), "/ip4/10.0.0.%u/tcp/%u", i, 4000 + i);
        else if (i % 3 == 1)
            snprintf(s, sizeof(s), "/ip6/2001:db8::%x/udp/%u/quic-v1", i, 4000 + i);
        else
            snprintf(s, sizeof(s), "/dns4/host%u.example.com/tcp/%u/ws", i, 443 + i);
        assert_int_equal(flare_multiaddr_parse(&pool[i], s), 0);
    }
    for (unsigned peer = 0; peer < 4; peer++) {
        flare_peerid p = flare_test_pid(100 + peer);
        model m = {0};
        unsigned rnd = 777 + peer;
        flare_tstamp now = 0;
        uint64_t seq = 1;
        for (unsigned step = 0; step < 600; step++) {
            rnd = rnd * 1103515245u + 12345u;
            unsigned r = rnd >> 8;
            now += (flare_tstamp)(r % 4) * S;
            flare_tstamp exp = now + (flare_tstamp)(1 + (r >> 2) % 40) * S;
            if ((r >> 8) % 8 == 0) {
                flare_multiaddr l[4];
                size_t n = (r >> 11) % 5;
                for (size_t j = 0; j < n; j++)
                    l[j] = pool[(r >> (14 + 2 * j)) % 24];
                uint64_t s2 = (r >> 12) % 4 == 0 ? seq - 1 : seq++;
                assert_int_equal(flare__peerstore_add_record(ps, &p, s2, l, n, exp),
                                 model_record(&m, s2, l, n, exp));
            } else {
                const flare_multiaddr *x = &pool[(r >> 11) % 24];
                assert_int_equal(flare__peerstore_add_addr(ps, &p, x, exp), 0);
                model_add(&m, x, exp, 0);
            }
            if ((r >> 16) % 5 == 0 && m.n) {
                size_t w = (r >> 19) % m.n;
                flare__peerstore_addr_worked(ps, &p, &m.a[w].ma);
                m.a[w].worked = 1;
            }
            flare_multiaddr got[FLARE_PEER_MAX_ADDRS], want[FLARE_PEER_MAX_ADDRS];
            for (int only = 0; only < 2; only++) {
                for (size_t cap = 8; cap <= FLARE_PEER_MAX_ADDRS; cap += 8) {
                    size_t ng = only ? flare__peerstore_addrs_certified(ps, &p, now, got, cap)
                                     : flare__peerstore_addrs(ps, &p, now, got, cap);
                    size_t nw = model_addrs(&m, now, want, cap, only);
                    assert_int_equal(ng, nw);
                    for (size_t i = 0; i < ng; i++)
                        assert_true(flare_multiaddr_equal(&got[i], &want[i]));
                }
            }
            for (size_t i = 0; i < m.n; i++)
                assert_int_equal(flare__peerstore_addr_has_worked(ps, &p, &m.a[i].ma),
                                 m.a[i].worked);
        }
    }
    flare__peerstore_del(ps);
    assert_int_equal(cnt.blocks, 0);
}

/* Peer IDs that differ only in their first, middle or last bytes, or in
 * length, are all told apart. */
static void test_id_hash(void **state)
{
    (void)state;
    struct flare__peerstore *ps = flare__peerstore_new(NULL);
    flare__peerstore_set_max_peers(ps, 10000);
    flare_multiaddr a = addr_of(1);
    for (unsigned i = 0; i < 3000; i++) {
        uint8_t b[34] = {0x12, 0x20};
        size_t len = 34;
        if (i % 3 == 0)
            b[2 + i % 4] = (uint8_t)(i / 3 + 1), b[6] = (uint8_t)(i >> 8);
        else if (i % 3 == 1)
            b[33] = (uint8_t)i, b[32] = (uint8_t)(i >> 8), b[31] = 1;
        else
            b[17] = (uint8_t)i, b[18] = (uint8_t)(i >> 8), b[19] = 2;
        flare_peerid p;
        memcpy(p.bytes, b, len);
        p.len = (uint8_t)len;
        flare_multiaddr x = addr_of(i + 2);
        assert_int_equal(flare__peerstore_add_addr(ps, &p, &x, FLARE_TSTAMP_NEVER), 0);
    }
    /* Short IDs (identity multihashes of small keys). */
    for (unsigned len = 3; len < 20; len++) {
        flare_peerid p = {.len = (uint8_t)len};
        memset(p.bytes, 0, sizeof(p.bytes));
        p.bytes[0] = 0;
        p.bytes[1] = (uint8_t)(len - 2);
        assert_int_equal(flare__peerstore_add_addr(ps, &p, &a, FLARE_TSTAMP_NEVER), 0);
    }
    assert_int_equal(flare__peerstore_count(ps), 3000 + 17);
    flare__peerstore_del(ps);
}

/* Many evictions from a table that stays small: every delete moves the
 * entries after the hole back (linear probing), and a lookup must still
 * find each kept peer and no evicted one. The model: the max most
 * recently added peers are kept. */
static void test_table_churn(void **state)
{
    (void)state;
    enum { UNIVERSE = 1500, MAX = 300, OPS = 12000 };
    flare_test_heap cnt = {0};
    flare_mem mem = flare_test_heap_mem(&cnt);
    struct flare__peerstore *ps = flare__peerstore_new(&mem);
    assert_non_null(ps);
    flare__peerstore_set_max_peers(ps, MAX);
    static unsigned last_use[UNIVERSE]; /* 0: never added */
    memset(last_use, 0, sizeof(last_use));
    uint32_t x = 12345;
    for (unsigned op = 1; op <= OPS; op++) {
        x = x * 1103515245u + 12345u;
        unsigned id = (x >> 8) % UNIVERSE;
        add(ps, id);
        last_use[id] = op;
        if (op % 400 != 0)
            continue;
        /* Kept: the MAX highest last_use values (all distinct). */
        unsigned kept = 0;
        for (unsigned i = 0; i < UNIVERSE; i++) {
            unsigned newer = 0;
            for (unsigned j = 0; j < UNIVERSE && last_use[i]; j++)
                newer += last_use[j] > last_use[i];
            int want = last_use[i] && newer < MAX;
            kept += (unsigned)want;
            assert_int_equal(has(ps, i), want);
        }
        assert_int_equal(flare__peerstore_count(ps), kept);
    }
    flare__peerstore_del(ps);
    assert_int_equal(cnt.blocks, 0);
}

/* Which trailing /p2p/ is stripped on store: only the peer's own, only as
 * the last /p2p/; a relayed address gets it back when read (there it names
 * the target behind the relay, which the address needs). */
static void test_bare_addrs(void **state)
{
    (void)state;
    flare_peerid p = flare_test_pid(1), q = flare_test_pid(2);
    char ps_s[128], qs_s[128], s[512];
    assert_true(flare_peerid_to_string(&p, ps_s, sizeof(ps_s)) > 0);
    assert_true(flare_peerid_to_string(&q, qs_s, sizeof(qs_s)) > 0);
    struct {
        const char *fmt; /* %1$s: p, %2$s: q */
        const char *want;
    } cases[] = {
        {"/ip4/1.2.3.4/tcp/1/p2p/%1$s", "/ip4/1.2.3.4/tcp/1"},
        {"/ip4/1.2.3.4/tcp/2/p2p/%2$s", NULL},
        {"/ip4/1.2.3.4/tcp/3/p2p/%2$s/p2p-circuit/p2p/%1$s", NULL},
        {"/ip4/1.2.3.4/tcp/4/p2p/%1$s/p2p/%2$s", NULL},
        {"/ip4/1.2.3.4/tcp/5/p2p/%2$s/p2p/%1$s", "/ip4/1.2.3.4/tcp/5/p2p/%2$s"},
        {"/ip4/1.2.3.4/tcp/6", NULL},
        {"/ip4/1.2.3.4/tcp/7/p2p/%2$s/p2p-circuit", NULL},
        {"/ip4/1.2.3.4/tcp/8/p2p/%2$s/p2p-circuit/webrtc/p2p/%1$s", NULL},
        {"/ip4/1.2.3.4/tcp/9/p2p/%1$s/p2p-circuit/p2p/%2$s", NULL},
        {"/ip4/1.2.3.4/tcp/10/p2p/%2$s/p2p-circuit/p2p/%1$s/p2p/%1$s", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        flare_multiaddr in, want, got[FLARE_PEER_MAX_ADDRS];
        snprintf(s, sizeof(s), cases[i].fmt, ps_s, qs_s);
        assert_int_equal(flare_multiaddr_parse(&in, s), 0);
        if (cases[i].want) {
            snprintf(s, sizeof(s), cases[i].want, ps_s, qs_s);
            assert_int_equal(flare_multiaddr_parse(&want, s), 0);
        } else {
            want = in;
        }
        struct flare__peerstore *one = flare__peerstore_new(NULL);
        assert_int_equal(flare__peerstore_add_addr(one, &p, &in, 10 * S), 0);
        assert_int_equal(flare__peerstore_addrs(one, &p, 0, got, FLARE_PEER_MAX_ADDRS), 1);
        assert_true(flare_multiaddr_equal(&got[0], &want));
        assert_int_equal(flare__peerstore_addr_has_worked(one, &p, &in), 0);
        flare__peerstore_addr_worked(one, &p, &in);
        assert_int_equal(flare__peerstore_addr_has_worked(one, &p, &in), 1);
        flare__peerstore_del(one);
    }
}

/* A circuit address stores the relay's ID, not the peer's own at its end
 * (it comes back on reading); with and without that end it is two
 * addresses, as given. */
static void test_relayed_addr_size(void **state)
{
    (void)state;
    flare_peerid p = flare_test_pid(1), r = flare_test_pid(2);
    char ps_s[128], rs_s[128], s[512];
    assert_true(flare_peerid_to_string(&p, ps_s, sizeof(ps_s)) > 0);
    assert_true(flare_peerid_to_string(&r, rs_s, sizeof(rs_s)) > 0);
    flare_multiaddr full, open;
    snprintf(s, sizeof(s), "/ip4/1.2.3.4/tcp/3/p2p/%s/p2p-circuit/p2p/%s", rs_s, ps_s);
    assert_int_equal(flare_multiaddr_parse(&full, s), 0);
    snprintf(s, sizeof(s), "/ip4/1.2.3.4/tcp/3/p2p/%s/p2p-circuit", rs_s);
    assert_int_equal(flare_multiaddr_parse(&open, s), 0);
    flare_test_heap cnt = {0};
    flare_mem mem = flare_test_heap_mem(&cnt);
    struct flare__peerstore *ps = flare__peerstore_new(&mem);
    assert_int_equal(flare__peerstore_conn_opened(ps, &p), 0); /* the entry, no address */
    long before = cnt.bytes;
    assert_int_equal(flare__peerstore_add_addr(ps, &p, &full, 10 * S), 0);
    long rec = cnt.bytes - before;
    /* Its record: a 12-byte head and the address up to /p2p-circuit, padded
     * to 8 (104 bytes when the peer's ID was kept too). */
    assert_true(rec <= 12 + (long)open.len + 7);
    assert_int_equal(flare__peerstore_add_addr(ps, &p, &open, 10 * S), 0);
    flare_multiaddr got[FLARE_PEER_MAX_ADDRS];
    assert_int_equal(flare__peerstore_addrs(ps, &p, 0, got, FLARE_PEER_MAX_ADDRS), 2);
    assert_true(flare_multiaddr_equal(&got[0], &full));
    assert_true(flare_multiaddr_equal(&got[1], &open));
    flare__peerstore_addr_worked(ps, &p, &open);
    assert_int_equal(flare__peerstore_addr_has_worked(ps, &p, &open), 1);
    assert_int_equal(flare__peerstore_addr_has_worked(ps, &p, &full), 0);
    flare__peerstore_conn_closed(ps, &p);
    flare__peerstore_del(ps);
    assert_int_equal(cnt.blocks, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_many_peers),    cmocka_unit_test(test_default_cap_evicts),
        cmocka_unit_test(test_lru_order),     cmocka_unit_test(test_connected_kept),
        cmocka_unit_test(test_records),       cmocka_unit_test(test_certified),
        cmocka_unit_test(test_alloc_failure), cmocka_unit_test(test_addr_block_model),
        cmocka_unit_test(test_id_hash),       cmocka_unit_test(test_shared_protocols),
        cmocka_unit_test(test_bare_addrs),    cmocka_unit_test(test_relayed_addr_size),
        cmocka_unit_test(test_table_churn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
