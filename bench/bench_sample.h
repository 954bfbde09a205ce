/* Sampling shared by the loopback throughput benchmarks (bench_host,
 * bench_quic, bench_ws): the event loop and its flare_uvio, the hosts,
 * wall-clock and CPU-time marks around each measurement, a sink protocol
 * that stops the loop once its target arrived, a fresh dial that runs the
 * loop until it ends, and sorting of the runs' values.
 * Header-only (each benchmark is one executable). */
#ifndef FLARE_BENCH_SAMPLE_H
#define FLARE_BENCH_SAMPLE_H

#include <stdlib.h>
#include <time.h>
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

/* CPU time of the process, taken with the wall-clock marks of each
 * measurement: a rate per CPU second is what the code costs, and moves
 * much less than wall-clock rates when other work shares the machine. */
static double cpu_t0, cpu_t1, wall_t0, wall_t1;

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void mark_start(void)
{
    wall_t0 = now_s();
    cpu_t0 = cpu_s();
}

static void mark_end(void)
{
    wall_t1 = now_s();
    cpu_t1 = cpu_s();
}

/* The rate v (per wall-clock second) of the last measurement, per CPU
 * second. */
static inline double per_cpu(double v)
{
    double cpu = cpu_t1 - cpu_t0;
    return v > 0 && cpu > 0 ? v * (wall_t1 - wall_t0) / cpu : 0;
}

/* The receiving end of the stream measurements ("/bench/sink"): counts
 * bytes and ends the measurement when target bytes have come. */
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
        mark_end();
        uv_stop(&loop);
    }
}

static const flare_stream_cbs sink_cbs = {.on_data = sink_data};

/* Writes mib MiB split over nstreams new /bench/sink streams of c (x: one
 * source each, zeroed) and runs the loop until the sink has it all.
 * Returns MiB/s (wall clock), or -1 when a stream could not be opened. */
static double run_streams(flare_conn *c, src *x, int nstreams, size_t mib)
{
    sink.got = 0;
    sink.t1 = 0;
    sink.target = mib << 20;
    mark_start();
    for (int i = 0; i < nstreams; i++) {
        x[i].left = (mib << 20) / (size_t)nstreams;
        if (flare_conn_new_stream(c, "/bench/sink", &src_cbs, &x[i], 0, &x[i].s))
            return -1;
        src_push(&x[i]);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    for (int i = 0; i < nstreams; i++)
        flare_stream_reset(x[i].s);
    return (double)sink.got / (sink.t1 - wall_t0) / (1 << 20);
}

/* The last dial's outcome (dial_status 1 until it ends). */
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

/* A host on uvio with key seed {seedbyte}, cfg (NULL: the defaults)
 * without memory limits, listening on the n addresses of listen. The
 * benchmarks measure the byte path, not the limits: with the default ones
 * (32 MiB per connection) 16 streams at full speed fail the connection
 * (FLARE_ERR_NOMEM from the flush). */
static int bench_host_new(flare_host **h, uint8_t seedbyte, flare_host_settings *cfg,
                          const char *const *listen, size_t n)
{
    uint8_t seed[32] = {seedbyte};
    flare_privkey k;
    flare_privkey_from_seed(&k, seed);
    flare_host_settings def;
    if (!cfg) {
        flare_host_settings_default(&def);
        cfg = &def;
    }
    cfg->limits.mem_per_conn = cfg->limits.mem_per_peer = 0;
    int rv = flare_host_new(h, flare_uvio_io(uvio), &k, cfg, NULL);
    for (size_t i = 0; i < n && rv == 0; i++) {
        flare_multiaddr ma;
        rv = flare_multiaddr_parse(&ma, listen[i]);
        if (rv == 0)
            rv = flare_host_listen(*h, &ma);
    }
    return rv;
}

/* Dials a at ma (its peer ID added) from b on a new connection that leaves
 * from a port of its own, and runs the loop until the dial ended. Returns
 * 0 (the connection in dialed) or an error. */
static int dial_fresh(flare_host *b, flare_host *a, flare_multiaddr ma)
{
    flare_multiaddr_with_peerid(&ma, flare_host_peerid(a));
    flare_dial_opts o = {.force_new = 1, .no_reuse = 1};
    dial_status = 1;
    if (flare_host_dial(b, &ma, &o, on_dial, NULL))
        return -1;
    uv_run(&loop, UV_RUN_DEFAULT);
    return dial_status;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Sorts the runs' values: v[0] is the minimum, v[runs / 2] the median. */
static void sort_runs(double *v, int runs)
{
    qsort(v, (size_t)runs, sizeof(*v), cmp_double);
}

#endif
