/*
 * Loopback benchmark of QUIC next to TCP+Noise+yamux in the same run: the
 * throughput of one stream, and connection setups per second, for each.
 * Both hosts run in this process on one libuv loop (one core does both
 * ends). Measurements are interleaved `runs` times and reported as
 * min/median/max, because the machine may be shared.
 * Usage: bench_quic [MiB [runs]]   (defaults 256, 3)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "bench_source.h"
#include "flare/host.h"
#include "flare/uvio.h"

static uv_loop_t loop;
static flare_uvio *uvio;

static double now_s(void)
{
    return (double)uv_hrtime() / 1e9;
}

typedef struct sinkb {
    size_t got, target;
    double t1;
} sinkb;

static sinkb sink;

static void sink_data(flare_stream *s, const uint8_t *d, size_t len, void *user)
{
    (void)s;
    (void)d;
    (void)user;
    sink.got += len;
    if (sink.got >= sink.target && sink.t1 == 0) {
        sink.t1 = now_s();
        uv_stop(&loop);
    }
}

static const flare_stream_cbs sink_cbs = {.on_data = sink_data};

static flare_conn *dialed;
static int dial_status = 1;

static void on_dial(flare_host *h, flare_conn *c, int status, void *user)
{
    (void)h;
    (void)user;
    dialed = c;
    dial_status = status;
    uv_stop(&loop);
}

static int make_host(flare_host **h, uint8_t seedbyte, int listen)
{
    uint8_t seed[32] = {seedbyte};
    flare_privkey k;
    flare_privkey_from_seed(&k, seed);
    flare_host_settings cfg;
    flare_host_settings_default(&cfg);
    cfg.limits.mem_per_conn = cfg.limits.mem_per_peer = 0; /* the byte path, not the limits */
    int rv = flare_host_new(h, flare_uvio_io(uvio), &k, &cfg, NULL);
    const char *addrs[] = {"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"};
    for (int i = 0; rv == 0 && listen && i < 2; i++) {
        flare_multiaddr ma;
        flare_multiaddr_parse(&ma, addrs[i]);
        rv = flare_host_listen(*h, &ma);
    }
    return rv;
}

/* Dials a's listen address of the given kind (quic: 1) from b. */
static int connect_hosts(flare_host *a, flare_host *b, int quic)
{
    flare_multiaddr mas[4], ma;
    size_t n = flare_host_listen_addrs(a, mas, 4);
    int found = 0;
    for (size_t i = 0; i < n && !found; i++) {
        char s[128];
        flare_multiaddr_to_string(&mas[i], s, sizeof(s));
        if ((strstr(s, "/quic-v1") != NULL) == quic) {
            ma = mas[i];
            found = 1;
        }
    }
    if (!found)
        return -1;
    flare_multiaddr_with_peerid(&ma, flare_host_peerid(a));
    flare_dial_opts o = {.force_new = 1, .no_reuse = 1};
    dial_status = 1;
    if (flare_host_dial(b, &ma, &o, on_dial, NULL))
        return -1;
    uv_run(&loop, UV_RUN_DEFAULT);
    return dial_status;
}

static double bench_stream(size_t mib)
{
    sink.got = 0;
    sink.t1 = 0;
    sink.target = mib << 20;
    src x = {.left = mib << 20};
    double t0 = now_s();
    if (flare_conn_new_stream(dialed, "/bench/sink", &src_cbs, &x, 0, &x.s))
        return -1;
    src_push(&x);
    uv_run(&loop, UV_RUN_DEFAULT);
    flare_stream_reset(x.s);
    return (double)sink.got / (sink.t1 - t0) / (1 << 20);
}

static double bench_setups(flare_host *a, flare_host *b, int quic, int n)
{
    double t0 = now_s();
    for (int i = 0; i < n; i++) {
        if (connect_hosts(a, b, quic) != 0)
            return -1;
        flare_conn_close(dialed);
    }
    return n / (now_s() - t0);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void report(const char *name, double *v, int runs, const char *unit)
{
    qsort(v, (size_t)runs, sizeof(*v), cmp_double);
    printf("%-40s %8.1f %8.1f %8.1f %s\n", name, v[0], v[runs / 2], v[runs - 1], unit);
}

int main(int argc, char **argv)
{
    size_t mib = argc > 1 ? (size_t)atoi(argv[1]) : 256;
    int runs = argc > 2 ? atoi(argv[2]) : 3;
    if (runs < 1 || runs > 100)
        runs = 3;
    uv_loop_init(&loop);
    flare_uvio_new(&uvio, &loop, NULL);
    flare_host *a, *b;
    if (make_host(&a, 1, 1) || make_host(&b, 2, 0))
        return 1;
    flare_host_set_handler(a, "/bench/sink", &sink_cbs, NULL, 0);
    double v[4][100];
    double load[3] = {0};
    for (int r = 0; r < runs; r++) {
        for (int quic = 0; quic < 2; quic++) {
            if (connect_hosts(a, b, quic) != 0) {
                fprintf(stderr, "connect failed (%s)\n", quic ? "quic" : "tcp");
                return 1;
            }
            v[quic][r] = bench_stream(mib);
            flare_conn_close(dialed);
            v[2 + quic][r] = bench_setups(a, b, quic, 100);
        }
    }
    getloadavg(load, 3);
    printf("%d runs of %zu MiB, load average %.2f %.2f %.2f\n", runs, mib, load[0], load[1],
           load[2]);
    printf("%-40s %8s %8s %8s\n", "", "min", "median", "max");
    report("1 stream, TCP+Noise+yamux", v[0], runs, "MiB/s");
    report("1 stream, QUIC (TLS 1.3, ngtcp2)", v[1], runs, "MiB/s");
    report("connection setups, TCP+Noise+yamux", v[2], runs, "/s");
    report("connection setups, QUIC", v[3], runs, "/s");
    flare_host_del(a);
    flare_host_del(b);
    flare_uvio_del(uvio);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return 0;
}
