/* flare listen, flare dial, flare ping: a host on real sockets (libuv). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "cli.h"
#include "flare/buf.h"
#include "flare/dcutr.h"
#include "flare/hardpunch.h"
#include "flare/relay_server.h"
#include "flare/uvio.h"

#define MAX_LISTEN 8
#define MAX_RULES  64

typedef struct node {
    uv_loop_t loop;
    uv_signal_t sigint, sigterm;
    uv_timer_t ping_timer;
    flare_uvio *uvio;
    flare_host *host;
    const char *echo_proto; /* serve (listen) or use (dial) */
    const char *message;    /* dial: send this over echo_proto */
    size_t message_len;
    const char *message_file; /* dial --message-file: the message's bytes */
    char *file_data;
    size_t file_len;
    size_t echo_total; /* bytes of echo reply received (also past the buffer cap) */
    int ping_count;    /* ping: how many; dial: 0 */
    int pings_sent, pings_done;
    int keep_running; /* dial --keep-alive: don't exit when done */
    int relay_server; /* flare relay: serve circuit relay v2 */
    int identified, echoed, wanted_echo, echo_started;
    char echo_addr[1024]; /* the connection that carried the echo */
    int echo_relayed;
    int wait_holepunch; /* dial: seconds to wait for DCUtR (0: don't) */
    int holepunch_done, holepunch_err;
    int hp_timed_out;           /* --wait-holepunch ran out: exit 4 once the echo is done */
    int allow_testnet;          /* TEST-NET ranges count as public (the NAT lab) */
    int auto_relay;             /* --auto-relay: pick relays when AutoNAT says private */
    long autonat_boot_ms;       /* --autonat-boot-delay (0: at once) */
    int autonat_boot_set;       /* given; else the host's default */
    const char *const *connect; /* --connect: peers dialed and kept */
    int nconnect;
    uv_timer_t connect_timer;
    int no_holepunch;               /* keep relayed connections relayed (no DCUtR) */
    int hard_punch;                 /* --hard-punch: the flare hard-NAT punch as well */
    int no_migrate;                 /* streams stay on the relayed connection after a punch */
    int port_map;                   /* --port-map: map private listen ports on the gateway */
    const char *port_map_protocols; /* --port-map-protocols LIST (NULL: all) */
    int share_listen;               /* --share-listen: another node may listen on our address */
    const char *stun_listen;        /* --stun-listen MADDR: a dedicated STUN port */
    int no_stun_server;             /* --no-stun-server: ignore STUN requests */
    uv_timer_t hp_timer;
    int exit_code;
    int stopping;
    flare_peerid target;
    int have_target;
    const char *target_str; /* dial, ping: MADDR as given */
    int probing;            /* finding out which peer answered a mismatched dial */
    flare_buf echo_reply;
    /* dial --echo-bytes N: one stream echoing N paced bytes, which may
     * start on the relayed connection and move to the direct one. */
    uint64_t echo_bytes, es_sent, es_recvd;
    int es_bad, es_blocked, es_first_relayed, es_relayed, es_moved;
    flare_stream *es;
    uv_timer_t es_timer;
    cli_dht_opts dht; /* --bootstrap, --dht-mode */
    int dial_by_id;   /* dial PEER_ID: its addresses come from the DHT */
    int saw_relayed;  /* ... and a relayed connection to it came up */
    int lookup_started;
} node;

static char *ma_str(const flare_multiaddr *ma, char *buf, size_t cap)
{
    if (!ma || flare_multiaddr_to_string(ma, buf, cap) < 0)
        snprintf(buf, cap, "?");
    return buf;
}

static char *pid_str(const flare_peerid *p, char *buf, size_t cap)
{
    if (!p || p->len == 0 || flare_peerid_to_string(p, buf, cap) < 0)
        snprintf(buf, cap, "?");
    return buf;
}

static void node_stop(node *n, int code)
{
    if (n->stopping)
        return;
    n->stopping = 1;
    n->exit_code = code;
    uv_stop(&n->loop);
}

static void start_echo(node *n, flare_conn *c);

/* The echo goes out once identified and, with --wait-holepunch, once the
 * punch has ended: over the direct connection when there is one. */
static void maybe_echo(node *n)
{
    if (!n->wanted_echo || n->echo_started || !n->identified || n->stopping)
        return;
    if (n->wait_holepunch && !n->holepunch_done && !n->echo_bytes)
        return; /* a long echo starts at once: it is to outlive the punch */
    flare_conn *c = flare_host_conn_to(n->host, &n->target);
    if (!c) {
        fprintf(stderr, "echo: no connection to the peer\n");
        node_stop(n, 1);
        return;
    }
    start_echo(n, c);
}

static void maybe_done(node *n)
{
    maybe_echo(n);
    if (n->keep_running || n->ping_count)
        return;
    if (n->wait_holepunch && !n->holepunch_done)
        return;
    if (n->identified && (!n->wanted_echo || n->echoed))
        node_stop(n, n->hp_timed_out ? 4 : n->holepunch_err ? 3 : 0);
}

static void hp_timeout(uv_timer_t *t)
{
    node *n = t->data;
    if (n->holepunch_done)
        return; /* ended in time; the echo may still be in flight */
    if (cli_json)
        cli_jsonf("error", "where", "holepunch", "error", "no hole punch within the wait", NULL);
    else
        fprintf(stderr, "no hole punch within %d s\n", n->wait_holepunch);
    /* The message still goes, over the connection there is (exit 4 after it). */
    n->hp_timed_out = 1;
    n->holepunch_done = 1;
    if (n->wanted_echo && !n->echo_started && n->identified)
        maybe_done(n);
    else if (!n->wanted_echo || !n->identified)
        node_stop(n, 4);
}

/* After a successful punch: one ping over the direct connection. */
static void direct_ping_done(flare_host *h, const flare_peerid *peer, int status, flare_tstamp rtt,
                             void *user)
{
    node *n = user;
    (void)h;
    (void)peer;
    (void)rtt; /* printed by the ping event */
    if (status)
        n->holepunch_err = status;
    n->holepunch_done = 1;
    maybe_done(n);
}

/* ---- echo ----------------------------------------------------------------------- */

static void echo_srv_open(flare_stream *s, int status, void *user)
{
    char pid[FLARE_PEERID_STR_MAX];
    (void)user;
    if (status)
        return;
    char a[1024];
    cli_debug("stream %s opened by %s on %s", flare_stream_protocol(s),
              pid_str(flare_conn_peer(flare_stream_conn(s)), pid, sizeof(pid)),
              ma_str(flare_conn_remote_addr(flare_stream_conn(s)), a, sizeof(a)));
    if (cli_json)
        cli_jsonf("echo_stream", "peerId",
                  pid_str(flare_conn_peer(flare_stream_conn(s)), pid, sizeof(pid)), "protocol",
                  flare_stream_protocol(s), NULL);
    else if (CLI_HUMAN(CLI_LOG_INFO))
        printf("echo stream from %s\n",
               pid_str(flare_conn_peer(flare_stream_conn(s)), pid, sizeof(pid)));
}

static void echo_srv_data(flare_stream *s, const uint8_t *d, size_t len, void *user)
{
    (void)user;
    int rv = flare_stream_write(s, d, len);
    if (rv == 1)
        flare_stream_pause(s, 1); /* resume in echo_srv_writable */
    else if (rv < 0)
        flare_stream_reset(s);
}

static void echo_srv_writable(flare_stream *s, void *user)
{
    (void)user;
    flare_stream_pause(s, 0);
}

static void echo_srv_eof(flare_stream *s, void *user)
{
    (void)user;
    cli_debug("stream %s: end of input, closing", flare_stream_protocol(s));
    flare_stream_close_write(s);
}

static const flare_stream_cbs echo_server = {.on_open = echo_srv_open,
                                             .on_data = echo_srv_data,
                                             .on_eof = echo_srv_eof,
                                             .on_writable = echo_srv_writable};

static void echo_cli_open(flare_stream *s, int status, void *user)
{
    node *n = user;
    (void)s;
    if (status) {
        if (cli_json)
            cli_jsonf("error", "where", "echo", "error", flare_strerror(status), NULL);
        else
            fprintf(stderr, "echo: %s\n", flare_strerror(status));
        node_stop(n, 1);
    }
}

static void echo_cli_data(flare_stream *s, const uint8_t *d, size_t len, void *user)
{
    node *n = user;
    (void)s;
    n->echo_total += len;
    if (n->echo_reply.len + len <= 1 << 20)
        flare_buf_append(&n->echo_reply, d, len);
}

static void echo_cli_eof(flare_stream *s, void *user)
{
    node *n = user;
    char text[4096], bytes[32];
    (void)s;
    size_t l = n->echo_reply.len < sizeof(text) - 1 ? n->echo_reply.len : sizeof(text) - 1;
    memcpy(text, n->echo_reply.base, l);
    text[l] = 0;
    /* Byte for byte, and every byte: a longer reply past the buffer is a mismatch too. */
    int ok = n->message && n->echo_total == n->message_len && n->echo_reply.len == n->message_len &&
             memcmp(n->echo_reply.base, n->message, n->message_len) == 0;
    snprintf(bytes, sizeof(bytes), "\001%zu", n->echo_total);
    if (cli_json)
        cli_jsonf("echo", "protocol", n->echo_proto, "reply", n->message_file ? NULL : text,
                  "bytes", bytes, "ok", ok ? "\001true" : "\001false", "addr", n->echo_addr,
                  "relayed", n->echo_relayed ? "\001true" : "\001false", NULL);
    else if (n->message_file)
        printf("echo reply: %zu of %zu bytes (%s) via %s (%s)\n", n->echo_total, n->message_len,
               ok ? "matches" : "MISMATCH", n->echo_addr, n->echo_relayed ? "relayed" : "direct");
    else
        printf("echo reply: %s (%s) via %s (%s)\n", text, ok ? "matches" : "MISMATCH", n->echo_addr,
               n->echo_relayed ? "relayed" : "direct");
    n->echoed = 1;
    if (!ok)
        node_stop(n, 1);
    maybe_done(n);
}

static const flare_stream_cbs echo_client = {
    .on_open = echo_cli_open, .on_data = echo_cli_data, .on_eof = echo_cli_eof};

/* ---- echo stream (--echo-bytes) ------------------------------------------------------ */

#define ES_TICK_MS 20
#define ES_CHUNK   2048 /* per tick: about 100 KiB/s */

static uint8_t es_pat(uint64_t i)
{
    return (uint8_t)(i * 131 + (i >> 9));
}

/* Notes the connection the stream is on now (it moves after a punch). */
static void es_where(node *n)
{
    if (!n->es)
        return;
    flare_conn *c = flare_stream_conn(n->es);
    int relayed = flare_conn_is_limited(c);
    if (n->es_relayed && !relayed) {
        n->es_moved = 1;
        ma_str(flare_conn_remote_addr(c), n->echo_addr, sizeof(n->echo_addr));
        if (cli_json)
            cli_jsonf("echo_moved", "addr", n->echo_addr, NULL);
        else
            printf("echo stream moved to the direct connection %s at %llu of %llu bytes\n",
                   n->echo_addr, (unsigned long long)n->es_sent, (unsigned long long)n->echo_bytes);
        fflush(stdout);
    }
    n->es_relayed = relayed;
}

static void es_tick(uv_timer_t *t)
{
    node *n = t->data;
    uint8_t buf[ES_CHUNK];
    es_where(n);
    if (!n->es || n->es_blocked || n->es_sent >= n->echo_bytes)
        return;
    size_t k =
        n->echo_bytes - n->es_sent < ES_CHUNK ? (size_t)(n->echo_bytes - n->es_sent) : ES_CHUNK;
    for (size_t i = 0; i < k; i++)
        buf[i] = es_pat(n->es_sent + i);
    int rv = flare_stream_write(n->es, buf, k);
    if (rv < 0) {
        fprintf(stderr, "echo: %s\n", flare_strerror(rv));
        n->es_bad++;
        return;
    }
    n->es_sent += k;
    n->es_blocked = rv == 1;
    if (n->es_sent == n->echo_bytes) {
        flare_stream_close_write(n->es);
        uv_timer_stop(t);
    }
}

static void es_data(flare_stream *s, const uint8_t *d, size_t len, void *user)
{
    node *n = user;
    (void)s;
    for (size_t i = 0; i < len; i++)
        n->es_bad += d[i] != es_pat(n->es_recvd + i);
    n->es_recvd += len;
}

static void es_writable(flare_stream *s, void *user)
{
    node *n = user;
    (void)s;
    n->es_blocked = 0;
}

static void es_report(node *n, int err)
{
    uv_timer_stop(&n->es_timer);
    if (n->echoed)
        return;
    n->echoed = 1;
    int ok = !err && n->es_bad == 0 && n->es_recvd == n->echo_bytes;
    const char *from = n->es_first_relayed ? "relayed" : "direct";
    const char *to = n->es_relayed ? "relayed" : "direct";
    if (cli_json) {
        char bytes[32];
        snprintf(bytes, sizeof(bytes), "\001%llu", (unsigned long long)n->es_recvd);
        cli_jsonf("echo", "protocol", n->echo_proto, "bytes", bytes, "ok",
                  ok ? "\001true" : "\001false", "addr", n->echo_addr, "relayed",
                  n->es_relayed ? "\001true" : "\001false", "startedRelayed",
                  n->es_first_relayed ? "\001true" : "\001false", "moved",
                  n->es_moved ? "\001true" : "\001false", NULL);
    } else {
        printf("echo stream: %llu of %llu bytes back (%s), began %s, ended %s%s\n",
               (unsigned long long)n->es_recvd, (unsigned long long)n->echo_bytes,
               ok    ? "in order, matches"
               : err ? flare_strerror(err)
                     : "MISMATCH",
               from, to, n->es_moved ? " (moved across the hole punch)" : "");
    }
    if (!ok)
        node_stop(n, 1);
    else
        maybe_done(n);
}

static void es_eof(flare_stream *s, void *user)
{
    node *n = user;
    (void)s;
    es_where(n);
    es_report(n, 0);
}

static void es_close(flare_stream *s, int err, void *user)
{
    node *n = user;
    (void)s;
    n->es = NULL;
    es_report(n, err ? err : FLARE_ERR_CLOSED);
}

static const flare_stream_cbs echo_stream_cbs = {
    .on_data = es_data, .on_eof = es_eof, .on_close = es_close, .on_writable = es_writable};

static void start_echo_stream(node *n, flare_conn *c)
{
    ma_str(flare_conn_remote_addr(c), n->echo_addr, sizeof(n->echo_addr));
    n->es_first_relayed = n->es_relayed = flare_conn_is_limited(c);
    int rv = flare_conn_new_stream(c, n->echo_proto, &echo_stream_cbs, n,
                                   FLARE_STREAM_ALLOW_LIMITED, &n->es);
    if (rv) {
        fprintf(stderr, "echo: %s\n", flare_strerror(rv));
        node_stop(n, 1);
        return;
    }
    if (!cli_json)
        printf("echo stream: %llu bytes over %s (%s)\n", (unsigned long long)n->echo_bytes,
               n->echo_addr, n->es_relayed ? "relayed" : "direct");
    uv_timer_start(&n->es_timer, es_tick, 0, ES_TICK_MS);
}

static void start_echo(node *n, flare_conn *c)
{
    flare_stream *s;
    n->echo_started = 1;
    if (n->echo_bytes) {
        start_echo_stream(n, c);
        return;
    }
    ma_str(flare_conn_remote_addr(c), n->echo_addr, sizeof(n->echo_addr));
    n->echo_relayed = strstr(n->echo_addr, "/p2p-circuit") != NULL;
    cli_debug("stream %s: sending %zu bytes on %s (%s)", n->echo_proto, n->message_len,
              n->echo_addr, n->echo_relayed ? "relayed" : "direct");
    int rv =
        flare_conn_new_stream(c, n->echo_proto, &echo_client, n, FLARE_STREAM_ALLOW_LIMITED, &s);
    if (rv == 0 && flare_stream_write(s, (const uint8_t *)n->message, n->message_len) < 0)
        rv = FLARE_ERR_LIMIT;
    if (rv == 0)
        rv = flare_stream_close_write(s);
    if (rv) {
        fprintf(stderr, "echo: %s\n", flare_strerror(rv));
        node_stop(n, 1);
    }
}

/* ---- ping ----------------------------------------------------------------------- */

static void ping_done(flare_host *h, const flare_peerid *peer, int status, flare_tstamp rtt,
                      void *user)
{
    node *n = user;
    (void)h;
    (void)peer;
    n->pings_done++;
    if (status) {
        if (cli_json)
            cli_jsonf("error", "where", "ping", "error", flare_strerror(status), NULL);
        else
            fprintf(stderr, "ping: %s\n", flare_strerror(status));
        n->exit_code = 1;
    }
    (void)rtt; /* printed from the host's FLARE_HOST_EV_PING */
    if (n->ping_count && n->pings_done >= n->ping_count)
        node_stop(n, n->exit_code);
}

static void ping_tick(uv_timer_t *t)
{
    node *n = t->data;
    if (n->pings_sent >= n->ping_count) {
        uv_timer_stop(t);
        return;
    }
    n->pings_sent++;
    int rv = flare_host_ping(n->host, &n->target, ping_done, n);
    if (rv)
        ping_done(n->host, &n->target, rv, 0, n);
}

/* ---- host events ------------------------------------------------------------------ */

static void print_identify(flare_host *h, const flare_host_event *ev)
{
    const flare_peerid *peer = ev->u.identified.peer;
    /* Where the addresses come from: the peer's signed record, or its
     * unsigned list (and why the record it sent was not taken). */
    const char *rec = ev->u.identified.signed_record ? "verified"
                      : ev->u.identified.record_error
                          ? flare_strerror(ev->u.identified.record_error)
                          : "none";
    char pid[FLARE_PEERID_STR_MAX], tmp[1024];
    flare_peer_info *info = malloc(sizeof(*info));
    if (!info || flare_host_peer_info(h, peer, info)) {
        free(info);
        return;
    }
    if (!cli_json) {
        if (CLI_HUMAN(CLI_LOG_INFO))
            printf("identified %s (%s): %zu protocols, %zu addresses (signed record: %s)\n",
                   pid_str(peer, pid, sizeof(pid)), info->agent_version, info->nprotocols,
                   info->naddrs, rec);
        free(info);
        return;
    }
    static char protos[16384], addrs[16384];
    size_t o = 0;
    protos[o++] = '\x01';
    protos[o++] = '[';
    for (size_t i = 0; i < info->nprotocols; i++)
        o += (size_t)snprintf(protos + o, sizeof(protos) - o, "%s%s", i ? "," : "",
                              cli_json_str(tmp, sizeof(tmp), info->protocols[i]));
    snprintf(protos + o, sizeof(protos) - o, "]");
    o = 0;
    addrs[o++] = '\x01';
    addrs[o++] = '[';
    for (size_t i = 0; i < info->naddrs; i++) {
        char a[1024];
        o +=
            (size_t)snprintf(addrs + o, sizeof(addrs) - o, "%s%s", i ? "," : "",
                             cli_json_str(tmp, sizeof(tmp), ma_str(&info->addrs[i], a, sizeof(a))));
    }
    snprintf(addrs + o, sizeof(addrs) - o, "]");
    cli_jsonf("identify", "peerId", pid_str(peer, pid, sizeof(pid)), "agentVersion",
              info->agent_version, "protocols", protos, "listenAddrs", addrs, "signedRecord", rec,
              NULL);
    free(info);
}

/* The address-level (v2) verdicts as a JSON list of {addr, state}. */
static const char *reach_addrs(flare_host *h)
{
    static char out[8192];
    flare_multiaddr ma[FLARE_REACH_MAX_ADDRS];
    flare_reach_state st[FLARE_REACH_MAX_ADDRS];
    size_t k = flare_host_reachability_addrs(h, ma, st, FLARE_REACH_MAX_ADDRS), o = 2;
    char a[1024], q[1100];
    memcpy(out, "\001[", 3);
    for (size_t i = 0; i < k && o < sizeof(out) - 1200; i++)
        o +=
            (size_t)snprintf(out + o, sizeof(out) - o, "%s{\"addr\":%s,\"state\":\"%s\"}",
                             i ? "," : "", cli_json_str(q, sizeof(q), ma_str(&ma[i], a, sizeof(a))),
                             flare_reach_state_name(st[i]));
    snprintf(out + o, sizeof(out) - o, "]");
    return out;
}

static void on_dialed(flare_host *h, flare_conn *c, int status, void *user);

/* dial PEER_ID: the DHT found the peer's addresses (now in the peerstore). */
static void on_found(flare_host *h, int status, const flare_kad_peer *p, size_t np, void *user)
{
    node *n = user;
    if (status == 0 && np)
        cli_dht_print_peer("peer", &p[0]);
    if (status == 0)
        status = flare_host_connect(h, &n->target, NULL, on_dialed, n);
    if (status)
        on_dialed(h, NULL, status, n);
}

static void find_target(node *n)
{
    n->lookup_started = 1;
    int rv = flare_kad_find_peer(n->host, &n->target, on_found, n);
    if (rv)
        on_dialed(n->host, NULL, rv, n);
}

/* dial PEER_ID dials every address it found at once, relayed ones too: a
 * direct connection that comes up after the relayed one (our dial meeting
 * the peer's DCUtR dial in a simultaneous open) ends the punch wait as a
 * success, even when our side's DCUtR has no result of its own. */
static void direct_after_relay(node *n, flare_conn *c)
{
    if (flare_conn_is_limited(c)) {
        n->saw_relayed = 1;
        return;
    }
    if (!n->saw_relayed || !n->wait_holepunch || n->holepunch_done)
        return;
    if (flare_host_ping(n->host, &n->target, direct_ping_done, n)) {
        n->holepunch_done = 1;
        maybe_done(n);
    }
}

static void on_event(flare_host *h, const flare_host_event *ev, void *user)
{
    node *n = user;
    char pid[FLARE_PEERID_STR_MAX], addr[1024], addr2[1024], num[64];
    int info = CLI_HUMAN(CLI_LOG_INFO);
    switch (ev->type) {
    case FLARE_HOST_EV_LISTENING: {
        flare_multiaddr full = *ev->u.listen.addr;
        flare_multiaddr_with_peerid(&full, flare_host_peerid(h));
        if (cli_json)
            cli_jsonf("listening", "addr", ma_str(&full, addr, sizeof(addr)), "peerId",
                      pid_str(flare_host_peerid(h), pid, sizeof(pid)), NULL);
        else
            cli_print_listening(ma_str(&full, addr, sizeof(addr)), n->echo_proto, n->relay_server);
        break;
    }
    case FLARE_HOST_EV_LISTEN_FAILED:
        if (cli_json)
            cli_jsonf("error", "where", "listen", "addr",
                      ma_str(ev->u.listen.addr, addr, sizeof(addr)), "error",
                      flare_strerror(ev->u.listen.error), NULL);
        else
            fprintf(stderr, "listen %s: %s\n", ma_str(ev->u.listen.addr, addr, sizeof(addr)),
                    flare_strerror(ev->u.listen.error));
        break;
    case FLARE_HOST_EV_CONN_OPENED:
        cli_debug("connection %s %s: remote %s local %s, %s, muxer %s",
                  ev->u.conn.outbound ? "to" : "from", pid_str(ev->u.conn.peer, pid, sizeof(pid)),
                  ma_str(ev->u.conn.addr, addr, sizeof(addr)),
                  ma_str(flare_conn_local_addr(ev->u.conn.conn), addr2, sizeof(addr2)),
                  flare_conn_is_limited(ev->u.conn.conn) ? "limited (relayed)" : "unlimited",
                  flare_conn_muxer(ev->u.conn.conn));
        if (cli_json)
            cli_jsonf("connected", "peerId", pid_str(ev->u.conn.peer, pid, sizeof(pid)), "addr",
                      ma_str(ev->u.conn.addr, addr, sizeof(addr)), "direction",
                      ev->u.conn.outbound ? "outbound" : "inbound", "muxer",
                      flare_conn_muxer(ev->u.conn.conn), "transport",
                      flare_conn_transport(ev->u.conn.conn), "security",
                      flare_conn_security(ev->u.conn.conn), NULL);
        else if (info)
            printf("connected %s %s %s\n", ev->u.conn.outbound ? "to" : "from",
                   pid_str(ev->u.conn.peer, pid, sizeof(pid)),
                   ma_str(ev->u.conn.addr, addr, sizeof(addr)));
        if (n->dial_by_id && n->have_target && flare_peerid_equal(ev->u.conn.peer, &n->target))
            direct_after_relay(n, ev->u.conn.conn);
        break;
    case FLARE_HOST_EV_CONN_CLOSED:
        if (cli_json)
            cli_jsonf("disconnected", "peerId", pid_str(ev->u.conn.peer, pid, sizeof(pid)),
                      "reason", ev->u.conn.error ? flare_strerror(ev->u.conn.error) : "closed",
                      NULL);
        else if (info)
            printf("disconnected %s (%s)\n", pid_str(ev->u.conn.peer, pid, sizeof(pid)),
                   ev->u.conn.error ? flare_strerror(ev->u.conn.error) : "closed");
        if (n->have_target && !n->keep_running && flare_peerid_equal(ev->u.conn.peer, &n->target) &&
            !(n->identified && (!n->wanted_echo || n->echoed)) && !n->ping_count &&
            !flare_host_conn_to(h, &n->target)) /* a relayed one may close after a punch */
            node_stop(n, 1);
        break;
    case FLARE_HOST_EV_DIAL_FAILED:
    case FLARE_HOST_EV_INCOMING_FAILED:
        if (cli_json)
            cli_jsonf(ev->type == FLARE_HOST_EV_DIAL_FAILED ? "dial_failed" : "incoming_failed",
                      "addr", ma_str(ev->u.failed.addr, addr, sizeof(addr)), "error",
                      flare_strerror(ev->u.failed.error), NULL);
        else if (CLI_HUMAN(CLI_LOG_WARN))
            fprintf(
                stderr, "%s %s: %s\n", ev->type == FLARE_HOST_EV_DIAL_FAILED ? "dial" : "incoming",
                ma_str(ev->u.failed.addr, addr, sizeof(addr)), flare_strerror(ev->u.failed.error));
        break;
    case FLARE_HOST_EV_OBSERVED_ADDR:
        if (cli_json)
            cli_jsonf("observed_addr", "peerId", pid_str(ev->u.observed.peer, pid, sizeof(pid)),
                      "addr", ma_str(ev->u.observed.addr, addr, sizeof(addr)), NULL);
        else if (info)
            printf("%s sees us at %s\n", pid_str(ev->u.observed.peer, pid, sizeof(pid)),
                   ma_str(ev->u.observed.addr, addr, sizeof(addr)));
        break;
    case FLARE_HOST_EV_IDENTIFIED:
        print_identify(h, ev);
        if (n->have_target && flare_peerid_equal(ev->u.identified.peer, &n->target) &&
            !n->identified) {
            n->identified = 1;
            if (n->ping_count) {
                uv_timer_start(&n->ping_timer, ping_tick, 0, 1000);
            }
            maybe_done(n);
        }
        break;
    case FLARE_HOST_EV_ADDRS_CHANGED: {
        flare_multiaddr ext[8];
        size_t k = flare_host_external_addrs(h, ext, 8, 0);
        char list[4096] = "\001[", q[1100];
        size_t o = strlen(list);
        for (size_t i = 0; i < k; i++)
            o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s", i ? "," : "",
                                  cli_json_str(q, sizeof(q), ma_str(&ext[i], addr, sizeof(addr))));
        snprintf(list + o, sizeof(list) - o, "]");
        const char *nat = flare_nat_type_name(flare_host_nat_type(h, 4));
        if (cli_json)
            cli_jsonf("addrs_changed", "externalAddrs", list, "natType", nat, NULL);
        else if (info)
            printf("external addresses: %s (NAT: %s)\n", list + 1, nat);
        break;
    }
    case FLARE_HOST_EV_RESERVATION_OK:
        if (cli_json)
            cli_jsonf("reservation", "relay", pid_str(ev->u.reservation.relay, pid, sizeof(pid)),
                      "addr", ma_str(ev->u.reservation.addr, addr, sizeof(addr)), NULL);
        else
            printf("reserved on relay %s: reachable at %s\n",
                   pid_str(ev->u.reservation.relay, pid, sizeof(pid)),
                   ma_str(ev->u.reservation.addr, addr, sizeof(addr)));
        if (info && !n->have_target) /* listen: how others come in through the relay */
            printf(
                "  connect: flare dial %s%s%s%s --listen /ip4/0.0.0.0/tcp/0 --wait-holepunch 30\n",
                addr, n->echo_proto ? " --echo " : "", n->echo_proto ? n->echo_proto : "",
                n->echo_proto ? " --message hello" : "");
        break;
    case FLARE_HOST_EV_RESERVATION_FAILED:
    case FLARE_HOST_EV_RESERVATION_LOST: {
        const char *what =
            ev->type == FLARE_HOST_EV_RESERVATION_LOST ? "reservation_lost" : "reservation_failed";
        /* reason: the relay's status when it refused (RESERVATION_REFUSED, ...) */
        if (cli_json)
            cli_jsonf(what, "relay", pid_str(ev->u.reservation.relay, pid, sizeof(pid)), "error",
                      flare_strerror(ev->u.reservation.error),
                      ev->u.reservation.status ? "status" : NULL, ev->u.reservation.status, NULL);
        else if (CLI_HUMAN(CLI_LOG_WARN))
            printf("%s on %s: %s%s%s (retrying)\n", what,
                   pid_str(ev->u.reservation.relay, pid, sizeof(pid)),
                   flare_strerror(ev->u.reservation.error), ev->u.reservation.status ? ", " : "",
                   ev->u.reservation.status ? ev->u.reservation.status : "");
        break;
    }
    case FLARE_HOST_EV_RELAY_RESERVED:
        if (cli_json)
            cli_jsonf("relay_reservation", "peerId",
                      pid_str(ev->u.relay_reserved.peer, pid, sizeof(pid)), NULL);
        else if (info)
            printf("relay: %s reserved a slot\n",
                   pid_str(ev->u.relay_reserved.peer, pid, sizeof(pid)));
        break;
    case FLARE_HOST_EV_RELAY_CIRCUIT_OPENED:
    case FLARE_HOST_EV_RELAY_CIRCUIT_CLOSED: {
        char pid2[FLARE_PEERID_STR_MAX];
        int open = ev->type == FLARE_HOST_EV_RELAY_CIRCUIT_OPENED;
        if (cli_json)
            cli_jsonf(open ? "relay_circuit_opened" : "relay_circuit_closed", "src",
                      pid_str(ev->u.circuit.src, pid, sizeof(pid)), "dst",
                      pid_str(ev->u.circuit.dst, pid2, sizeof(pid2)), "reason",
                      open ? NULL
                           : (ev->u.circuit.error ? flare_strerror(ev->u.circuit.error) : "closed"),
                      NULL);
        else if (info)
            printf("relay: circuit %s -> %s %s\n", pid_str(ev->u.circuit.src, pid, sizeof(pid)),
                   pid_str(ev->u.circuit.dst, pid2, sizeof(pid2)), open ? "opened" : "closed");
        break;
    }
    case FLARE_HOST_EV_HOLEPUNCH_STEP: {
        char att[32], val[32], rtt[32];
        snprintf(att, sizeof(att), "\001%u", ev->u.holepunch_step.attempt);
        snprintf(val, sizeof(val), "\001%llu", (unsigned long long)ev->u.holepunch_step.value);
        snprintf(rtt, sizeof(rtt), "\001%.3f", (double)ev->u.holepunch_step.rtt / 1e6);
        if (cli_json)
            cli_jsonf(
                "holepunch_step", "peerId", pid_str(ev->u.holepunch_step.peer, pid, sizeof(pid)),
                "role", ev->u.holepunch_step.initiator ? "initiator" : "responder", "step",
                ev->u.holepunch_step.step, "attempt", att, "value", val, "rttMs",
                ev->u.holepunch_step.rtt ? rtt : NULL, "reason", ev->u.holepunch_step.reason, NULL);
        else if (info)
            printf("hole punch [%s] attempt %u: %s%s%s\n",
                   ev->u.holepunch_step.initiator ? "B" : "A", ev->u.holepunch_step.attempt,
                   ev->u.holepunch_step.step, ev->u.holepunch_step.reason ? " " : "",
                   ev->u.holepunch_step.reason ? ev->u.holepunch_step.reason : "");
        /* The responder gets no end event: its last attempt failing is the end. */
        if (n->wait_holepunch && !n->holepunch_done && n->have_target &&
            ev->u.holepunch_step.peer && !ev->u.holepunch_step.initiator &&
            flare_peerid_equal(ev->u.holepunch_step.peer, &n->target) &&
            strcmp(ev->u.holepunch_step.step, "attempt-failed") == 0 &&
            ev->u.holepunch_step.attempt >= FLARE_DCUTR_DEFAULT_MAX_ATTEMPTS) {
            n->holepunch_err = FLARE_ERR_TIMEOUT;
            n->holepunch_done = 1;
            maybe_done(n);
        }
        break;
    }
    case FLARE_HOST_EV_HOLEPUNCH: {
        char att[32], rtt[32];
        snprintf(att, sizeof(att), "\001%u", ev->u.holepunch.attempt);
        snprintf(rtt, sizeof(rtt), "\001%.3f", (double)ev->u.holepunch.rtt / 1e6);
        if (cli_json)
            cli_jsonf("holepunch", "peerId", pid_str(ev->u.holepunch.peer, pid, sizeof(pid)),
                      "result", ev->u.holepunch.error ? "failed" : "direct", "addr",
                      ev->u.holepunch.addr ? ma_str(ev->u.holepunch.addr, addr, sizeof(addr))
                                           : NULL,
                      "family", ev->u.holepunch.family, "transport", ev->u.holepunch.transport,
                      "attempt", att, "relayRttMs", rtt, "reason",
                      ev->u.holepunch.error
                          ? (ev->u.holepunch.reason ? ev->u.holepunch.reason
                                                    : flare_strerror(ev->u.holepunch.error))
                          : NULL,
                      NULL);
        if (n->wait_holepunch && n->have_target &&
            flare_peerid_equal(ev->u.holepunch.peer, &n->target)) {
            if (ev->u.holepunch.error) {
                n->holepunch_err = ev->u.holepunch.error;
                n->holepunch_done = 1;
                maybe_done(n);
            } else if (flare_host_ping(h, &n->target, direct_ping_done, n)) {
                n->holepunch_done = 1;
                maybe_done(n);
            }
        }
        if (cli_json)
            ;
        else if (ev->u.holepunch.error)
            printf("hole punch with %s failed: %s (staying relayed)\n",
                   pid_str(ev->u.holepunch.peer, pid, sizeof(pid)),
                   ev->u.holepunch.reason ? ev->u.holepunch.reason
                                          : flare_strerror(ev->u.holepunch.error));
        else
            printf("hole punch with %s: DIRECT connection %s (attempt %u, relay rtt %.1f ms)\n",
                   pid_str(ev->u.holepunch.peer, pid, sizeof(pid)),
                   ma_str(ev->u.holepunch.addr, addr, sizeof(addr)), ev->u.holepunch.attempt,
                   (double)ev->u.holepunch.rtt / 1e6);
        break;
    }
    case FLARE_HOST_EV_PING:
        snprintf(num, sizeof(num), "\001%.3f", (double)ev->u.ping.rtt / 1e6);
        if (cli_json)
            cli_jsonf("ping", "peerId", pid_str(ev->u.ping.peer, pid, sizeof(pid)), "rttMs", num,
                      NULL);
        else
            printf("ping %s: rtt %.3f ms\n", pid_str(ev->u.ping.peer, pid, sizeof(pid)),
                   (double)ev->u.ping.rtt / 1e6);
        break;
    case FLARE_HOST_EV_AUTORELAY:
        pid_str(ev->u.autorelay.relay, pid, sizeof(pid));
        ma_str(ev->u.autorelay.addr, addr, sizeof(addr));
        if (cli_json && !ev->u.autorelay.relay)
            cli_jsonf("autorelay", "reason", ev->u.autorelay.reason, NULL);
        else if (cli_json && ev->u.autorelay.error)
            cli_jsonf("autorelay", "reason", ev->u.autorelay.reason, "relay", pid, "addr", addr,
                      "error", flare_strerror(ev->u.autorelay.error), NULL);
        else if (cli_json)
            cli_jsonf("autorelay", "reason", ev->u.autorelay.reason, "relay", pid, "addr", addr,
                      NULL);
        else if (info)
            printf("autorelay: %s%s%s%s%s\n", ev->u.autorelay.reason,
                   ev->u.autorelay.relay ? " " : "", ev->u.autorelay.relay ? pid : "",
                   ev->u.autorelay.error ? ": " : "",
                   ev->u.autorelay.error ? flare_strerror(ev->u.autorelay.error) : "");
        break;
    case FLARE_HOST_EV_PORTMAP: {
        const char *proto = flare_portmap_proto_name(ev->u.portmap.protocol);
        ma_str(ev->u.portmap.internal, addr, sizeof(addr));
        ma_str(ev->u.portmap.external, addr2, sizeof(addr2));
        snprintf(num, sizeof(num), "\001%u", (unsigned)ev->u.portmap.lifetime);
        if (cli_json && ev->u.portmap.external)
            cli_jsonf("portmap", "what", ev->u.portmap.what, "protocol", proto, "internal", addr,
                      "external", addr2, "lifetime", num, NULL);
        else if (cli_json)
            cli_jsonf("portmap", "what", ev->u.portmap.what, "protocol", proto, "internal", addr,
                      "error", flare_strerror(ev->u.portmap.error), NULL);
        else if (info && ev->u.portmap.external)
            printf("port mapping %s (%s): %s -> %s, %u s\n", ev->u.portmap.what, proto, addr2, addr,
                   (unsigned)ev->u.portmap.lifetime);
        else if (info)
            printf("port mapping %s (%s) for %s: %s\n", ev->u.portmap.what, proto, addr,
                   flare_strerror(ev->u.portmap.error));
        break;
    }
    case FLARE_HOST_EV_DHT:
        cli_dht_event(ev);
        if (n->dial_by_id && !n->lookup_started && strcmp(ev->u.dht.reason, "ready") == 0)
            find_target(n);
        break;
    case FLARE_HOST_EV_REACHABILITY:
        snprintf(num, sizeof(num), "\001%d", ev->u.reachability.family);
        if (cli_json)
            cli_jsonf("reachability", "family", num, "state",
                      flare_reach_state_name(ev->u.reachability.reach), "addrs", reach_addrs(h),
                      NULL);
        else if (info)
            printf("reachability (IPv%d): %s\n", ev->u.reachability.family,
                   flare_reach_state_name(ev->u.reachability.reach));
        break;
    }
}

/* ---- setup / teardown -------------------------------------------------------------- */

static void on_signal(uv_signal_t *s, int signum)
{
    node *n = s->data;
    (void)signum;
    node_stop(n, n->exit_code);
}

/* After a peer ID mismatch: who is there? A second dial without the
 * expected ID finds out, so the error can name the peer that answered. */
static void on_probed(flare_host *h, flare_conn *c, int status, void *user)
{
    node *n = user;
    char want[FLARE_PEERID_STR_MAX], got[FLARE_PEERID_STR_MAX];
    (void)h;
    pid_str(&n->target, want, sizeof(want));
    if (status == 0)
        pid_str(flare_conn_peer(c), got, sizeof(got));
    if (status == 0 && cli_json)
        cli_jsonf("error", "where", "dial", "error", flare_strerror(FLARE_ERR_PEER_ID_MISMATCH),
                  "expected", want, "answered", got, NULL);
    else if (status == 0)
        fprintf(stderr, "dial: peer ID mismatch: expected %s, but %s answered at that address\n",
                want, got);
    else if (cli_json)
        cli_jsonf("error", "where", "dial", "error", flare_strerror(FLARE_ERR_PEER_ID_MISMATCH),
                  "expected", want, NULL);
    else
        fprintf(stderr, "dial: peer ID mismatch: the peer at that address is not %s\n", want);
    node_stop(n, 1);
}

static void on_dialed(flare_host *h, flare_conn *c, int status, void *user)
{
    node *n = user;
    (void)c;
    if (status == FLARE_ERR_PEER_ID_MISMATCH && n->target_str && !n->probing) {
        flare_multiaddr ma;
        n->probing = 1;
        if (flare_multiaddr_parse(&ma, n->target_str) == 0 && !flare_multiaddr_is_relayed(&ma) &&
            flare_multiaddr_decapsulate(&ma, FLARE_MA_P2P) == 0 &&
            flare_host_dial(h, &ma, NULL, on_probed, n) == 0)
            return;
        on_probed(h, NULL, status, n);
        return;
    }
    if (status) {
        if (cli_json)
            cli_jsonf("error", "where", "dial", "error", flare_strerror(status), NULL);
        else
            fprintf(stderr, "dial: %s\n", flare_strerror(status));
        node_stop(n, 1);
    }
}

/* --connect: a peer to keep a connection to; a failure is reported, not fatal. */
static void on_connected(flare_host *h, flare_conn *c, int status, void *user)
{
    (void)h;
    (void)c;
    (void)user;
    if (status && cli_json)
        cli_jsonf("error", "where", "connect", "error", flare_strerror(status), NULL);
    else if (status)
        fprintf(stderr, "connect: %s\n", flare_strerror(status));
}

/* Keeping it: redial a --connect peer while we have no connection to it
 * (a js-libp2p AutoNAT server closes ours after each request). */
static void connect_tick(uv_timer_t *t)
{
    node *n = t->data;
    for (int i = 0; i < n->nconnect; i++) {
        flare_multiaddr ma;
        flare_peerid peer;
        if (cli_parse_dial_addr(&ma, n->connect[i]) == 0 &&
            flare_multiaddr_get_peerid(&ma, &peer) == 0 && !flare_host_conn_to(n->host, &peer))
            flare_host_dial(n->host, &ma, NULL, on_connected, n);
    }
}

typedef struct node_opts {
    const char *key_file, *seed;
    const char *listen[MAX_LISTEN];
    int nlisten;
    const char *relays[MAX_LISTEN];
    int nrelays;
    const char *connect[MAX_LISTEN];
    int nconnect;
    const char *target;
    flare_relay_server_settings *relay_cfg; /* flare relay: --relay-* limits */
    /* Policy: --deny-peer/--allow-peer/--deny-ip/--allow-ip (the gater) and
     * the connection manager's water marks. */
    const char *gate_flag[MAX_RULES], *gate_val[MAX_RULES];
    int ngate;
    int conn_low, conn_high, conn_grace; /* -1: the host's default */
    /* --max-*: resource manager limits, applied over the host's defaults. */
    size_t rc_val[16];
    unsigned rc_set;    /* bit i: rc_flags[i] given */
    char security[128]; /* --security as protocol IDs ("" = the host's default) */
    /* Secure WebSockets: --tls-cert/--tls-key (a /tls/ws listener's
     * certificate chain and key, PEM) and --tls-ca (trusted for wss dials
     * instead of the system's store). */
    const char *tls_cert, *tls_key, *tls_ca;
} node_opts;

/* --security LIST: names (noise, tls) or protocol IDs, comma separated, into
 * the host's form (protocol IDs). Returns 0 or -1 (reported). */
static int parse_security(const char *v, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = 0;
    for (const char *p = v; *p;) {
        size_t len = strcspn(p, ",");
        const char *id = NULL;
        if (len == 5 && strncmp(p, "noise", 5) == 0)
            id = "/noise";
        else if (len == 3 && strncmp(p, "tls", 3) == 0)
            id = "/tls/1.0.0";
        else if ((len == 6 && strncmp(p, "/noise", 6) == 0) ||
                 (len == 10 && strncmp(p, "/tls/1.0.0", 10) == 0))
            id = p;
        size_t idlen = id == p ? len : id ? strlen(id) : 0;
        if (!id || n + idlen + 2 > cap) {
            fprintf(stderr, "flare: --security: '%.*s' is not noise or tls\n", (int)len, p);
            return -1;
        }
        if (n)
            out[n++] = ',';
        memcpy(out + n, id, idlen);
        n += idlen;
        out[n] = 0;
        p += len + (p[len] == ',');
    }
    if (n == 0) {
        fprintf(stderr, "flare: --security: empty list\n");
        return -1;
    }
    return 0;
}

/* A policy flag of node_opts; returns 1 if it was one (i advanced), 0 if
 * not, -1 on a bad value (reported). */
static int parse_policy(int argc, char **argv, int *i, node_opts *o)
{
    const char *a = argv[*i];
    if (*i + 1 >= argc)
        return 0;
    const char *v = argv[*i + 1];
    if (strcmp(a, "--deny-peer") == 0 || strcmp(a, "--allow-peer") == 0 ||
        strcmp(a, "--deny-ip") == 0 || strcmp(a, "--allow-ip") == 0) {
        flare_peerid p;
        flare_ipaddr ip;
        unsigned prefix;
        int bad = strstr(a, "peer") ? flare_peerid_parse(&p, v, strlen(v)) != 0
                                    : flare_cidr_parse(v, &ip, &prefix) != 0;
        if (bad || o->ngate == MAX_RULES) {
            fprintf(stderr, "flare: %s: '%s' is not %s%s\n", a, v,
                    strstr(a, "peer") ? "a peer ID" : "an IP address or CIDR subnet",
                    bad ? "" : " (too many rules)");
            return -1;
        }
        o->gate_flag[o->ngate] = a;
        o->gate_val[o->ngate++] = v;
    } else if (strcmp(a, "--conn-low") == 0 || strcmp(a, "--conn-high") == 0) {
        if (cli_parse_int(a, v, 0, 1 << 20, a[7] == 'l' ? &o->conn_low : &o->conn_high))
            return -1;
    } else if (strcmp(a, "--conn-grace") == 0) {
        if (cli_parse_int(a, v, 0, 86400, &o->conn_grace))
            return -1;
    } else if (strcmp(a, "--security") == 0) {
        if (parse_security(v, o->security, sizeof(o->security)))
            return -1;
    } else {
        return 0;
    }
    (*i)++;
    return 1;
}

/* Installs the gater rules of o on h. Returns 0 or the first error. */
static int apply_policy(flare_host *h, const node_opts *o)
{
    for (int i = 0; i < o->ngate; i++) {
        const char *f = o->gate_flag[i];
        flare_gater_list list = strncmp(f, "--deny", 6) == 0 ? FLARE_GATER_DENY : FLARE_GATER_ALLOW;
        flare_peerid p;
        flare_ipaddr ip;
        unsigned prefix;
        int rv;
        if (strstr(f, "peer")) {
            rv = flare_peerid_parse(&p, o->gate_val[i], strlen(o->gate_val[i]));
            if (rv == 0)
                rv = flare_host_gater_peer(h, list, &p, 1);
        } else {
            rv = flare_cidr_parse(o->gate_val[i], &ip, &prefix);
            if (rv == 0)
                rv = flare_host_gater_subnet(h, list, &ip, prefix, 1);
        }
        if (rv) {
            fprintf(stderr, "flare: %s %s: %s\n", f, o->gate_val[i], flare_strerror(rv));
            return rv;
        }
    }
    return 0;
}

/* --relay-NAME VALUE for `flare relay`: the server's limits (0 = default).
 * Returns 0, or -1 after printing why. */

/* ---- resource manager flags (--max-*) ---------------------------------------------- */

/* Each flag sets one size_t field of flare_host_settings (0 = no limit). */
static const struct {
    const char *name;
    size_t off;
} rc_flags[] = {
    {"--max-conns", offsetof(flare_host_settings, max_connections)},
    {"--max-conns-inbound", offsetof(flare_host_settings, limits.conns_inbound)},
    {"--max-conns-outbound", offsetof(flare_host_settings, limits.conns_outbound)},
    {"--max-conns-per-ip", offsetof(flare_host_settings, limits.conns_per_ip)},
    {"--max-conns-per-subnet", offsetof(flare_host_settings, limits.conns_per_subnet)},
    {"--max-conns-per-peer", offsetof(flare_host_settings, max_connections_per_peer)},
    {"--max-handshakes", offsetof(flare_host_settings, limits.handshakes)},
    {"--max-handshakes-per-ip", offsetof(flare_host_settings, limits.handshakes_per_ip)},
    {"--max-handshakes-per-subnet", offsetof(flare_host_settings, limits.handshakes_per_subnet)},
    {"--max-streams-per-conn", offsetof(flare_host_settings, max_streams_per_conn)},
    {"--max-streams-per-peer", offsetof(flare_host_settings, limits.streams_per_peer_inbound)},
    {"--max-mem", offsetof(flare_host_settings, limits.mem)},
    {"--max-mem-per-peer", offsetof(flare_host_settings, limits.mem_per_peer)},
    {"--max-mem-per-conn", offsetof(flare_host_settings, limits.mem_per_conn)},
};
#define RC_NFLAGS (sizeof(rc_flags) / sizeof(rc_flags[0]))

/* 1 if a is a --max-* flag (then val is parsed: a count, or bytes with an
 * optional K, M or G suffix), 0 if not ours, -1 for a bad value. */
static int parse_rc_flag(node_opts *o, const char *a, const char *val)
{
    size_t i = 0;
    while (i < RC_NFLAGS && strcmp(a, rc_flags[i].name) != 0)
        i++;
    if (i == RC_NFLAGS)
        return 0;
    uint64_t v;
    size_t b;
    int mem = strncmp(a, "--max-mem", 9) == 0;
    if (mem ? cli_parse_bytes(a, val, &b) : cli_parse_u64(a, val, 0, SIZE_MAX, &v))
        return -1;
    o->rc_val[i] = mem ? b : (size_t)v;
    o->rc_set |= 1u << i;
    return 1;
}

/* --max-conns alone splits into 3/4 inbound and 1/4 outbound, as the
 * defaults do, so that inbound never takes the slots of our own dials. */
static void apply_rc_flags(const node_opts *o, flare_host_settings *cfg)
{
    for (size_t i = 0; i < RC_NFLAGS; i++)
        if (o->rc_set & (1u << i))
            *(size_t *)(void *)((char *)cfg + rc_flags[i].off) = o->rc_val[i];
    if ((o->rc_set & 1u) && !(o->rc_set & 6u)) {
        cfg->limits.conns_inbound = cfg->max_connections - cfg->max_connections / 4;
        cfg->limits.conns_outbound = cfg->max_connections / 4;
    }
    if (o->rc_set & (1u << 10))
        cfg->limits.streams_per_peer_outbound = cfg->limits.streams_per_peer_inbound;
}

/* --relay-NAME VALUE for `flare relay`: the server's limits. 0 is a real
 * value: no limit for data and duration, nothing allowed for the maxima;
 * a reservation TTL must be at least 1 s. */
static int parse_relay_limit(flare_relay_server_settings *c, const char *name, const char *val)
{
    uint64_t v;
    if (strcmp(name, "--relay-data") == 0) {
        if (cli_parse_u64(name, val, 0, UINT64_MAX, &v))
            return -1;
        c->limit_data = v;
        return 0;
    }
    uint32_t *dst = strcmp(name, "--relay-duration") == 0            ? &c->limit_duration
                    : strcmp(name, "--relay-ttl") == 0               ? &c->reservation_ttl
                    : strcmp(name, "--relay-max-reservations") == 0  ? &c->max_reservations
                    : strcmp(name, "--relay-max-per-ip") == 0        ? &c->max_reservations_per_ip
                    : strcmp(name, "--relay-max-circuits") == 0      ? &c->max_circuits
                    : strcmp(name, "--relay-circuits-per-peer") == 0 ? &c->max_circuits_per_peer
                                                                     : NULL;
    if (!dst) {
        fprintf(stderr, "flare: unknown flag '%s'\n", name);
        return -1;
    }
    if (cli_parse_u64(name, val, dst == &c->reservation_ttl ? 1 : 0, 0xffffffffULL, &v))
        return -1;
    *dst = (uint32_t)v;
    return 0;
}

static int parse_common(int argc, char **argv, node *n, node_opts *o, int need_target)
{
    int pr;
    o->conn_low = o->conn_high = o->conn_grace = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (strcmp(a, "--json") == 0)
            continue;
        else if (strcmp(a, "--key") == 0 && more)
            o->key_file = argv[++i];
        else if (strcmp(a, "--seed") == 0 && more)
            o->seed = argv[++i];
        else if (strcmp(a, "--listen") == 0 && more && o->nlisten < MAX_LISTEN)
            o->listen[o->nlisten++] = argv[++i];
        else if (strcmp(a, "--echo") == 0 && more) {
            n->echo_proto = argv[++i];
            size_t len = strlen(n->echo_proto);
            if (len == 0 || len >= FLARE_PROTOCOL_MAX || n->echo_proto[0] != '/') {
                fprintf(stderr,
                        "flare: --echo: a protocol ID starts with '/' and has at most %d "
                        "bytes\n",
                        FLARE_PROTOCOL_MAX - 1);
                return 2;
            }
        } else if (strcmp(a, "--message") == 0 && more)
            n->message = argv[++i];
        else if (strcmp(a, "--echo-bytes") == 0 && more) {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(argv[++i], &end, 10);
            if (errno || *end || v == 0 || v > (1ull << 40) || argv[i][0] == '-') {
                fprintf(stderr, "flare: --echo-bytes: 1..2^40 bytes\n");
                return 2;
            }
            n->echo_bytes = v;
        } else if (strcmp(a, "--message-file") == 0 && more)
            n->message_file = argv[++i];
        else if ((strcmp(a, "-c") == 0 || strcmp(a, "--count") == 0) && more) {
            if (cli_parse_int(a, argv[++i], 1, 1000000, &n->ping_count))
                return 2;
        } else if (strcmp(a, "--relay") == 0 && more && o->nrelays < MAX_LISTEN)
            o->relays[o->nrelays++] = argv[++i];
        else if (strcmp(a, "--wait-holepunch") == 0 && more) {
            if (cli_parse_int(a, argv[++i], 0, 86400, &n->wait_holepunch))
                return 2;
        } else if (strcmp(a, "--allow-testnet") == 0)
            n->allow_testnet = 1;
        else if (strcmp(a, "--autonat-boot-delay") == 0 && more) {
            int ms;
            if (cli_parse_int(a, argv[++i], 0, 86400000, &ms))
                return 2;
            n->autonat_boot_ms = ms;
            n->autonat_boot_set = 1;
        } else if (strcmp(a, "--keep-alive") == 0)
            n->keep_running = 1;
        else if (strcmp(a, "--auto-relay") == 0)
            n->auto_relay = 1;
        else if (strcmp(a, "--connect") == 0 && more && o->nconnect < MAX_LISTEN)
            o->connect[o->nconnect++] = argv[++i];
        else if (strcmp(a, "--no-holepunch") == 0)
            n->no_holepunch = 1;
        else if (strcmp(a, "--hard-punch") == 0)
            n->hard_punch = 1;
        else if (strcmp(a, "--no-migrate") == 0)
            n->no_migrate = 1;
        else if (strcmp(a, "--port-map") == 0)
            n->port_map = 1;
        else if (strcmp(a, "--no-port-map") == 0)
            n->port_map = 0;
        else if (strcmp(a, "--port-map-protocols") == 0 && more) {
            n->port_map_protocols = argv[++i];
            n->port_map = 1;
        } else if (strcmp(a, "--share-listen") == 0)
            n->share_listen = 1;
        else if (strcmp(a, "--stun-listen") == 0 && more)
            n->stun_listen = argv[++i];
        else if (strcmp(a, "--no-stun-server") == 0)
            n->no_stun_server = 1;
        else if (strcmp(a, "--tls-cert") == 0 && more)
            o->tls_cert = argv[++i];
        else if (strcmp(a, "--tls-key") == 0 && more)
            o->tls_key = argv[++i];
        else if (strcmp(a, "--tls-ca") == 0 && more)
            o->tls_ca = argv[++i];
        else if ((pr = cli_dht_parse(&n->dht, a, more ? argv[i + 1] : NULL)) != 0) {
            if (pr < 0)
                return 2;
            i++;
        } else if ((pr = parse_policy(argc, argv, &i, o)) != 0) {
            if (pr < 0)
                return 2;
        } else if (o->relay_cfg && strncmp(a, "--relay-", 8) == 0 && more) {
            if (parse_relay_limit(o->relay_cfg, a, argv[i + 1]))
                return 2;
            i++;
        } else if (strncmp(a, "--max-", 6) == 0) {
            int r = parse_rc_flag(o, a, more ? argv[i + 1] : NULL);
            if (r == 0)
                fprintf(stderr, "flare: unknown option %s\n", a);
            if (r <= 0)
                return 2; /* a bad value was reported by the parser */
            i++;
        } else if (a[0] != '-' && !o->target && need_target)
            o->target = a;
        else {
            fprintf(stderr, "flare: unexpected argument '%s'\n", a);
            return 2;
        }
    }
    if (need_target && !o->target) {
        fprintf(stderr, "flare: missing MADDR\n");
        return 2;
    }
    if (!o->tls_cert != !o->tls_key) {
        fprintf(stderr, "flare: --tls-cert and --tls-key go together\n");
        return 2;
    }
    return 0;
}

/* --port-map[-protocols LIST]: LIST is a comma-separated subset of pcp,
 * nat-pmp, upnp. */
static int enable_port_map(node *n)
{
    flare_portmap_settings pm;
    flare_portmap_settings_default(&pm);
    if (n->port_map_protocols) {
        pm.enable_pcp = pm.enable_natpmp = pm.enable_upnp = 0;
        char list[128];
        snprintf(list, sizeof(list), "%s", n->port_map_protocols);
        for (char *save = NULL, *t = strtok_r(list, ",", &save); t;
             t = strtok_r(NULL, ",", &save)) {
            if (strcmp(t, "pcp") == 0)
                pm.enable_pcp = 1;
            else if (strcmp(t, "nat-pmp") == 0 || strcmp(t, "natpmp") == 0)
                pm.enable_natpmp = 1;
            else if (strcmp(t, "upnp") == 0)
                pm.enable_upnp = 1;
            else {
                fprintf(stderr,
                        "flare: --port-map-protocols: unknown protocol '%s' (pcp, "
                        "nat-pmp, upnp)\n",
                        t);
                return FLARE_ERR_INVALID_ARG;
            }
        }
    }
    int rv = flare_host_enable_portmap(n->host, &pm);
    if (rv)
        fprintf(stderr, "flare: cannot enable port mapping: %s\n", flare_strerror(rv));
    return rv;
}

/* --stun-listen /ip4|ip6/ADDR/udp/PORT and --no-stun-server. */
static int setup_stun(node *n)
{
    if (n->no_stun_server)
        return flare_host_stun_server_enable(n->host, 0);
    if (!n->stun_listen)
        return 0;
    flare_multiaddr ma;
    flare_ipaddr ip, bound;
    int proto = 0, rv = flare_multiaddr_parse(&ma, n->stun_listen);
    if (rv == 0)
        rv = flare_multiaddr_to_ipaddr(&ma, &ip, &proto);
    if (rv == 0 && proto != FLARE_MA_UDP)
        rv = FLARE_ERR_INVALID_ARG;
    if (rv == 0)
        rv = flare_host_stun_listen(n->host, &ip, &bound);
    if (rv) {
        fprintf(stderr, "flare: cannot serve STUN on %s: %s\n", n->stun_listen, flare_strerror(rv));
        return rv;
    }
    char a[FLARE_IPADDR_STR_MAX];
    flare_ipaddr_to_string(&bound, a, sizeof(a));
    if (cli_json)
        cli_jsonf("stun_listening", "addr", a, NULL);
    else if (CLI_HUMAN(CLI_LOG_INFO))
        printf("STUN server on %s (udp)\n", a);
    return 0;
}

/* The WebRTC-direct certificate lives beside the key file (KEY.webrtc.pem),
 * so the /certhash of our addresses survives restarts. Reads it into pem
 * (empty: none yet). */
#define CERT_SUFFIX  ".webrtc.pem"
#define CERT_PEM_MAX 65536
static int cert_path(const char *key_file, char *out, size_t cap)
{
    return snprintf(out, cap, "%s" CERT_SUFFIX, key_file) < (int)cap ? 0 : -1;
}

static void cert_load(const char *key_file, flare_buf *pem)
{
    char path[4096];
    if (!key_file || cert_path(key_file, path, sizeof(path)))
        return;
    FILE *f = fopen(path, "rb");
    if (!f)
        return;
    char b[CERT_PEM_MAX];
    size_t len = fread(b, 1, sizeof(b) - 1, f);
    fclose(f);
    if (len > 0 && flare_buf_append(pem, (const uint8_t *)b, len) == 0)
        flare_buf_append(pem, (const uint8_t *)"", 1); /* terminated */
}

/* First run with a key file: keep the certificate the host made. */
static void cert_save(flare_host *h, const char *key_file)
{
    char path[4096];
    flare_buf pem;
    if (!key_file || cert_path(key_file, path, sizeof(path)))
        return;
    flare_buf_init(&pem, NULL);
    FILE *f = NULL;
    int fd = -1;
    if (flare_host_webrtc_cert_pem(h, &pem) == 0 &&
        (fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600)) >= 0 && (f = fdopen(fd, "wb"))) {
        if (fwrite(pem.base, 1, pem.len, f) != pem.len)
            fprintf(stderr, "flare: cannot write %s\n", path);
        fclose(f);
    } else if (fd >= 0) {
        close(fd);
    }
    flare_buf_free(&pem);
}

static int node_run(node *n, node_opts *o)
{
    flare_privkey key;
    if (cli_load_identity(&key, o->key_file, o->seed))
        return 1;
    flare_buf_init(&n->echo_reply, NULL);
    uv_loop_init(&n->loop);
    int rv = flare_uvio_new(&n->uvio, &n->loop, NULL);
    flare_host_settings cfg;
    flare_host_settings_default(&cfg);
    cfg.doc_addrs_public = n->allow_testnet;
    cfg.enable_autorelay = n->auto_relay;
    cfg.share_listen = n->share_listen;
    if (n->no_holepunch)
        cfg.enable_holepunch = 0;
    if (n->no_migrate)
        cfg.enable_migration = 0;
    if (n->autonat_boot_set)
        cfg.autonat_boot_delay = (flare_tstamp)n->autonat_boot_ms * 1000000;
    if (o->conn_low >= 0)
        cfg.conn_low_water = (size_t)o->conn_low;
    if (o->conn_high >= 0)
        cfg.conn_high_water = (size_t)o->conn_high;
    if (o->conn_grace >= 0)
        cfg.conn_grace_period = (flare_tstamp)o->conn_grace * FLARE_NS_PER_S;
    apply_rc_flags(o, &cfg);
    cfg.tls_cert_file = o->tls_cert;
    cfg.tls_key_file = o->tls_key;
    cfg.tls_ca_file = o->tls_ca;
    if (o->security[0])
        cfg.security = o->security;
    flare_buf cert_pem;
    flare_buf_init(&cert_pem, NULL);
    cert_load(o->key_file, &cert_pem);
    if (cert_pem.len)
        cfg.webrtc_cert_pem = (const char *)cert_pem.base;
    n->connect = o->connect;
    n->nconnect = o->nconnect;
    if (rv == 0)
        rv = flare_host_new(&n->host, flare_uvio_io(n->uvio), &key, &cfg, NULL);
    flare_privkey_clear(&key);
    if (rv) {
        flare_buf_free(&cert_pem);
        fprintf(stderr, "flare: cannot start: %s\n", flare_strerror(rv));
        if (o->tls_cert && (rv == FLARE_ERR_NOT_FOUND || rv == FLARE_ERR_MALFORMED))
            fprintf(stderr, "flare: check --tls-cert %s and --tls-key %s (PEM files)\n",
                    o->tls_cert, o->tls_key);
        return 1;
    }
    if (!cert_pem.len)
        cert_save(n->host, o->key_file);
    flare_buf_free(&cert_pem);
    flare_host_set_event_cb(n->host, on_event, n);
    cli_record_from_env(n->host);
    rv = apply_policy(n->host, o);
    if (rv == 0 && n->echo_proto && !o->target) {
        rv = flare_host_set_handler(n->host, n->echo_proto, &echo_server, n,
                                    FLARE_HANDLER_ALLOW_LIMITED); /* a test tool: relays too */
        if (rv)
            fprintf(stderr, "flare: cannot serve --echo %s: %s\n", n->echo_proto,
                    flare_strerror(rv));
    }
    for (int i = 0; i < o->nlisten && rv == 0; i++) {
        flare_multiaddr ma;
        rv = flare_multiaddr_parse(&ma, o->listen[i]);
        if (rv == 0)
            rv = flare_host_listen(n->host, &ma);
        if (rv) {
            fprintf(stderr, "flare: cannot listen on %s: %s\n", o->listen[i], flare_strerror(rv));
            cli_multiaddr_hint(o->listen[i]);
        }
    }
    if (rv == 0 && n->port_map)
        rv = enable_port_map(n);
    if (rv == 0)
        rv = setup_stun(n);
    if (rv == 0 && n->hard_punch && !n->no_holepunch) {
        rv = flare_host_enable_hardpunch(n->host, NULL);
        if (rv)
            fprintf(stderr, "flare: --hard-punch: %s\n", flare_strerror(rv));
    }
    if (rv == 0 && n->relay_server) {
        rv = flare_host_enable_relay_server(n->host, o->relay_cfg);
        if (rv)
            fprintf(stderr, "flare: cannot start the relay: %s\n", flare_strerror(rv));
    }
    for (int i = 0; i < o->nrelays && rv == 0; i++) {
        flare_multiaddr ma;
        rv = cli_parse_dial_addr(&ma, o->relays[i]);
        if (rv == 0)
            rv = flare_host_relay_reserve(n->host, &ma);
        if (rv) {
            fprintf(stderr, "flare: bad relay %s: %s\n", o->relays[i], flare_strerror(rv));
            cli_multiaddr_hint(o->relays[i]);
        }
    }
    if (rv == 0)
        rv = cli_dht_enable(n->host, &n->dht, 0);
    for (int i = 0; i < o->nconnect && rv == 0; i++) {
        flare_multiaddr ma;
        rv = cli_parse_dial_addr(&ma, o->connect[i]);
        if (rv == 0)
            rv = flare_host_dial(n->host, &ma, NULL, on_connected, n);
        if (rv) {
            fprintf(stderr, "flare: cannot connect to %s: %s\n", o->connect[i], flare_strerror(rv));
            cli_multiaddr_hint(o->connect[i]);
        }
    }
    if (rv == 0 && o->target && o->target[0] != '/') {
        /* A bare peer ID: dialed once the DHT found its addresses. */
        rv = flare_peerid_parse(&n->target, o->target, strlen(o->target));
        if (rv) {
            fprintf(stderr, "flare: cannot dial %s: neither a multiaddr nor a peer ID\n",
                    o->target);
            cli_multiaddr_hint(o->target);
        } else if (!n->dht.nboot) {
            fprintf(stderr, "flare: dialing a peer ID needs the DHT: --bootstrap MADDR\n");
            rv = FLARE_ERR_INVALID_ARG;
        }
        n->have_target = n->dial_by_id = rv == 0;
    } else if (rv == 0 && o->target) {
        flare_multiaddr ma;
        rv = cli_parse_dial_addr(&ma, o->target);
        if (rv == 0 && flare_multiaddr_get_peerid(&ma, &n->target) == 0)
            n->have_target = 1;
        else if (rv == 0) {
            fprintf(stderr, "flare: the address must end with /p2p/PEER_ID\n");
            rv = FLARE_ERR_INVALID_ARG;
        }
        n->target_str = o->target;
        if (rv == 0)
            rv = flare_host_dial(n->host, &ma, NULL, on_dialed, n);
        if (rv) {
            fprintf(stderr, "flare: cannot dial %s: %s\n", o->target, flare_strerror(rv));
            cli_multiaddr_hint(o->target);
        }
    }
    uv_signal_init(&n->loop, &n->sigint);
    uv_signal_init(&n->loop, &n->sigterm);
    uv_timer_init(&n->loop, &n->ping_timer);
    uv_timer_init(&n->loop, &n->es_timer);
    n->es_timer.data = n;
    uv_timer_init(&n->loop, &n->hp_timer);
    uv_timer_init(&n->loop, &n->connect_timer);
    n->sigint.data = n->sigterm.data = n->ping_timer.data = n->hp_timer.data = n;
    n->connect_timer.data = n;
    if (rv == 0 && n->nconnect)
        uv_timer_start(&n->connect_timer, connect_tick, 2000, 2000);
    if (n->wait_holepunch)
        uv_timer_start(&n->hp_timer, hp_timeout, (uint64_t)n->wait_holepunch * 1000, 0);
    uv_signal_start(&n->sigint, on_signal, SIGINT);
    uv_signal_start(&n->sigterm, on_signal, SIGTERM);
    if (rv == 0)
        uv_run(&n->loop, UV_RUN_DEFAULT);
    else
        n->exit_code = 1;
    /* Teardown: host first (closes connections), then the driver's handles. */
    flare_host_del(n->host);
    flare_uvio_del(n->uvio);
    uv_close((uv_handle_t *)&n->sigint, NULL);
    uv_close((uv_handle_t *)&n->sigterm, NULL);
    uv_close((uv_handle_t *)&n->ping_timer, NULL);
    uv_close((uv_handle_t *)&n->hp_timer, NULL);
    uv_close((uv_handle_t *)&n->es_timer, NULL);
    uv_close((uv_handle_t *)&n->connect_timer, NULL);
    uv_run(&n->loop, UV_RUN_DEFAULT);
    uv_loop_close(&n->loop);
    flare_buf_free(&n->echo_reply);
    return n->exit_code;
}

int cmd_listen(int argc, char **argv)
{
    node n = {0};
    node_opts o = {0};
    int rv = parse_common(argc, argv, &n, &o, 0);
    if (rv)
        return rv;
    if (o.nlisten == 0)
        o.listen[o.nlisten++] = "/ip4/0.0.0.0/tcp/0";
    n.keep_running = 1;
    return node_run(&n, &o);
}

int cmd_relay(int argc, char **argv)
{
    node n = {0};
    node_opts o = {0};
    flare_relay_server_settings rcfg;
    flare_relay_server_settings_default(&rcfg);
    o.relay_cfg = &rcfg;
    int rv = parse_common(argc, argv, &n, &o, 0);
    if (rv)
        return rv;
    if (o.nlisten == 0) { /* one port number for both transports */
        o.listen[o.nlisten++] = "/ip4/0.0.0.0/tcp/4001";
        o.listen[o.nlisten++] = "/ip4/0.0.0.0/udp/4001/quic-v1";
    }
    n.keep_running = 1;
    n.relay_server = 1;
    return node_run(&n, &o);
}

/* --message-file: the whole file (at most the echo reply buffer, 1 MiB). */
static int load_message(node *n)
{
    FILE *f = fopen(n->message_file, "rb");
    if (!f) {
        fprintf(stderr, "flare: cannot read %s\n", n->message_file);
        return -1;
    }
    n->file_data = malloc((1 << 20) + 1);
    size_t len = n->file_data ? fread(n->file_data, 1, (1 << 20) + 1, f) : 0;
    int bad = ferror(f) || !n->file_data || len > 1 << 20;
    fclose(f);
    if (bad) {
        fprintf(stderr, "flare: %s: unreadable or larger than 1 MiB\n", n->message_file);
        free(n->file_data);
        n->file_data = NULL;
        return -1;
    }
    n->file_len = len;
    return 0;
}

int cmd_dial(int argc, char **argv)
{
    node n = {0};
    node_opts o = {0};
    int rv = parse_common(argc, argv, &n, &o, 1);
    if (rv)
        return rv;
    if ((n.message_file != NULL) + (n.message != NULL) + (n.echo_bytes != 0) > 1) {
        fprintf(stderr, "flare: --message, --message-file and --echo-bytes exclude each other\n");
        return 2;
    }
    if (n.message_file && load_message(&n))
        return 2;
    if (n.message)
        n.message_len = strlen(n.message);
    if (n.file_data) {
        n.message = n.file_data;
        n.message_len = n.file_len;
    }
    if (n.echo_proto && (n.message || n.echo_bytes))
        n.wanted_echo = 1;
    n.ping_count = 0;
    rv = node_run(&n, &o);
    free(n.file_data);
    return rv;
}

int cmd_ping(int argc, char **argv)
{
    node n = {0};
    node_opts o = {0};
    int rv = parse_common(argc, argv, &n, &o, 1);
    if (rv)
        return rv;
    if (n.ping_count <= 0)
        n.ping_count = 1;
    return node_run(&n, &o);
}
