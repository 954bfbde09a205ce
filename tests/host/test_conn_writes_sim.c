/* How many transport writes a connection costs: two DHT servers on the
 * simulator (B bootstraps from A: connect, identify both ways, B's
 * FIND_NODE lookup), then one more FIND_NODE on a new stream, then a close.
 * Every write is a TCP segment (a packet event in the simulator, a syscall
 * and a packet on a real socket). FLARE_TEST_TRACE=1 prints each write,
 * decoded (with plaintext security the wire is readable). */
#include <stdlib.h>

#include "support/kad_world.h"
#include "support/test.h"

#include "flare/kad.h"

#define MS FLARE_NS_PER_MS

typedef struct counter {
    flare_io *io;
    flare_io_ops ops; /* the simulator's, with sock_write counting */
    const flare_io_ops *orig;
    const char *name;
    int writes;
    size_t bytes;
} counter;

static counter cnt[2];
static int trace;

static void print_mss(const uint8_t *d, size_t len)
{
    while (len > 1 && d[0] < 0x80 && d[0] <= len - 1) {
        size_t n = d[0];
        printf(" \"%.*s\"", n ? (int)n - 1 : 0, (const char *)d + 1);
        d += n + 1;
        len -= n + 1;
    }
    if (len)
        printf(" +%zu", len);
}

/* Decodes a write of the plaintext wire: multistream lines, plaintext
 * handshake messages, yamux frames. */
static void print_write(const counter *c, const uint8_t *d, size_t len)
{
    flare_tstamp now = c->orig->now(c->io);
    printf("%8.1f ms %s %5zu B:", (double)now / MS, c->name, len);
    if (len >= 12 && d[0] == 0 && d[1] <= 3) {
        static const char *const types[] = {"DATA", "WU", "PING", "GOAWAY"};
        while (len >= 12 && d[0] == 0 && d[1] <= 3) {
            unsigned flags = (unsigned)d[2] << 8 | d[3];
            uint32_t sid = (uint32_t)d[4] << 24 | (uint32_t)d[5] << 16 | (uint32_t)d[6] << 8 | d[7];
            uint32_t n = (uint32_t)d[8] << 24 | (uint32_t)d[9] << 16 | (uint32_t)d[10] << 8 | d[11];
            printf(" [%s%s%s%s%s s%u %u]", types[d[1]], flags & 1 ? " SYN" : "",
                   flags & 2 ? " ACK" : "", flags & 4 ? " FIN" : "", flags & 8 ? " RST" : "", sid,
                   n);
            d += 12;
            len -= 12;
            if (d[-11] == 0) {
                size_t k = n < len ? n : len;
                if (k && d[0] == 0x13)
                    print_mss(d, k);
                d += k;
                len -= k;
            }
        }
        if (len)
            printf(" +%zu", len);
    } else if (len && d[0] == 0x13 && len > 1 && d[1] == '/') {
        print_mss(d, len);
    } else {
        printf(" (handshake)");
    }
    printf("\n");
}

static int count_write(counter *c, flare_io_sock *s, const uint8_t *d, size_t len)
{
    c->writes++;
    c->bytes += len;
    if (trace)
        print_write(c, d, len);
    return c->orig->sock_write(s, d, len);
}

static int write_a(flare_io_sock *s, const uint8_t *d, size_t len)
{
    return count_write(&cnt[0], s, d, len);
}

static int write_b(flare_io_sock *s, const uint8_t *d, size_t len)
{
    return count_write(&cnt[1], s, d, len);
}

static void wrap(counter *c, flare_io *io, const char *name,
                 int (*fn)(flare_io_sock *, const uint8_t *, size_t))
{
    c->io = io;
    c->orig = io->ops;
    c->ops = *io->ops;
    c->ops.sock_write = fn;
    c->name = name;
    io->ops = &c->ops;
}

typedef struct phase {
    int a, b;
} phase;

static phase take(void)
{
    static int la, lb;
    phase p = {cnt[0].writes - la, cnt[1].writes - lb};
    la = cnt[0].writes;
    lb = cnt[1].writes;
    return p;
}

static void run(const char *security, phase out[3])
{
    memset(cnt, 0, sizeof(cnt));
    (void)take();
    take();
    flare_sim *sim = flare_sim_new(7, NULL);
    assert_non_null(sim);
    flare_host_settings cfg;
    flare_test_kad_host_settings(&cfg);
    cfg.enable_autonat_client = 0;
    cfg.enable_autonat_server = 0;
    cfg.security = security;
    flare_test_kad_node a, b;
    flare_test_host_spec sa = {.name = "a", .lan = flare_sim_internet(sim), .ip = "11.0.1.1"};
    flare_test_host_spec sb = {.name = "b", .lan = flare_sim_internet(sim), .ip = "11.0.2.1"};
    sa.seed[0] = 1;
    sb.seed[0] = 2;
    sa.cfg = sb.cfg = &cfg;
    flare_test_kad_node_make(sim, &a, &sa);
    flare_test_kad_node_make(sim, &b, &sb);
    wrap(&cnt[0], flare_sim_host_io(a.sh), "A>", write_a);
    wrap(&cnt[1], flare_sim_host_io(b.sh), "B>", write_b);

    if (trace)
        printf("-- %s: B joins the DHT through A (connect, identify, FIND_NODE self)\n", security);
    flare_kad_settings ks;
    flare_test_kad_settings(&ks, FLARE_KAD_MODE_SERVER);
    flare_test_kad_enable(a.h, &ks, NULL, 0);
    const flare_test_kad_node *boot[] = {&a};
    flare_test_kad_enable(b.h, &ks, boot, 1);
    flare_test_kad_run_s(sim, 1);
    assert_non_null(flare_host_conn_to(b.h, flare_host_peerid(a.h)));
    out[0] = take();

    if (trace)
        printf("-- one more FIND_NODE on a new stream\n");
    flare_test_kad_res r = {0};
    flare_peerid target = flare_test_pid(77);
    assert_int_equal(flare_kad_find_peer(b.h, &target, flare_test_kad_peers_cb, &r), 0);
    flare_test_kad_wait(sim, &r);
    flare_test_kad_run_s(sim, 0.5);
    out[1] = take();

    if (trace)
        printf("-- B closes the connection\n");
    flare_conn_close(flare_host_conn_to(b.h, flare_host_peerid(a.h)));
    flare_test_kad_run_s(sim, 0.5);
    out[2] = take();
    if (trace)
        printf("%s: writes A %d+%d+%d B %d+%d+%d, bytes A %zu B %zu\n", security, out[0].a,
               out[1].a, out[2].a, out[0].b, out[1].b, out[2].b, cnt[0].bytes, cnt[1].bytes);
    flare_host_del(a.h);
    flare_host_del(b.h);
    flare_sim_del(sim);
}

/* The DHT's request rides with its stream's proposal, and the server's
 * answer with the echo: one write each way, then the FINs. */
static void test_find_node_writes(void **state)
{
    (void)state;
    phase p[3];
    run("/plaintext/2.0.0", p);
    assert_true(p[1].a <= 2 && p[1].b <= 2);
    assert_true(p[2].a == 0 && p[2].b == 1);
    run("/noise", p);
    assert_true(p[1].a <= 2 && p[1].b <= 2);
}

/* ---- a bare connection and one echo stream ---------------------------------------- */

static void echo_data(flare_stream *s, const uint8_t *d, size_t len, void *user)
{
    (void)user;
    flare_stream_write(s, d, len);
}

static void echo_eof(flare_stream *s, void *user)
{
    (void)user;
    flare_stream_close_write(s);
}

static const flare_stream_cbs echo_cbs = {.on_data = echo_data, .on_eof = echo_eof};

typedef struct client {
    size_t got;
    int eof;
} client;

static void client_data(flare_stream *s, const uint8_t *d, size_t len, void *user)
{
    client *cl = user;
    (void)s;
    (void)d;
    cl->got += len;
}

static void client_eof(flare_stream *s, void *user)
{
    client *cl = user;
    (void)s;
    cl->eof = 1;
}

static const flare_stream_cbs client_cbs = {.on_data = client_data, .on_eof = client_eof};

/* Connect (security, yamux, identify both ways, yamux's first ping), then
 * one stream opened with its data and FIN written at once, echoed back. */
static void echo_run(const char *security, phase out[2])
{
    memset(cnt, 0, sizeof(cnt));
    (void)take();
    flare_sim *sim = flare_sim_new(3, NULL);
    assert_non_null(sim);
    flare_host_settings cfg;
    flare_test_settings_default(&cfg);
    cfg.enable_autonat_client = 0;
    cfg.enable_autonat_server = 0;
    cfg.security = security;
    flare_test_host_spec sa = {.name = "a", .lan = flare_sim_internet(sim), .ip = "11.0.1.1"};
    flare_test_host_spec sb = {.name = "b", .lan = flare_sim_internet(sim), .ip = "11.0.2.1"};
    sa.seed[0] = 1;
    sb.seed[0] = 2;
    sa.cfg = sb.cfg = &cfg;
    sa.link = sb.link = (flare_sim_link){.delay = 10 * MS};
    sa.listen_port = 4001;
    flare_sim_host *sha, *shb;
    flare_host *a, *b;
    assert_int_equal(flare_test_host_make(sim, &sa, &sha, &a), 0);
    assert_int_equal(flare_test_host_make(sim, &sb, &shb, &b), 0);
    wrap(&cnt[0], flare_sim_host_io(sha), "A>", write_a);
    wrap(&cnt[1], flare_sim_host_io(shb), "B>", write_b);
    assert_int_equal(flare_host_set_handler(a, "/echo/1.0.0", &echo_cbs, NULL, 0), 0);
    if (trace)
        printf("-- %s: B connects to A (upgrade, identify both ways)\n", security);
    flare_multiaddr ma;
    assert_int_equal(flare_test_tcp_addr(&ma, "11.0.1.1", 4001, flare_host_peerid(a)), 0);
    flare_test_dial d = {0};
    assert_int_equal(flare_host_dial(b, &ma, NULL, flare_test_dial_cb, &d), 0);
    flare_test_run_ms(sim, 1000);
    assert_int_equal(d.status, 0);
    assert_non_null(d.conn);
    out[0] = take();

    if (trace)
        printf("-- an echo stream: open, write, close at once\n");
    client cl = {0};
    flare_stream *s;
    static const uint8_t msg[100] = {1, 2, 3};
    assert_int_equal(flare_conn_new_stream(d.conn, "/echo/1.0.0", &client_cbs, &cl, 0, &s), 0);
    assert_int_equal(flare_stream_write(s, msg, sizeof(msg)), 0);
    assert_int_equal(flare_stream_close_write(s), 0);
    flare_test_run_ms(sim, 1000);
    assert_int_equal(cl.got, sizeof(msg));
    assert_true(cl.eof);
    out[1] = take();
    if (trace)
        printf("%s: writes A %d+%d B %d+%d\n", security, out[0].a, out[1].a, out[0].b, out[1].b);
    flare_host_del(a);
    flare_host_del(b);
    flare_sim_del(sim);
}

/* Each side writes once a round trip: what one input makes it say leaves
 * in one write (before: one write per multistream line, handshake
 * message and yamux frame, ~30 a side for this connection). */
static void test_connection_writes(void **state)
{
    (void)state;
    static const char *const secs[] = {"/plaintext/2.0.0", "/noise"};
    for (size_t i = 0; i < 2; i++) {
        phase p[2];
        echo_run(secs[i], p);
        /* Security (2 round trips for Noise), yamux, identify, ping. */
        assert_true(p[0].a <= 5);
        assert_true(p[0].b <= 5);
        /* The proposal with the data, the echo with the answer, then
         * the FINs (the dialer's waits for the echo). */
        assert_true(p[1].b <= 2);
        assert_true(p[1].a <= 2);
    }
}

int main(void)
{
    const char *t = getenv("FLARE_TEST_TRACE");
    trace = t && *t && strcmp(t, "0") != 0;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connection_writes),
        cmocka_unit_test(test_find_node_writes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
