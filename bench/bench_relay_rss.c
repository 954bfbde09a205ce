/*
 * Relay host under load over loopback (issue 5): RSS of a relay process per
 * connection, per reservation and per idle circuit, circuit throughput and
 * the relay's CPU per relayed MiB.
 *
 * The relay runs in a forked child (its own libuv loop, its own RSS); this
 * process runs every client host on one loop. Each client is a full host
 * with its own identity, because a host has exactly one identity.
 *
 * Usage: bench_relay_rss [N [M [MiB]]]
 *   N   clients that connect and then reserve      (default 1000)
 *   M   idle circuits between pairs of those        (default N/10, <= N/2)
 *   MiB bytes pushed through the circuits per run   (default 256)
 * Output: "key value" lines, one per figure (bench/relay-bench.sh builds the
 * table from them).
 */
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "bench_proc.h"
#include "bench_source.h"
#include "flare/host.h"
#include "flare/relay_server.h"
#include "flare/uvio.h"

#define NTPUT     16 /* parallel circuits in the throughput run */
#define INFLIGHT  32 /* dials / reservations in flight: keeps handshakes within their timeout */
#define SINK_PROT "/bench/relay-sink"
#define KEY_TAG   0xb5 /* identity seeds of this benchmark */

static uv_loop_t loop;
static flare_uvio *uvio;

/* Client ids: 0..N-1 load clients, then 2*NTPUT throughput peers, and the relay. */
static uint32_t tput_id(int i)
{
    return 0x40000000u + (uint32_t)i;
}
#define RELAY_ID 0x7fffffffu

/* ---- the relay process ---------------------------------------------------------------- */

static void relay_stop(uv_signal_t *s, int sig)
{
    (void)sig;
    uv_signal_stop(s);
    uv_stop(s->loop);
}

/* SIGUSR1: report the heap in use (malloc's own count, so libuv's and
 * libsodium's allocations are in it too) on the pipe to the driver. */
static int report_fd = -1;
static void relay_report(uv_signal_t *s, int sig)
{
    (void)s;
    (void)sig;
    struct mallinfo2 mi = mallinfo2();
    char line[64];
    int len = snprintf(line, sizeof(line), "%zu\n", mi.uordblks + mi.hblkhd);
    if (write(report_fd, line, (size_t)len) < 0)
        uv_stop(s->loop);
}

static int relay_main(int wfd, size_t n, size_t m)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the bench */
    uv_loop_init(&loop);
    flare_uvio_new(&uvio, &loop, NULL);
    flare_privkey k;
    bench_key(&k, KEY_TAG, RELAY_ID);
    flare_host_settings hc;
    flare_host_settings_default(&hc);
    hc.max_connections = n + 4 * NTPUT + 64;
    /* Every client dials from 127.0.0.1 and connects at once: the resource
     * manager's per-IP, per-subnet and handshake limits are lifted and the
     * inbound budget is the whole connection limit, for the run only. */
    hc.limits.conns_inbound = hc.max_connections;
    hc.limits.conns_per_ip = hc.limits.conns_per_subnet = 0;
    hc.limits.handshakes = hc.limits.handshakes_per_ip = hc.limits.handshakes_per_subnet = 0;
    hc.limits.streams_per_protocol = 0;
    hc.enable_autonat_client = 0;
    hc.max_stream_buffer = 4 << 20;
    flare_host *h;
    if (flare_host_new(&h, flare_uvio_io(uvio), &k, &hc, NULL))
        return 1;
    flare_multiaddr ma;
    flare_multiaddr_parse(&ma, "/ip4/127.0.0.1/tcp/0");
    if (flare_host_listen(h, &ma))
        return 1;
    /* Limits raised for the run only; the throughput peers are allow-listed,
     * which lifts the per-circuit duration and data limits for them. */
    flare_peerid allow[2 * NTPUT];
    for (int i = 0; i < 2 * NTPUT; i++)
        bench_peer(&allow[i], KEY_TAG, tput_id(i));
    flare_relay_server_settings rc;
    flare_relay_server_settings_default(&rc);
    rc.max_reservations = (uint32_t)(n + 2 * NTPUT + 16);
    rc.max_reservations_per_ip = rc.max_reservations;
    rc.max_circuits = (uint32_t)(m + NTPUT + 16);
    rc.limit_duration = 24 * 3600; /* idle circuits must outlive the measurement */
    rc.allow = allow;
    rc.nallow = 2 * NTPUT;
    if (flare_host_enable_relay_server(h, &rc))
        return 1;
    flare_multiaddr bound;
    if (flare_host_listen_addrs(h, &bound, 1) != 1)
        return 1;
    char s[256];
    flare_multiaddr_to_string(&bound, s, sizeof(s));
    if (write(wfd, s, strlen(s) + 1) < 0)
        return 1;
    report_fd = wfd;
    uv_signal_t sig, usr;
    uv_signal_init(&loop, &sig);
    uv_signal_start(&sig, relay_stop, SIGTERM);
    uv_signal_init(&loop, &usr);
    uv_signal_start(&usr, relay_report, SIGUSR1);
    uv_run(&loop, UV_RUN_DEFAULT);
    flare_host_del(h);
    flare_uvio_del(uvio);
    uv_close((uv_handle_t *)&sig, NULL);
    uv_close((uv_handle_t *)&usr, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    return 0;
}

/* ---- clients ----------------------------------------------------------------------------------
 */

typedef struct client {
    flare_host *h;
    flare_conn *relayed; /* to its partner, for circuits */
    int dialed, reserved, failed;
} client;

static flare_multiaddr relay_ma; /* with /p2p/RELAY */
static size_t ndone, nfailed, inflight;
static int last_err;

static void on_event(flare_host *h, const flare_host_event *ev, void *user)
{
    client *c = user;
    (void)h;
    if (ev->type == FLARE_HOST_EV_RESERVATION_OK && !c->reserved) {
        c->reserved = 1;
        ndone++;
        inflight--;
    } else if (ev->type == FLARE_HOST_EV_RESERVATION_FAILED && !c->reserved && !c->failed) {
        c->failed = 1;
        nfailed++;
        inflight--;
        last_err = ev->u.reservation.error;
    }
}

static int client_new(client *c, uint32_t id)
{
    flare_privkey k;
    bench_key(&k, KEY_TAG, id);
    flare_host_settings hc;
    flare_host_settings_default(&hc);
    hc.reuse_port = 0;       /* no listener: dial from ephemeral ports */
    hc.enable_holepunch = 0; /* relayed circuits are what we measure */
    hc.enable_autonat_client = 0;
    hc.enable_autonat_server = 0;
    hc.max_stream_buffer = 4 << 20;
    memset(c, 0, sizeof(*c));
    int rv = flare_host_new(&c->h, flare_uvio_io(uvio), &k, &hc, NULL);
    if (rv == 0)
        flare_host_set_event_cb(c->h, on_event, c);
    return rv;
}

static void on_dialed(flare_host *h, flare_conn *conn, int status, void *user)
{
    client *c = user;
    (void)h;
    inflight--;
    if (status) {
        nfailed++;
        last_err = status;
        c->failed = 1;
        return;
    }
    if (flare_conn_is_limited(conn))
        c->relayed = conn;
    c->dialed = 1;
    ndone++;
}

/* Runs the loop until pred() or timeout; the 5 ms tick keeps uv_run returning. */
static void tick_cb(uv_timer_t *t)
{
    (void)t;
}

typedef int (*pred_fn)(void *);
static int run_until(pred_fn pred, void *arg, double timeout)
{
    uv_timer_t t;
    uv_timer_init(&loop, &t);
    uv_timer_start(&t, tick_cb, 5, 5);
    double end = bench_now_s() + timeout;
    int ok;
    while (!(ok = pred(arg)) && bench_now_s() < end)
        uv_run(&loop, UV_RUN_ONCE);
    uv_timer_stop(&t);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    return ok;
}

static int never(void *arg)
{
    (void)arg;
    return 0;
}

static void settle(double s)
{
    run_until(never, NULL, s);
}

/* A batch operation over clients[0..n): start() one at a time, at most
 * INFLIGHT outstanding; done when every one succeeded or failed. */
typedef int (*start_fn)(client *c, size_t i);
typedef struct batch {
    client *cl;
    size_t n, next;
    start_fn start;
} batch;

static int batch_step(void *arg)
{
    batch *b = arg;
    while (b->next < b->n && inflight < INFLIGHT) {
        size_t i = b->next++;
        inflight++;
        int rv = b->start(&b->cl[i], i);
        if (rv) {
            inflight--;
            nfailed++;
            last_err = rv;
        }
    }
    return ndone + nfailed >= b->n;
}

static double run_batch(client *cl, size_t n, start_fn start, const char *what)
{
    batch b = {cl, n, 0, start};
    ndone = nfailed = inflight = 0;
    double t0 = bench_now_s();
    if (!run_until(batch_step, &b, 120 + (double)n / 50) || nfailed)
        fprintf(stderr, "%s: %zu of %zu done, %zu failed (last error %s)\n", what, ndone, n,
                nfailed, flare_strerror(last_err));
    return bench_now_s() - t0;
}

static int start_dial(client *c, size_t i)
{
    (void)i;
    return flare_host_dial(c->h, &relay_ma, NULL, on_dialed, c);
}

static int start_reserve(client *c, size_t i)
{
    (void)i;
    return flare_host_relay_reserve(c->h, &relay_ma);
}

/* Pairs (2i, 2i+1): the even client dials the odd one through the relay. */
static client *pair_base;
static int start_circuit(client *c, size_t i)
{
    (void)c;
    flare_multiaddr ma;
    int rv = flare_multiaddr_make_relayed(&ma, &relay_ma, NULL,
                                          flare_host_peerid(pair_base[2 * i + 1].h));
    if (rv == 0)
        rv = flare_host_dial(pair_base[2 * i].h, &ma, NULL, on_dialed, &pair_base[2 * i]);
    return rv;
}

/* ---- throughput -------------------------------------------------------------------------------
 */

static size_t sink_got, sink_target;
static double sink_t1;

static void sink_data(flare_stream *s, const uint8_t *d, size_t len, void *user)
{
    (void)s;
    (void)d;
    (void)user;
    sink_got += len;
    if (sink_got >= sink_target && sink_t1 == 0)
        sink_t1 = bench_now_s();
}

static const flare_stream_cbs sink_cbs = {.on_data = sink_data};

static int sink_full(void *arg)
{
    (void)arg;
    return sink_t1 != 0;
}

/* Pushes mib MiB split over k circuits (pairs of tp[]); MiB/s and relay CPU s/MiB. */
static int bench_tput(client *tp, int k, size_t mib, pid_t relay, double *mibs, double *cpu_per)
{
    src x[NTPUT];
    sink_got = 0;
    sink_t1 = 0;
    sink_target = (mib << 20) / (size_t)k * (size_t)k;
    double c0 = bench_cpu_s(relay), t0 = bench_now_s();
    for (int i = 0; i < k; i++) {
        x[i].left = sink_target / (size_t)k;
        if (flare_conn_new_stream(tp[2 * i].relayed, SINK_PROT, &src_cbs, &x[i],
                                  FLARE_STREAM_ALLOW_LIMITED, &x[i].s))
            return -1;
        src_push(&x[i]);
    }
    int ok = run_until(sink_full, NULL, 120);
    double c1 = bench_cpu_s(relay);
    for (int i = 0; i < k; i++)
        flare_stream_reset(x[i].s);
    settle(0.2);
    if (!ok) {
        fprintf(stderr, "throughput: %zu of %zu bytes arrived\n", sink_got, sink_target);
        return -1;
    }
    double mb = (double)sink_got / (1 << 20);
    *mibs = mb / (sink_t1 - t0);
    *cpu_per = (c1 - c0) / mb;
    return 0;
}

/* ---- driver ------------------------------------------------------------------------------------
 */

static int report_rfd = -1;

/* The relay's heap in use (bytes), asked for with SIGUSR1. */
static long relay_heap(pid_t pid)
{
    char line[64];
    size_t got = 0;
    kill(pid, SIGUSR1);
    while (got < sizeof(line) - 1) {
        ssize_t r = read(report_rfd, line + got, 1);
        if (r <= 0)
            return -1;
        if (line[got++] == '\n')
            break;
    }
    line[got] = 0;
    return atol(line);
}

static long heap_at[4];
static int nheap;

static long rss_stable(pid_t pid)
{
    /* Let identify, acks and frees finish, then take the reading. */
    long prev = -1, cur = bench_rss_kib(pid);
    for (int i = 0; i < 10 && cur != prev; i++) {
        settle(0.3);
        prev = cur;
        cur = bench_rss_kib(pid);
    }
    if (nheap < 4)
        heap_at[nheap++] = relay_heap(pid);
    return cur;
}

static int start_relay(size_t n, size_t m, pid_t *pid)
{
    int fds[2];
    if (pipe(fds))
        return -1;
    *pid = fork();
    if (*pid < 0)
        return -1;
    if (*pid == 0) {
        close(fds[0]);
        _exit(relay_main(fds[1], n, m));
    }
    close(fds[1]);
    char s[256] = {0};
    size_t got = 0;
    ssize_t r;
    /* The address ends at its NUL; heap reports follow on the same pipe. */
    while (got < sizeof(s) - 1 && (r = read(fds[0], s + got, 1)) > 0 && s[got] != 0)
        got += (size_t)r;
    report_rfd = fds[0];
    if (got == 0 || flare_multiaddr_parse(&relay_ma, s))
        return -1;
    flare_peerid rid;
    bench_peer(&rid, KEY_TAG, RELAY_ID);
    return flare_multiaddr_with_peerid(&relay_ma, &rid);
}

static long self_rss(void)
{
    return bench_rss_kib(getpid());
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? (size_t)atol(argv[1]) : 1000;
    size_t m = argc > 2 ? (size_t)atol(argv[2]) : n / 10;
    size_t mib = argc > 3 ? (size_t)atol(argv[3]) : 256;
    if (m > n / 2)
        m = n / 2;
    bench_raise_fd_limit();
    signal(SIGPIPE, SIG_IGN);
    pid_t relay;
    if (start_relay(n, m, &relay)) {
        fprintf(stderr, "relay did not start\n");
        return 1;
    }
    uv_loop_init(&loop);
    flare_uvio_new(&uvio, &loop, NULL);

    long r_start = rss_stable(relay);
    long self0 = self_rss();
    client *cl = calloc(n, sizeof(*cl));
    client tp[2 * NTPUT];
    for (size_t i = 0; i < n; i++)
        if (client_new(&cl[i], (uint32_t)i))
            return 1;
    long self_hosts = self_rss();

    double t_conn = run_batch(cl, n, start_dial, "connect");
    long r_conn = rss_stable(relay);
    long self_conn = self_rss();
    double t_rsvp = run_batch(cl, n, start_reserve, "reserve");
    long r_rsvp = rss_stable(relay);

    pair_base = cl;
    double t_circ = run_batch(cl, m, start_circuit, "circuits");
    long r_circ = rss_stable(relay);

    /* Throughput pairs: allow-listed, reserved, one relayed connection each. */
    for (int i = 0; i < 2 * NTPUT; i++) {
        if (client_new(&tp[i], tput_id(i)))
            return 1;
        flare_host_set_handler(tp[i].h, SINK_PROT, &sink_cbs, NULL, FLARE_HANDLER_ALLOW_LIMITED);
    }
    run_batch(tp, 2 * NTPUT, start_dial, "tput connect");
    run_batch(tp, 2 * NTPUT, start_reserve, "tput reserve");
    pair_base = tp;
    run_batch(tp, NTPUT, start_circuit, "tput circuits");
    double one = 0, one_cpu = 0, par = 0, par_cpu = 0;
    int tput_rv = bench_tput(tp, 1, mib, relay, &one, &one_cpu);
    if (tput_rv == 0)
        tput_rv = bench_tput(tp, NTPUT, mib, relay, &par, &par_cpu);

    printf("clients %zu\n", n);
    printf("circuits %zu\n", m);
    printf("relay_rss_start_kib %ld\n", r_start);
    printf("relay_rss_conns_kib %ld\n", r_conn);
    printf("relay_rss_rsvp_kib %ld\n", r_rsvp);
    printf("relay_rss_circ_kib %ld\n", r_circ);
    printf("bytes_per_conn %.0f\n", (double)(r_conn - r_start) * 1024 / (double)n);
    printf("bytes_per_rsvp %.0f\n", (double)(r_rsvp - r_conn) * 1024 / (double)n);
    if (m)
        printf("bytes_per_circuit %.0f\n", (double)(r_circ - r_rsvp) * 1024 / (double)m);
    printf("relay_heap_start %ld\n", heap_at[0]);
    printf("heap_per_conn %.0f\n", (double)(heap_at[1] - heap_at[0]) / (double)n);
    printf("heap_per_rsvp %.0f\n", (double)(heap_at[2] - heap_at[1]) / (double)n);
    if (m)
        printf("heap_per_circuit %.0f\n", (double)(heap_at[3] - heap_at[2]) / (double)m);
    printf("connect_s %.2f\n", t_conn);
    printf("reserve_s %.2f\n", t_rsvp);
    printf("circuits_s %.2f\n", t_circ);
    printf("client_bytes_per_host %.0f\n", (double)(self_hosts - self0) * 1024 / (double)n);
    printf("client_bytes_per_conn %.0f\n", (double)(self_conn - self_hosts) * 1024 / (double)n);
    if (tput_rv == 0) {
        printf("tput_1_mibs %.1f\n", one);
        printf("tput_1_relay_cpu_ms_per_mib %.2f\n", one_cpu * 1e3);
        printf("tput_%d_mibs %.1f\n", NTPUT, par);
        printf("tput_%d_relay_cpu_ms_per_mib %.2f\n", NTPUT, par_cpu * 1e3);
    }

    kill(relay, SIGTERM);
    waitpid(relay, NULL, 0);
    for (size_t i = 0; i < n; i++)
        flare_host_del(cl[i].h);
    for (int i = 0; i < 2 * NTPUT; i++)
        flare_host_del(tp[i].h);
    free(cl);
    flare_uvio_del(uvio);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return tput_rv != 0;
}
