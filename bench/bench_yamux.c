/* yamux throughput: two sessions in memory, one stream (and 64 streams),
 * writer and reader in lock step. Prints MiB/s of application payload. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "flare/yamux.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void check(long rv, const char *what)
{
    if (rv < 0) {
        fprintf(stderr, "%s: %s\n", what, flare_strerror((int)rv));
        exit(1);
    }
}

static void run(unsigned nstreams, size_t total)
{
    flare_yamux_settings sa, sb;
    flare_yamux_settings_default(&sa);
    sa.keepalive_interval = 0;
    sb = sa;
    sb.is_client = 0;
    flare_yamux *a, *b;
    check(flare_yamux_new(&a, &sa, NULL, flare_os_rng(), 0), "new");
    check(flare_yamux_new(&b, &sb, NULL, flare_os_rng(), 0), "new");
    flare_buf ao, bo;
    flare_buf_init(&ao, NULL);
    flare_buf_init(&bo, NULL);
    /* RTT of 1 ms and a frozen clock let the windows auto-tune up. */
    check(flare_yamux_ping(b, 0, &bo), "ping");
    check(flare_yamux_recv(a, bo.base, bo.len, 0, &ao), "recv");
    flare_buf_reset(&bo);
    check(flare_yamux_recv(b, ao.base, ao.len, FLARE_NS_PER_MS, &bo), "recv");
    flare_buf_reset(&ao);
    uint32_t ids[64];
    for (unsigned i = 0; i < nstreams; i++)
        check(flare_yamux_open_stream(a, &ids[i], &ao), "open");
    check(flare_yamux_recv(b, ao.base, ao.len, FLARE_NS_PER_MS, &bo), "recv");
    flare_buf_reset(&ao);
    for (unsigned i = 0; i < nstreams; i++)
        check(flare_yamux_accept_stream(b, ids[i], &bo), "accept");
    static uint8_t chunk[65536], rbuf[65536];
    memset(chunk, 0x5a, sizeof(chunk));
    size_t per = total / nstreams, sent[64] = {0}, got = 0;
    double t0 = now_s();
    while (got < per * nstreams) {
        for (unsigned i = 0; i < nstreams; i++) {
            size_t want = per - sent[i] < sizeof(chunk) ? per - sent[i] : sizeof(chunk);
            long n = flare_yamux_write(a, ids[i], chunk, want, &ao);
            check(n, "write");
            sent[i] += (size_t)n;
        }
        check(flare_yamux_recv(b, ao.base, ao.len, FLARE_NS_PER_MS, &bo), "recv");
        flare_buf_reset(&ao);
        for (unsigned i = 0; i < nstreams; i++) {
            long k;
            while ((k = flare_yamux_read(b, ids[i], rbuf, sizeof(rbuf), &bo)) > 0)
                got += (size_t)k;
        }
        check(flare_yamux_recv(a, bo.base, bo.len, FLARE_NS_PER_MS, &ao), "recv");
        flare_buf_reset(&bo);
        flare_yamux_event ev;
        while (flare_yamux_poll_event(a, &ev) || flare_yamux_poll_event(b, &ev))
            ;
    }
    double dt = now_s() - t0;
    printf("yamux %2u stream(s): %zu MiB in %.3f s = %.0f MiB/s\n", nstreams, got >> 20, dt,
           (double)got / 1048576.0 / dt);
    flare_yamux_del(a);
    flare_yamux_del(b);
    flare_buf_free(&ao);
    flare_buf_free(&bo);
}

int main(int argc, char **argv)
{
    size_t mib = argc > 1 ? (size_t)atoi(argv[1]) : 512;
    run(1, mib << 20);
    run(64, mib << 20);
    return 0;
}
