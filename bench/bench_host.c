/*
 * Loopback benchmarks of the host: stream throughput with 1 and 16 streams
 * next to references measured in the same run: the one-core AEAD ceiling
 * (ChaCha20-Poly1305 encrypt + decrypt of the same bytes, which is what one
 * core does for both ends of a stream) and a plain blocking socket loop next
 * to raw TCP through flare's driver; and connection setups per second.
 * Both hosts run in this process on one libuv loop, so every number is for
 * one core doing both ends. The measurements are interleaved `runs` times
 * and reported as min/median/max, because the machine may be shared.
 * Usage: bench_host [MiB [runs]]   (defaults 256, 3)
 * BENCH_ONLY=aead,plain,raw,s1,s16,setup runs only the named measurements
 * (for profiling one of them with perf); BENCH_ALL=1 prints every value.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "bench_sample.h"
#include "bench_source.h"
#include "flare/host.h"
#include "flare/uvio.h"

#define CHUNK 65536

static uint8_t chunk[CHUNK];

/* ---- ChaCha20-Poly1305 reference ------------------------------------------------ */

/* Bytes per second through encrypt and then decrypt of the same 64 KiB
 * messages on one core: the ceiling for one core doing both ends. */
static double bench_aead(void)
{
    static uint8_t in[CHUNK], out[CHUNK + 16], back[CHUNK];
    uint8_t key[32] = {1}, nonce[12] = {0};
    size_t total = 0;
    double t0 = now_s();
    mark_start();
    while (now_s() - t0 < 0.5) {
        unsigned long long olen, plen;
        for (int i = 0; i < 32; i++) {
            nonce[0]++;
            crypto_aead_chacha20poly1305_ietf_encrypt(out, &olen, in, sizeof(in), NULL, 0, NULL,
                                                      nonce, key);
            if (crypto_aead_chacha20poly1305_ietf_decrypt(back, &plen, NULL, out, olen, NULL, 0,
                                                          nonce, key) != 0)
                exit(1);
            total += sizeof(in);
        }
    }
    mark_end();
    return (double)total / (now_s() - t0) / (1 << 20);
}

/* At most this many bytes between writer and reader, in the plain loop and
 * through the driver alike (how far ahead the writer runs decides how much
 * of the data is still in the CPU caches when it is read). */
#ifndef RAW_INFLIGHT
#define RAW_INFLIGHT (4 * CHUNK)
#endif

/* ---- a plain blocking socket loop (the reference for the driver) ------------------ */

/* One thread writes 64 KiB to a loopback TCP socket and reads it back from
 * the peer socket, like the driver benchmark does on one loop. */
static double bench_plain(size_t mib)
{
    static uint8_t buf[CHUNK];
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
    socklen_t sl = sizeof(sa);
    int l = socket(AF_INET, SOCK_STREAM, 0);
    if (l < 0 || bind(l, (struct sockaddr *)&sa, sl) || listen(l, 1) ||
        getsockname(l, (struct sockaddr *)&sa, &sl))
        return -1;
    int c = socket(AF_INET, SOCK_STREAM, 0);
    if (c < 0 || connect(c, (struct sockaddr *)&sa, sl))
        return -1;
    int s = accept(l, NULL, NULL);
    if (s < 0)
        return -1;
    /* The writes do not block (they would wait for the read below, on the
     * same thread) and keep up to RAW_INFLIGHT bytes ahead of the reader,
     * as the driver benchmark does; the read blocks while bytes are in
     * flight. */
    size_t target = mib << 20, got = 0, sent = 0;
    double t0 = now_s();
    mark_start();
    while (got < target) {
        while (sent < target && sent - got < RAW_INFLIGHT) {
            size_t off = sent % CHUNK;
            ssize_t n = send(c, chunk + off, CHUNK - off, MSG_DONTWAIT);
            if (n > 0)
                sent += (size_t)n;
            else if (errno != EAGAIN && errno != EWOULDBLOCK)
                return -1;
            else
                break;
        }
        if (got < sent) {
            ssize_t r = read(s, buf, sizeof(buf));
            if (r <= 0)
                return -1;
            got += (size_t)r;
        }
    }
    double t1 = now_s();
    mark_end();
    close(c);
    close(s);
    close(l);
    return (double)got / (t1 - t0) / (1 << 20);
}

/* ---- raw TCP through the driver ----------------------------------------------------- */

typedef struct rawb {
    flare_io *io;
    size_t target, got, sent;
    double t0, t1;
    flare_io_sock *cli, *srv;
} rawb;

static void raw_fill(rawb *r)
{
    if (!r->cli)
        return; /* not connected yet */
    /* Bounded by the bytes in flight, as in the plain loop: once the driver
     * hands writes straight to the kernel its queue (sock_pending) stays
     * empty and would no longer bound anything. */
    while (r->sent < r->target && r->sent - r->got < RAW_INFLIGHT &&
           r->io->ops->sock_pending(r->cli) < 4 * CHUNK) {
        r->io->ops->sock_write(r->cli, chunk, CHUNK);
        r->sent += CHUNK;
    }
}

static void raw_srv_read(flare_io_sock *s, const uint8_t *d, size_t len, void *user)
{
    rawb *r = user;
    (void)s;
    (void)d;
    r->got += len;
    raw_fill(r);
    if (r->got >= r->target && r->t1 == 0) {
        r->t1 = now_s();
        mark_end();
        uv_stop(&loop);
    }
}

static void raw_close_cb(flare_io_sock *s, int reason, void *user)
{
    (void)s;
    (void)reason;
    (void)user;
}

static const flare_io_sock_cbs raw_srv_cbs = {NULL, raw_srv_read, raw_close_cb, NULL};

static void raw_accept(flare_io_listener *l, flare_io_sock *s, void *user)
{
    rawb *r = user;
    (void)l;
    r->srv = s;
    r->io->ops->sock_set_cbs(s, &raw_srv_cbs, r);
}

static void raw_connect(flare_io_sock *s, int status, void *user)
{
    rawb *r = user;
    if (status) {
        fprintf(stderr, "raw connect: %s\n", flare_strerror(status));
        exit(1);
    }
    r->cli = s;
    r->t0 = now_s();
    mark_start();
    raw_fill(r);
}

static void raw_cli_read(flare_io_sock *s, const uint8_t *d, size_t len, void *user)
{
    (void)s;
    (void)d;
    (void)len;
    (void)user;
}

static const flare_io_sock_cbs raw_cli_cbs = {raw_connect, raw_cli_read, raw_close_cb, NULL};

/* The driver has no "drained" callback: poll pending bytes from a timer. */
static void raw_tick(uv_timer_t *t)
{
    raw_fill(t->data);
}

static double bench_raw(size_t mib)
{
    rawb r = {0};
    r.io = flare_uvio_io(uvio);
    r.target = mib << 20;
    flare_ipaddr any, bound;
    flare_ipaddr_v4(&any, 127, 0, 0, 1, 0);
    flare_io_listener *l;
    if (r.io->ops->listen(r.io, &any, 0, raw_accept, &r, &l) || r.io->ops->listener_addr(l, &bound))
        return -1;
    flare_io_sock *s;
    r.io->ops->dial(r.io, NULL, &bound, 0, &raw_cli_cbs, &r, &s);
    uv_timer_t t;
    uv_timer_init(&loop, &t);
    t.data = &r;
    uv_timer_start(&t, raw_tick, 1, 1);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_timer_stop(&t);
    uv_close((uv_handle_t *)&t, NULL);
    r.io->ops->sock_close(r.cli, 1);
    r.io->ops->sock_close(r.srv, 1);
    r.io->ops->listener_close(l);
    uv_run(&loop, UV_RUN_NOWAIT);
    return (double)r.got / (r.t1 - r.t0) / (1 << 20);
}

/* ---- flare streams ------------------------------------------------------------------- */

static int make_host(flare_host **h, uint8_t seedbyte, int listen)
{
    static const char *const addrs[] = {"/ip4/127.0.0.1/tcp/0"};
    return bench_host_new(h, seedbyte, NULL, addrs, listen ? 1 : 0);
}

static int connect_hosts(flare_host *a, flare_host *b)
{
    flare_multiaddr ma;
    flare_host_listen_addrs(a, &ma, 1);
    return dial_fresh(b, a, ma);
}

static double bench_streams(flare_host *a, flare_host *b, int nstreams, size_t mib)
{
    (void)a;
    (void)b;
    src *x = calloc((size_t)nstreams, sizeof(*x));
    double v = x ? run_streams(dialed, x, nstreams, mib) : -1;
    free(x);
    return v;
}

static double bench_setups(flare_host *a, flare_host *b, int n)
{
    double t0 = now_s();
    mark_start();
    for (int i = 0; i < n; i++) {
        if (connect_hosts(a, b) != 0)
            return -1;
        flare_conn_close(dialed);
    }
    mark_end();
    return n / (now_s() - t0);
}

#define NMEAS 6

static const char *meas_names[NMEAS] = {"aead", "plain", "raw", "s1", "s16", "setup"};

/* Whether BENCH_ONLY (a comma-separated list) selects measurement i. */
static int selected(int i)
{
    const char *only = getenv("BENCH_ONLY");
    if (!only || !*only)
        return 1;
    size_t n = strlen(meas_names[i]);
    for (const char *p = only; *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && memcmp(p, meas_names[i], n) == 0)
            return 1;
        p += len + (e != NULL);
    }
    return 0;
}

static void report(const char *name, double *v, int runs, const char *unit)
{
    sort_runs(v, runs);
    printf("%-40s %8.1f %8.1f %8.1f %s", name, v[0], v[runs / 2], v[runs - 1], unit);
    if (getenv("BENCH_ALL")) /* every value, to pool runs of several invocations */
        for (int i = 0; i < runs; i++)
            printf(" %.1f", v[i]);
    printf("\n");
}

int main(int argc, char **argv)
{
    size_t mib = argc > 1 ? (size_t)atoi(argv[1]) : 256;
    int runs = argc > 2 ? atoi(argv[2]) : 3;
    if (runs < 1 || runs > 100)
        runs = 3;
    if (sodium_init() < 0)
        return 1;
    uv_loop_init(&loop);
    flare_uvio_new(&uvio, &loop, NULL);
    flare_host *a, *b;
    if (make_host(&a, 1, 1) || make_host(&b, 2, 0))
        return 1;
    flare_host_set_handler(a, "/bench/sink", &sink_cbs, NULL, 0);

    double v[NMEAS][100], vc[NMEAS][100];
    double load[3] = {0};
    for (int r = 0; r < runs; r++) {
        for (int i = 0; i < NMEAS; i++)
            v[i][r] = vc[i][r] = 0;
        if (selected(0))
            vc[0][r] = per_cpu(v[0][r] = bench_aead());
        if (selected(1))
            vc[1][r] = per_cpu(v[1][r] = bench_plain(mib));
        if (selected(2))
            vc[2][r] = per_cpu(v[2][r] = bench_raw(mib));
        if (selected(3) || selected(4)) {
            if (connect_hosts(a, b) != 0) {
                fprintf(stderr, "connect failed\n");
                return 1;
            }
            if (selected(3))
                vc[3][r] = per_cpu(v[3][r] = bench_streams(a, b, 1, mib));
            if (selected(4))
                vc[4][r] = per_cpu(v[4][r] = bench_streams(a, b, 16, mib));
            flare_conn_close(dialed);
        }
        if (selected(5))
            vc[5][r] = per_cpu(v[5][r] = bench_setups(a, b, 200));
    }
    getloadavg(load, 3);
    printf("%d runs of %zu MiB, load average %.2f %.2f %.2f\n", runs, mib, load[0], load[1],
           load[2]);
    printf("%-40s %8s %8s %8s\n", "", "min", "median", "max");
    static const char *labels[NMEAS] = {"AEAD ceiling (enc+dec, 1 core, 64 KiB)",
                                        "plain blocking socket loop (loopback)",
                                        "raw TCP via flare driver (loopback)",
                                        "flare 1 stream (TCP+Noise+yamux)",
                                        "flare 16 streams",
                                        "connection setups (tcp+noise+yamux)"};
    for (int i = 0; i < NMEAS; i++)
        if (selected(i))
            report(labels[i], v[i], runs, i == 5 ? "/s" : "MiB/s");
    printf("per CPU second (the process's CPU time over the same span)\n");
    for (int i = 0; i < NMEAS; i++)
        if (selected(i))
            report(labels[i], vc[i], runs, i == 5 ? "/cpu-s" : "MiB/cpu-s");

    flare_host_del(a);
    flare_host_del(b);
    flare_uvio_del(uvio);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return 0;
}
