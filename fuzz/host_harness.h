/* A flare host on the simulator whose only peer is scripted by the fuzzer
 * (fuzz_host_conn, fuzz_host_raw). The simulator is deterministic, so an input
 * replays exactly.
 *
 * The host H listens on 198.51.100.1:4001 and serves FZ_PROTO with callbacks
 * that act on the stream as the input says (echo, close, reset, close the
 * connection, pause, write a lot, open another stream). The peer is a bare
 * socket on 198.51.100.2. With `secure` it first completes a real
 * multistream + Noise handshake (flare_mss and flare_noise with a fixed key);
 * the input's bytes are then plaintext that it encrypts, else they go raw on
 * the wire.
 *
 * Input: [flags][n][n action bytes][records...]; flags bit 0: the peer offers
 * no muxer in its Noise extensions (H then negotiates yamux with multistream),
 * bit 1: H also runs a relay server, bit 2: tight stream limits, bit 3: H
 * also accepts /tls/1.0.0 (raw bytes may then pick libp2p TLS; GnuTLS draws
 * its own randomness, so such inputs replay only up to the handshake).
 * Records:
 *   0 len16 bytes   send bytes
 *   1 t             run the simulator (t + 1) * 5 ms
 *   2               H opens a FZ_PROTO stream to the peer
 *   3               the peer half-closes
 *   4 a             the peer closes (a & 1: abort)
 *   5               H pings the peer
 *   6               H closes its connection to the peer
 *   7               H pushes identify
 * The action bytes are consumed one per host callback: stream callbacks
 * (fz_s_act) and the events of a connection opening, identified or pinged
 * (fz_event, which may close the connection or open a stream on it).
 *
 * FLARE_FUZZ_RECORD=DIR: instead of fuzzing, a real flare host with the
 * peer's key dials H from the peer's address and talks to it (identify, ping,
 * streams, a reset, a goaway); what it sends is written as seed inputs for
 * both targets to DIR/fuzz_host_conn/ and DIR/fuzz_host_raw/. */
#ifndef FLARE_FUZZ_HOST_HARNESS_H
#define FLARE_FUZZ_HOST_HARNESS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "flare/host.h"
#include "flare/mss.h"
#include "flare/noise.h"
#include "flare/sim.h"
#include "host/host_int.h"
#include "support/helpers.h"

#define FZ_PROTO   "/fuzz/1.0.0"
#define FZ_H_IP    "198.51.100.1"
#define FZ_PEER_IP "198.51.100.2"
#define FZ_MS      FLARE_NS_PER_MS

enum { FZ_SEND, FZ_RUN, FZ_OPEN, FZ_SHUTDOWN, FZ_CLOSE, FZ_PING, FZ_HCLOSE, FZ_PUSH, FZ_NOPS };

typedef struct fz {
    flare_sim *sim;
    flare_sim_host *hs, *ps;
    flare_host *h;
    flare_io *pio;
    flare_io_sock *sock;
    flare_peerid peer_id;
    int connected, eof;
    int secure, no_early_muxer;
    flare_mss mss;
    int mss_active, mss_done;
    flare_noise noise;
    int noise_active;
    flare_buf out, plain;
    const uint8_t *act;
    size_t nact, iact;
    int opened; /* connections H saw open */
} fz;

static const uint8_t fz_seed[32] = {0x42};

static uint8_t fz_act(fz *f)
{
    return f->iact < f->nact ? f->act[f->iact++] : 0;
}

/* ---- H's side: the FZ_PROTO handler ---------------------------------------------- */

static void fz_s_act(flare_stream *s, fz *f, const uint8_t *d, size_t len);

static void fz_s_open(flare_stream *s, int status, void *user)
{
    if (status == 0)
        fz_s_act(s, user, (const uint8_t *)"hi", 2);
}

static void fz_s_data(flare_stream *s, const uint8_t *d, size_t len, void *user)
{
    fz_s_act(s, user, d, len);
}

static void fz_s_eof(flare_stream *s, void *user)
{
    fz_s_act(s, user, NULL, 0);
}

static void fz_s_writable(flare_stream *s, void *user)
{
    fz_s_act(s, user, NULL, 0);
}

static const flare_stream_cbs fz_cbs = {
    .on_open = fz_s_open, .on_data = fz_s_data, .on_eof = fz_s_eof, .on_writable = fz_s_writable};

static void fz_s_act(flare_stream *s, fz *f, const uint8_t *d, size_t len)
{
    static uint8_t big[100000];
    switch (fz_act(f) & 7) {
    case 1:
        if (len)
            (void)flare_stream_write(s, d, len);
        break;
    case 2:
        (void)flare_stream_close_write(s);
        break;
    case 3:
        flare_stream_reset(s);
        break;
    case 4:
        flare_conn_close(flare_stream_conn(s));
        break;
    case 5:
        flare_stream_pause(s, (int)(f->iact & 1));
        break;
    case 6:
        (void)flare_stream_write(s, big, sizeof(big));
        break;
    case 7:
        (void)flare_conn_new_stream(flare_stream_conn(s), FZ_PROTO, &fz_cbs, f, 0, NULL);
        break;
    default:
        break;
    }
}

/* H's events: on a connection's opening, identification or ping, an action
 * byte may close it or open a stream on it from inside the event. */
static void fz_event(flare_host *h, const flare_host_event *ev, void *user)
{
    fz *f = user;
    (void)h;
    f->opened += ev->type == FLARE_HOST_EV_CONN_OPENED;
    flare_conn *c = ev->type == FLARE_HOST_EV_CONN_OPENED  ? ev->u.conn.conn
                    : ev->type == FLARE_HOST_EV_IDENTIFIED ? ev->u.identified.conn
                    : ev->type == FLARE_HOST_EV_PING       ? ev->u.ping.conn
                                                           : NULL;
    if (!c)
        return;
    uint8_t a = fz_act(f);
    if ((a & 0x18) == 0x08)
        flare_conn_close(c);
    else if ((a & 0x18) == 0x10)
        (void)flare_conn_new_stream(c, FZ_PROTO, &fz_cbs, f, FLARE_STREAM_ALLOW_LIMITED, NULL);
}

/* ---- the peer's socket -------------------------------------------------------------- */

static void fz_write(fz *f, flare_buf *b)
{
    if (f->sock && b->len)
        (void)f->pio->ops->sock_write(f->sock, b->base, b->len);
    flare_buf_reset(b);
}

static void fz_peer_fail(fz *f)
{
    if (f->sock)
        f->pio->ops->sock_close(f->sock, 1);
    f->sock = NULL;
}

static int fz_noise_start(fz *f)
{
    static const char *const muxers[] = {"/yamux/1.0.0"};
    flare_privkey k;
    flare_privkey_from_seed(&k, fz_seed);
    static flare_prng prng;
    flare_prng_seed(&prng, 0x42);
    flare_noise_settings ns;
    flare_noise_settings_default(&ns);
    ns.identity = &k;
    ns.initiator = 1;
    ns.muxers = muxers;
    ns.nmuxers = f->no_early_muxer ? 0 : 1;
    int rv = flare_noise_init(&f->noise, &ns, NULL, flare_prng_rng(&prng));
    if (rv)
        return rv;
    f->noise_active = 1;
    return flare_noise_start(&f->noise, &f->out);
}

static void fz_on_read(flare_io_sock *s, const uint8_t *d, size_t len, void *user)
{
    fz *f = user;
    (void)s;
    if (len == 0) {
        f->eof = 1;
        return;
    }
    if (!f->secure)
        return;
    int rv = 0;
    if (!f->mss_done) {
        size_t used = 0;
        rv = flare_mss_recv(&f->mss, d, len, &used, &f->out);
        d += used;
        len -= used;
        if (rv == 1) {
            f->mss_done = 1;
            rv = fz_noise_start(f);
        }
    }
    if (rv == 0 && f->noise_active && len)
        rv = flare_noise_recv(&f->noise, d, len, &f->out, &f->plain);
    flare_buf_reset(&f->plain); /* what H says is not checked */
    fz_write(f, &f->out);
    if (rv < 0)
        fz_peer_fail(f);
}

static void fz_on_close(flare_io_sock *s, int reason, void *user)
{
    fz *f = user;
    (void)s;
    (void)reason;
    f->sock = NULL;
}

static void fz_on_connect(flare_io_sock *s, int status, void *user)
{
    fz *f = user;
    (void)s;
    if (status) {
        f->sock = NULL;
        return;
    }
    f->connected = 1;
    if (!f->secure)
        return;
    static const char *const noise[] = {"/noise"};
    flare_mss_settings ms = {.role = FLARE_MSS_DIALER, .protocols = noise, .nprotocols = 1};
    if (flare_mss_init(&f->mss, &ms, NULL) == 0) {
        f->mss_active = 1;
        if (flare_mss_start(&f->mss, &f->out) == 0) {
            fz_write(f, &f->out);
            return;
        }
    }
    fz_peer_fail(f);
}

static const flare_io_sock_cbs fz_sock_cbs = {
    .on_connect = fz_on_connect, .on_read = fz_on_read, .on_close = fz_on_close};

/* ---- set-up ------------------------------------------------------------------------------ */

/* The world (the simulator and H on mem, NULL: libc); with dial also the
 * peer's socket (else the caller puts its own host on f->ps). Returns 0 or
 * an error. */
static int fz_world(fz *f, uint8_t flags, int dial, const flare_mem *mem)
{
    memset(f, 0, sizeof(*f));
    flare_buf_init(&f->out, NULL);
    flare_buf_init(&f->plain, NULL);
    f->no_early_muxer = flags & 1;
    f->sim = flare_sim_new(7, mem);
    if (!f->sim)
        return FLARE_ERR_NOMEM;
    flare_host_settings cfg;
    flare_test_settings_default(&cfg);
    cfg.enable_autonat_client = 0; /* quiet: the input drives the talk */
    if (flags & 4) {
        cfg.max_streams_per_conn = 4;
        cfg.max_stream_buffer = 4096;
    }
    if (flags & 8)
        cfg.security = "/noise,/tls/1.0.0";
    flare_test_host_spec sp = {.name = "h",
                               .lan = flare_sim_internet(f->sim),
                               .ip = FZ_H_IP,
                               .link = {.delay = 2 * FZ_MS},
                               .seed = {1},
                               .cfg = &cfg,
                               .on_event = fz_event,
                               .user = f,
                               .listen_port = 4001,
                               .mem = mem};
    int rv = flare_test_host_make(f->sim, &sp, &f->hs, &f->h);
    if (rv == 0)
        rv = flare_host_set_handler(f->h, FZ_PROTO, &fz_cbs, f, FLARE_HANDLER_ALLOW_LIMITED);
    if (rv == 0 && (flags & 2))
        rv = flare_host_enable_relay_server(f->h, NULL);
    if (rv)
        return rv;
    f->ps = flare_sim_host_new(f->sim, "p");
    if (!f->ps || flare_sim_host_add_addr(f->ps, flare_sim_internet(f->sim), FZ_PEER_IP))
        return FLARE_ERR_NOMEM;
    flare_sim_link l = {.delay = 2 * FZ_MS};
    flare_sim_link_set(f->ps, &l);
    f->pio = flare_sim_host_io(f->ps);
    flare_privkey k;
    flare_privkey_from_seed(&k, fz_seed);
    flare_peerid_from_pubkey(&f->peer_id, &k.pub);
    if (!dial)
        return 0;
    flare_ipaddr to;
    flare_ipaddr_parse(&to, FZ_H_IP);
    to.port = 4001;
    return f->pio->ops->dial(f->pio, NULL, &to, 0, &fz_sock_cbs, f, &f->sock);
}

static void fz_free(fz *f)
{
    if (f->sock)
        f->pio->ops->sock_close(f->sock, 1);
    if (f->mss_active)
        flare_mss_free(&f->mss);
    flare_noise_free(&f->noise);
    flare_host_del(f->h);
    flare_sim_del(f->sim);
    flare_buf_free(&f->out);
    flare_buf_free(&f->plain);
}

static void fz_run(fz *f, long ms)
{
    flare_sim_run_for(f->sim, (flare_tstamp)ms * FZ_MS);
}

/* ---- the input ---------------------------------------------------------------------------- */

static void fz_send(fz *f, const uint8_t *d, size_t len)
{
    if (!f->sock)
        return;
    if (f->secure) {
        if (!flare_noise_handshake_done(&f->noise) ||
            flare_noise_encrypt(&f->noise, d, len, &f->out) != 0)
            return;
        fz_write(f, &f->out);
    } else {
        (void)f->pio->ops->sock_write(f->sock, d, len);
    }
}

static void fz_records(fz *f, const uint8_t *d, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t op = d[i++] % FZ_NOPS;
        switch (op) {
        case FZ_SEND: {
            if (n - i < 2)
                return;
            size_t len = (size_t)d[i] << 8 | d[i + 1];
            i += 2;
            if (len > n - i)
                len = n - i;
            fz_send(f, d + i, len);
            i += len;
            break;
        }
        case FZ_RUN:
            fz_run(f, (i < n ? (long)d[i++] + 1 : 1) * 5);
            break;
        case FZ_OPEN:
            (void)flare_host_new_stream(f->h, &f->peer_id, FZ_PROTO, &fz_cbs, f,
                                        FLARE_STREAM_ALLOW_LIMITED, NULL);
            break;
        case FZ_SHUTDOWN:
            if (f->sock)
                f->pio->ops->sock_shutdown(f->sock);
            break;
        case FZ_CLOSE:
            if (f->sock)
                f->pio->ops->sock_close(f->sock, i < n ? d[i++] & 1 : 0);
            f->sock = NULL;
            break;
        case FZ_PING:
            (void)flare_host_ping(f->h, &f->peer_id, NULL, NULL);
            break;
        case FZ_HCLOSE: {
            flare_conn *c = flare_host_conn_to(f->h, &f->peer_id);
            if (c)
                flare_conn_close(c);
            break;
        }
        default:
            (void)flare_host_identify_push(f->h);
            break;
        }
    }
}

/* Runs one input; secure: the peer does the handshake first. Returns how
 * many connections H saw open, or a negative error from the set-up. */
static int fz_input_mem(const uint8_t *data, size_t size, int secure, const flare_mem *mem)
{
    if (size < 2)
        return 0;
    fz f;
    size_t nact = data[1];
    if (nact > size - 2)
        nact = size - 2;
    int rv = fz_world(&f, data[0], 1, mem);
    if (rv == 0) {
        f.secure = secure;
        f.act = data + 2;
        f.nact = nact;
        for (int t = 0; t < 40 && !(secure ? f.noise_active && flare_noise_handshake_done(&f.noise)
                                           : f.connected);
             t++)
            fz_run(&f, 5);
        fz_records(&f, data + 2 + nact, size - 2 - nact);
        fz_run(&f, 200);
        rv = f.opened;
    }
    fz_free(&f);
    return rv;
}

static void fz_input(const uint8_t *data, size_t size, int secure)
{
    (void)fz_input_mem(data, size, secure, NULL);
}

/* ---- recording seeds ------------------------------------------------------------------------ */

typedef struct fz_rec {
    flare_sim *sim;
    flare_buf conn, raw; /* records for each target */
    flare_tstamp conn_t, raw_t;
} fz_rec;

static void fz_rec_gap(flare_buf *b, flare_tstamp *last, flare_tstamp now)
{
    if (*last && now > *last) {
        long units = (long)((now - *last) / (5 * FZ_MS));
        while (units > 0) {
            long u = units > 256 ? 256 : units;
            flare_buf_append_byte(b, FZ_RUN);
            flare_buf_append_byte(b, (uint8_t)(u - 1));
            units -= u;
        }
    }
    *last = now;
}

static void fz_rec_send(flare_buf *b, const uint8_t *d, size_t len)
{
    while (len) {
        size_t n = len > 65535 ? 65535 : len;
        flare_buf_append_byte(b, FZ_SEND);
        flare_buf_append_byte(b, (uint8_t)(n >> 8));
        flare_buf_append_byte(b, (uint8_t)n);
        flare_buf_append(b, d, n);
        d += n;
        len -= n;
    }
}

static void fz_tap(flare_conn *c, int what, const uint8_t *d, size_t len, void *user)
{
    fz_rec *r = user;
    flare_tstamp now = flare_sim_now(r->sim);
    (void)c;
    if (what == FLARE__TAP_SENT_WIRE) {
        fz_rec_gap(&r->raw, &r->raw_t, now);
        fz_rec_send(&r->raw, d, len);
    } else if (what == FLARE__TAP_SENT_PLAIN) {
        fz_rec_gap(&r->conn, &r->conn_t, now);
        fz_rec_send(&r->conn, d, len);
    }
}

static void fz_rec_write(const char *dir, const char *target, const char *name, uint8_t flags,
                         const flare_buf *recs)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, target);
    mkdir(dir, 0755);
    mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/%s/%s", dir, target, name);
    FILE *fp = fopen(path, "wb");
    if (!fp) {
        perror(path);
        exit(1);
    }
    static const uint8_t acts[] = {1, 1, 0, 2, 1, 5, 5, 1, 7, 2, 3, 1};
    uint8_t hdr[2] = {flags, sizeof(acts)};
    fwrite(hdr, 1, 2, fp);
    fwrite(acts, 1, sizeof(acts), fp);
    fwrite(recs->base, 1, recs->len, fp);
    fclose(fp);
    fprintf(stderr, "recorded %s (%zu bytes of records)\n", path, recs->len);
}

/* One recorded session: style 0 a long talk ending in a goaway, 1 streams
 * reset and the connection dropped, 2 the same talk with H running a relay
 * server and tight limits. */
static void fz_record_one(const char *dir, int style)
{
    uint8_t flags = style == 2 ? 6 : 0;
    fz f;
    fz_rec r;
    memset(&r, 0, sizeof(r));
    flare_buf_init(&r.conn, NULL);
    flare_buf_init(&r.raw, NULL);
    if (fz_world(&f, flags, 0, NULL))
        abort();
    r.sim = f.sim;
    flare_host_settings cfg;
    flare_test_settings_default(&cfg);
    cfg.enable_autonat_client = 0;
    flare_host *b;
    flare_privkey k;
    flare_privkey_from_seed(&k, fz_seed);
    if (flare_host_new(&b, f.pio, &k, &cfg, NULL))
        abort();
    b->tap = fz_tap;
    b->tap_user = &r;
    r.raw_t = flare_sim_now(f.sim);
    flare_multiaddr ma;
    flare_test_tcp_addr(&ma, FZ_H_IP, 4001, flare_host_peerid(f.h));
    flare_host_dial(b, &ma, NULL, NULL, NULL);
    fz_run(&f, 300);
    const flare_peerid *hid = flare_host_peerid(f.h);
    flare_stream *s1 = NULL, *s2 = NULL;
    flare_host_new_stream(b, hid, FZ_PROTO, &flare_test_echo_cbs, NULL, 0, &s1);
    if (s1)
        flare_stream_write(s1, (const uint8_t *)"hello, fuzz", 11);
    fz_run(&f, 50);
    flare_host_ping(b, hid, NULL, NULL);
    flare_host_new_stream(b, hid, FZ_PROTO, &flare_test_echo_cbs, NULL, 0, &s2);
    if (s2) {
        static uint8_t blob[5000];
        memset(blob, 'x', sizeof(blob));
        flare_stream_write(s2, blob, sizeof(blob));
    }
    fz_run(&f, 100);
    if (style == 1) {
        if (s2)
            flare_stream_reset(s2);
        fz_run(&f, 20);
        flare_host_new_stream(b, hid, "/unknown/1.0.0", &flare_test_echo_cbs, NULL, 0, NULL);
        fz_run(&f, 50);
    } else {
        if (s1)
            flare_stream_close_write(s1);
        flare_host_identify_push(b);
        fz_run(&f, 100);
        flare_conn *c = flare_host_conn_to(b, hid);
        if (c)
            flare_conn_close(c);
    }
    fz_run(&f, 100);
    flare_host_del(b);
    char name[32];
    snprintf(name, sizeof(name), "recorded-%d", style);
    fz_rec_write(dir, "fuzz_host_conn", name, flags, &r.conn);
    fz_rec_write(dir, "fuzz_host_raw", name, flags, &r.raw);
    flare_buf_free(&r.conn);
    flare_buf_free(&r.raw);
    fz_free(&f);
}

static void fz_maybe_record(void)
{
    const char *dir = getenv("FLARE_FUZZ_RECORD");
    if (!dir || !*dir)
        return;
    for (int style = 0; style < 3; style++)
        fz_record_one(dir, style);
    exit(0);
}

#endif
