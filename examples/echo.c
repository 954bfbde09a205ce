/*
 * echo.c - two flare hosts in one process: a server that echoes
 * /echo/1.0.0 streams and a client that dials it over loopback TCP, sends a
 * message, half-closes, and checks that the same bytes come back.
 *
 * It shows the set-up order every flare application follows (docs/guide.md):
 *   libuv loop -> flare_uvio driver -> identity key -> host config ->
 *   flare_host_new -> event callback and stream handlers -> listen/dial ->
 *   uv_run -> teardown (hosts, then the driver, then the loop).
 *
 * Build against an installed flare:
 *   cc echo.c $(pkg-config --cflags --libs flare) -o echo
 * Exit status: 0 when the echo came back intact, 1 otherwise.
 */
#include <flare/flare.h>

#include <stdio.h>
#include <string.h>

#define ECHO_PROTO  "/echo/1.0.0"
#define DEADLINE_MS 10000 /* the whole run, so the example always ends */

static const char message[] = "hello from flare";

typedef struct app {
    uv_loop_t loop;
    uv_timer_t deadline;
    flare_uvio *uvio;
    flare_host *server, *client;
    char reply[256];
    size_t reply_len;
    int dialed;
    int exit_code;
} app;

static void finish(app *a, int code)
{
    a->exit_code = code;
    uv_stop(&a->loop); /* uv_run returns; main tears everything down */
}

/* ---- server side: echo every byte back, close our half on EOF ---------- */

static void srv_data(flare_stream *s, const uint8_t *data, size_t len, void *user)
{
    (void)user;
    /* 1 means "accepted, but the queue is long": a real server would pause
     * reading (flare_stream_pause) until on_writable. Negative: give up. */
    if (flare_stream_write(s, data, len) < 0)
        flare_stream_reset(s);
}

static void srv_eof(flare_stream *s, void *user)
{
    (void)user;
    flare_stream_close_write(s); /* the client finished: so do we */
}

static const flare_stream_cbs server_cbs = {
    .on_data = srv_data,
    .on_eof = srv_eof,
};

/* ---- client side: one stream, one message ------------------------------ */

static void cli_open(flare_stream *s, int status, void *user)
{
    (void)s;
    (void)user;
    if (status)
        fprintf(stderr, "echo: stream negotiation failed: %s\n", flare_strerror(status));
}

static void cli_data(flare_stream *s, const uint8_t *data, size_t len, void *user)
{
    app *a = user;
    (void)s;
    if (len > sizeof(a->reply) - a->reply_len)
        len = sizeof(a->reply) - a->reply_len; /* never trust a peer's length */
    memcpy(a->reply + a->reply_len, data, len);
    a->reply_len += len;
}

/* on_close is the last callback of a stream: the handle is dead afterwards. */
static void cli_close(flare_stream *s, int error, void *user)
{
    app *a = user;
    (void)s;
    int ok = error == 0 && a->reply_len == strlen(message) &&
             memcmp(a->reply, message, a->reply_len) == 0;
    printf("echo: sent \"%s\", got back \"%.*s\" (%s)\n", message, (int)a->reply_len, a->reply,
           ok      ? "ok"
           : error ? flare_strerror(error)
                   : "mismatch");
    finish(a, ok ? 0 : 1);
}

static const flare_stream_cbs client_cbs = {
    .on_open = cli_open,
    .on_data = cli_data,
    .on_close = cli_close,
};

/* The dial finished: open the stream on the new connection. Data written
 * before on_open travels with the protocol proposal (multistream 0-RTT). */
static void on_dialed(flare_host *h, flare_conn *conn, int status, void *user)
{
    app *a = user;
    flare_stream *s;
    (void)h;
    if (status) {
        fprintf(stderr, "echo: dial failed: %s\n", flare_strerror(status));
        finish(a, 1);
        return;
    }
    int rv = flare_conn_new_stream(conn, ECHO_PROTO, &client_cbs, a, 0, &s);
    if (rv == 0)
        rv = flare_stream_write(s, (const uint8_t *)message, strlen(message));
    if (rv >= 0)
        rv = flare_stream_close_write(s); /* FIN after the message */
    if (rv < 0) {
        fprintf(stderr, "echo: stream: %s\n", flare_strerror(rv));
        finish(a, 1);
    }
}

/* Host events of the server: once it listens, the client dials it. */
static void server_event(flare_host *h, const flare_host_event *ev, void *user)
{
    app *a = user;
    char str[FLARE_MULTIADDR_STR_MAX];
    if (ev->type == FLARE_HOST_EV_LISTEN_FAILED) {
        fprintf(stderr, "echo: listen failed: %s\n", flare_strerror(ev->u.listen.error));
        finish(a, 1);
        return;
    }
    if (ev->type != FLARE_HOST_EV_LISTENING || a->dialed)
        return;
    /* The dial address names the peer we expect (/p2p/ID): Noise then
     * refuses anyone else answering on that port. */
    flare_multiaddr target = *ev->u.listen.addr;
    int rv = flare_multiaddr_with_peerid(&target, flare_host_peerid(h));
    if (rv == 0)
        rv = flare_multiaddr_to_string(&target, str, sizeof(str)) < 0 ? FLARE_ERR_INVALID_ARG : 0;
    if (rv == 0) {
        printf("echo: server listening on %s\n", str);
        rv = flare_host_dial(a->client, &target, NULL, on_dialed, a);
    }
    if (rv) {
        fprintf(stderr, "echo: cannot dial: %s\n", flare_strerror(rv));
        finish(a, 1);
    }
    a->dialed = 1;
}

static void on_deadline(uv_timer_t *t)
{
    app *a = t->data;
    fprintf(stderr, "echo: no echo within %d ms\n", DEADLINE_MS);
    finish(a, 1);
}

/* A host with a fresh random Ed25519 identity. The key is copied by the
 * host, so ours is wiped right away. */
static int make_host(app *a, flare_host **out)
{
    flare_privkey key;
    flare_host_settings cfg;
    int rv = flare_privkey_generate(&key, flare_os_rng());
    if (rv)
        return rv;
    flare_host_settings_default(&cfg); /* always start from the defaults */
    cfg.enable_autonat_client = 0;     /* a two-host demo has nobody to ask */
    rv = flare_host_new(out, flare_uvio_io(a->uvio), &key, &cfg, NULL);
    flare_privkey_clear(&key);
    return rv;
}

int main(void)
{
    app a = {.exit_code = 1};
    flare_multiaddr listen;

    printf("echo: flare %s\n", flare_version());
    uv_loop_init(&a.loop);
    int rv = flare_uvio_new(&a.uvio, &a.loop, NULL); /* NULL: libc allocator */
    if (rv == 0)
        rv = make_host(&a, &a.server);
    if (rv == 0)
        rv = make_host(&a, &a.client);
    if (rv == 0) {
        flare_host_set_event_cb(a.server, server_event, &a);
        rv = flare_host_set_handler(a.server, ECHO_PROTO, &server_cbs, &a, 0);
    }
    if (rv == 0)
        rv = flare_multiaddr_parse(&listen, "/ip4/127.0.0.1/tcp/0"); /* any free port */
    if (rv == 0)
        rv = flare_host_listen(a.server, &listen);

    uv_timer_init(&a.loop, &a.deadline);
    a.deadline.data = &a;
    if (rv == 0) {
        uv_timer_start(&a.deadline, on_deadline, DEADLINE_MS, 0);
        uv_run(&a.loop, UV_RUN_DEFAULT); /* every callback runs in here */
    } else {
        fprintf(stderr, "echo: set-up failed: %s\n", flare_strerror(rv));
    }

    /* Teardown: hosts first (they close their connections and call nothing
     * afterwards), then the driver, then let libuv finish closing handles. */
    flare_host_del(a.client);
    flare_host_del(a.server);
    flare_uvio_del(a.uvio);
    uv_close((uv_handle_t *)&a.deadline, NULL);
    uv_run(&a.loop, UV_RUN_DEFAULT);
    uv_loop_close(&a.loop);
    return a.exit_code;
}
