/*
 * One-stream throughput over TCP, WebSocket and secure WebSocket in the
 * same run (loopback, both hosts in this process on one libuv loop, so one
 * core does both ends), interleaved `runs` times, reported as
 * min/median/max. DIR holds the test certificate made by
 * tests/support/make-certs.sh (cert.pem, key.pem, ca.pem).
 * Usage: bench_ws DIR [MiB [runs]]   (defaults 128, 3)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "bench_sample.h"
#include "flare/host.h"
#include "flare/uvio.h"

static char cert[512], key[512], ca[512];

static int make_host(flare_host **h, uint8_t seedbyte, int listen)
{
    static const char *const addrs[] = {"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/tcp/0/ws",
                                        "/ip4/127.0.0.1/tcp/0/tls/ws"};
    flare_host_settings cfg;
    flare_host_settings_default(&cfg);
    cfg.tls_cert_file = cert;
    cfg.tls_key_file = key;
    cfg.tls_ca_file = ca;
    return bench_host_new(h, seedbyte, &cfg, addrs, listen ? 3 : 0);
}

/* Dials a's listen address number i (listening order) and sends mib MiB. */
static double one_stream(flare_host *a, flare_host *b, int i, size_t mib)
{
    flare_multiaddr ma[3];
    if (flare_host_listen_addrs(a, ma, 3) != 3)
        return -1;
    /* The host lists its newest listener first. */
    if (dial_fresh(b, a, ma[2 - i]))
        return -1;
    src x = {0};
    double v = run_streams(dialed, &x, 1, mib);
    flare_conn_close(dialed);
    return v;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_ws DIR [MiB [runs]]\n");
        return 2;
    }
    snprintf(cert, sizeof(cert), "%s/cert.pem", argv[1]);
    snprintf(key, sizeof(key), "%s/key.pem", argv[1]);
    snprintf(ca, sizeof(ca), "%s/ca.pem", argv[1]);
    size_t mib = argc > 2 ? (size_t)atoi(argv[2]) : 128;
    int runs = argc > 3 ? atoi(argv[3]) : 3;
    if (runs < 1 || runs > 100)
        runs = 3;
    uv_loop_init(&loop);
    flare_uvio_new(&uvio, &loop, NULL);
    flare_host *a, *b;
    if (make_host(&a, 1, 1) || make_host(&b, 2, 0)) {
        fprintf(stderr, "bench_ws: cannot start the hosts (certificate files in %s?)\n", argv[1]);
        return 1;
    }
    flare_host_set_handler(a, "/bench/sink", &sink_cbs, NULL, 0);
    static const char *const names[] = {"TCP + Noise + yamux", "ws + Noise + yamux",
                                        "wss (TLS) + Noise + yamux"};
    double v[3][100];
    for (int r = 0; r < runs; r++)
        for (int i = 0; i < 3; i++)
            if ((v[i][r] = one_stream(a, b, i, mib)) < 0) {
                fprintf(stderr, "bench_ws: %s failed\n", names[i]);
                return 1;
            }
    double load[3] = {0};
    getloadavg(load, 3);
    printf("%d runs of %zu MiB, one stream, load average %.2f %.2f %.2f\n", runs, mib, load[0],
           load[1], load[2]);
    printf("%-30s %8s %8s %8s\n", "", "min", "median", "max");
    for (int i = 0; i < 3; i++) {
        sort_runs(v[i], runs);
        printf("%-30s %8.1f %8.1f %8.1f MiB/s\n", names[i], v[i][0], v[i][runs / 2],
               v[i][runs - 1]);
    }
    flare_host_del(a);
    flare_host_del(b);
    flare_uvio_del(uvio);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return 0;
}
