/* The echo of the node commands: serving an echo protocol (listen), sending
 * a message or a file over it (dial --message, --message-file) and the long
 * paced echo stream (dial --echo-bytes) that may move across a hole punch. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "node.h"

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

const flare_stream_cbs echo_server = {.on_open = echo_srv_open,
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

void start_echo(node *n, flare_conn *c)
{
    flare_stream *s;
    n->echo_started = 1;
    if (n->echo_bytes) {
        start_echo_stream(n, c);
        return;
    }
    ma_str(flare_conn_remote_addr(c), n->echo_addr, sizeof(n->echo_addr));
    n->echo_relayed = flare_conn_is_limited(c); /* a /p2p-circuit/webrtc address is direct */
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

/* --message-file: the whole file (at most the echo reply buffer, 1 MiB). */
int load_message(node *n)
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
