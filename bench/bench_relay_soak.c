/*
 * Relay soak: a real `flare relay` process under churning clients.
 *
 * N client slots (one process, one libuv loop, a full host per session with
 * a fresh identity) cycle continuously: connect to the relay and reserve,
 * open circuits to other reserved clients (/p2p/RELAY/p2p-circuit/p2p/PEER),
 * echo data over them (1-3 streams of up to 24 KiB per circuit, some reset
 * half-way on purpose), close the circuits, and leave, either gracefully
 * (close the relay connection, then delete the host) or abruptly (delete the
 * host with its circuits in flight); after a pause the slot comes back with
 * a new identity (--reuse-ids: its own again). Every slot dials from its own loopback address
 * (127.a.b.1, one /24 each: the host dials from its listen address), so the relay's
 * per-IP and per-subnet limits see one client per network, as on the Internet.
 *
 * Sampled every --sample seconds: the relay's VmRSS and open descriptors
 * (/proc), its connections, reservations and circuits (counted from its
 * --json events), and the clients' view and counters. An honest operation
 * is one the harness does not break on purpose: a reservation, a circuit
 * dial, or an echo whose two ends stay up (targets are only picked when
 * they stay for longer than the exchange timeout). Any of those failing,
 * a reservation lost while its client stays, a circuit the relay ends for
 * a limit, or the relay dying is a failure.
 *
 * Phases: idle baseline (3 s), churn (--seconds, the first slots arriving
 * over 10 s), drain (every client leaves gracefully; then the relay's
 * descriptors must be back at the baseline). With --heap the relay's malloc
 * heap in use is also read (through gdb: malloc_stats) at the idle baseline
 * and after the drain, since RSS keeps the allocator's high-water mark.
 *
 * Usage: bench_relay_soak [--seconds S] [--clients N] [--flare PATH]
 *          [--sample S] [--session S] [--circuit-every S] [--csv FILE] [--seed N]
 *          [--reuse-ids] [--heap] [--relay-arg ARG]...
 * Output: one line per sample, then "key value" lines; exit 0 when every
 * acceptance check passed (no honest failure, descriptors back at the
 * baseline, and for runs of 5 minutes or more an RSS plateau).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "bench_proc.h"
#include "flare/host.h"
#include "flare/uvio.h"

#define ECHO_PROT    "/bench/soak-echo/1.0.0"
#define KEY_TAG      0xc7 /* identity seeds: (slot << 12 | session) */
#define RELAY_TTL    "40" /* s: sessions longer than 30 s renew their reservation */
#define TICK_MS      50
#define XCHG_TIMEOUT 10.0               /* s for a whole circuit exchange */
#define TARGET_STAY  (XCHG_TIMEOUT + 2) /* a target stays at least this long */
#define RESERVE_WAIT 30.0               /* s for a reservation */
#define LEAVE_WAIT   5.0                /* s for a graceful close to finish */
#define DRAIN_WAIT   30.0               /* s for the relay to return to its baseline */
#define MAX_CHUNK    (24 * 1024)
#define MAX_SAMPLES  100000

static struct {
    double seconds, sample, session, circuit_every;
    size_t clients;
    const char *flare, *csv;
    uint64_t seed;
    int reuse_ids;              /* a slot comes back with the same identity */
    int heap;                   /* the relay's malloc heap in use, idle, through gdb */
    const char *relay_args[16]; /* --relay-arg: more flags for `flare relay` */
    int nrelay_args;
} opt = {600, 5, 30, 5, 1000, NULL, NULL, 1, 0, 0, {NULL}, 0};

static uv_loop_t loop;
static flare_uvio *uvio;
static flare_multiaddr relay_ma; /* with /p2p/RELAY */
static flare_peerid relay_id;
static pid_t relay_pid;
static double t_start; /* churn starts */
static int phase;      /* 0 baseline, 1 churn, 2 drain, 3 done */

static uint64_t rng_state;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
static double urand(double lo, double hi)
{
    return lo + (hi - lo) * (double)(rnd() >> 11) / 9007199254740992.0;
}

/* ---- counters -------------------------------------------------------------------------------- */

static struct {
    uint64_t sessions, reserved, renewals, xchg_ok, echoes_ok, echo_bytes, resets, aborted;
    uint64_t graceful, abrupt;
    uint64_t fail_reserve, fail_lost, fail_dial, fail_echo, fail_timeout, fail_local;
} cnt;

/* Relay-side state from its events. */
static struct {
    long conns, rsv, circ;
    uint64_t rsv_total, renew_total, circ_opened, circ_closed, circ_reset, circ_limit;
    uint64_t incoming_failed, errors;
    struct {
        char why[128];
        uint64_t n;
    } reasons[8]; /* relay_circuit_closed reasons seen */
} rel;

static void tally_reason(const char *why)
{
    for (size_t i = 0; i < 8; i++) {
        if (!rel.reasons[i].why[0])
            snprintf(rel.reasons[i].why, sizeof(rel.reasons[i].why), "%s", why);
        if (strcmp(rel.reasons[i].why, why) == 0) {
            rel.reasons[i].n++;
            return;
        }
    }
}

static int nfail_logged;
static void fail_log(const char *what, int err, const char *detail)
{
    if (nfail_logged++ < 20)
        fprintf(stderr, "soak: t=%.1f %s failed:%s%s%s%s\n", bench_now_s() - t_start, what,
                err ? " " : "", err ? flare_strerror(err) : "", detail ? " " : "",
                detail ? detail : "");
}

static uint64_t honest_failures(void)
{
    return cnt.fail_reserve + cnt.fail_lost + cnt.fail_dial + cnt.fail_echo + cnt.fail_timeout +
           cnt.fail_local + rel.circ_limit;
}

/* ---- clients -----------------------------------------------------------------------------------
 */

enum { OFF, RESERVING, ON, LEAVING };
enum { X_DIALING, X_ECHO, X_NEXT, X_RESET, X_DONE, X_FAILED, X_ABANDONED };

typedef struct slot slot;
typedef struct xchg {
    struct xchg *next;
    slot *s;
    uint32_t target, tgen; /* for the failure log */
    double t0;
    flare_conn *conn;
    flare_stream *st;
    int state, rounds, reset_round;
    int dialing; /* the dial callback is still due: x must stay */
    size_t n, got;
    uint8_t salt;
    double deadline;
} xchg;

struct slot {
    uint32_t idx, gen;
    int state;
    flare_host *h;
    flare_peerid id;
    int closing; /* LEAVING: the relay connection is closing */
    double t_end, t_next, t_circuit, deadline;
    xchg *xs;
    size_t nx;
};

static slot *slots;
static size_t xchg_running; /* exchanges of every slot, at the last tick */
static double t_phase;      /* when the current phase began */

static void listen_addr(flare_multiaddr *ma, uint32_t idx)
{
    char s[64];
    /* One /24 per client: the relay's per-subnet limits see distinct
     * networks, as they would on the Internet. */
    snprintf(s, sizeof(s), "/ip4/127.%u.%u.1/tcp/0", 1 + idx / 250 % 250, 1 + idx % 250);
    flare_multiaddr_parse(ma, s);
}

static uint8_t pattern(const xchg *x, size_t i)
{
    return (uint8_t)(i * 131 + x->salt);
}

/* Echo server: every byte back, half-close after the remote's. */
static void srv_data(flare_stream *st, const uint8_t *d, size_t len, void *user)
{
    (void)user;
    if (flare_stream_write(st, d, len) == 1)
        flare_stream_pause(st, 1);
}
static void srv_writable(flare_stream *st, void *user)
{
    (void)user;
    flare_stream_pause(st, 0);
}
static void srv_eof(flare_stream *st, void *user)
{
    (void)user;
    flare_stream_close_write(st);
}
static const flare_stream_cbs srv_cbs = {
    .on_data = srv_data, .on_eof = srv_eof, .on_writable = srv_writable};

static void xchg_fail(xchg *x, uint64_t *counter, const char *what, int err)
{
    char d[128];
    const slot *t = &slots[x->target];
    snprintf(d, sizeof(d), "(slot %u -> %u%s, %.2f s in, rounds left %d, %zu/%zu bytes)", x->s->idx,
             x->target, t->gen != x->tgen || t->state != ON ? " (gone)" : "", bench_now_s() - x->t0,
             x->rounds, x->got, x->n);
    (*counter)++;
    fail_log(what, err, d);
    x->state = X_FAILED;
}

static void cli_data(flare_stream *st, const uint8_t *d, size_t len, void *user)
{
    xchg *x = user;
    (void)st;
    for (size_t i = 0; i < len && x->state == X_ECHO; i++)
        if (x->got + i >= x->n || d[i] != pattern(x, x->got + i))
            xchg_fail(x, &cnt.fail_echo, "echo (bad data)", 0);
    x->got += len;
    if (x->reset_round && x->state == X_ECHO)
        x->state = X_RESET; /* the tick resets the stream: not from its own callback */
}

static void cli_close(flare_stream *st, int err, void *user)
{
    xchg *x = user;
    (void)st;
    x->st = NULL;
    if (x->state != X_ECHO)
        return;
    if (err || x->got != x->n) {
        xchg_fail(x, &cnt.fail_echo, "echo", err);
        return;
    }
    cnt.echoes_ok++;
    cnt.echo_bytes += x->n;
    x->state = --x->rounds > 0 ? X_NEXT : X_DONE;
    if (x->state == X_DONE)
        cnt.xchg_ok++;
}
static const flare_stream_cbs cli_cbs = {.on_data = cli_data, .on_close = cli_close};

static void xchg_round(xchg *x)
{
    static uint8_t buf[MAX_CHUNK];
    x->n = 1 + (size_t)(rnd() % MAX_CHUNK);
    x->got = 0;
    x->salt = (uint8_t)rnd();
    /* One circuit in ten resets its last stream once the echo starts. */
    x->reset_round = x->rounds == 1 && rnd() % 10 == 0;
    for (size_t i = 0; i < x->n; i++)
        buf[i] = pattern(x, i);
    x->state = X_ECHO;
    int rv =
        flare_conn_new_stream(x->conn, ECHO_PROT, &cli_cbs, x, FLARE_STREAM_ALLOW_LIMITED, &x->st);
    if (rv == 0)
        rv = flare_stream_write(x->st, buf, x->n);
    if (rv >= 0 && !x->reset_round)
        rv = flare_stream_close_write(x->st);
    if (rv < 0)
        xchg_fail(x, &cnt.fail_echo, "stream", rv);
}

static void on_dialed(flare_host *h, flare_conn *conn, int status, void *user)
{
    xchg *x = user;
    (void)h;
    x->dialing = 0;
    if (x->state != X_DIALING) {
        x->conn = status ? NULL : conn; /* timed out meanwhile: the tick closes it */
        return;
    }
    if (status) {
        xchg_fail(x, &cnt.fail_dial, "circuit dial", status);
        return;
    }
    x->conn = conn;
    xchg_round(x);
}

/* A random ON slot other than s that stays long enough; NULL if none found. */
static slot *pick_target(slot *s, double now)
{
    for (int i = 0; i < 32; i++) {
        slot *t = &slots[rnd() % opt.clients];
        if (t != s && t->state == ON && t->t_end - now > TARGET_STAY)
            return t;
    }
    return NULL;
}

static void xchg_start(slot *s, double now)
{
    slot *t = pick_target(s, now);
    if (!t)
        return;
    xchg *x = calloc(1, sizeof(*x));
    if (!x) {
        cnt.fail_local++;
        return;
    }
    x->s = s;
    x->target = t->idx;
    x->tgen = t->gen;
    x->t0 = now;
    x->rounds = 1 + (int)(rnd() % 3);
    x->deadline = now + XCHG_TIMEOUT;
    x->state = X_DIALING;
    x->dialing = 1;
    x->next = s->xs;
    s->xs = x;
    s->nx++;
    flare_multiaddr ma;
    flare_dial_opts o = {.force_new = 1}; /* a circuit of our own, whoever else dialed */
    int rv = flare_multiaddr_make_relayed(&ma, &relay_ma, NULL, &t->id);
    if (rv == 0)
        rv = flare_host_dial(s->h, &ma, &o, on_dialed, x);
    if (rv) {
        x->dialing = 0;
        xchg_fail(x, &cnt.fail_dial, "circuit dial", rv);
    }
}

/* Closes finished exchanges, starts next rounds, enforces the timeout. */
static void xchg_tick(slot *s, double now)
{
    for (xchg **p = &s->xs; *p;) {
        xchg *x = *p;
        if (x->state == X_NEXT)
            xchg_round(x);
        if (x->state == X_RESET) {
            if (x->st) { /* x may be freed before the reset's on_close: detach first */
                static const flare_stream_cbs quiet = {0};
                flare_stream_set_user(x->st, &quiet, NULL);
                flare_stream_reset(x->st);
            }
            x->st = NULL;
            cnt.resets++;
            x->state = X_DONE;
        }
        if ((x->state == X_DIALING || x->state == X_ECHO) && now > x->deadline)
            xchg_fail(x, &cnt.fail_timeout, "exchange timeout", 0);
        if ((x->state == X_DONE || x->state == X_FAILED) && !x->dialing) {
            if (x->st) { /* x may be freed before the reset's on_close: detach first */
                static const flare_stream_cbs quiet = {0};
                flare_stream_set_user(x->st, &quiet, NULL);
                flare_stream_reset(x->st);
            }
            if (x->conn)
                flare_conn_close(x->conn);
            *p = x->next;
            s->nx--;
            free(x);
        } else {
            p = &x->next;
        }
    }
}

static void on_event(flare_host *h, const flare_host_event *ev, void *user)
{
    slot *s = user;
    (void)h;
    if (s->state == OFF)
        return; /* the host is being deleted */
    switch (ev->type) {
    case FLARE_HOST_EV_RESERVATION_OK:
        if (s->state == RESERVING) {
            s->state = ON;
            cnt.reserved++;
            double now = bench_now_s();
            s->t_end = now + urand(0.5, 1.5) * opt.session;
            s->t_circuit = now + urand(0, 2 * opt.circuit_every);
        } else {
            cnt.renewals++;
        }
        break;
    case FLARE_HOST_EV_RESERVATION_FAILED:
        cnt.fail_reserve++;
        fail_log("reservation", ev->u.reservation.error, ev->u.reservation.status);
        break;
    case FLARE_HOST_EV_RESERVATION_LOST:
        if (s->state != LEAVING) {
            cnt.fail_lost++;
            fail_log("reservation lost", ev->u.reservation.error, NULL);
        }
        break;
    case FLARE_HOST_EV_CONN_CLOSED:
        for (xchg *x = s->xs; x; x = x->next)
            if (x->conn == ev->u.conn.conn)
                x->conn = NULL;
        break;
    default:
        break;
    }
}

static void slot_drop(slot *s, double now);

static void slot_start(slot *s, double now)
{
    flare_privkey k;
    bench_key(&k, KEY_TAG, s->idx << 12 | (opt.reuse_ids ? 0 : s->gen & 0xfff));
    s->gen++;
    flare_host_settings hc;
    flare_host_settings_default(&hc);
    hc.enable_holepunch = 0; /* circuits stay relayed: they are what we soak */
    hc.enable_autonat_client = 0;
    hc.enable_autonat_server = 0;
    flare_multiaddr la;
    listen_addr(&la, s->idx);
    int rv = flare_host_new(&s->h, flare_uvio_io(uvio), &k, &hc, NULL);
    if (rv == 0) {
        flare_host_set_event_cb(s->h, on_event, s);
        s->id = *flare_host_peerid(s->h);
        rv = flare_host_set_handler(s->h, ECHO_PROT, &srv_cbs, s, FLARE_HANDLER_ALLOW_LIMITED);
    }
    if (rv == 0)
        rv = flare_host_listen(s->h, &la); /* dials leave from this address */
    if (rv == 0)
        rv = flare_host_relay_reserve(s->h, &relay_ma);
    cnt.sessions++;
    s->state = RESERVING;
    s->closing = 0;
    s->deadline = now + RESERVE_WAIT;
    if (rv) {
        cnt.fail_local++;
        fail_log("session start", rv, NULL);
        slot_drop(s, now);
    }
}

static void slot_drop(slot *s, double now)
{
    /* Exchanges still running are ours to abandon (the abrupt drop). The
     * host's teardown still calls back (streams and dials end with
     * FLARE_ERR_CLOSED): every state is final before it runs. */
    for (xchg *x = s->xs; x; x = x->next) {
        if (x->state == X_DIALING || x->state == X_ECHO || x->state == X_NEXT)
            cnt.aborted++;
        x->state = X_ABANDONED;
    }
    s->state = OFF;
    flare_host_del(s->h);
    s->h = NULL;
    while (s->xs) {
        xchg *x = s->xs;
        s->xs = x->next;
        free(x);
    }
    s->nx = 0;
    s->t_next = now + urand(1, 5);
}

static void slot_leave(slot *s, double now, int graceful)
{
    if (!graceful) {
        cnt.abrupt++;
        slot_drop(s, now);
        return;
    }
    cnt.graceful++;
    s->state = LEAVING;
    s->deadline = now + LEAVE_WAIT;
}

static void slot_tick(slot *s, double now)
{
    switch (s->state) {
    case OFF:
        if (phase == 1 && now >= s->t_next)
            slot_start(s, now);
        break;
    case RESERVING:
        if (now >= s->deadline) {
            cnt.fail_reserve++;
            fail_log("reservation", FLARE_ERR_TIMEOUT, "(no answer)");
            slot_drop(s, now);
        } else if (phase == 2) {
            slot_drop(s, now);
        }
        break;
    case ON:
        xchg_tick(s, now);
        if (now >= s->t_end && phase == 1) {
            slot_leave(s, now, rnd() % 10 < 7);
        } else if (phase == 2) {
            /* Drain: leave once no exchange runs anywhere (ours included),
             * so that no honest exchange loses its target. */
            if (xchg_running == 0 || now - t_phase > XCHG_TIMEOUT + 1)
                slot_leave(s, now, 1);
        } else if (now >= s->t_circuit && s->nx == 0) {
            xchg_start(s, now);
            s->t_circuit = now + urand(0, 2 * opt.circuit_every);
        }
        break;
    case LEAVING:
        /* Own exchanges finish first; then the relay connection is closed
         * gracefully, and the host goes once it is gone. */
        xchg_tick(s, now);
        if (s->nx == 0) {
            flare_conn *c = flare_host_conn_to(s->h, &relay_id);
            if (!c)
                slot_drop(s, now);
            else if (!s->closing) {
                s->closing = 1;
                flare_conn_close(c);
            }
        }
        if (s->h && now >= s->deadline)
            slot_drop(s, now);
        break;
    }
}

/* ---- the relay process and its events ---------------------------------------------------------
 */

/* Peers the relay has connections from, and whether they hold a reservation
 * (the relay drops it with the peer's last connection). */
typedef struct rpeer {
    struct rpeer *next;
    int conns, rsv;
    char id[FLARE_PEERID_STR_MAX];
} rpeer;
#define RPEER_BUCKETS 4096
static rpeer *rpeers[RPEER_BUCKETS];

static rpeer **rpeer_find(const char *id)
{
    uint32_t h = 2166136261u;
    for (const char *p = id; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    rpeer **pp = &rpeers[h % RPEER_BUCKETS];
    while (*pp && strcmp((*pp)->id, id) != 0)
        pp = &(*pp)->next;
    return pp;
}

static rpeer *rpeer_get(const char *id)
{
    rpeer **pp = rpeer_find(id);
    if (!*pp && (*pp = calloc(1, sizeof(rpeer))))
        snprintf((*pp)->id, sizeof((*pp)->id), "%s", id);
    return *pp;
}

static void rpeer_gc(const char *id)
{
    rpeer **pp = rpeer_find(id), *p = *pp;
    if (p && p->conns <= 0) {
        if (p->rsv)
            rel.rsv--;
        *pp = p->next;
        free(p);
    }
}

/* The string value of "key" in a JSON line from the CLI (no escapes in
 * the fields read here: peer IDs, event names, reasons, addresses). */
static int json_str(const char *line, const char *key, char *out, size_t cap)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\":\"", key);
    const char *p = strstr(line, pat);
    if (!p)
        return -1;
    p += strlen(pat);
    const char *e = strchr(p, '"');
    if (!e || (size_t)(e - p) >= cap)
        return -1;
    memcpy(out, p, (size_t)(e - p));
    out[e - p] = 0;
    return 0;
}

static void relay_line(const char *line)
{
    char ev[64], id[FLARE_PEERID_STR_MAX], reason[128];
    if (json_str(line, "event", ev, sizeof(ev)))
        return;
    int has_id = json_str(line, "peerId", id, sizeof(id)) == 0;
    if (strcmp(ev, "listening") == 0 && relay_ma.len == 0) {
        char a[512];
        if (json_str(line, "addr", a, sizeof(a)) == 0 && flare_multiaddr_parse(&relay_ma, a) == 0)
            flare_multiaddr_get_peerid(&relay_ma, &relay_id);
    } else if (strcmp(ev, "connected") == 0 && has_id) {
        rpeer *p = rpeer_get(id);
        if (p)
            p->conns++;
        rel.conns++;
    } else if (strcmp(ev, "disconnected") == 0 && has_id) {
        rpeer *p = rpeer_get(id);
        if (p)
            p->conns--;
        rel.conns--;
        rpeer_gc(id);
    } else if (strcmp(ev, "relay_reservation") == 0 && has_id) {
        rpeer *p = rpeer_get(id);
        if (p && !p->rsv) {
            p->rsv = 1;
            rel.rsv++;
            rel.rsv_total++;
        } else {
            rel.renew_total++;
        }
    } else if (strcmp(ev, "relay_circuit_opened") == 0) {
        rel.circ++;
        rel.circ_opened++;
    } else if (strcmp(ev, "relay_circuit_closed") == 0) {
        rel.circ--;
        rel.circ_closed++;
        if (json_str(line, "reason", reason, sizeof(reason)))
            snprintf(reason, sizeof(reason), "?");
        tally_reason(reason);
        if (strcmp(reason, "closed")) {
            /* Resets are ours (reset streams, abrupt drops); limits are not. */
            if (strstr(reason, "limit") || strstr(reason, "timed out")) {
                rel.circ_limit++;
                fail_log("relay circuit", 0, reason);
            } else {
                rel.circ_reset++;
            }
        }
    } else if (strcmp(ev, "incoming_failed") == 0) {
        rel.incoming_failed++;
    } else if (strcmp(ev, "error") == 0) {
        rel.errors++;
        fprintf(stderr, "soak: relay error event: %s\n", line);
    }
}

static uv_pipe_t relay_out;
static char lbuf[65536];
static size_t llen;

static void relay_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
    (void)h;
    (void)sz;
    b->base = lbuf + llen;
    b->len = sizeof(lbuf) - llen - 1;
}

static void relay_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    (void)b;
    if (n < 0) {
        uv_read_stop(st);
        return;
    }
    llen += (size_t)n;
    lbuf[llen] = 0;
    char *p = lbuf, *nl;
    while ((nl = strchr(p, '\n'))) {
        *nl = 0;
        relay_line(p);
        p = nl + 1;
    }
    llen -= (size_t)(p - lbuf);
    memmove(lbuf, p, llen);
    if (llen == sizeof(lbuf) - 1)
        llen = 0; /* an absurd line: drop it */
}

/* With --heap the relay's stderr goes to this file, where gdb makes it
 * print malloc_stats() (the relay is the unmodified CLI). */
static char relay_err[] = "/tmp/relay-soak-stderr-XXXXXX";
static int relay_err_fd = -1;

/* The relay's heap in use (bytes, malloc_stats "Total ... in use bytes"),
 * -1 without --heap or on failure. Stops the relay for about a second:
 * only called while it is idle. */
static long relay_heap(void)
{
    if (!opt.heap)
        return -1;
    char cmd[128], line[256];
    snprintf(cmd, sizeof(cmd),
             "gdb -p %d -batch -nx -ex 'call (void)malloc_stats()' >/dev/null 2>&1",
             (int)relay_pid);
    if (system(cmd) != 0)
        return -1;
    FILE *f = fopen(relay_err, "r");
    long inuse = -1;
    int total = 0;
    while (f && fgets(line, sizeof(line), f)) {
        if (strncmp(line, "Total", 5) == 0)
            total = 1;
        else if (total && sscanf(line, "in use bytes = %ld", &inuse) == 1)
            total = 0;
    }
    if (f)
        fclose(f);
    return inuse;
}

static int relay_start(void)
{
    int fds[2];
    char maxr[32], maxc[32];
    if (opt.heap && (relay_err_fd = mkstemp(relay_err)) < 0)
        return -1;
    snprintf(maxr, sizeof(maxr), "%zu", opt.clients + 64);
    /* Every client holds a connection (and a dialer a second one while it
     * opens a circuit): room above the default inbound budget (768). */
    snprintf(maxc, sizeof(maxc), "%zu", 2 * opt.clients + 64);
    if (pipe(fds))
        return -1;
    relay_pid = fork();
    if (relay_pid < 0)
        return -1;
    if (relay_pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the soak */
        dup2(fds[1], 1);
        if (relay_err_fd >= 0)
            dup2(relay_err_fd, 2);
        close(fds[0]);
        close(fds[1]);
        /* Default limits but the total reservations and inbound
         * connections; the per-IP caps stay, since every client has its own
         * address. --relay-arg adds flags. */
        const char *args[32] = {opt.flare,
                                "relay",
                                "--json",
                                "--listen",
                                "/ip4/127.0.0.1/tcp/0",
                                "--seed",
                                "50414b5f736f616b2d72656c61792d6964656e746974792d2d2d2d2d2d2d2d21",
                                "--relay-max-reservations",
                                maxr,
                                "--relay-ttl",
                                RELAY_TTL,
                                "--max-conns-inbound",
                                maxc};
        for (int i = 0; i < opt.nrelay_args; i++)
            args[13 + i] = opt.relay_args[i];
        execv(opt.flare, (char *const *)args);
        fprintf(stderr, "soak: cannot run %s: %s\n", opt.flare, strerror(errno));
        _exit(127);
    }
    close(fds[1]);
    uv_pipe_init(&loop, &relay_out, 0);
    if (uv_pipe_open(&relay_out, fds[0]))
        return -1;
    return uv_read_start((uv_stream_t *)&relay_out, relay_alloc, relay_read);
}

static int relay_alive(void)
{
    return waitpid(relay_pid, NULL, WNOHANG) == 0;
}

/* ---- sampling ----------------------------------------------------------------------------------
 */

typedef struct sample {
    double t;
    long rss, fds, conns, rsv, circ;
    size_t online, reserved;
    double relay_cpu, self_cpu;
    long self_rss;
} sample;

static sample *samples;
static size_t nsamples;
static double last_cpu_t, last_relay_cpu, last_self_cpu;
static FILE *csv;

static void take_sample(double now)
{
    if (nsamples == MAX_SAMPLES)
        return;
    sample *x = &samples[nsamples++];
    x->t = now - t_start;
    x->rss = bench_rss_kib(relay_pid);
    x->fds = bench_fd_count(relay_pid);
    x->conns = rel.conns;
    x->rsv = rel.rsv;
    x->circ = rel.circ;
    x->online = x->reserved = 0;
    for (size_t i = 0; i < opt.clients; i++) {
        x->online += slots[i].state != OFF;
        x->reserved += slots[i].state == ON;
    }
    double rc = bench_cpu_s(relay_pid), sc = bench_cpu_s(getpid());
    double dt = now - last_cpu_t;
    x->relay_cpu = dt > 0 ? 100 * (rc - last_relay_cpu) / dt : 0;
    x->self_cpu = dt > 0 ? 100 * (sc - last_self_cpu) / dt : 0;
    last_cpu_t = now;
    last_relay_cpu = rc;
    last_self_cpu = sc;
    x->self_rss = bench_rss_kib(getpid());
    static const char *hdr = "t_s phase relay_rss_kib relay_fds relay_conns relay_rsv relay_circ "
                             "online reserved sessions circuits_ok echoes_ok failures aborted "
                             "relay_cpu_pct clients_cpu_pct clients_rss_kib";
    if (nsamples == 1) {
        printf("%s\n", hdr);
        if (csv)
            fprintf(csv, "%s\n", hdr);
    }
    static const char *phases[] = {"idle", "churn", "drain", "drain"};
    char line[512];
    snprintf(line, sizeof(line),
             "%.1f %s %ld %ld %ld %ld %ld %zu %zu %llu %llu %llu %llu %llu %.1f %.1f %ld", x->t,
             phases[phase], x->rss, x->fds, x->conns, x->rsv, x->circ, x->online, x->reserved,
             (unsigned long long)cnt.sessions, (unsigned long long)cnt.xchg_ok,
             (unsigned long long)cnt.echoes_ok, (unsigned long long)honest_failures(),
             (unsigned long long)cnt.aborted, x->relay_cpu, x->self_cpu, x->self_rss);
    printf("%s\n", line);
    fflush(stdout);
    if (csv) {
        for (char *c = line; *c; c++)
            *c = *c == ' ' ? ',' : *c;
        fprintf(csv, "%s\n", line);
        fflush(csv);
    }
}

/* ---- driver
 * -------------------------------------------------------------------------------------- */

static uv_timer_t tick_timer;
static double next_sample, t_hard_end;
static long base_rss, base_fds, base_heap = -1, drained_heap = -1;
static int interrupted, relay_died;

static int drained(void)
{
    for (size_t i = 0; i < opt.clients; i++)
        if (slots[i].state != OFF)
            return 0;
    return rel.conns == 0 && bench_fd_count(relay_pid) <= base_fds;
}

static void on_tick(uv_timer_t *t)
{
    double now = bench_now_s();
    if (!relay_alive()) {
        relay_died = 1;
        fprintf(stderr, "soak: the relay process died\n");
        phase = 3;
    }
    if (phase == 0 && relay_ma.len && now - t_phase >= 3) {
        /* Baseline: the idle relay, before any client. */
        base_heap = relay_heap();
        now = bench_now_s();
        base_rss = bench_rss_kib(relay_pid);
        base_fds = bench_fd_count(relay_pid);
        t_start = t_phase = now;
        take_sample(now);
        phase = 1;
        next_sample = now + opt.sample;
        double ramp = opt.seconds / 4 < 10 ? opt.seconds / 4 : 10;
        for (size_t i = 0; i < opt.clients; i++)
            slots[i].t_next = now + urand(0, ramp);
    } else if (phase == 0 && now - t_phase > 30) {
        fprintf(stderr, "soak: the relay did not start listening\n");
        phase = 3;
    }
    if (phase == 1 && (now - t_start >= opt.seconds || interrupted)) {
        phase = 2;
        t_phase = now;
    }
    if (phase == 1 || phase == 2) {
        size_t running = 0;
        for (size_t i = 0; i < opt.clients; i++) {
            slot_tick(&slots[i], now);
            running += slots[i].nx;
        }
        xchg_running = running;
    }
    if (phase >= 1 && phase < 3 && now >= next_sample) {
        take_sample(now);
        next_sample += opt.sample;
    }
    if (phase == 2 && ((now - t_phase > 1 && drained()) || now - t_phase > DRAIN_WAIT)) {
        take_sample(now);
        drained_heap = relay_heap();
        phase = 3;
    }
    if (phase == 3 || now > t_hard_end) {
        uv_timer_stop(t);
        uv_stop(&loop);
    }
}

static void on_signal(uv_signal_t *s, int sig)
{
    (void)sig;
    interrupted = 1;
    uv_signal_stop(s);
}

static int usage(void)
{
    fprintf(stderr, "usage: bench_relay_soak [--seconds S] [--clients N] [--flare PATH] "
                    "[--sample S] [--session S] [--circuit-every S] [--csv FILE] [--seed N] "
                    "[--reuse-ids] [--heap] [--relay-arg ARG]...\n");
    return 2;
}

static int parse_args(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--reuse-ids") == 0 || strcmp(a, "--heap") == 0) {
            *(a[2] == 'r' ? &opt.reuse_ids : &opt.heap) = 1;
            continue;
        }
        if (!v)
            return usage();
        i++;
        if (strcmp(a, "--seconds") == 0)
            opt.seconds = atof(v);
        else if (strcmp(a, "--clients") == 0)
            opt.clients = (size_t)atol(v);
        else if (strcmp(a, "--flare") == 0)
            opt.flare = v;
        else if (strcmp(a, "--sample") == 0)
            opt.sample = atof(v);
        else if (strcmp(a, "--session") == 0)
            opt.session = atof(v);
        else if (strcmp(a, "--circuit-every") == 0)
            opt.circuit_every = atof(v);
        else if (strcmp(a, "--csv") == 0)
            opt.csv = v;
        else if (strcmp(a, "--seed") == 0)
            opt.seed = strtoull(v, NULL, 10);
        else if (strcmp(a, "--relay-arg") == 0 && opt.nrelay_args < 16)
            opt.relay_args[opt.nrelay_args++] = v;
        else
            return usage();
    }
    if (opt.seconds <= 0 || opt.clients < 2 || opt.clients > 250000 || opt.sample <= 0 ||
        opt.session < 4 || opt.circuit_every <= 0)
        return usage();
    return 0;
}

/* Mean RSS of the churn samples with t in [a, b). */
static double rss_mean(double a, double b)
{
    double sum = 0;
    size_t n = 0;
    for (size_t i = 1; i < nsamples; i++)
        if (samples[i].t >= a && samples[i].t < b && samples[i].t <= opt.seconds) {
            sum += (double)samples[i].rss;
            n++;
        }
    return n ? sum / (double)n : 0;
}

static long rss_at(double t)
{
    long r = -1;
    for (size_t i = 0; i < nsamples && samples[i].t <= t; i++)
        r = samples[i].rss;
    return r;
}

static int report(void)
{
    long peak = 0;
    for (size_t i = 0; i < nsamples; i++)
        if (samples[i].rss > peak)
            peak = samples[i].rss;
    const sample *end = &samples[nsamples - 1];
    /* Plateau: the mean RSS over the last quarter of the churn against the
     * third quarter, at most 10% more: a steady climb fails, a step where
     * a burst of load raised the allocator's high-water mark (about 2 MB
     * for ~200 circuits at once) does not. Fresh identities fill the relay's peerstore up to its
     * cap of disconnected peers first (8,192: about 4.5 minutes at the
     * default churn), so shorter runs are not judged. */
    double q = opt.seconds / 4, m3 = rss_mean(2 * q, 3 * q), m4 = rss_mean(3 * q, 4 * q);
    double growth = m3 > 0 ? 100 * (m4 - m3) / m3 : 0;
    int plateau_checked = opt.seconds >= 300;
    int plateau_ok = !plateau_checked || growth <= 10;
    int fds_ok = end->fds >= 0 && end->fds <= base_fds && end->conns == 0;
    int work_ok = cnt.reserved > 0 && cnt.xchg_ok > 0;
    uint64_t fails = honest_failures();
    printf("clients %zu\n", opt.clients);
    printf("seconds %.0f\n", opt.seconds);
    printf("relay_rss_idle_kib %ld\n", base_rss);
    printf("relay_fds_idle %ld\n", base_fds);
    printf("relay_rss_1min_kib %ld\n", opt.seconds >= 60 ? rss_at(60) : -1);
    printf("relay_rss_end_kib %ld\n", rss_at(opt.seconds));
    printf("relay_rss_peak_kib %ld\n", peak);
    printf("relay_rss_drained_kib %ld\n", end->rss);
    printf("relay_fds_drained %ld\n", end->fds);
    if (opt.heap) {
        printf("relay_heap_idle_bytes %ld\n", base_heap);
        printf("relay_heap_drained_bytes %ld\n", drained_heap);
    }
    printf("relay_rss_q3_mean_kib %.0f\n", m3);
    printf("relay_rss_q4_mean_kib %.0f\n", m4);
    printf("rss_growth_q3_q4_pct %.1f\n", growth);
    printf("sessions %llu\n", (unsigned long long)cnt.sessions);
    printf("sessions_graceful %llu\n", (unsigned long long)cnt.graceful);
    printf("sessions_abrupt %llu\n", (unsigned long long)cnt.abrupt);
    printf("reservations %llu\n", (unsigned long long)cnt.reserved);
    printf("renewals %llu\n", (unsigned long long)cnt.renewals);
    printf("circuits_ok %llu\n", (unsigned long long)cnt.xchg_ok);
    printf("echoes_ok %llu\n", (unsigned long long)cnt.echoes_ok);
    printf("echo_mib %.1f\n", (double)cnt.echo_bytes / (1 << 20));
    printf("circuits_reset_on_purpose %llu\n", (unsigned long long)cnt.resets);
    printf("circuits_aborted_by_abrupt_drop %llu\n", (unsigned long long)cnt.aborted);
    printf("relay_reservations %llu\n", (unsigned long long)rel.rsv_total);
    printf("relay_renewals %llu\n", (unsigned long long)rel.renew_total);
    printf("relay_circuits_opened %llu\n", (unsigned long long)rel.circ_opened);
    printf("relay_circuits_closed %llu\n", (unsigned long long)rel.circ_closed);
    printf("relay_circuits_reset %llu\n", (unsigned long long)rel.circ_reset);
    for (size_t i = 0; i < 8 && rel.reasons[i].why[0]; i++)
        printf("relay_circuits_closed_reason \"%s\" %llu\n", rel.reasons[i].why,
               (unsigned long long)rel.reasons[i].n);
    printf("relay_incoming_failed %llu\n", (unsigned long long)rel.incoming_failed);
    printf("fail_reserve %llu\n", (unsigned long long)cnt.fail_reserve);
    printf("fail_reservation_lost %llu\n", (unsigned long long)cnt.fail_lost);
    printf("fail_circuit_dial %llu\n", (unsigned long long)cnt.fail_dial);
    printf("fail_echo %llu\n", (unsigned long long)cnt.fail_echo);
    printf("fail_timeout %llu\n", (unsigned long long)cnt.fail_timeout);
    printf("fail_local %llu\n", (unsigned long long)cnt.fail_local);
    printf("fail_relay_limit %llu\n", (unsigned long long)rel.circ_limit);
    printf("honest_failures %llu\n", (unsigned long long)fails);
    printf("check_no_failures %s\n", fails == 0 && !relay_died ? "pass" : "FAIL");
    printf("check_fds_back_to_idle %s\n", fds_ok ? "pass" : "FAIL");
    printf("check_rss_plateau %s\n", !plateau_checked ? "skipped" : plateau_ok ? "pass" : "FAIL");
    printf("check_work_done %s\n", work_ok ? "pass" : "FAIL");
    return fails == 0 && !relay_died && fds_ok && plateau_ok && work_ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (parse_args(argc, argv))
        return 2;
    static char flare_default[4096];
    if (!opt.flare) {
        /* Next to this binary (both live in the build directory). */
        ssize_t n = readlink("/proc/self/exe", flare_default, sizeof(flare_default) - 16);
        flare_default[n > 0 ? n : 0] = 0;
        char *slash = strrchr(flare_default, '/');
        if (!slash)
            return usage();
        strcpy(slash + 1, "flare");
        opt.flare = flare_default;
    }
    rng_state = opt.seed * 0x9e3779b97f4a7c15ull + 1;
    bench_raise_fd_limit();
    signal(SIGPIPE, SIG_IGN);
    slots = calloc(opt.clients, sizeof(*slots));
    samples = calloc(MAX_SAMPLES, sizeof(*samples));
    if (!slots || !samples)
        return 1;
    for (size_t i = 0; i < opt.clients; i++)
        slots[i].idx = (uint32_t)i;
    if (opt.csv && !(csv = fopen(opt.csv, "w"))) {
        fprintf(stderr, "soak: cannot write %s\n", opt.csv);
        return 1;
    }
    uv_loop_init(&loop);
    flare_uvio_new(&uvio, &loop, NULL);
    if (relay_start()) {
        fprintf(stderr, "soak: the relay did not start\n");
        return 1;
    }
    uv_signal_t sigint, sigterm;
    uv_signal_init(&loop, &sigint);
    uv_signal_init(&loop, &sigterm);
    uv_signal_start(&sigint, on_signal, SIGINT);
    uv_signal_start(&sigterm, on_signal, SIGTERM);
    t_phase = bench_now_s();
    last_cpu_t = t_phase;
    t_hard_end = t_phase + opt.seconds + 120; /* whatever happens, stop */
    uv_timer_init(&loop, &tick_timer);
    uv_timer_start(&tick_timer, on_tick, TICK_MS, TICK_MS);
    uv_run(&loop, UV_RUN_DEFAULT);

    int rv = nsamples > 1 ? report() : 1;
    for (size_t i = 0; i < opt.clients; i++)
        if (slots[i].h)
            slot_drop(&slots[i], 0);
    kill(relay_pid, SIGTERM);
    for (int i = 0; i < 50 && !waitpid(relay_pid, NULL, WNOHANG); i++)
        usleep(100000);
    kill(relay_pid, SIGKILL);
    waitpid(relay_pid, NULL, 0);
    uv_close((uv_handle_t *)&relay_out, NULL);
    uv_close((uv_handle_t *)&tick_timer, NULL);
    uv_close((uv_handle_t *)&sigint, NULL);
    uv_close((uv_handle_t *)&sigterm, NULL);
    flare_uvio_del(uvio);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    if (csv)
        fclose(csv);
    if (relay_err_fd >= 0) {
        close(relay_err_fd);
        unlink(relay_err);
    }
    free(slots);
    free(samples);
    return rv;
}
