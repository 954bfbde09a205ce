/* AutoNAT in the host on the simulated network: three public servers and a
 * client that is public, behind an EIM NAT, behind a symmetric NAT, behind
 * a stateful firewall, or whose network changes; plus bad input against
 * the servers through real streams. */
#include <stdlib.h>

#include "support/test.h"

#include "flare/autonat.h"
#include "flare/host.h"
#include "flare/lpframe.h"
#include "flare/sim.h"

#define MS   FLARE_NS_PER_MS
#define S    FLARE_NS_PER_S
#define MAXH 8

typedef struct tnode {
    flare_sim_host *sh;
    flare_host *h;
    char ip[32];
    int reach_events;
    flare_reach_state last_reach;
    int opened;
} tnode;

typedef struct world {
    flare_sim *sim;
    flare_sim_nat *nat;
    tnode n[MAXH];
    int count;
} world;

static void on_event(flare_host *h, const flare_host_event *ev, void *user)
{
    tnode *t = user;
    (void)h;
    if (ev->type == FLARE_HOST_EV_REACHABILITY && ev->u.reachability.family == 4) {
        t->reach_events++;
        t->last_reach = ev->u.reachability.reach;
    } else if (ev->type == FLARE_HOST_EV_CONN_OPENED) {
        t->opened++;
    }
}

static tnode *add_node_on(world *w, flare_sim_lan *lan, const char *ip,
                          const flare_host_settings *cfg_in)
{
    tnode *t = &w->n[w->count];
    char name[16];
    snprintf(name, sizeof(name), "h%d", w->count);
    flare_test_host_spec sp = {.name = name,
                               .lan = lan,
                               .ip = ip,
                               .link = {.delay = 5 * MS},
                               .seed = {(uint8_t)(w->count + 1), 0xa7},
                               .cfg = cfg_in, /* NULL: TEST-NET addresses count as public */
                               .on_event = on_event,
                               .user = t,
                               .listen_port = 4001};
    assert_int_equal(flare_test_host_make(w->sim, &sp, &t->sh, &t->h), 0);
    snprintf(t->ip, sizeof(t->ip), "%s", ip);
    w->count++;
    return t;
}

static void world_init(world *w, uint64_t seed)
{
    memset(w, 0, sizeof(*w));
    w->sim = flare_sim_new(seed, NULL);
    assert_non_null(w->sim);
    for (int i = 0; i < 3; i++) {
        char ip[32];
        snprintf(ip, sizeof(ip), "198.51.100.%d", i + 1);
        add_node_on(w, flare_sim_internet(w->sim), ip, NULL);
    }
}

static void world_free(world *w)
{
    for (int i = 0; i < w->count; i++)
        flare_host_del(w->n[i].h);
    flare_sim_del(w->sim);
}

static void addr_of(tnode *t, flare_multiaddr *ma)
{
    assert_int_equal(flare_test_tcp_addr(ma, t->ip, 4001, flare_host_peerid(t->h)), 0);
}

static void connect_servers(world *w, tnode *c)
{
    for (int i = 0; i < 3; i++) {
        flare_multiaddr ma;
        addr_of(&w->n[i], &ma);
        assert_int_equal(flare_host_dial(c->h, &ma, NULL, NULL, NULL), 0);
    }
}

/* ---- verdict scenarios -------------------------------------------------------------- */

typedef enum { C_PUBLIC, C_EIM, C_SYMMETRIC, C_FIREWALL, C_FLIP } client_kind;

static tnode *make_client(world *w, client_kind kind, const flare_host_settings *cfg)
{
    if (kind == C_PUBLIC)
        return add_node_on(w, flare_sim_internet(w->sim), "198.51.100.10", cfg);
    flare_sim_lan *lan = flare_sim_lan_new(w->sim, "lan");
    flare_sim_nat_config nc;
    flare_sim_nat_config_default(&nc);
    if (kind == C_SYMMETRIC) {
        nc.mapping = FLARE_SIM_APD;
        nc.port_preservation = 0;
    }
    if (kind == C_FIREWALL || kind == C_FLIP) {
        nc.firewall_only = 1;
        if (kind == C_FLIP)
            nc.filtering = FLARE_SIM_EI; /* lets anyone in to a used port: reachable */
        w->nat = flare_sim_nat_new(w->sim, "fw", flare_sim_internet(w->sim), "203.0.113.1", lan,
                                   "203.0.113.65", &nc);
        assert_non_null(w->nat);
        return add_node_on(w, lan, "203.0.113.66", cfg);
    }
    w->nat = flare_sim_nat_new(w->sim, "nat", flare_sim_internet(w->sim), "203.0.113.1", lan,
                               "10.0.0.1", &nc);
    assert_non_null(w->nat);
    return add_node_on(w, lan, "10.0.0.2", cfg);
}

static void verdict_case(client_kind kind, flare_reach_state want, uint64_t seed)
{
    world w;
    world_init(&w, seed);
    tnode *c = make_client(&w, kind, NULL);
    connect_servers(&w, c);
    /* Boot delay (15 s) + a failing dial-back (SYN timeout 5 s): well
     * within 30 s of simulated time. */
    flare_tstamp t0 = flare_sim_now(w.sim);
    while (flare_host_reachability(c->h, 4) == FLARE_REACH_UNKNOWN &&
           flare_sim_now(w.sim) < t0 + 30 * S)
        flare_sim_run_for(w.sim, 100 * MS);
    assert_int_equal(flare_host_reachability(c->h, 4), want);
    assert_true(flare_sim_now(w.sim) - t0 <= 30 * S);
    assert_int_equal(c->reach_events, 1);
    assert_int_equal(c->last_reach, want);
    assert_int_equal(flare_host_reachability(c->h, 6), FLARE_REACH_UNKNOWN);
    /* The verdict holds (no flapping) over a few more rounds. */
    flare_sim_run_for(w.sim, 60 * S);
    assert_int_equal(flare_host_reachability(c->h, 4), want);
    assert_int_equal(c->reach_events, 1);
    /* Dial-back connections were closed after use: only our 3 remain
     * (plus connections the servers' own probes may hold open). */
    assert_true(flare_host_num_conns(c->h) <= 6);
    /* The servers judged each other public (every node serves). */
    assert_int_equal(flare_host_reachability(w.n[0].h, 4), FLARE_REACH_PUBLIC);
    flare_multiaddr addrs[8];
    flare_reach_state st[8];
    size_t n = flare_host_reachability_addrs(c->h, addrs, st, 8);
    assert_true(n >= 1);
    int found = 0;
    for (size_t i = 0; i < n; i++)
        found |= st[i] == want;
    assert_true(found);
    world_free(&w);
}

static void test_public(void **state)
{
    verdict_case(C_PUBLIC, FLARE_REACH_PUBLIC, 21);
}

static void test_eim_nat(void **state)
{
    verdict_case(C_EIM, FLARE_REACH_PRIVATE, 22);
}

static void test_symmetric_nat(void **state)
{
    verdict_case(C_SYMMETRIC, FLARE_REACH_PRIVATE, 23);
}

static void test_firewall(void **state)
{
    verdict_case(C_FIREWALL, FLARE_REACH_PRIVATE, 24);
}

/* Public first, then the firewall starts filtering: the verdict flips only
 * after consistent contrary evidence (4 results from a settled state). */
static void test_flip(void **state)
{
    world w;
    world_init(&w, 25);
    flare_host_settings cfg;
    flare_host_settings_default(&cfg);
    cfg.doc_addrs_public = 1;
    cfg.autonat_boot_delay = 5 * S;
    cfg.autonat_retry_interval = 4 * S;
    cfg.autonat_refresh_interval = 4 * S;
    tnode *c = make_client(&w, C_FLIP, &cfg);
    connect_servers(&w, c);
    flare_sim_run_for(w.sim, 30 * S);
    assert_int_equal(flare_host_reachability(c->h, 4), FLARE_REACH_PUBLIC);
    assert_int_equal(c->reach_events, 1);
    flare_sim_nat_config nc;
    flare_sim_nat_config_default(&nc);
    nc.firewall_only = 1; /* APD filtering: only replies get in */
    flare_sim_nat_set_config(w.nat, &nc);
    /* One round of 3 contrary results is not enough... */
    flare_tstamp t0 = flare_sim_now(w.sim);
    flare_sim_run_for(w.sim, 4 * S);
    assert_int_equal(flare_host_reachability(c->h, 4), FLARE_REACH_PUBLIC);
    /* ...but the verdict flips within 30 s. */
    while (flare_host_reachability(c->h, 4) == FLARE_REACH_PUBLIC &&
           flare_sim_now(w.sim) < t0 + 30 * S)
        flare_sim_run_for(w.sim, 100 * MS);
    assert_int_equal(flare_host_reachability(c->h, 4), FLARE_REACH_PRIVATE);
    assert_int_equal(c->reach_events, 2);
    assert_int_equal(c->last_reach, FLARE_REACH_PRIVATE);
    world_free(&w);
}

/* Ask now, with the client's own callback. */
typedef struct probe_res {
    int calls, status;
} probe_res;

static void probe_cb(flare_host *h, int status, void *user)
{
    probe_res *r = user;
    (void)h;
    r->calls++;
    r->status = status;
}

static void test_probe_now(void **state)
{
    world w;
    world_init(&w, 26);
    tnode *c = make_client(&w, C_PUBLIC, NULL);
    probe_res r0 = {0}, r1 = {0};
    /* No servers yet. */
    assert_int_equal(flare_host_autonat_probe(c->h, probe_cb, &r0), 0);
    assert_int_equal(r0.calls, 0); /* from the loop, not inside the call */
    flare_sim_run_for(w.sim, 10 * MS);
    assert_int_equal(r0.calls, 1);
    assert_int_equal(r0.status, FLARE_ERR_NOT_FOUND);
    connect_servers(&w, c);
    flare_sim_run_for(w.sim, 1 * S);
    assert_int_equal(flare_host_autonat_probe(c->h, probe_cb, &r1), 0);
    flare_sim_run_for(w.sim, 3 * S);
    assert_int_equal(r1.calls, 1);
    assert_int_equal(r1.status, 0);
    assert_int_equal(flare_host_reachability(c->h, 4), FLARE_REACH_PUBLIC);
    /* A host without the client refuses. */
    flare_host_settings cfg;
    flare_host_settings_default(&cfg);
    cfg.enable_autonat_client = 0;
    tnode *d = add_node_on(&w, flare_sim_internet(w.sim), "198.51.100.20", &cfg);
    assert_int_equal(flare_host_autonat_probe(d->h, NULL, NULL), FLARE_ERR_STATE);
    assert_int_equal(flare_host_reachability(d->h, 4), FLARE_REACH_UNKNOWN);
    world_free(&w);
}

/* ---- bad input against a server ---------------------------------------------------- */

typedef struct raw {
    flare_buf in;
    int opened, eof, closed, close_err;
} raw;

static void raw_open(flare_stream *s, int status, void *user)
{
    raw *r = user;
    (void)s;
    r->opened = status == 0 ? 1 : -1;
}

static void raw_data(flare_stream *s, const uint8_t *d, size_t n, void *user)
{
    raw *r = user;
    (void)s;
    flare_buf_append(&r->in, d, n);
}

static void raw_eof(flare_stream *s, void *user)
{
    raw *r = user;
    r->eof = 1;
    flare_stream_close_write(s);
}

static void raw_close(flare_stream *s, int err, void *user)
{
    raw *r = user;
    (void)s;
    r->closed = 1;
    r->close_err = err;
}

static const flare_stream_cbs raw_cbs = {
    .on_open = raw_open, .on_data = raw_data, .on_eof = raw_eof, .on_close = raw_close};

/* Opens proto from a to b, writes data, runs, and leaves the reply in r. */
static void raw_exchange(world *w, tnode *a, tnode *b, const char *proto, const uint8_t *data,
                         size_t len, raw *r, flare_tstamp run)
{
    memset(r, 0, sizeof(*r));
    flare_buf_init(&r->in, NULL);
    flare_stream *s;
    assert_int_equal(
        flare_host_new_stream(a->h, flare_host_peerid(b->h), proto, &raw_cbs, r, 0, &s), 0);
    if (len)
        assert_true(flare_stream_write(s, data, len) >= 0);
    flare_sim_run_for(w->sim, run);
}

/* Decodes the first framed v2 message of r. */
static void v2_reply(const raw *r, flare_autonat2_msg *m)
{
    const uint8_t *p;
    size_t n;
    assert_true(flare_lpframe_parse(r->in.base, r->in.len, FLARE_AUTONAT_V2_MSG_MAX, &p, &n) > 0);
    assert_int_equal(flare_autonat2_decode(m, p, n), 0);
}

static void v1_reply(const raw *r, flare_autonat1_msg *m)
{
    const uint8_t *p;
    size_t n;
    assert_true(flare_lpframe_parse(r->in.base, r->in.len, FLARE_AUTONAT_V1_MSG_MAX, &p, &n) > 0);
    assert_int_equal(flare_autonat1_decode(m, p, n), 0);
    assert_int_equal(m->type, FLARE_AUTONAT1_DIAL_RESPONSE);
}

static void connect_pair(world *w, tnode *a, tnode *b)
{
    flare_multiaddr ma;
    addr_of(b, &ma);
    assert_int_equal(flare_host_dial(a->h, &ma, NULL, NULL, NULL), 0);
    flare_sim_run_for(w->sim, 500 * MS);
}

static void ma_parse(flare_multiaddr *ma, const char *s)
{
    assert_int_equal(flare_multiaddr_parse(ma, s), 0);
}

static void test_bad_v2(void **state)
{
    world w;
    world_init(&w, 31);
    tnode *srv = &w.n[0], *a = &w.n[1], *b = &w.n[2];
    connect_pair(&w, a, srv);
    connect_pair(&w, b, srv);
    raw r;

    /* Malformed: a frame holding garbage. */
    static const uint8_t garbage[] = {4, 0xff, 0xff, 0xff, 0xff};
    raw_exchange(&w, a, srv, FLARE_AUTONAT_V2_DIAL_REQUEST_ID, garbage, sizeof(garbage), &r,
                 500 * MS);
    assert_int_equal(r.opened, 1);
    assert_true(r.closed);
    flare_autonat2_msg *m = malloc(sizeof(*m));
    v2_reply(&r, m);
    assert_int_equal(m->type, FLARE_AUTONAT2_DIAL_RESPONSE);
    assert_int_equal(m->status, FLARE_AUTONAT2_E_REQUEST_REJECTED);
    flare_buf_free(&r.in);

    /* A third party's address: dial data is demanded first... */
    flare_multiaddr third;
    ma_parse(&third, "/ip4/198.51.100.99/tcp/4001");
    flare_buf out;
    flare_buf_init(&out, NULL);
    assert_int_equal(flare_autonat2_encode_dial_request(&out, &third, 1, 77), 0);
    size_t conns = flare_host_num_conns(srv->h);
    raw_exchange(&w, a, srv, FLARE_AUTONAT_V2_DIAL_REQUEST_ID, out.base, out.len, &r, 500 * MS);
    v2_reply(&r, m);
    assert_int_equal(m->type, FLARE_AUTONAT2_DIAL_DATA_REQUEST);
    assert_true(m->num_bytes >= 30000 && m->num_bytes <= 100000);
    assert_false(r.closed);
    /* ...and an oversize chunk kills the request without any dial. */
    flare_stream *s = NULL;
    flare_buf_free(&r.in);
    flare_buf_reset(&out);
    uint8_t *big = calloc(1, 6000);
    assert_int_equal(flare_autonat2_encode_dial_request(&out, &third, 1, 78), 0);
    raw r2;
    memset(&r2, 0, sizeof(r2));
    flare_buf_init(&r2.in, NULL);
    assert_int_equal(flare_host_new_stream(a->h, flare_host_peerid(srv->h),
                                           FLARE_AUTONAT_V2_DIAL_REQUEST_ID, &raw_cbs, &r2, 0, &s),
                     0);
    assert_true(flare_stream_write(s, out.base, out.len) >= 0);
    flare_sim_run_for(w.sim, 300 * MS);
    /* DialDataResponse with 6000 bytes: over the 4096-byte chunk limit. */
    flare_buf_reset(&out);
    uint8_t hdr[16];
    size_t hl = 0;
    hdr[hl++] = 0x22; /* field 4 (dialDataResponse), length-delimited */
    size_t inner = 1 + 2 + 6000;
    hdr[hl++] = (uint8_t)(0x80 | (inner & 0x7f));
    hdr[hl++] = (uint8_t)(inner >> 7);
    hdr[hl++] = 0x0a; /* data */
    hdr[hl++] = (uint8_t)(0x80 | (6000 & 0x7f));
    hdr[hl++] = (uint8_t)(6000 >> 7);
    flare_buf_append_uvarint(&out, hl + 6000);
    flare_buf_append(&out, hdr, hl);
    flare_buf_append(&out, big, 6000);
    assert_true(flare_stream_write(s, out.base, out.len) >= 0);
    flare_sim_run_for(w.sim, 500 * MS);
    assert_true(r2.closed);
    assert_int_equal(r2.close_err, FLARE_ERR_RESET);
    assert_int_equal(flare_host_num_conns(srv->h), conns);
    flare_buf_free(&r2.in);
    free(big);

    /* Flood: v2 allows 12 requests per peer per minute, then rejects. */
    flare_buf_reset(&out);
    flare_multiaddr own;
    ma_parse(&own, "/ip4/198.51.100.2/tcp/4001");
    assert_int_equal(flare_autonat2_encode_dial_request(&out, &own, 1, 5), 0);
    int ok = 0, rejected = 0;
    for (int i = 0; i < 16; i++) {
        raw_exchange(&w, a, srv, FLARE_AUTONAT_V2_DIAL_REQUEST_ID, out.base, out.len, &r, 1 * S);
        v2_reply(&r, m);
        if (m->status == FLARE_AUTONAT2_OK)
            ok++;
        else if (m->status == FLARE_AUTONAT2_E_REQUEST_REJECTED)
            rejected++;
        flare_buf_free(&r.in);
    }
    /* 3 requests were made above (garbage, two third-party). */
    assert_true(ok >= 9 && ok <= 12);
    assert_int_equal(ok + rejected, 16);
    /* Someone else is still served, and the dial-back really happened
     * (the raw stream of b gets no nonce check, so only the status). */
    flare_buf_reset(&out);
    flare_multiaddr bown;
    ma_parse(&bown, "/ip4/198.51.100.3/tcp/4001");
    assert_int_equal(flare_autonat2_encode_dial_request(&out, &bown, 1, 6), 0);
    raw_exchange(&w, b, srv, FLARE_AUTONAT_V2_DIAL_REQUEST_ID, out.base, out.len, &r, 1 * S);
    v2_reply(&r, m);
    assert_int_equal(m->status, FLARE_AUTONAT2_OK);
    /* b's host has no pending v2 request with nonce 6, so it refused the
     * dial-back stream: the server reports a dial-back error. */
    assert_int_equal(m->dial_status, FLARE_AUTONAT2_DIAL_E_DIAL_BACK_ERROR);
    flare_buf_free(&r.in);
    flare_buf_free(&out);
    free(m);
    world_free(&w);
}

static void test_bad_v1(void **state)
{
    world w;
    world_init(&w, 32);
    tnode *srv = &w.n[0], *a = &w.n[1], *b = &w.n[2];
    connect_pair(&w, a, srv);
    connect_pair(&w, b, srv);
    raw r;
    flare_autonat1_msg *m = malloc(sizeof(*m));
    flare_buf out;
    flare_buf_init(&out, NULL);

    /* Malformed protobuf: reset without a reply. */
    static const uint8_t garbage[] = {3, 0x08, 0xff, 0xff};
    raw_exchange(&w, a, srv, FLARE_AUTONAT_V1_PROTOCOL_ID, garbage, sizeof(garbage), &r, 500 * MS);
    assert_true(r.closed);
    assert_int_equal(r.close_err, FLARE_ERR_RESET);
    assert_int_equal(r.in.len, 0);
    flare_buf_free(&r.in);

    /* Someone else's peer id: E_BAD_REQUEST. */
    flare_multiaddr aown;
    ma_parse(&aown, "/ip4/198.51.100.2/tcp/4001");
    assert_int_equal(flare_autonat1_encode_dial(&out, flare_host_peerid(b->h), &aown, 1), 0);
    raw_exchange(&w, a, srv, FLARE_AUTONAT_V1_PROTOCOL_ID, out.base, out.len, &r, 500 * MS);
    v1_reply(&r, m);
    assert_int_equal(m->status, FLARE_AUTONAT1_E_BAD_REQUEST);
    flare_buf_free(&r.in);

    /* Only a third party's address: nothing acceptable, nothing dialed. */
    flare_buf_reset(&out);
    flare_multiaddr third;
    ma_parse(&third, "/ip4/198.51.100.99/tcp/4001");
    assert_int_equal(flare_autonat1_encode_dial(&out, flare_host_peerid(a->h), &third, 1), 0);
    size_t conns = flare_host_num_conns(srv->h);
    raw_exchange(&w, a, srv, FLARE_AUTONAT_V1_PROTOCOL_ID, out.base, out.len, &r, 500 * MS);
    v1_reply(&r, m);
    assert_int_equal(m->status, FLARE_AUTONAT1_E_DIAL_ERROR);
    assert_int_equal(flare_host_num_conns(srv->h), conns);
    flare_buf_free(&r.in);

    /* Flood: at most 3 per peer per minute, then E_DIAL_REFUSED. */
    flare_buf_reset(&out);
    assert_int_equal(flare_autonat1_encode_dial(&out, flare_host_peerid(a->h), &aown, 1), 0);
    int ok = 0, refused = 0;
    for (int i = 0; i < 6; i++) {
        raw_exchange(&w, a, srv, FLARE_AUTONAT_V1_PROTOCOL_ID, out.base, out.len, &r, 1 * S);
        v1_reply(&r, m);
        if (m->status == FLARE_AUTONAT1_OK)
            ok++;
        else if (m->status == FLARE_AUTONAT1_E_DIAL_REFUSED)
            refused++;
        if (refused)
            assert_int_equal(m->status, FLARE_AUTONAT1_E_DIAL_REFUSED); /* stays refused */
        flare_buf_free(&r.in);
    }
    assert_true(ok >= 1 && ok <= 3);
    assert_int_equal(ok + refused, 6);

    /* b is still served: dialed back at its address, OK with that address. */
    flare_buf_reset(&out);
    flare_multiaddr bown;
    ma_parse(&bown, "/ip4/198.51.100.3/tcp/4001");
    assert_int_equal(flare_autonat1_encode_dial(&out, flare_host_peerid(b->h), &bown, 1), 0);
    raw_exchange(&w, b, srv, FLARE_AUTONAT_V1_PROTOCOL_ID, out.base, out.len, &r, 1 * S);
    v1_reply(&r, m);
    assert_int_equal(m->status, FLARE_AUTONAT1_OK);
    assert_true(flare_multiaddr_equal(&m->addr, &bown));
    flare_buf_free(&r.in);
    /* The dial-back connection was closed after use. */
    flare_sim_run_for(w.sim, 1 * S);
    assert_true(flare_host_num_conns(srv->h) <= conns);
    flare_buf_free(&out);
    free(m);
    world_free(&w);
}

/* ---- v1 servers: one that "dials back" over our own connection -------------------- */

/* A v1 server handler: with no dialer it answers OK with the address it sees
 * the requester at, over the requester's connection (what js-libp2p does:
 * its dial-back reuses that connection); with a dialer it really dials the
 * first asked address from another host and answers with the outcome. */
typedef struct fake_v1 {
    tnode *dialer;
    flare_buf in;
    flare_stream *s;
    flare_multiaddr target;
} fake_v1;

static void fake_v1_reply(flare_stream *s, const flare_multiaddr *ok_addr)
{
    flare_buf out;
    flare_buf_init(&out, NULL);
    assert_int_equal(flare_autonat1_server_dial_result(ok_addr, &out), 0);
    if (flare_stream_write(s, out.base, out.len) >= 0)
        flare_stream_close_write(s);
    flare_buf_free(&out);
}

static void fake_v1_dialed(flare_host *h, flare_conn *c, int status, void *user)
{
    fake_v1 *f = user;
    (void)h;
    if (f->s)
        fake_v1_reply(f->s, status == 0 ? &f->target : NULL);
    f->s = NULL;
    if (status == 0)
        flare_conn_close(c);
}

static void fake_v1_data(flare_stream *s, const uint8_t *d, size_t n, void *user)
{
    fake_v1 *f = user;
    const uint8_t *msg;
    size_t mlen;
    flare_buf_append(&f->in, d, n);
    if (flare_lpframe_parse(f->in.base, f->in.len, FLARE_AUTONAT_V1_MSG_MAX, &msg, &mlen) <= 0)
        return;
    flare_autonat1_msg *m = malloc(sizeof(*m));
    assert_int_equal(flare_autonat1_decode(m, msg, mlen), 0);
    assert_true(m->naddrs >= 1);
    flare_buf_reset(&f->in);
    if (!f->dialer) {
        fake_v1_reply(s, flare_conn_remote_addr(flare_stream_conn(s)));
    } else {
        f->s = s;
        f->target = m->addrs[0];
        flare_multiaddr_with_peerid(&f->target, flare_conn_peer(flare_stream_conn(s)));
        assert_int_equal(flare_host_dial(f->dialer->h, &f->target, NULL, fake_v1_dialed, f), 0);
        f->target = m->addrs[0];
    }
    free(m);
}

static const flare_stream_cbs fake_v1_cbs = {.on_data = fake_v1_data};

/* Three v1-only servers (fake_v1) and a client of kind `kind`. */
static void v1_case(client_kind kind, int real_dialback, flare_reach_state want, uint64_t seed)
{
    world w;
    memset(&w, 0, sizeof(w));
    w.sim = flare_sim_new(seed, NULL);
    assert_non_null(w.sim);
    flare_host_settings cfg;
    flare_host_settings_default(&cfg);
    cfg.doc_addrs_public = 1;
    cfg.enable_autonat_server = 0;
    cfg.enable_autonat_client = 0;
    fake_v1 f[3];
    memset(f, 0, sizeof(f));
    for (int i = 0; i < 3; i++) {
        char ip[32];
        snprintf(ip, sizeof(ip), "198.51.100.%d", i + 1);
        tnode *t = add_node_on(&w, flare_sim_internet(w.sim), ip, &cfg);
        flare_buf_init(&f[i].in, NULL);
        assert_int_equal(
            flare_host_set_handler(t->h, FLARE_AUTONAT_V1_PROTOCOL_ID, &fake_v1_cbs, &f[i], 0), 0);
    }
    tnode *dialer = add_node_on(&w, flare_sim_internet(w.sim), "198.51.100.9", &cfg);
    for (int i = 0; i < 3; i++)
        f[i].dialer = real_dialback ? dialer : NULL;
    flare_host_settings ccfg;
    flare_host_settings_default(&ccfg);
    ccfg.doc_addrs_public = 1;
    ccfg.autonat_boot_delay = 2 * S;
    tnode *c = make_client(&w, kind, &ccfg);
    connect_servers(&w, c);
    flare_sim_run_for(w.sim, 30 * S);
    assert_int_equal(flare_host_reachability(c->h, 4), want);
    assert_int_equal(c->reach_events, want == FLARE_REACH_UNKNOWN ? 0 : 1);
    for (int i = 0; i < 3; i++)
        flare_buf_free(&f[i].in);
    world_free(&w);
}

/* The servers' OK names our own address (we dial from the listen port and
 * the NAT keeps it), but nothing dialed us: no verdict, public or not. */
static void test_v1_reused_conn_nat(void **state)
{
    v1_case(C_EIM, 0, FLARE_REACH_UNKNOWN, 41);
}

static void test_v1_reused_conn_public(void **state)
{
    v1_case(C_PUBLIC, 0, FLARE_REACH_UNKNOWN, 42);
}

/* Real v1 dial-backs still decide, both ways. */
static void test_v1_real_dialback_public(void **state)
{
    v1_case(C_PUBLIC, 1, FLARE_REACH_PUBLIC, 43);
}

static void test_v1_real_dialback_nat(void **state)
{
    v1_case(C_EIM, 1, FLARE_REACH_PRIVATE, 44);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_public),
        cmocka_unit_test(test_eim_nat),
        cmocka_unit_test(test_symmetric_nat),
        cmocka_unit_test(test_firewall),
        cmocka_unit_test(test_flip),
        cmocka_unit_test(test_probe_now),
        cmocka_unit_test(test_bad_v2),
        cmocka_unit_test(test_bad_v1),
        cmocka_unit_test(test_v1_reused_conn_nat),
        cmocka_unit_test(test_v1_reused_conn_public),
        cmocka_unit_test(test_v1_real_dialback_public),
        cmocka_unit_test(test_v1_real_dialback_nat),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
