/* multistream-select: pumped negotiations, every split point, optimistic
 * (0-RTT) data in both directions, ls, and bad input. */
#include "support/test.h"

#include "flare/mss.h"

#define HDR "\x13/multistream/1.0.0\n"

typedef struct peer {
    flare_mss m;
    flare_buf out; /* bytes towards the other side */
    flare_buf app; /* application bytes received after negotiation */
    int rv;        /* last flare_mss_recv result */
    int appended;  /* our application data was queued */
    const char *data;
} peer;

static void peer_init(peer *p, const flare_mss_settings *s, const char *data)
{
    memset(p, 0, sizeof(*p));
    assert_int_equal(flare_mss_init(&p->m, s, NULL), 0);
    flare_buf_init(&p->out, NULL);
    flare_buf_init(&p->app, NULL);
    p->data = data;
}

static void peer_free(peer *p)
{
    flare_mss_free(&p->m);
    flare_buf_free(&p->out);
    flare_buf_free(&p->app);
}

/* Feeds in to p as its transport would: once negotiation ends, the rest is
 * application data. */
static void deliver(peer *p, const uint8_t *in, size_t len)
{
    if (p->rv < 0)
        return;
    if (p->rv == 1) {
        assert_int_equal(flare_buf_append(&p->app, in, len), 0);
        return;
    }
    size_t used = 12345;
    p->rv = flare_mss_recv(&p->m, in, len, &used, &p->out);
    assert_true(used <= len);
    if (p->rv == 1)
        assert_int_equal(flare_buf_append(&p->app, in + used, len - used), 0);
    else if (p->rv == 0)
        assert_int_equal(used, len);
}

static void maybe_send_data(peer *p)
{
    if (p->data && !p->appended && flare_mss_done(&p->m)) {
        assert_int_equal(flare_buf_append(&p->out, p->data, strlen(p->data)), 0);
        p->appended = 1;
    }
}

static void move(peer *from, peer *to, size_t chunk)
{
    size_t n = from->out.len < chunk ? from->out.len : chunk;
    if (!n)
        return;
    deliver(to, from->out.base, n);
    flare_buf_consume(&from->out, n);
}

/* Moves at most chunk bytes each way per round until nothing is left. */
static void pump(peer *d, peer *l, size_t chunk)
{
    for (int i = 0; i < 100000; i++) {
        maybe_send_data(d);
        maybe_send_data(l);
        if ((!d->out.len && !l->out.len) || d->rv < 0 || l->rv < 0)
            return;
        move(d, l, chunk);
        move(l, d, chunk);
    }
    fail_msg("pump did not settle");
}

static void assert_app(const peer *p, const char *want)
{
    assert_int_equal(p->app.len, strlen(want));
    assert_memory_equal(p->app.base, want, strlen(want));
}

static const char *const ONE[] = {"/b/2"};
static const char *const TWO[] = {"/a/1", "/b/2"};
static const char *const SUP[] = {"/b/2", "/c/3"};

static void run_pair(const flare_mss_settings *ds, const flare_mss_settings *ls, size_t chunk,
                     int listener_first, const char *want)
{
    peer d, l;
    peer_init(&d, ds, "dialer data");
    peer_init(&l, ls, "listener data");
    if (listener_first) {
        /* The dialer hears the listener's header before it sent anything. */
        assert_int_equal(flare_mss_start(&l.m, &l.out), 0);
        move(&l, &d, l.out.len);
        assert_int_equal(d.rv, 0);
    } else {
        assert_int_equal(flare_mss_start(&d.m, &d.out), 0);
        assert_int_equal(flare_mss_start(&l.m, &l.out), 0);
    }
    pump(&d, &l, chunk);
    assert_int_equal(d.rv, 1);
    assert_int_equal(l.rv, 1);
    assert_string_equal(flare_mss_selected(&d.m), want);
    assert_string_equal(flare_mss_selected(&l.m), want);
    assert_true(flare_mss_confirmed(&d.m) && flare_mss_confirmed(&l.m));
    assert_app(&d, "listener data");
    assert_app(&l, "dialer data");
    peer_free(&d);
    peer_free(&l);
}

static void test_pumped_all_chunks(void **state)
{
    flare_mss_settings ds = {.role = FLARE_MSS_DIALER, .protocols = TWO, .nprotocols = 2};
    flare_mss_settings ls = {.role = FLARE_MSS_LISTENER, .protocols = SUP, .nprotocols = 2};
    flare_mss_settings d1 = {.role = FLARE_MSS_DIALER, .protocols = ONE, .nprotocols = 1};
    flare_mss_settings dopt = d1;
    dopt.optimistic = 1;
    for (size_t chunk = 1; chunk <= 64; chunk++) {
        for (int lf = 0; lf < 2; lf++) {
            run_pair(&ds, &ls, chunk, lf, "/b/2"); /* na, then the second proposal */
            run_pair(&d1, &ls, chunk, lf, "/b/2");
            run_pair(&dopt, &ls, chunk, lf, "/b/2");
        }
    }
}

static void test_header_bytes(void **state)
{
    flare_mss_settings ls = {.role = FLARE_MSS_LISTENER, .protocols = SUP, .nprotocols = 2};
    flare_mss_settings ds = {.role = FLARE_MSS_DIALER, .protocols = TWO, .nprotocols = 2};
    peer l, d;
    peer_init(&l, &ls, NULL);
    peer_init(&d, &ds, NULL);
    assert_int_equal(flare_mss_start(&l.m, &l.out), 0);
    assert_int_equal(l.out.len, 20);
    assert_memory_equal(l.out.base, HDR, 20);
    assert_int_equal(flare_mss_start(&l.m, &l.out), FLARE_ERR_STATE);
    assert_int_equal(flare_mss_start(&d.m, &d.out), 0);
    assert_int_equal(d.out.len, 26);
    assert_memory_equal(d.out.base, HDR "\x05/a/1\n", 26);
    assert_false(flare_mss_done(&d.m));
    assert_null(flare_mss_selected(&d.m));
    peer_free(&l);
    peer_free(&d);
}

/* The dialer's optimistic stream split at every byte: the listener stops
 * exactly after the proposal whatever the split. */
static void test_listener_every_split(void **state)
{
    static const char stream[] = HDR "\x05/b/2\nAPPDATA";
    const size_t n = sizeof(stream) - 1;
    flare_mss_settings ls = {.role = FLARE_MSS_LISTENER, .protocols = SUP, .nprotocols = 2};
    for (size_t i = 0; i <= n; i++) {
        peer l;
        peer_init(&l, &ls, NULL);
        deliver(&l, (const uint8_t *)stream, i);
        deliver(&l, (const uint8_t *)stream + i, n - i);
        assert_int_equal(l.rv, 1);
        assert_app(&l, "APPDATA");
        assert_int_equal(l.out.len, 20 + 6);
        assert_memory_equal(l.out.base, HDR "\x05/b/2\n", 26);
        peer_free(&l);
    }
}

/* The listener's stream (header, na, echo, data) split at every pair of
 * points on the dialer side. */
static void test_dialer_every_split(void **state)
{
    static const char stream[] = HDR "\x03na\n\x05/b/2\nLDATA";
    const size_t n = sizeof(stream) - 1;
    flare_mss_settings ds = {.role = FLARE_MSS_DIALER, .protocols = TWO, .nprotocols = 2};
    for (size_t i = 0; i <= n; i++) {
        for (size_t j = i; j <= n; j++) {
            peer d;
            peer_init(&d, &ds, NULL);
            deliver(&d, (const uint8_t *)stream, i);
            deliver(&d, (const uint8_t *)stream + i, j - i);
            deliver(&d, (const uint8_t *)stream + j, n - j);
            assert_int_equal(d.rv, 1);
            assert_app(&d, "LDATA");
            assert_int_equal(d.out.len, 20 + 6 + 6);
            assert_memory_equal(d.out.base, HDR "\x05/a/1\n\x05/b/2\n", 32);
            assert_string_equal(flare_mss_selected(&d.m), "/b/2");
            peer_free(&d);
        }
    }
}

static void test_optimistic(void **state)
{
    flare_mss_settings ds = {
        .role = FLARE_MSS_DIALER, .protocols = ONE, .nprotocols = 1, .optimistic = 1};
    peer d;
    peer_init(&d, &ds, NULL);
    assert_int_equal(flare_mss_start(&d.m, &d.out), 0);
    assert_true(flare_mss_done(&d.m));
    assert_false(flare_mss_confirmed(&d.m));
    assert_string_equal(flare_mss_selected(&d.m), "/b/2");
    /* The echo arrives with listener data in the same read. */
    static const char in[] = HDR "\x05/b/2\nXYZ";
    deliver(&d, (const uint8_t *)in, sizeof(in) - 1);
    assert_int_equal(d.rv, 1);
    assert_true(flare_mss_confirmed(&d.m));
    assert_app(&d, "XYZ");
    /* Finished: later calls consume nothing. */
    size_t used = 9;
    assert_int_equal(flare_mss_recv(&d.m, (const uint8_t *)"abc", 3, &used, &d.out), 1);
    assert_int_equal(used, 0);
    peer_free(&d);

    /* Optimism ignored with two proposals. */
    flare_mss_settings d2 = {
        .role = FLARE_MSS_DIALER, .protocols = TWO, .nprotocols = 2, .optimistic = 1};
    peer_init(&d, &d2, NULL);
    assert_int_equal(flare_mss_start(&d.m, &d.out), 0);
    assert_false(flare_mss_done(&d.m));
    peer_free(&d);
}

static void test_optimistic_refused(void **state)
{
    flare_mss_settings ds = {
        .role = FLARE_MSS_DIALER, .protocols = ONE, .nprotocols = 1, .optimistic = 1};
    peer d;
    peer_init(&d, &ds, NULL);
    static const char in[] = HDR "\x03na\n";
    deliver(&d, (const uint8_t *)in, sizeof(in) - 1);
    assert_int_equal(d.rv, FLARE_ERR_NEGOTIATION);
    peer_free(&d);
}

static void test_all_refused(void **state)
{
    static const char *const other[] = {"/c/3"};
    flare_mss_settings ds = {.role = FLARE_MSS_DIALER, .protocols = TWO, .nprotocols = 2};
    flare_mss_settings ls = {.role = FLARE_MSS_LISTENER, .protocols = other, .nprotocols = 1};
    peer d, l;
    peer_init(&d, &ds, NULL);
    peer_init(&l, &ls, NULL);
    assert_int_equal(flare_mss_start(&d.m, &d.out), 0);
    pump(&d, &l, 7);
    assert_int_equal(d.rv, FLARE_ERR_NEGOTIATION);
    assert_int_equal(l.rv, 0); /* still waiting for a proposal */
    assert_false(flare_mss_done(&d.m));
    size_t used;
    assert_int_equal(flare_mss_recv(&d.m, (const uint8_t *)"x", 1, &used, &d.out), FLARE_ERR_STATE);
    peer_free(&d);
    peer_free(&l);
}

static void test_ls(void **state)
{
    static const char *const prots[] = {"/a/1", "/bb/2"};
    flare_mss_settings ls = {.role = FLARE_MSS_LISTENER, .protocols = prots, .nprotocols = 2};
    peer l;
    peer_init(&l, &ls, NULL);
    static const char in[] = HDR "\x03ls\n";
    deliver(&l, (const uint8_t *)in, sizeof(in) - 1);
    assert_int_equal(l.rv, 0);
    static const char want[] = HDR "\x0e\x05/a/1\n\x06/bb/2\n\n";
    assert_int_equal(l.out.len, sizeof(want) - 1);
    assert_memory_equal(l.out.base, want, sizeof(want) - 1);
    deliver(&l, (const uint8_t *)"\x06/bb/2\n", 7);
    assert_int_equal(l.rv, 1);
    assert_string_equal(flare_mss_selected(&l.m), "/bb/2");
    peer_free(&l);
}

/* A peer flooding "ls" / unknown proposals without ever selecting one gets
 * at most FLARE_MSS_MAX_REPLIES answers, then FLARE_ERR_LIMIT: the output a
 * peer can make us produce before a protocol runs is bounded. */
static void test_reply_budget(void **state)
{
    static const char *const prots[] = {"/a/1"};
    flare_mss_settings ls = {.role = FLARE_MSS_LISTENER, .protocols = prots, .nprotocols = 1};
    for (int kind = 0; kind < 2; kind++) {
        peer l;
        peer_init(&l, &ls, NULL);
        deliver(&l, (const uint8_t *)HDR, sizeof(HDR) - 1);
        const char *line = kind ? "\x03ls\n" : "\x05/z/9\n";
        size_t n = kind ? 4 : 6;
        for (int i = 0; i < FLARE_MSS_MAX_REPLIES; i++) {
            deliver(&l, (const uint8_t *)line, n);
            assert_int_equal(l.rv, 0);
        }
        size_t out = l.out.len;
        deliver(&l, (const uint8_t *)line, n);
        assert_int_equal(l.rv, FLARE_ERR_LIMIT);
        assert_int_equal(l.out.len, out); /* nothing more was written */
        peer_free(&l);
    }
    /* Within the budget a later proposal still succeeds. */
    peer l;
    peer_init(&l, &ls, NULL);
    deliver(&l, (const uint8_t *)HDR, sizeof(HDR) - 1);
    for (int i = 0; i < FLARE_MSS_MAX_REPLIES - 1; i++)
        deliver(&l, (const uint8_t *)"\x03ls\n", 4);
    deliver(&l, (const uint8_t *)"\x05/a/1\n", 6);
    assert_int_equal(l.rv, 1);
    peer_free(&l);
}

static int matcher_calls;
static int match_prefix(const char *proto, size_t len, void *user)
{
    matcher_calls++;
    assert_int_equal(strlen(proto), len);
    return strncmp(proto, (const char *)user, strlen((const char *)user)) == 0;
}

static void test_matcher_and_limits(void **state)
{
    flare_mss_settings ls = {
        .role = FLARE_MSS_LISTENER, .supports = match_prefix, .user = (void *)"/x/"};
    peer l;
    peer_init(&l, &ls, NULL);
    deliver(&l, (const uint8_t *)HDR, 20);
    /* An embedded NUL is refused without asking the matcher. */
    matcher_calls = 0;
    deliver(&l, (const uint8_t *)"\x05/x/\0\n", 6);
    assert_int_equal(l.rv, 0);
    assert_int_equal(matcher_calls, 0);
    deliver(&l, (const uint8_t *)"\x03/y\n", 4);
    assert_int_equal(matcher_calls, 1);
    assert_int_equal(l.out.len, 20 + 4 + 4);
    assert_memory_equal(l.out.base + 20, "\x03na\n\x03na\n", 8);
    /* A 1024-byte id is the largest accepted. */
    uint8_t big[2 + FLARE_MSS_MAX_MSG];
    big[0] = 0x81; /* uvarint 1025 */
    big[1] = 0x08;
    memset(big + 2, 'z', sizeof(big) - 3);
    memcpy(big + 2, "/x/", 3);
    big[sizeof(big) - 1] = '\n';
    flare_buf_reset(&l.out);
    deliver(&l, big, sizeof(big));
    assert_int_equal(l.rv, 1);
    assert_int_equal(strlen(flare_mss_selected(&l.m)), FLARE_MSS_MAX_PROTO_LEN);
    assert_int_equal(l.out.len, sizeof(big));
    assert_memory_equal(l.out.base, big, sizeof(big));
    peer_free(&l);
}

static int feed_one(flare_mss_role role, const char *in, size_t len, size_t *used)
{
    flare_mss_settings s = {.role = role, .protocols = TWO, .nprotocols = 2};
    flare_mss m;
    flare_buf out;
    flare_buf_init(&out, NULL);
    assert_int_equal(flare_mss_init(&m, &s, NULL), 0);
    int rv = flare_mss_recv(&m, (const uint8_t *)in, len, used, &out);
    flare_mss_free(&m);
    flare_buf_free(&out);
    return rv;
}

static void test_malformed(void **state)
{
    static const struct {
        flare_mss_role role;
        const char *in;
        size_t len;
        int want;
    } vec[] = {
        {FLARE_MSS_LISTENER, "\x13/multistream/1.0.0X", 20, FLARE_ERR_MALFORMED},
        {FLARE_MSS_LISTENER, "\x00", 1, FLARE_ERR_MALFORMED},
        {FLARE_MSS_LISTENER, HDR "\x00", 21, FLARE_ERR_MALFORMED},
        {FLARE_MSS_LISTENER, HDR "\x04/a/1", 25, FLARE_ERR_MALFORMED},
        {FLARE_MSS_LISTENER, "\x82\x08", 2, FLARE_ERR_TOO_LARGE}, /* 1026 */
        {FLARE_MSS_DIALER, HDR "\xff\xff\x03", 23, FLARE_ERR_TOO_LARGE},
        {FLARE_MSS_LISTENER, "\x80\x00", 2, FLARE_ERR_OVERLONG},
        {FLARE_MSS_DIALER, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 10, FLARE_ERR_OVERLONG},
        {FLARE_MSS_LISTENER, "\x13/multistream/2.0.0\n", 20, FLARE_ERR_PROTO},
        {FLARE_MSS_DIALER, "\x03na\n", 4, FLARE_ERR_PROTO},
        {FLARE_MSS_DIALER, HDR "\x05/b/2\n", 26, FLARE_ERR_PROTO}, /* not what we proposed */
        {FLARE_MSS_DIALER, HDR "\x03ls\n", 24, FLARE_ERR_PROTO},
        {FLARE_MSS_DIALER, HDR HDR, 40, FLARE_ERR_PROTO},
    };
    for (size_t i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
        size_t used = 0;
        int rv = feed_one(vec[i].role, vec[i].in, vec[i].len, &used);
        if (rv != vec[i].want)
            fail_msg("vector %zu: got %d want %d", i, rv, vec[i].want);
        assert_true(used <= vec[i].len);
    }
}

static void test_init_args(void **state)
{
    static const char *const bad_nl[] = {"/a\n"};
    static const char *const bad_empty[] = {""};
    flare_mss m;
    flare_mss_settings s = {.role = FLARE_MSS_DIALER};
    assert_int_equal(flare_mss_init(&m, &s, NULL), FLARE_ERR_INVALID_ARG);
    s.role = FLARE_MSS_LISTENER;
    assert_int_equal(flare_mss_init(&m, &s, NULL), FLARE_ERR_INVALID_ARG);
    s.protocols = bad_nl;
    s.nprotocols = 1;
    assert_int_equal(flare_mss_init(&m, &s, NULL), FLARE_ERR_INVALID_ARG);
    s.protocols = bad_empty;
    assert_int_equal(flare_mss_init(&m, &s, NULL), FLARE_ERR_INVALID_ARG);
    s.role = (flare_mss_role)7;
    s.protocols = ONE;
    assert_int_equal(flare_mss_init(&m, &s, NULL), FLARE_ERR_INVALID_ARG);
    assert_int_equal(flare_mss_init(&m, NULL, NULL), FLARE_ERR_INVALID_ARG);
}

/* A negotiation allocates nothing: the selection is the dialer's own list
 * entry or, for a listener, the proposal kept in its message buffer, which
 * later input does not overwrite. */
static void test_no_allocations(void **state)
{
    (void)state;
    flare_test_heap heap = {0};
    flare_mem mem = flare_test_heap_mem(&heap);
    flare_mss_settings ds = {.role = FLARE_MSS_DIALER, .protocols = TWO, .nprotocols = 2};
    flare_mss_settings ls = {
        .role = FLARE_MSS_LISTENER, .supports = match_prefix, .user = (void *)"/b/"};
    for (int opt = 0; opt < 2; opt++) {
        flare_mss_settings dd = opt ? (flare_mss_settings){.role = FLARE_MSS_DIALER,
                                                           .protocols = ONE,
                                                           .nprotocols = 1,
                                                           .optimistic = 1}
                                    : ds;
        peer d, l;
        memset(&d, 0, sizeof(d));
        memset(&l, 0, sizeof(l));
        assert_int_equal(flare_mss_init(&d.m, &dd, &mem), 0);
        assert_int_equal(flare_mss_init(&l.m, &ls, &mem), 0);
        flare_buf_init(&d.out, NULL);
        flare_buf_init(&d.app, NULL);
        flare_buf_init(&l.out, NULL);
        flare_buf_init(&l.app, NULL);
        assert_int_equal(flare_mss_start(&d.m, &d.out), 0);
        pump(&d, &l, 7);
        assert_int_equal(d.rv, 1);
        assert_int_equal(l.rv, 1);
        assert_ptr_equal(flare_mss_selected(&d.m), dd.protocols[dd.nprotocols - 1]);
        assert_string_equal(flare_mss_selected(&l.m), "/b/2");
        size_t used = 1;
        assert_int_equal(flare_mss_recv(&l.m, (const uint8_t *)"\x05/b/9\n", 6, &used, &l.out), 1);
        assert_int_equal(used, 0);
        assert_string_equal(flare_mss_selected(&l.m), "/b/2");
        assert_int_equal(heap.calls, 0);
        peer_free(&d);
        peer_free(&l);
        assert_null(flare_mss_selected(&l.m));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_bytes),
        cmocka_unit_test(test_pumped_all_chunks),
        cmocka_unit_test(test_listener_every_split),
        cmocka_unit_test(test_dialer_every_split),
        cmocka_unit_test(test_optimistic),
        cmocka_unit_test(test_optimistic_refused),
        cmocka_unit_test(test_all_refused),
        cmocka_unit_test(test_ls),
        cmocka_unit_test(test_reply_budget),
        cmocka_unit_test(test_matcher_and_limits),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_init_args),
        cmocka_unit_test(test_no_allocations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
