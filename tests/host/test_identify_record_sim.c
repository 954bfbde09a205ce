/* Signed peer records in identify, on the simulator: a valid record's
 * addresses are taken instead of the unsigned listenAddrs; a record signed
 * by another key, for another peer, corrupted, of another payload type or
 * for another domain is rejected (reported in FLARE_HOST_EV_IDENTIFIED) and
 * the unsigned addresses are used. */
#include "support/test.h"

#include "flare/envelope.h"
#include "flare/host.h"
#include "flare/identify.h"
#include "flare/peer_record.h"

#define MS FLARE_NS_PER_MS
/* Above the wall-clock-based sequence numbers of B's own records, which its
 * identify pushes carry: the newer record would replace the fake one. */
#define FAKE_SEQ (UINT64_MAX / 2)

enum { REC_NONE, REC_VALID, REC_OTHER_KEY, REC_OTHER_PEER, REC_CORRUPT, REC_TYPE, REC_DOMAIN };

typedef struct fake_id {
    flare_privkey key, other;
    int kind;
} fake_id;

typedef struct seen {
    int identified, value, error;
} seen;

static void on_event(flare_host *h, const flare_host_event *ev, void *user)
{
    seen *s = user;
    (void)h;
    /* The first one is the answer to A's request (B's identify pushes,
     * which the test does not fake, may follow). */
    if (ev->type == FLARE_HOST_EV_IDENTIFIED && s->identified++ == 0) {
        s->value = ev->u.identified.signed_record;
        s->error = ev->u.identified.record_error;
    }
}

static void record_bytes(const flare_multiaddr *ma, flare_bytes_view *v)
{
    v->data = ma->bytes;
    v->len = ma->len;
}

/* The envelope the test's identify answer carries. */
static void make_record(const fake_id *f, flare_buf *out)
{
    flare_multiaddr signed_ma;
    assert_int_equal(flare_multiaddr_parse(&signed_ma, "/ip4/198.51.100.2/tcp/2222"), 0);
    flare_bytes_view v;
    record_bytes(&signed_ma, &v);
    flare_peerid other;
    assert_int_equal(flare_peerid_from_pubkey(&other, &f->other.pub), 0);
    flare_buf payload;
    flare_buf_init(&payload, NULL);
    switch (f->kind) {
    case REC_VALID:
    case REC_CORRUPT:
        assert_int_equal(flare_peer_record_seal(&f->key, FAKE_SEQ, &v, 1, out), 0);
        if (f->kind == REC_CORRUPT)
            out->base[out->len - 3] ^= 0x40; /* inside the signature */
        break;
    case REC_OTHER_KEY: /* a genuine record, of another peer */
        assert_int_equal(flare_peer_record_seal(&f->other, FAKE_SEQ, &v, 1, out), 0);
        break;
    case REC_OTHER_PEER: /* our key vouching for another peer ID */
        assert_int_equal(flare_peer_record_encode(&other, FAKE_SEQ, &v, 1, &payload), 0);
        assert_int_equal(flare_envelope_seal(&f->key, FLARE_PEER_RECORD_DOMAIN,
                                             FLARE_PEER_RECORD_TYPE, FLARE_PEER_RECORD_TYPE_LEN,
                                             payload.base, payload.len, out),
                         0);
        break;
    case REC_TYPE:
    case REC_DOMAIN: {
        flare_peerid me;
        assert_int_equal(flare_peerid_from_pubkey(&me, &f->key.pub), 0);
        assert_int_equal(flare_peer_record_encode(&me, FAKE_SEQ, &v, 1, &payload), 0);
        const char *dom = f->kind == REC_DOMAIN ? "libp2p-relay-rsvp" : FLARE_PEER_RECORD_DOMAIN;
        const uint8_t *type =
            f->kind == REC_TYPE ? (const uint8_t *)"\x03\x02" : FLARE_PEER_RECORD_TYPE;
        assert_int_equal(flare_envelope_seal(&f->key, dom, type, 2, payload.base, payload.len, out),
                         0);
        break;
    }
    default:
        break;
    }
    flare_buf_free(&payload);
}

/* B's identify answer, written by the test. */
static void fake_open(flare_stream *s, int status, void *user)
{
    fake_id *f = user;
    if (status)
        return;
    flare_multiaddr unsigned_ma;
    assert_int_equal(flare_multiaddr_parse(&unsigned_ma, "/ip4/198.51.100.99/tcp/1111"), 0);
    flare_buf rec, out;
    flare_buf_init(&rec, NULL);
    flare_buf_init(&out, NULL);
    make_record(f, &rec);
    const char *protos[] = {FLARE_IDENTIFY_ID};
    flare_identify_out m = {.agent_version = "fake",
                            .pubkey = &f->key.pub,
                            .listen = &unsigned_ma,
                            .nlisten = 1,
                            .protocols = protos,
                            .nprotocols = 1,
                            .signed_record = rec.len ? rec.base : NULL,
                            .signed_record_len = rec.len};
    assert_int_equal(flare_identify_encode(&m, &out), 0);
    flare_stream_write(s, out.base, out.len);
    flare_stream_close_write(s);
    flare_buf_free(&rec);
    flare_buf_free(&out);
}

static const flare_stream_cbs fake_cbs = {.on_open = fake_open};

/* A identifies B, whose identify answer carries a record of kind; returns
 * what A saw and whether A's peerstore holds the signed / unsigned address. */
static seen run(int kind, int *has_signed, int *has_unsigned)
{
    flare_sim *sim = flare_sim_new(1, NULL);
    assert_non_null(sim);
    seen sa = {0};
    flare_test_pair pr;
    assert_int_equal(flare_test_pair_make(sim, &pr, on_event, &sa), 0);
    flare_host *a = pr.a, *b = pr.b;
    fake_id f = {.kind = kind};
    uint8_t bseed[32] = {2}; /* B's key, as flare_test_pair_make made it */
    assert_int_equal(flare_privkey_from_seed(&f.key, bseed), 0);
    uint8_t oseed[32] = {9};
    assert_int_equal(flare_privkey_from_seed(&f.other, oseed), 0);
    assert_int_equal(flare_host_set_handler(b, FLARE_IDENTIFY_ID, &fake_cbs, &f, 0), 0);
    assert_int_equal(flare_host_dial(a, &pr.bma, NULL, NULL, NULL), 0);
    for (int i = 0; i < 50 && !sa.identified; i++)
        flare_sim_run_for(sim, 100 * MS);
    assert_true(sa.identified >= 1);
    flare_peer_info *info = malloc(sizeof(*info));
    assert_non_null(info);
    assert_int_equal(flare_host_peer_info(a, flare_host_peerid(b), info), 0);
    *has_signed = *has_unsigned = 0;
    for (size_t i = 0; i < info->naddrs; i++) {
        char s[128];
        flare_multiaddr_to_string(&info->addrs[i], s, sizeof(s));
        *has_signed |= strstr(s, "/tcp/2222") != NULL;
        *has_unsigned |= strstr(s, "/tcp/1111") != NULL;
    }
    free(info);
    flare_host_del(a);
    flare_host_del(b);
    flare_sim_del(sim);
    return sa;
}

static void test_no_record(void **state)
{
    (void)state;
    int sig, uns;
    seen s = run(REC_NONE, &sig, &uns);
    assert_int_equal(s.error, 0);
    assert_int_equal(s.value, 0);
    assert_true(uns);
    assert_false(sig);
}

static void test_valid_record_preferred(void **state)
{
    (void)state;
    int sig, uns;
    seen s = run(REC_VALID, &sig, &uns);
    assert_int_equal(s.error, 0);
    assert_int_equal(s.value, 1);
    assert_true(sig);
    assert_false(uns);
}

static void test_bad_records_rejected(void **state)
{
    (void)state;
    static const int kinds[] = {REC_OTHER_KEY, REC_OTHER_PEER, REC_CORRUPT, REC_TYPE, REC_DOMAIN};
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        int sig, uns;
        seen s = run(kinds[i], &sig, &uns);
        print_message("kind %d: error %s\n", kinds[i], flare_strerror(s.error));
        assert_int_not_equal(s.error, 0);
        assert_int_equal(s.value, 0);
        assert_true(uns);
        assert_false(sig);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_record),
        cmocka_unit_test(test_valid_record_preferred),
        cmocka_unit_test(test_bad_records_rejected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
