/*
 * flare-attack: a hostile libp2p client for the attack tests. It speaks the
 * real protocols with flare's own sans-I/O cores (multistream, Noise, yamux)
 * over plain blocking sockets, and misbehaves on purpose:
 *
 *   reset-loop  N rounds of: connect, then either /multistream/1.0.0 and a
 *               burst of "ls" (even rounds) or a full Noise+yamux handshake
 *               and a burst of pings (odd rounds), then RST (SO_LINGER 0)
 *   ping-flood  handshake, then --bytes of yamux PINGs, never reading
 *   ls-flood    /multistream/1.0.0 and --bytes of "ls", never reading
 *   garbage     one connection per stage, garbage at each: before
 *               multistream, in it, in place of Noise message 1, after a
 *               valid message 1, inside the encrypted channel, bad yamux
 *               frames, undecryptable ciphertext; even rounds wait for the
 *               node to close, odd rounds reset right after the garbage
 *   stall       handshake, open a stream, negotiate --proto, send what the
 *               window allows, then hold the connection without reading
 *
 * Every mode ends with one line "result mode=... key=value ..." on stdout.
 * Exit status: 0 done, 1 the node could not be reached at all, 2 usage.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "flare/buf.h"
#include "flare/keys.h"
#include "flare/mss.h"
#include "flare/noise.h"
#include "flare/yamux.h"

#define YAMUX_ID "/yamux/1.0.0"
#define CHUNK    (60 * 1024)

static struct sockaddr_in target;
static double stall_s = 3; /* a send blocked this long: the node stopped reading */
static double wait_s = 30; /* after a stall: how long to watch for the close */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void set_timeout(int fd, int opt, double s)
{
    struct timeval tv = {(time_t)s, (suseconds_t)((s - (double)(time_t)s) * 1e6)};
    setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof(tv));
}

static int tcp_connect(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    set_timeout(fd, SO_SNDTIMEO, 5);
    set_timeout(fd, SO_RCVTIMEO, 5);
    if (connect(fd, (struct sockaddr *)&target, sizeof(target)) != 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

/* Close with RST instead of FIN. */
static void rst_close(int fd)
{
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd);
}

/* 0 sent, 1 stalled (the peer stopped reading), -1 closed or error. */
static int send_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 1;
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* Appends what arrives to b: >0 bytes, 0 EOF, -1 error or timeout. */
static int recv_some(int fd, flare_buf *b)
{
    uint8_t tmp[65536];
    ssize_t k = recv(fd, tmp, sizeof(tmp), 0);
    if (k > 0 && flare_buf_append(b, tmp, (size_t)k) != 0)
        return -1;
    return k < 0 ? -1 : (int)k;
}

/* --- the honest part: multistream, Noise, yamux ------------------------- */

typedef struct sess {
    int fd;
    flare_privkey key;
    flare_noise noise;
    int noise_on;
    flare_buf in, plain;
} sess;

static void sess_free(sess *s)
{
    if (s->noise_on)
        flare_noise_free(&s->noise);
    flare_buf_free(&s->in);
    flare_buf_free(&s->plain);
    s->noise_on = 0;
}

static int send_buf(sess *s, flare_buf *b)
{
    int rv = b->len ? send_all(s->fd, b->base, b->len) : 0;
    flare_buf_reset(b);
    return rv;
}

/* Encrypts and sends; 0, 1 (stalled) or -1. */
static int secure_send(sess *s, const uint8_t *p, size_t n)
{
    flare_buf out;
    flare_buf_init(&out, NULL);
    int rv = 0;
    while (n && rv == 0) {
        size_t k = n > FLARE_NOISE_MAX_PLAINTEXT ? FLARE_NOISE_MAX_PLAINTEXT : n;
        if (flare_noise_encrypt(&s->noise, p, k, &out) != 0)
            rv = -1;
        else
            rv = send_buf(s, &out);
        p += k;
        n -= k;
    }
    flare_buf_free(&out);
    return rv;
}

/* Reads more plaintext (secure) or raw bytes into s->in; -1 on EOF/error. */
static int pull(sess *s, int secure)
{
    if (!secure)
        return recv_some(s->fd, &s->in) > 0 ? 0 : -1;
    flare_buf raw, out;
    flare_buf_init(&raw, NULL);
    flare_buf_init(&out, NULL);
    int rv = recv_some(s->fd, &raw) > 0 ? 0 : -1;
    if (rv == 0 && flare_noise_recv(&s->noise, raw.base, raw.len, &out, &s->in) < 0)
        rv = -1;
    flare_buf_free(&raw);
    flare_buf_free(&out);
    return rv;
}

/* Negotiates proto as multistream dialer on the raw or secure channel; the
 * bytes after the negotiation stay in s->in. */
static int mss_dial(sess *s, const char *proto, int secure)
{
    const char *list[1] = {proto};
    flare_mss_settings ms = {.role = FLARE_MSS_DIALER, .protocols = list, .nprotocols = 1};
    flare_mss m;
    flare_buf out;
    flare_buf_init(&out, NULL);
    int rv = flare_mss_init(&m, &ms, NULL);
    if (rv == 0)
        rv = flare_mss_start(&m, &out);
    while (rv == 0) {
        int sr = secure ? secure_send(s, out.base, out.len) : send_all(s->fd, out.base, out.len);
        flare_buf_reset(&out);
        if (sr != 0 || (s->in.len == 0 && pull(s, secure) != 0)) {
            rv = -1;
            break;
        }
        size_t used = 0;
        rv = flare_mss_recv(&m, s->in.base, s->in.len, &used, &out);
        flare_buf_consume(&s->in, used);
        if (rv == 1) {
            rv = 0;
            break;
        }
        if (rv == 0 && s->in.len)
            rv = -1; /* cannot happen: recv consumed everything */
    }
    flare_mss_free(&m);
    flare_buf_free(&out);
    return rv;
}

static int noise_start(sess *s)
{
    static const char *const muxers[] = {YAMUX_ID};
    flare_noise_settings ns;
    flare_noise_settings_default(&ns);
    ns.identity = &s->key;
    ns.initiator = 1;
    ns.muxers = muxers;
    ns.nmuxers = 1;
    if (flare_noise_init(&s->noise, &ns, NULL, flare_os_rng()) != 0)
        return -1;
    s->noise_on = 1;
    flare_buf out;
    flare_buf_init(&out, NULL);
    int rv = flare_noise_start(&s->noise, &out) == 0 ? send_buf(s, &out) : -1;
    flare_buf_free(&out);
    return rv;
}

/* Runs Noise to completion (after "/noise" was negotiated). */
static int noise_finish(sess *s)
{
    flare_buf out;
    flare_buf_init(&out, NULL);
    int rv = 0;
    while (rv == 0 && !flare_noise_handshake_done(&s->noise)) {
        if (s->in.len == 0 && recv_some(s->fd, &s->in) <= 0) {
            rv = -1;
            break;
        }
        if (flare_noise_recv(&s->noise, s->in.base, s->in.len, &out, &s->plain) < 0)
            rv = -1;
        flare_buf_reset(&s->in);
        if (rv == 0)
            rv = send_buf(s, &out);
    }
    flare_buf_free(&out);
    /* Decrypted bytes that came with the last message stay in s->in. */
    if (rv == 0 && s->plain.len) {
        flare_buf_append(&s->in, s->plain.base, s->plain.len);
        flare_buf_reset(&s->plain);
    }
    return rv;
}

/* TCP, multistream /noise, Noise XX, yamux (from the Noise extensions or
 * multistream). Returns 0 with s->fd connected, or -1 (fd closed). */
static int handshake(sess *s)
{
    memset(s, 0, sizeof(*s));
    flare_buf_init(&s->in, NULL);
    flare_buf_init(&s->plain, NULL);
    flare_privkey_generate(&s->key, flare_os_rng());
    s->fd = tcp_connect();
    if (s->fd < 0)
        return -1;
    int rv = mss_dial(s, FLARE_NOISE_PROTOCOL_ID, 0);
    if (rv == 0) {
        flare_buf keep; /* bytes after multistream are Noise's */
        flare_buf_init(&keep, NULL);
        flare_buf_append(&keep, s->in.base, s->in.len);
        flare_buf_reset(&s->in);
        rv = noise_start(s);
        if (rv == 0 && keep.len)
            flare_buf_append(&s->in, keep.base, keep.len);
        flare_buf_free(&keep);
    }
    if (rv == 0)
        rv = noise_finish(s);
    if (rv == 0 && !flare_noise_selected_muxer(&s->noise))
        rv = mss_dial(s, YAMUX_ID, 1);
    if (rv != 0) {
        rst_close(s->fd);
        sess_free(s);
        return -1;
    }
    return 0;
}

static void yframe(uint8_t *p, uint8_t type, uint16_t flags, uint32_t sid, uint32_t len)
{
    p[0] = 0;
    p[1] = type;
    p[2] = (uint8_t)(flags >> 8);
    p[3] = (uint8_t)flags;
    for (int i = 0; i < 4; i++) {
        p[4 + i] = (uint8_t)(sid >> (24 - 8 * i));
        p[8 + i] = (uint8_t)(len >> (24 - 8 * i));
    }
}

/* A block of n/12 ping SYN frames. */
static uint8_t *ping_block(size_t n)
{
    uint8_t *b = malloc(n);
    for (size_t i = 0; i + FLARE_YAMUX_HEADER_LEN <= n; i += FLARE_YAMUX_HEADER_LEN)
        yframe(b + i, FLARE_YAMUX_TYPE_PING, FLARE_YAMUX_FLAG_SYN, 0, (uint32_t)i);
    return b;
}

/* --- modes ---------------------------------------------------------------- */

static const uint8_t MSS_HDR[] = "\x13/multistream/1.0.0\n";

static int mode_reset_loop(long rounds)
{
    static uint8_t ls[4 * 4096];
    for (size_t i = 0; i < sizeof(ls); i += 4)
        memcpy(ls + i, "\x03ls\n", 4);
    uint8_t *pings = ping_block(CHUNK);
    long ok = 0, failed = 0;
    for (long r = 0; r < rounds; r++) {
        if (r % 2 == 0) {
            int fd = tcp_connect();
            if (fd < 0) {
                failed++;
                continue;
            }
            send_all(fd, MSS_HDR, sizeof(MSS_HDR) - 1);
            send_all(fd, ls, sizeof(ls));
            rst_close(fd);
        } else {
            sess s;
            if (handshake(&s) != 0) {
                failed++;
                continue;
            }
            secure_send(&s, pings, CHUNK);
            rst_close(s.fd);
            sess_free(&s);
        }
        ok++;
    }
    free(pings);
    printf("result mode=reset-loop rounds=%ld ok=%ld failed=%ld\n", rounds, ok, failed);
    return ok ? 0 : 1;
}

/* After a stall: keep offering data now and then; the node closing (RST, or
 * FIN then RST for our unread data) makes the send fail. */
static const char *watch_close(int fd, const uint8_t *p, size_t n, double *closed_after)
{
    double t0 = now_s();
    set_timeout(fd, SO_SNDTIMEO, 0.5);
    while (now_s() - t0 < wait_s) {
        if (send_all(fd, p, n) < 0) {
            *closed_after = now_s() - t0;
            return "closed";
        }
        usleep(200 * 1000);
    }
    return "stalled";
}

/* Sends blk (encrypted if secure) until total, a stall or a close; after a
 * stall, watches for the close. */
static void flood(const char *mode, sess *s, int secure, const uint8_t *blk, size_t blen,
                  double total)
{
    double sent = 0, closed_after = -1, t0 = now_s();
    const char *outcome = "done";
    set_timeout(s->fd, SO_SNDTIMEO, stall_s);
    while (sent < total) {
        int rv = secure ? secure_send(s, blk, blen) : send_all(s->fd, blk, blen);
        if (rv < 0) {
            outcome = "closed";
            closed_after = 0;
            break;
        }
        if (rv > 0) {
            outcome = watch_close(s->fd, blk, 1, &closed_after);
            break;
        }
        sent += (double)blen;
    }
    printf("result mode=%s sent=%.0f outcome=%s stalled_at=%.0f closed_after=%.1f elapsed=%.1f\n",
           mode, sent, outcome, strcmp(outcome, "done") ? sent : -1, closed_after, now_s() - t0);
}

static int mode_ping_flood(double bytes)
{
    sess s;
    if (handshake(&s) != 0) {
        printf("result mode=ping-flood outcome=no-handshake\n");
        return 1;
    }
    uint8_t *pings = ping_block(CHUNK);
    flood("ping-flood", &s, 1, pings, CHUNK, bytes);
    free(pings);
    rst_close(s.fd);
    sess_free(&s);
    return 0;
}

static int mode_ls_flood(double bytes)
{
    sess s;
    memset(&s, 0, sizeof(s));
    s.fd = tcp_connect();
    if (s.fd < 0) {
        printf("result mode=ls-flood outcome=no-connect\n");
        return 1;
    }
    uint8_t *ls = malloc(CHUNK);
    for (size_t i = 0; i + 4 <= CHUNK; i += 4)
        memcpy(ls + i, "\x03ls\n", 4);
    send_all(s.fd, MSS_HDR, sizeof(MSS_HDR) - 1);
    flood("ls-flood", &s, 0, ls, CHUNK, bytes);
    free(ls);
    rst_close(s.fd);
    return 0;
}

static void rnd(uint8_t *p, size_t n)
{
    flare_rng r = flare_os_rng();
    r.fn(p, n, r.user);
}

/* Sends the stage's garbage and waits (at most 5 s) for the node to close:
 * 1 closed, 0 still open. */
static int closed_by_node(int fd)
{
    flare_buf b;
    flare_buf_init(&b, NULL);
    set_timeout(fd, SO_RCVTIMEO, 5);
    int rv;
    while ((rv = recv_some(fd, &b)) > 0)
        flare_buf_reset(&b);
    flare_buf_free(&b);
    return rv == 0 || (rv < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

/* 1 the node closed, 0 it did not, 2 not waited for, -1 no connection. */
static int garbage_stage(int stage, int wait)
{
    uint8_t junk[4096];
    rnd(junk, sizeof(junk));
    sess s;
    int secure = stage >= 4;
    if (secure) {
        if (handshake(&s) != 0)
            return -1;
    } else {
        memset(&s, 0, sizeof(s));
        s.fd = tcp_connect();
        if (s.fd < 0)
            return -1;
    }
    switch (stage) {
    case 0: /* garbage instead of multistream */
        send_all(s.fd, junk, sizeof(junk));
        break;
    case 1: /* a valid header, then a frame with random contents */
        send_all(s.fd, MSS_HDR, sizeof(MSS_HDR) - 1);
        junk[0] = 0x7f;
        junk[0x7f] = '?'; /* never a newline: random bytes could be a proposal */
        send_all(s.fd, junk, 0x80);
        break;
    case 2: /* "/noise" agreed, then garbage as Noise message 1 */
        flare_buf_init(&s.in, NULL);
        if (mss_dial(&s, FLARE_NOISE_PROTOCOL_ID, 0) == 0) {
            junk[0] = 0x01;
            junk[1] = 0x00;
            send_all(s.fd, junk, 258);
        }
        flare_buf_free(&s.in);
        break;
    case 3: { /* a valid message 1, then garbage as message 3 */
        flare_buf_init(&s.in, NULL);
        flare_buf_init(&s.plain, NULL);
        flare_privkey_generate(&s.key, flare_os_rng());
        if (mss_dial(&s, FLARE_NOISE_PROTOCOL_ID, 0) == 0 && noise_start(&s) == 0 &&
            recv_some(s.fd, &s.in) > 0) {
            junk[0] = 0x00;
            junk[1] = 0xa0;
            send_all(s.fd, junk, 0xa2);
        }
        sess_free(&s);
        break;
    }
    case 4:           /* random plaintext inside the channel: bad yamux */
        junk[0] |= 1; /* a bad version byte: random frames could be valid */
        secure_send(&s, junk, sizeof(junk));
        break;
    case 5: { /* well-formed headers, bad yamux: version, type, stream 0 data */
        uint8_t f[48];
        yframe(f, FLARE_YAMUX_TYPE_PING, FLARE_YAMUX_FLAG_SYN, 0, 1);
        yframe(f + 12, 0, FLARE_YAMUX_FLAG_SYN, 0, 0xffffffffu); /* data on stream 0 */
        yframe(f + 24, 9, 0, 3, 0);                              /* unknown type */
        yframe(f + 36, FLARE_YAMUX_TYPE_DATA, 0, 77, 16);        /* unknown stream */
        f[24] = 5;                                               /* bad version */
        secure_send(&s, f, sizeof(f));
        break;
    }
    default: /* ciphertext that does not decrypt */
        junk[0] = 0x04;
        junk[1] = 0x00;
        send_all(s.fd, junk, 0x402);
        break;
    }
    int closed = wait ? closed_by_node(s.fd) : 2;
    rst_close(s.fd);
    if (secure)
        sess_free(&s);
    return closed;
}

static int mode_garbage(long rounds)
{
    int stages = 7, closed = 0, waited = 0, failed = 0;
    for (long r = 0; r < rounds; r++)
        for (int st = 0; st < stages; st++) {
            int rv = garbage_stage(st, r % 2 == 0);
            if (rv < 0)
                failed++;
            else if (rv < 2) {
                waited++;
                closed += rv;
            }
        }
    printf("result mode=garbage stages=%ld waited=%d closed=%d failed=%d\n", rounds * stages,
           waited, closed, failed);
    return failed == rounds * stages ? 1 : 0;
}

static int mode_stall(const char *proto, double hold)
{
    sess s;
    if (handshake(&s) != 0) {
        printf("result mode=stall outcome=no-handshake\n");
        return 1;
    }
    flare_yamux_settings ys;
    flare_yamux_settings_default(&ys);
    ys.keepalive_interval = 0;
    flare_yamux *y;
    flare_buf out;
    flare_buf_init(&out, NULL);
    uint32_t id = 0;
    size_t sent = 0;
    if (flare_yamux_new(&y, &ys, NULL, flare_os_rng(), 0) == 0 &&
        flare_yamux_open_stream(y, &id, &out) == 0) {
        /* Optimistic multistream and data, all within the initial window. */
        flare_buf msg;
        flare_buf_init(&msg, NULL);
        flare_buf_append(&msg, MSS_HDR, sizeof(MSS_HDR) - 1);
        flare_buf_append_uvarint(&msg, strlen(proto) + 1);
        flare_buf_append(&msg, proto, strlen(proto));
        flare_buf_append_byte(&msg, '\n');
        uint8_t data[4096];
        rnd(data, sizeof(data));
        while (msg.len < FLARE_YAMUX_DEFAULT_WINDOW)
            flare_buf_append(&msg, data, sizeof(data));
        long n = flare_yamux_write(y, id, msg.base, msg.len, &out);
        sent = n > 0 ? (size_t)n : 0;
        flare_buf_free(&msg);
        secure_send(&s, out.base, out.len);
    }
    /* Hold it open, reading nothing. */
    double t0 = now_s();
    while (now_s() - t0 < hold)
        usleep(100 * 1000);
    printf("result mode=stall sent=%zu held=%.1f\n", sent, now_s() - t0);
    flare_buf_free(&out);
    flare_yamux_del(y);
    rst_close(s.fd);
    sess_free(&s);
    return 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: flare-attack MODE HOST:PORT [--rounds N] [--bytes N] [--stall S]\n"
                    "                    [--wait S] [--hold S] [--proto P]\n"
                    "modes: reset-loop ping-flood ls-flood garbage stall\n");
    return 2;
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return usage();
    const char *mode = argv[1];
    char host[64];
    const char *colon = strrchr(argv[2], ':');
    if (!colon || (size_t)(colon - argv[2]) >= sizeof(host))
        return usage();
    memcpy(host, argv[2], (size_t)(colon - argv[2]));
    host[colon - argv[2]] = '\0';
    target.sin_family = AF_INET;
    target.sin_port = htons((uint16_t)atoi(colon + 1));
    if (inet_pton(AF_INET, host, &target.sin_addr) != 1)
        return usage();
    long rounds = 1;
    double bytes = 1 << 20, hold = 5;
    const char *proto = "/ipfs/ping/1.0.0";
    for (int i = 3; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--rounds") == 0)
            rounds = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--bytes") == 0)
            bytes = atof(argv[i + 1]);
        else if (strcmp(argv[i], "--stall") == 0)
            stall_s = atof(argv[i + 1]);
        else if (strcmp(argv[i], "--wait") == 0)
            wait_s = atof(argv[i + 1]);
        else if (strcmp(argv[i], "--hold") == 0)
            hold = atof(argv[i + 1]);
        else if (strcmp(argv[i], "--proto") == 0)
            proto = argv[i + 1];
        else
            return usage();
    }
    if (strcmp(mode, "reset-loop") == 0)
        return mode_reset_loop(rounds);
    if (strcmp(mode, "ping-flood") == 0)
        return mode_ping_flood(bytes);
    if (strcmp(mode, "ls-flood") == 0)
        return mode_ls_flood(bytes);
    if (strcmp(mode, "garbage") == 0)
        return mode_garbage(rounds);
    if (strcmp(mode, "stall") == 0)
        return mode_stall(proto, hold);
    return usage();
}
