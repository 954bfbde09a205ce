/*
 * Loopback benchmark of QUIC next to TCP+Noise+yamux in the same run: the
 * throughput of one stream and of 16 streams, and connection setups per
 * second, for each; and the single-core ceilings of the AEADs QUIC uses
 * (GnuTLS AES-128-GCM and ChaCha20-Poly1305, one packet-sized seal and open
 * per 1400 bytes, as one core does both ends here). Both hosts run in this
 * process on one libuv loop. Measurements are interleaved `runs` times and
 * reported as min/median/max, per wall-clock second and per CPU second of
 * the process (the latter moves much less when other work shares the
 * machine).
 * Usage: bench_quic [MiB [runs]]   (defaults 256, 3)
 */
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "bench_sample.h"
#include "bench_source.h"
#include "flare/host.h"
#include "flare/uvio.h"

/* MiB/s of payload sealed and opened again, 1400 bytes at a time. */
static double bench_aead(gnutls_cipher_algorithm_t alg)
{
    static uint8_t in[1400], out[1400 + 16], back[1400];
    uint8_t keyb[32] = {1}, nonce[12] = {0};
    gnutls_datum_t key = {keyb, (unsigned)gnutls_cipher_get_key_size(alg)};
    gnutls_aead_cipher_hd_t h;
    if (gnutls_aead_cipher_init(&h, alg, &key) != 0)
        return -1;
    size_t total = 0;
    mark_start();
    while (now_s() - wall_t0 < 0.5) {
        for (int i = 0; i < 64; i++) {
            size_t olen = sizeof(out), plen = sizeof(back);
            nonce[0]++;
            if (gnutls_aead_cipher_encrypt(h, nonce, sizeof(nonce), NULL, 0, 16, in, sizeof(in),
                                           out, &olen) != 0 ||
                gnutls_aead_cipher_decrypt(h, nonce, sizeof(nonce), NULL, 0, 16, out, olen, back,
                                           &plen) != 0)
                exit(1);
            total += sizeof(in);
        }
    }
    mark_end();
    gnutls_aead_cipher_deinit(h);
    return (double)total / (wall_t1 - wall_t0) / (1 << 20);
}

static int make_host(flare_host **h, uint8_t seedbyte, int listen)
{
    static const char *const addrs[] = {"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"};
    return bench_host_new(h, seedbyte, NULL, addrs, listen ? 2 : 0);
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
    return dial_fresh(b, a, ma);
}

static double bench_streams(int nstreams, size_t mib)
{
    src x[16] = {0};
    return run_streams(dialed, x, nstreams, mib);
}

static double bench_setups(flare_host *a, flare_host *b, int quic, int n)
{
    mark_start();
    for (int i = 0; i < n; i++) {
        if (connect_hosts(a, b, quic) != 0)
            return -1;
        flare_conn_close(dialed);
    }
    mark_end();
    return n / (wall_t1 - wall_t0);
}

static void report(const char *name, double *v, int runs, const char *unit)
{
    sort_runs(v, runs);
    printf("%-44s %8.1f %8.1f %8.1f %s\n", name, v[0], v[runs / 2], v[runs - 1], unit);
}

#define NMEAS 8

static const char *labels[NMEAS] = {
    "AES-128-GCM ceiling (seal+open, 1 core)",
    "ChaCha20-Poly1305 ceiling (seal+open)",
    "1 stream, TCP+Noise+yamux",
    "1 stream, QUIC (TLS 1.3, ngtcp2)",
    "16 streams, TCP+Noise+yamux",
    "16 streams, QUIC",
    "connection setups, TCP+Noise+yamux",
    "connection setups, QUIC",
};

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
    static double v[NMEAS][100], vc[NMEAS][100];
    double load[3] = {0};
    /* BENCH_QUIC_ONLY=1: QUIC alone (for profiling). */
    int only = getenv("BENCH_QUIC_ONLY") != NULL;
    for (int r = 0; r < runs; r++) {
        if (!only) {
            vc[0][r] = per_cpu(v[0][r] = bench_aead(GNUTLS_CIPHER_AES_128_GCM));
            vc[1][r] = per_cpu(v[1][r] = bench_aead(GNUTLS_CIPHER_CHACHA20_POLY1305));
        }
        for (int quic = only; quic < 2; quic++) {
            if (connect_hosts(a, b, quic) != 0) {
                fprintf(stderr, "connect failed (%s)\n", quic ? "quic" : "tcp");
                return 1;
            }
            vc[2 + quic][r] = per_cpu(v[2 + quic][r] = bench_streams(1, mib));
            vc[4 + quic][r] = per_cpu(v[4 + quic][r] = bench_streams(16, mib));
            flare_conn_close(dialed);
            vc[6 + quic][r] = per_cpu(v[6 + quic][r] = bench_setups(a, b, quic, 100));
        }
    }
    getloadavg(load, 3);
    printf("%d runs of %zu MiB, load average %.2f %.2f %.2f\n", runs, mib, load[0], load[1],
           load[2]);
    printf("per wall-clock second %27s %8s %8s\n", "min", "median", "max");
    for (int i = 0; i < NMEAS; i++)
        report(labels[i], v[i], runs, i >= 6 ? "/s" : "MiB/s");
    printf("per CPU second of the process %19s %8s %8s\n", "min", "median", "max");
    for (int i = 0; i < NMEAS; i++)
        report(labels[i], vc[i], runs, i >= 6 ? "/cpu-s" : "MiB/cpu-s");
    flare_host_del(a);
    flare_host_del(b);
    flare_uvio_del(uvio);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return 0;
}
