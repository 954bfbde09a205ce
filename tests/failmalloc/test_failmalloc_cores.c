/* Allocation-failure sweeps of the sans-I/O protocol cores: each scenario
 * runs a whole exchange between the two roles in memory (every object and
 * output buffer on the failing allocator); see failmalloc.h. Multiaddrs and
 * peer IDs are fixed-size values that allocate nothing, so their parsers are
 * covered by the fuzzers, not here. */
#include "failmalloc/failmalloc.h"

#include "flare/autonat.h"
#include "flare/dcutr.h"
#include "flare/envelope.h"
#include "flare/identify.h"
#include "flare/lpframe.h"
#include "flare/mss.h"
#include "flare/noise.h"
#include "flare/peer_record.h"
#include "flare/ping.h"
#include "flare/relay.h"
#include "flare/relay_server.h"
#include "flare/yamux.h"

#define MS FLARE_NS_PER_MS

static flare_privkey key(uint8_t b)
{
    uint8_t seed[32] = {b};
    flare_privkey k;
    assert_int_equal(flare_privkey_from_seed(&k, seed), 0);
    return k;
}

static flare_peerid peer_of(uint8_t b)
{
    flare_privkey k = key(b);
    flare_peerid id;
    assert_int_equal(flare_peerid_from_pubkey(&id, &k.pub), 0);
    return id;
}

/* ---- multistream-select ------------------------------------------------------------ */

static int sc_mss(fm *m, void *ctx)
{
    (void)ctx;
    static const char *const want[] = {"/a/1.0.0", "/b/1.0.0"};
    flare_mss_settings ds = {.role = FLARE_MSS_DIALER, .protocols = want, .nprotocols = 2};
    flare_mss_settings ls = {.role = FLARE_MSS_LISTENER, .protocols = want + 1, .nprotocols = 1};
    flare_mss d, l;
    flare_buf dout, lout;
    memset(&d, 0, sizeof(d));
    memset(&l, 0, sizeof(l));
    flare_buf_init(&dout, &m->mem);
    flare_buf_init(&lout, &m->mem);
    int rv = flare_mss_init(&d, &ds, &m->mem);
    if (rv == 0)
        rv = flare_mss_init(&l, &ls, &m->mem);
    if (rv == 0)
        rv = flare_mss_start(&d, &dout);
    if (rv == 0)
        rv = flare_mss_start(&l, &lout);
    int dd = 0, ld = 0;
    for (int round = 0; rv >= 0 && round < 8 && !(dd && ld); round++) {
        size_t used;
        if (dout.len && !ld) {
            rv = flare_mss_recv(&l, dout.base, dout.len, &used, &lout);
            flare_buf_reset(&dout);
            ld = rv == 1;
        }
        if (rv >= 0 && lout.len && !dd) {
            rv = flare_mss_recv(&d, lout.base, lout.len, &used, &dout);
            flare_buf_reset(&lout);
            dd = rv == 1;
        }
    }
    if (rv >= 0)
        rv = dd && ld && strcmp(flare_mss_selected(&d), "/b/1.0.0") == 0 ? 0 : FLARE_ERR_PROTO;
    flare_mss_free(&d);
    flare_mss_free(&l);
    flare_buf_free(&dout);
    flare_buf_free(&lout);
    return rv;
}

/* ---- Noise: handshake and transport --------------------------------------------------- */

static int sc_noise(fm *m, void *ctx)
{
    (void)ctx;
    static const char *const muxers[] = {"/yamux/1.0.0"};
    flare_privkey ka = key(1), kb = key(2);
    flare_prng pa, pb;
    flare_prng_seed(&pa, 1);
    flare_prng_seed(&pb, 2);
    flare_noise_settings sa, sb;
    flare_noise_settings_default(&sa);
    sa.identity = &ka;
    sa.initiator = 1;
    sa.muxers = muxers;
    sa.nmuxers = 1;
    sb = sa;
    sb.identity = &kb;
    sb.initiator = 0;
    flare_noise a = {0}, b = {0};
    flare_buf ao, bo, ap, bp;
    flare_buf_init(&ao, &m->mem);
    flare_buf_init(&bo, &m->mem);
    flare_buf_init(&ap, &m->mem);
    flare_buf_init(&bp, &m->mem);
    int rv = flare_noise_init(&a, &sa, &m->mem, flare_prng_rng(&pa));
    if (rv == 0)
        rv = flare_noise_init(&b, &sb, &m->mem, flare_prng_rng(&pb));
    if (rv == 0)
        rv = flare_noise_start(&a, &ao);
    for (int i = 0; rv == 0 && i < 4 && (ao.len || bo.len); i++) {
        if (ao.len) {
            rv = flare_noise_recv(&b, ao.base, ao.len, &bo, &bp);
            flare_buf_reset(&ao);
        }
        if (rv == 0 && bo.len) {
            rv = flare_noise_recv(&a, bo.base, bo.len, &ao, &ap);
            flare_buf_reset(&bo);
        }
    }
    if (rv == 0 && !(flare_noise_handshake_done(&a) && flare_noise_handshake_done(&b)))
        rv = FLARE_ERR_PROTO;
    /* Transport both ways, one message bigger than a frame. */
    static uint8_t big[70000];
    if (rv == 0)
        rv = flare_noise_encrypt(&a, big, sizeof(big), &ao);
    if (rv == 0)
        rv = flare_noise_recv(&b, ao.base, ao.len, &bo, &bp);
    if (rv == 0)
        rv = flare_noise_encrypt(&b, (const uint8_t *)"pong", 4, &bo);
    if (rv == 0)
        rv = flare_noise_recv(&a, bo.base, bo.len, &ao, &ap);
    if (rv == 0 && (bp.len != sizeof(big) || ap.len != 4 || memcmp(ap.base, "pong", 4)))
        rv = FLARE_ERR_PROTO;
    flare_noise_free(&a);
    flare_noise_free(&b);
    flare_buf_free(&ao);
    flare_buf_free(&bo);
    flare_buf_free(&ap);
    flare_buf_free(&bp);
    return rv;
}

/* ---- yamux: streams, data, pings, goaway ---------------------------------------------- */

typedef struct ypair {
    flare_yamux *a, *b;
    flare_buf ao, bo;
} ypair;

static int ydeliver(flare_yamux *to, flare_buf *from, flare_buf *to_out)
{
    int rv = from->len ? flare_yamux_recv(to, from->base, from->len, 0, to_out) : 0;
    flare_buf_reset(from);
    return rv;
}

static int ypump(ypair *p)
{
    int rv = 0;
    for (int i = 0; rv == 0 && i < 64 && (p->ao.len || p->bo.len); i++) {
        rv = ydeliver(p->b, &p->ao, &p->bo);
        if (rv == 0)
            rv = ydeliver(p->a, &p->bo, &p->ao);
    }
    return rv;
}

/* b accepts and echoes what it reads on every stream; counts a's pongs. */
static int yserve(ypair *p, int *rtts)
{
    flare_yamux_event ev;
    static uint8_t buf[65536];
    int rv = 0;
    while (rv >= 0 && flare_yamux_poll_event(p->b, &ev)) {
        if (ev.type == FLARE_YAMUX_EV_STREAM_OPENED)
            rv = flare_yamux_accept_stream(p->b, ev.stream_id, &p->bo);
        else if (ev.type == FLARE_YAMUX_EV_STREAM_READABLE) {
            long n = flare_yamux_read(p->b, ev.stream_id, buf, sizeof(buf), &p->bo);
            if (n > 0)
                n = flare_yamux_write(p->b, ev.stream_id, buf, (size_t)n, &p->bo);
            rv = n < 0 && n != FLARE_ERR_AGAIN ? (int)n : 0;
        } else if (ev.type == FLARE_YAMUX_EV_STREAM_REMOTE_CLOSED)
            rv = flare_yamux_close_stream(p->b, ev.stream_id, &p->bo);
    }
    while (flare_yamux_poll_event(p->a, &ev))
        *rtts += ev.type == FLARE_YAMUX_EV_PING_RTT;
    return rv;
}

static int yamux_run(ypair *p)
{
    static uint8_t data[100000];
    static uint8_t back[65536];
    uint32_t s1, s2;
    int rtts = 0, rv;
    if ((rv = flare_yamux_open_stream(p->a, &s1, &p->ao)) != 0 ||
        (rv = flare_yamux_open_stream(p->a, &s2, &p->ao)) != 0)
        return rv;
    long n = flare_yamux_write(p->a, s1, data, sizeof(data), &p->ao);
    if (n < 0)
        return (int)n;
    if ((rv = flare_yamux_ping(p->a, 0, &p->ao)) != 0)
        return rv;
    size_t echoed = 0;
    for (int i = 0; i < 16 && rv == 0; i++) {
        if ((rv = ypump(p)) == 0)
            rv = yserve(p, &rtts);
        while (rv == 0 && (n = flare_yamux_read(p->a, s1, back, sizeof(back), &p->ao)) > 0)
            echoed += (size_t)n;
    }
    if (rv)
        return rv;
    if ((rv = flare_yamux_reset_stream(p->a, s2, &p->ao)) != 0 ||
        (rv = flare_yamux_close_stream(p->a, s1, &p->ao)) != 0 ||
        (rv = flare_yamux_goaway(p->a, 0, &p->ao)) != 0 || (rv = ypump(p)) != 0 ||
        (rv = yserve(p, &rtts)) != 0 || (rv = ypump(p)) != 0)
        return rv;
    /* The window limits the first batch; the echo of it is what counts. */
    return echoed > 0 && rtts == 1 ? 0 : FLARE_ERR_PROTO;
}

static int sc_yamux(fm *m, void *ctx)
{
    (void)ctx;
    flare_yamux_settings sa, sb;
    flare_yamux_settings_default(&sa);
    flare_yamux_settings_default(&sb);
    sa.is_client = 1;
    sb.is_client = 0;
    sa.keepalive_interval = sb.keepalive_interval = 0;
    ypair p = {NULL, NULL, {0}, {0}};
    flare_buf_init(&p.ao, &m->mem);
    flare_buf_init(&p.bo, &m->mem);
    flare_prng ra, rb;
    flare_prng_seed(&ra, 1);
    flare_prng_seed(&rb, 2);
    int rv = flare_yamux_new(&p.a, &sa, &m->mem, flare_prng_rng(&ra), 0);
    if (rv == 0)
        rv = flare_yamux_new(&p.b, &sb, &m->mem, flare_prng_rng(&rb), 0);
    if (rv == 0)
        rv = yamux_run(&p);
    if (p.a)
        flare_yamux_del(p.a);
    if (p.b)
        flare_yamux_del(p.b);
    flare_buf_free(&p.ao);
    flare_buf_free(&p.bo);
    return rv;
}

/* ---- identify, signed peer records, envelopes -------------------------------------------- */

static int sc_identify(fm *m, void *ctx)
{
    (void)ctx;
    flare_privkey k = key(3);
    static const char *const protos[] = {"/ipfs/id/1.0.0", "/ipfs/ping/1.0.0", "/libp2p/dcutr"};
    flare_multiaddr listen[2] = {flare_test_ma("/ip4/198.51.100.1/tcp/4001"),
                                 flare_test_ma("/ip6/2001:db8::1/tcp/4001")};
    flare_multiaddr obs = flare_test_ma("/ip4/203.0.113.7/tcp/5555");
    flare_buf rec, out;
    flare_buf_init(&rec, &m->mem);
    flare_buf_init(&out, &m->mem);
    flare_bytes_view av[2] = {{listen[0].bytes, listen[0].len}, {listen[1].bytes, listen[1].len}};
    int rv = flare_peer_record_seal(&k, 1, av, 2, &rec);
    flare_identify_out o = {.agent_version = "flare/test",
                            .pubkey = &k.pub,
                            .listen = listen,
                            .nlisten = 2,
                            .observed = &obs,
                            .protocols = protos,
                            .nprotocols = 3,
                            .signed_record = rec.base,
                            .signed_record_len = rec.len};
    if (rv == 0)
        rv = flare_identify_encode(&o, &out);
    const uint8_t *body;
    size_t blen;
    if (rv == 0 && flare_lpframe_parse(out.base, out.len, FLARE_IDENTIFY_MAX_MSG, &body, &blen) < 0)
        rv = FLARE_ERR_MALFORMED;
    if (rv == 0) {
        flare_identify_msg msg;
        rv = flare_identify_decode(&msg, body, blen, &m->mem);
        if (rv == 0) {
            flare_peer_record pr;
            if (msg.nprotocols != 3 || msg.nlisten != 2 || !msg.signed_record)
                rv = FLARE_ERR_PROTO;
            else
                rv = flare_peer_record_open(msg.signed_record, msg.signed_record_len, &pr, NULL);
            flare_identify_msg_free(&msg);
        }
    }
    flare_buf_free(&rec);
    flare_buf_free(&out);
    return rv;
}

static int sc_envelope(fm *m, void *ctx)
{
    (void)ctx;
    flare_privkey k = key(4);
    flare_buf out;
    flare_buf_init(&out, &m->mem);
    int rv = flare_envelope_seal(&k, "flare-test", (const uint8_t *)"\x01", 1,
                                 (const uint8_t *)"payload", 7, &out);
    flare_envelope env;
    if (rv == 0)
        rv = flare_envelope_open(out.base, out.len, "flare-test", NULL, 0, &env);
    flare_buf_free(&out);
    return rv;
}

/* ---- ping ---------------------------------------------------------------------------------- */

static int sc_ping(fm *m, void *ctx)
{
    (void)ctx;
    flare_prng p;
    flare_prng_seed(&p, 5);
    flare_ping_client c;
    flare_ping_server s;
    flare_ping_server_init(&s);
    flare_buf co, so;
    flare_buf_init(&co, &m->mem);
    flare_buf_init(&so, &m->mem);
    int rv = flare_ping_client_init(&c, FLARE_PING_DEFAULT_TIMEOUT, flare_prng_rng(&p));
    for (int i = 0; rv == 0 && i < 3; i++) {
        flare_tstamp rtt;
        flare_buf_reset(&co);
        flare_buf_reset(&so);
        if ((rv = flare_ping_client_send(&c, 0, &co)) == 0 &&
            (rv = flare_ping_server_recv(&s, co.base, co.len, &so)) == 0)
            rv = flare_ping_client_recv(&c, so.base, so.len, 5 * MS, &rtt) == 1 ? 0
                                                                                : FLARE_ERR_PROTO;
    }
    flare_buf_free(&co);
    flare_buf_free(&so);
    return rv;
}

/* ---- AutoNAT v1 ------------------------------------------------------------------------------ */

static int sc_autonat1(fm *m, void *ctx)
{
    (void)ctx;
    flare_peerid client = peer_of(6);
    flare_multiaddr addrs[2] = {flare_test_ma("/ip4/8.8.4.4/tcp/4001"),
                                flare_test_ma("/ip4/8.8.4.4/tcp/4002")};
    flare_multiaddr observed = flare_test_ma("/ip4/8.8.4.4/tcp/51000");
    uint16_t ports[1] = {4001};
    flare_autonat1_server srv;
    memset(&srv, 0, sizeof(srv));
    flare_buf req, resp;
    flare_buf_init(&req, &m->mem);
    flare_buf_init(&resp, &m->mem);
    int rv = flare_autonat1_server_init(&srv, NULL, &m->mem), inited = rv == 0;
    for (int i = 0; rv == 0 && i < 2; i++) {
        flare_buf_reset(&req);
        flare_buf_reset(&resp);
        size_t used;
        flare_autonat1_dial dial;
        if ((rv = flare_autonat1_client_request(&req, &client, addrs, 2)) != 0)
            break;
        rv = flare_autonat1_server_handle(&srv, req.base, req.len, &used, &client, &observed, 0,
                                          (flare_tstamp)i * MS, &dial, &resp);
        if (rv == 1)
            rv = flare_autonat1_server_dial_result(&dial.addrs[0], &resp);
        else if (rv == 0)
            rv = FLARE_ERR_REFUSED;
        flare_autonat_outcome outcome;
        if (rv == 0)
            rv = flare_autonat1_client_response(resp.base, resp.len, &used, addrs, 2, ports, 1,
                                                &outcome, NULL);
        if (rv == 0 && outcome != FLARE_AUTONAT_REACHABLE)
            rv = FLARE_ERR_PROTO;
    }
    if (inited)
        flare_autonat1_server_free(&srv);
    flare_buf_free(&req);
    flare_buf_free(&resp);
    return rv;
}

/* ---- AutoNAT v2 ------------------------------------------------------------------------------ */

/* The client asks for an address on another IP than the observed one, so the
 * server asks for dial data first. */
static int autonat2_run(flare_autonat2_server *srv, flare_prng *p, flare_buf *c2s, flare_buf *s2c,
                        flare_buf *back)
{
    flare_peerid client = peer_of(7);
    flare_multiaddr addrs[1] = {flare_test_ma("/ip4/8.8.8.8/tcp/4001")};
    flare_multiaddr observed = flare_test_ma("/ip4/9.9.9.9/tcp/51000");
    flare_autonat2_client_req c;
    flare_autonat2_server_req r;
    flare_autonat2_server_req_init(&r, srv, &client, &observed, 0);
    int rv = flare_autonat2_client_req_init(&c, addrs, 1, FLARE_AUTONAT2_DEFAULT_MAX_DIAL_DATA,
                                            flare_prng_rng(p), c2s);
    int srv_state = 0, cli_state = 0;
    for (int i = 0; rv == 0 && i < 64 && srv_state == 0; i++) {
        size_t used;
        srv_state = flare_autonat2_server_req_recv(&r, c2s->base, c2s->len, &used, 0, s2c);
        if (srv_state < 0)
            return srv_state;
        flare_buf_consume(c2s, used);
        if (s2c->len) {
            rv = flare_autonat2_client_req_recv(&c, s2c->base, s2c->len, &used, c2s);
            if (rv == 0)
                flare_buf_consume(s2c, used);
        }
    }
    if (rv)
        return rv;
    if (srv_state != 1)
        return FLARE_ERR_PROTO;
    /* The dial-back: DialBack{nonce} and its response. */
    uint64_t nonce;
    size_t used;
    if ((rv = flare_autonat2_encode_dial_back(back, r.nonce)) != 0 ||
        (rv = flare_autonat2_parse_dial_back(back->base, back->len, &used, &nonce)) != 0)
        return rv;
    flare_buf_reset(back);
    if ((rv = flare_autonat2_client_req_dial_back(&c, nonce, NULL, 0, back)) != 0 ||
        (rv = flare_autonat2_parse_dial_back_response(back->base, back->len, &used)) != 0 ||
        (rv = flare_autonat2_server_req_dial_result(&r, FLARE_AUTONAT2_DIAL_OK, s2c)) != 0)
        return rv;
    cli_state = flare_autonat2_client_req_recv(&c, s2c->base, s2c->len, &used, c2s);
    if (cli_state < 0)
        return cli_state;
    return cli_state == 1 && c.outcome == FLARE_AUTONAT_REACHABLE ? 0 : FLARE_ERR_PROTO;
}

static int sc_autonat2(fm *m, void *ctx)
{
    (void)ctx;
    flare_prng p;
    flare_prng_seed(&p, 8);
    flare_autonat2_server srv;
    memset(&srv, 0, sizeof(srv));
    flare_buf c2s, s2c, back;
    flare_buf_init(&c2s, &m->mem);
    flare_buf_init(&s2c, &m->mem);
    flare_buf_init(&back, &m->mem);
    flare_autonat2_server_settings ss;
    flare_autonat2_server_settings_default(&ss);
    ss.min_dial_data = 10000;
    ss.max_dial_data = 20000;
    int rv = flare_autonat2_server_init(&srv, &ss, &m->mem, flare_prng_rng(&p));
    int inited = rv == 0;
    if (rv == 0)
        rv = autonat2_run(&srv, &p, &c2s, &s2c, &back);
    if (inited)
        flare_autonat2_server_free(&srv);
    flare_buf_free(&c2s);
    flare_buf_free(&s2c);
    flare_buf_free(&back);
    return rv;
}

/* ---- circuit relay v2: reservation and a circuit, client and server ------------------------ */

typedef struct relay_ctx {
    flare_privkey rk;
    flare_peerid relay, target, source;
} relay_ctx;

static int relay_run(flare_relay_server *s, relay_ctx *x, flare_buf *a, flare_buf *b)
{
    flare_ipaddr ip;
    flare_relay_hop_result res;
    const uint8_t *body;
    size_t blen;
    int rv = flare_ipaddr_parse(&ip, "198.51.100.9");
    if (rv)
        return rv;
    /* The target reserves. */
    if ((rv = flare_relay_client_reserve(a)) != 0)
        return rv;
    if (flare_lpframe_parse(a->base, a->len, FLARE_RELAY_MSG_MAX, &body, &blen) < 0)
        return FLARE_ERR_MALFORMED;
    if ((rv = flare_relay_server_handle_hop(s, body, blen, &x->target, &ip, 0, 0, 1000000, b,
                                            &res)) != 0)
        return rv;
    if (flare_lpframe_parse(b->base, b->len, FLARE_RELAY_MSG_MAX, &body, &blen) < 0)
        return FLARE_ERR_MALFORMED;
    flare_relay_reservation rsv;
    if ((rv = flare_relay_client_reserve_reply(body, blen, &x->relay, &x->target, 1000000, &rsv,
                                               NULL)) != 0)
        return rv;
    /* The source connects to it. */
    flare_buf_reset(a);
    flare_buf_reset(b);
    if ((rv = flare_relay_client_connect(&x->target, a)) != 0)
        return rv;
    flare_lpframe_parse(a->base, a->len, FLARE_RELAY_MSG_MAX, &body, &blen);
    if ((rv = flare_relay_server_handle_hop(s, body, blen, &x->source, &ip, 0, MS, 1000000, b,
                                            &res)) != 0)
        return rv;
    if (res.action != FLARE_RELAY_HOP_OPEN_STOP)
        return FLARE_ERR_REFUSED;
    flare_relay_circuit *c = res.circuit;
    flare_buf_reset(a);
    if ((rv = flare_relay_circuit_stop_request(c, a)) != 0) {
        flare_relay_server_stop_failed(s, c, b);
        return rv;
    }
    flare_relay_stop_request sr;
    flare_lpframe_parse(a->base, a->len, FLARE_RELAY_MSG_MAX, &body, &blen);
    flare_buf_reset(b);
    if ((rv = flare_relay_stop_handle(body, blen, &sr, b)) == 0) {
        flare_buf_reset(a);
        rv = flare_relay_stop_reply(FLARE_RELAY_STATUS_OK, a);
    }
    if (rv) {
        flare_relay_server_stop_failed(s, c, b);
        return rv;
    }
    flare_lpframe_parse(a->base, a->len, FLARE_RELAY_MSG_MAX, &body, &blen);
    flare_buf_reset(b);
    if ((rv = flare_relay_server_stop_reply(s, c, body, blen, 2 * MS, b)) != 0)
        return rv; /* c is freed */
    flare_relay_limit limit;
    flare_lpframe_parse(b->base, b->len, FLARE_RELAY_MSG_MAX, &body, &blen);
    rv = flare_relay_client_connect_reply(body, blen, &limit, NULL);
    flare_relay_server_circuit_close(s, c);
    if (rv == 0 && !flare_peerid_equal(&sr.remote, &x->source))
        rv = FLARE_ERR_PROTO;
    return rv;
}

static int sc_relay(fm *m, void *vx)
{
    relay_ctx *x = vx;
    flare_prng p;
    flare_prng_seed(&p, 9);
    flare_relay_server_settings cfg;
    flare_relay_server_settings_default(&cfg);
    cfg.key = &x->rk;
    flare_relay_server *s = NULL;
    flare_buf a, b;
    flare_buf_init(&a, &m->mem);
    flare_buf_init(&b, &m->mem);
    int rv = flare_relay_server_new(&s, &cfg, &m->mem, flare_prng_rng(&p));
    if (rv == 0)
        rv = relay_run(s, x, &a, &b);
    if (s) {
        flare_relay_server_peer_disconnected(s, &x->target);
        flare_relay_server_del(s);
    }
    flare_buf_free(&a);
    flare_buf_free(&b);
    return rv;
}

/* ---- DCUtR: B (initiator) and A (responder) ------------------------------------------------ */

static int dcutr_run(flare_dcutr_initiator *bi, flare_dcutr_responder *ar, flare_buf *bo,
                     flare_buf *ao)
{
    flare_multiaddr baddrs[1] = {flare_test_ma("/ip4/203.0.113.2/tcp/4001")};
    flare_multiaddr aaddrs[1] = {flare_test_ma("/ip4/203.0.113.1/tcp/4001")};
    int rv;
    if ((rv = flare_dcutr_responder_stream_open(ar, 0)) != 0 ||
        (rv = flare_dcutr_initiator_start(bi, 0, baddrs, 1, bo)) != 0 ||
        (rv = flare_dcutr_responder_recv(ar, bo->base, bo->len, 50 * MS, aaddrs, 1, ao)) != 0)
        return rv;
    flare_buf_reset(bo);
    if ((rv = flare_dcutr_initiator_recv(bi, ao->base, ao->len, 100 * MS, bo)) != 0 ||
        (rv = flare_dcutr_responder_recv(ar, bo->base, bo->len, 150 * MS, aaddrs, 1, ao)) != 0)
        return rv;
    flare_dcutr_event ev;
    int dials = 0;
    while (flare_dcutr_responder_poll_event(ar, &ev))
        dials += ev.type == FLARE_DCUTR_EV_DIAL;
    if ((rv = flare_dcutr_initiator_handle_expiry(bi, 150 * MS)) != 0)
        return rv;
    while (flare_dcutr_initiator_poll_event(bi, &ev))
        dials += ev.type == FLARE_DCUTR_EV_DIAL;
    if ((rv = flare_dcutr_initiator_dial_result(bi, 1, &aaddrs[0], 200 * MS)) != 0 ||
        (rv = flare_dcutr_responder_dial_result(ar, 1, &baddrs[0], 200 * MS)) != 0)
        return rv;
    return dials == 2 && flare_dcutr_initiator_done(bi) ? 0 : FLARE_ERR_PROTO;
}

static int sc_dcutr(fm *m, void *ctx)
{
    (void)ctx;
    flare_dcutr_initiator bi;
    flare_dcutr_responder ar;
    flare_buf bo, ao, metrics;
    flare_buf_init(&bo, &m->mem);
    flare_buf_init(&ao, &m->mem);
    flare_buf_init(&metrics, &m->mem);
    flare_dcutr_tracer t;
    flare_dcutr_tracer_init(&t);
    flare_dcutr_settings s;
    flare_dcutr_settings_default(&s);
    s.tracer = &t;
    int rv = flare_dcutr_initiator_init(&bi, &s, &m->mem);
    if (rv == 0) {
        if ((rv = flare_dcutr_responder_init(&ar, &s, &m->mem)) == 0) {
            rv = dcutr_run(&bi, &ar, &bo, &ao);
            if (rv == 0)
                rv = flare_dcutr_metrics_format(&t, &metrics);
            flare_dcutr_responder_free(&ar);
        }
        flare_dcutr_initiator_free(&bi);
    }
    flare_buf_free(&bo);
    flare_buf_free(&ao);
    flare_buf_free(&metrics);
    return rv;
}

/* ---- the tests ---------------------------------------------------------------------------- */

#define SWEEP(fn, sc, ctx, min)                                                                    \
    static void fn(void **state)                                                                   \
    {                                                                                              \
        (void)state;                                                                               \
        fm_result r = fm_sweep(#sc + 3, sc, ctx);                                                  \
        assert_true(r.allocs >= (min));                                                            \
    }

static relay_ctx rx;

SWEEP(test_mss, sc_mss, NULL, 2)
SWEEP(test_noise, sc_noise, NULL, 6)
SWEEP(test_yamux, sc_yamux, NULL, 6)
SWEEP(test_identify, sc_identify, NULL, 4)
SWEEP(test_envelope, sc_envelope, NULL, 1)
SWEEP(test_ping, sc_ping, NULL, 2)
SWEEP(test_autonat1, sc_autonat1, NULL, 2)
SWEEP(test_autonat2, sc_autonat2, NULL, 3)
SWEEP(test_relay, sc_relay, &rx, 4)
SWEEP(test_dcutr, sc_dcutr, NULL, 2)

int main(void)
{
    rx.rk = key(10);
    assert_int_equal(flare_peerid_from_pubkey(&rx.relay, &rx.rk.pub), 0);
    rx.target = peer_of(11);
    rx.source = peer_of(12);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mss),      cmocka_unit_test(test_noise),
        cmocka_unit_test(test_yamux),    cmocka_unit_test(test_identify),
        cmocka_unit_test(test_envelope), cmocka_unit_test(test_ping),
        cmocka_unit_test(test_autonat1), cmocka_unit_test(test_autonat2),
        cmocka_unit_test(test_relay),    cmocka_unit_test(test_dcutr),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
