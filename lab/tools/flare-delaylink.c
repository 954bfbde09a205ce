/*
 * flare-delaylink: a wire with a fixed one-way delay between two interfaces.
 *
 * The lab's kernel has no netem, so link delay is done in userspace: two
 * AF_PACKET sockets, one per interface, and every frame read on one side is
 * written to the other side `delay` milliseconds later. The delay is fixed
 * per direction, so release times are monotonic and a FIFO per direction is
 * already ordered by release time; one timerfd armed at the earliest head
 * drives the releases.
 *
 * PACKET_VNET_HDR carries the kernel's offload metadata (partial checksums,
 * GSO) across unchanged, so the veth offloads need not be turned off (the lab
 * has no ethtool).
 *
 * --loss-pct P drops each IPv4 frame, in both directions, with probability
 * P % (ARP and other frames always pass, so losses are the IP packets'). The
 * decisions come from a PRNG seeded with --seed (default 1), so the same
 * seed gives the same drop pattern over the same frame sequence. A GSO
 * super-frame counts as one frame: lab.sh caps GSO at one segment on lossy
 * links so that one drop is one packet.
 *
 * This is a driver-level tool: it may use clocks and sockets.
 *
 * usage: flare-delaylink IF_A IF_B DELAY_MS [DELAY_B_TO_A_MS] [--queue-bytes N]
 *                        [--loss-pct P] [--seed N]
 * Prints one JSON line {"event":"ready",...} on stdout once both sockets are
 * bound, and a {"event":"stats",...} line on SIGTERM/SIGINT (and SIGUSR1,
 * which does not stop it).
 */
#include <errno.h>
#include <inttypes.h>
#include <linux/if_packet.h>
#include <linux/virtio_net.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif

#define VNET_LEN  sizeof(struct virtio_net_hdr)
#define FRAME_MAX (65536 + 64)

typedef struct frame {
    struct frame *next;
    uint64_t release_ns;
    size_t len; /* vnet header + frame */
    uint8_t data[];
} frame;

/* One direction: frames read from `in_fd`, written to `out_fd`. */
typedef struct dir {
    int in_fd, out_fd;
    uint64_t delay_ns;
    frame *head, *tail;
    size_t queued_bytes;
    uint64_t fwd, dropped_full, dropped_send, dropped_loss, gso;
} dir;

static volatile sig_atomic_t g_stop, g_stats;
static size_t g_queue_cap = 16u << 20;
static uint32_t g_loss_ppm; /* drop probability in parts per million */
static uint64_t g_rng;      /* splitmix64 state */

static void on_signal(int sig)
{
    if (sig == SIGUSR1)
        g_stats = 1;
    else
        g_stop = 1;
}

static uint64_t splitmix64(void)
{
    uint64_t z = (g_rng += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* The loss decision for one frame (vnet header + Ethernet frame). */
static int lose(const uint8_t *buf, size_t len)
{
    if (g_loss_ppm == 0 || len < VNET_LEN + 14)
        return 0;
    uint16_t type = (uint16_t)(buf[VNET_LEN + 12] << 8 | buf[VNET_LEN + 13]);
    if (type != ETHERTYPE_IP)
        return 0;
    return splitmix64() % 1000000u < g_loss_ppm;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int open_if(const char *name)
{
    unsigned idx = if_nametoindex(name);
    if (idx == 0) {
        fprintf(stderr, "flare-delaylink: no interface %s\n", name);
        return -1;
    }
    /* Protocol 0 until bound, so no frame of another interface sneaks in. */
    int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        perror("flare-delaylink: socket(AF_PACKET)");
        return -1;
    }
    int one = 1, rcvbuf = 4 << 20;
    if (setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof one) < 0) {
        perror("flare-delaylink: PACKET_VNET_HDR");
        close(fd);
        return -1;
    }
    /* Best effort; frames we sent are also filtered by pkttype below. */
    (void)setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one);
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &rcvbuf, sizeof rcvbuf);
    struct sockaddr_ll sll = {
        .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL), .sll_ifindex = (int)idx};
    if (bind(fd, (struct sockaddr *)&sll, sizeof sll) < 0) {
        perror("flare-delaylink: bind");
        close(fd);
        return -1;
    }
    /* The peers' MAC addresses are not ours: a wire must pass everything. */
    struct packet_mreq mr = {.mr_ifindex = (int)idx, .mr_type = PACKET_MR_PROMISC};
    if (setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof mr) < 0) {
        perror("flare-delaylink: PACKET_MR_PROMISC");
        close(fd);
        return -1;
    }
    return fd;
}

static void enqueue(dir *d, const uint8_t *buf, size_t len, uint64_t now)
{
    if (d->queued_bytes + len > g_queue_cap) {
        d->dropped_full++; /* tail drop, like a full router queue */
        return;
    }
    frame *f = malloc(sizeof *f + len);
    if (f == NULL) {
        d->dropped_full++;
        return;
    }
    f->next = NULL;
    f->release_ns = now + d->delay_ns;
    f->len = len;
    memcpy(f->data, buf, len);
    if (d->tail)
        d->tail->next = f;
    else
        d->head = f;
    d->tail = f;
    d->queued_bytes += len;
}

/* Reads every pending frame of one side into its direction's queue. */
static void drain(dir *d, uint8_t *buf)
{
    for (;;) {
        struct sockaddr_ll from;
        socklen_t fl = sizeof from;
        ssize_t n = recvfrom(d->in_fd, buf, FRAME_MAX, 0, (struct sockaddr *)&from, &fl);
        if (n < 0)
            return; /* EAGAIN or a transient error: poll again */
        if (from.sll_pkttype == PACKET_OUTGOING || (size_t)n <= VNET_LEN)
            continue;
        struct virtio_net_hdr *vh = (struct virtio_net_hdr *)buf;
        /* DATA_VALID is a receive-only hint; the send path wants only NEEDS_CSUM. */
        vh->flags &= VIRTIO_NET_HDR_F_NEEDS_CSUM;
        if (vh->gso_type != VIRTIO_NET_HDR_GSO_NONE)
            d->gso++;
        if (lose(buf, (size_t)n)) {
            d->dropped_loss++;
            continue;
        }
        enqueue(d, buf, (size_t)n, now_ns());
    }
}

/* Sends every frame whose release time has come. */
static void release(dir *d, uint64_t now)
{
    while (d->head && d->head->release_ns <= now) {
        frame *f = d->head;
        if (send(d->out_fd, f->data, f->len, 0) < 0)
            d->dropped_send++;
        else
            d->fwd++;
        d->head = f->next;
        if (d->head == NULL)
            d->tail = NULL;
        d->queued_bytes -= f->len;
        free(f);
    }
}

static void arm(int tfd, const dir *a, const dir *b)
{
    uint64_t t = UINT64_MAX;
    if (a->head)
        t = a->head->release_ns;
    if (b->head && b->head->release_ns < t)
        t = b->head->release_ns;
    struct itimerspec its = {0};
    if (t != UINT64_MAX) {
        if (t == 0)
            t = 1; /* zero would disarm */
        its.it_value.tv_sec = (time_t)(t / 1000000000u);
        its.it_value.tv_nsec = (long)(t % 1000000000u);
    }
    timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

/* A link going down sets a pending socket error that keeps poll() returning
 * POLLERR; reading SO_ERROR clears it (the wire comes back with the link).
 * Returns -1 when the interface is gone for good. */
static int clear_error(int fd, short revents)
{
    if (revents & POLLNVAL)
        return -1;
    if (revents & POLLERR) {
        int err = 0;
        socklen_t el = sizeof err;
        (void)getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err == ENODEV || err == ENXIO)
            return -1;
    }
    return 0;
}

static int parse_ms(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || v > 60000)
        return -1;
    *out = (uint64_t)v * 1000000u;
    return 0;
}

/* A percentage 0-100 with up to 4 decimals, as parts per million. */
static int parse_pct(const char *s, uint32_t *ppm)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= 0 && v <= 100))
        return -1;
    *ppm = (uint32_t)(v * 10000 + 0.5);
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: flare-delaylink IF_A IF_B DELAY_MS [DELAY_B_TO_A_MS] "
                    "[--queue-bytes N] [--loss-pct P] [--seed N]\n");
}

static void print_stats(const dir *ab, const dir *ba)
{
    printf("{\"event\":\"stats\",\"fwd_ab\":%" PRIu64 ",\"fwd_ba\":%" PRIu64
           ",\"dropped_full\":%" PRIu64 ",\"dropped_send\":%" PRIu64 ",\"lost_ab\":%" PRIu64
           ",\"lost_ba\":%" PRIu64 ",\"gso_frames\":%" PRIu64 "}\n",
           ab->fwd, ba->fwd, ab->dropped_full + ba->dropped_full,
           ab->dropped_send + ba->dropped_send, ab->dropped_loss, ba->dropped_loss,
           ab->gso + ba->gso);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    const char *pos[4];
    int npos = 0;
    g_rng = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--queue-bytes") == 0 && i + 1 < argc) {
            g_queue_cap = strtoul(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--loss-pct") == 0 && i + 1 < argc) {
            if (parse_pct(argv[++i], &g_loss_ppm) < 0) {
                usage();
                return 2;
            }
        } else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
            g_rng = strtoull(argv[++i], NULL, 0);
        } else if (npos < 4) {
            pos[npos++] = argv[i];
        } else {
            usage();
            return 2;
        }
    }
    uint64_t d_ab, d_ba;
    if (npos < 3 || parse_ms(pos[2], &d_ab) < 0 ||
        (npos == 4 ? parse_ms(pos[3], &d_ba) : (d_ba = d_ab, 0)) < 0 || g_queue_cap == 0) {
        usage();
        return 2;
    }
    int fa = open_if(pos[0]), fb = open_if(pos[1]);
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (fa < 0 || fb < 0 || tfd < 0)
        return 1;
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);

    dir ab = {.in_fd = fa, .out_fd = fb, .delay_ns = d_ab};
    dir ba = {.in_fd = fb, .out_fd = fa, .delay_ns = d_ba};
    static uint8_t buf[FRAME_MAX];
    uint64_t seed = g_rng;
    printf("{\"event\":\"ready\",\"a\":\"%s\",\"b\":\"%s\",\"delay_ab_ms\":%" PRIu64
           ",\"delay_ba_ms\":%" PRIu64 ",\"loss_pct\":%.4f,\"seed\":%" PRIu64 "}\n",
           pos[0], pos[1], d_ab / 1000000u, d_ba / 1000000u, g_loss_ppm / 10000.0, seed);
    fflush(stdout);

    while (!g_stop) {
        struct pollfd p[3] = {{fa, POLLIN, 0}, {fb, POLLIN, 0}, {tfd, POLLIN, 0}};
        if (g_stats) {
            g_stats = 0;
            print_stats(&ab, &ba);
        }
        if (poll(p, 3, -1) < 0) {
            if (errno == EINTR)
                continue;
            perror("flare-delaylink: poll");
            return 1;
        }
        if (clear_error(fa, p[0].revents) < 0 || clear_error(fb, p[1].revents) < 0)
            break;
        if (p[0].revents & POLLIN)
            drain(&ab, buf);
        if (p[1].revents & POLLIN)
            drain(&ba, buf);
        if (p[2].revents & POLLIN) {
            uint64_t ticks;
            (void)!read(tfd, &ticks, sizeof ticks);
        }
        uint64_t now = now_ns();
        release(&ab, now);
        release(&ba, now);
        arm(tfd, &ab, &ba);
    }
    print_stats(&ab, &ba);
    return 0;
}
