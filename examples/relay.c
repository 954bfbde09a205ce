/*
 * relay.c - a Circuit Relay v2 relay and a private node that reserves a
 * slot on it, both in this process over loopback TCP. When the relay grants
 * the reservation, the private node prints its relayed address
 *
 *   /ip4/127.0.0.1/tcp/PORT/p2p/RELAY/p2p-circuit/p2p/NODE
 *
 * which any libp2p peer can dial to reach it through the relay (see
 * holepunch.c for that dial and the hole punch that follows).
 *
 * The relay is an ordinary host with flare_host_enable_relay_server; the
 * private node calls flare_host_relay_reserve, and the host then keeps the
 * reservation by itself (refreshes it, re-reserves after a drop) and reports
 * progress as FLARE_HOST_EV_RESERVATION_* events.
 *
 * Build: cc relay.c $(pkg-config --cflags --libs flare) -o relay
 * Exit status: 0 once the relayed address is printed, 1 otherwise.
 */
#include <flare/flare.h>

#include <stdio.h>

#define DEADLINE_MS 10000

typedef struct app {
    uv_loop_t loop;
    uv_timer_t deadline;
    flare_uvio *uvio;
    flare_host *relay, *node;
    int reserving;
    int exit_code;
} app;

static void finish(app *a, int code)
{
    a->exit_code = code;
    uv_stop(&a->loop);
}

static void print_addr(const char *what, const flare_multiaddr *ma)
{
    char str[FLARE_MULTIADDR_STR_MAX];
    if (flare_multiaddr_to_string(ma, str, sizeof(str)) < 0)
        snprintf(str, sizeof(str), "?");
    printf("relay: %s %s\n", what, str);
}

/* The relay listens: the private node reserves on it. The relay's address
 * must end with /p2p/RELAY so the node knows whom it talks to. */
static void relay_event(flare_host *h, const flare_host_event *ev, void *user)
{
    app *a = user;
    if (ev->type == FLARE_HOST_EV_RELAY_RESERVED) {
        printf("relay: the relay granted a reservation\n");
        return;
    }
    if (ev->type != FLARE_HOST_EV_LISTENING || a->reserving)
        return;
    flare_multiaddr relay_addr = *ev->u.listen.addr;
    int rv = flare_multiaddr_with_peerid(&relay_addr, flare_host_peerid(h));
    if (rv == 0) {
        print_addr("relay listening on", &relay_addr);
        rv = flare_host_relay_reserve(a->node, &relay_addr);
    }
    if (rv) {
        fprintf(stderr, "relay: cannot reserve: %s\n", flare_strerror(rv));
        finish(a, 1);
    }
    a->reserving = 1;
}

/* The private node's view: the outcome of its reservation. */
static void node_event(flare_host *h, const flare_host_event *ev, void *user)
{
    app *a = user;
    flare_multiaddr addrs[4];
    switch (ev->type) {
    case FLARE_HOST_EV_RESERVATION_OK:
        print_addr("private node reachable at", ev->u.reservation.addr);
        /* The same addresses are also available at any time: */
        printf("relay: the node has %zu relayed address(es)\n",
               flare_host_relay_addrs(h, addrs, sizeof(addrs) / sizeof(addrs[0])));
        finish(a, 0);
        break;
    case FLARE_HOST_EV_RESERVATION_FAILED:
        /* The host retries with backoff by itself; the example just stops. */
        fprintf(stderr, "relay: reservation failed: %s%s%s\n",
                flare_strerror(ev->u.reservation.error),
                ev->u.reservation.status ? ", relay said " : "",
                ev->u.reservation.status ? ev->u.reservation.status : "");
        finish(a, 1);
        break;
    default:
        break;
    }
}

static void on_deadline(uv_timer_t *t)
{
    fprintf(stderr, "relay: no reservation within %d ms\n", DEADLINE_MS);
    finish(t->data, 1);
}

static int make_host(app *a, flare_host **out, flare_host_event_cb cb)
{
    flare_privkey key;
    flare_host_settings cfg;
    int rv = flare_privkey_generate(&key, flare_os_rng());
    if (rv)
        return rv;
    flare_host_settings_default(&cfg);
    cfg.enable_autonat_client = 0; /* nobody else to ask on loopback */
    rv = flare_host_new(out, flare_uvio_io(a->uvio), &key, &cfg, NULL);
    flare_privkey_clear(&key);
    if (rv == 0)
        flare_host_set_event_cb(*out, cb, a);
    return rv;
}

int main(void)
{
    app a = {.exit_code = 1};
    flare_multiaddr listen;

    uv_loop_init(&a.loop);
    int rv = flare_uvio_new(&a.uvio, &a.loop, NULL);
    if (rv == 0)
        rv = make_host(&a, &a.relay, relay_event);
    if (rv == 0)
        rv = make_host(&a, &a.node, node_event);
    /* NULL: go-libp2p's default relay limits (see flare/relay_server.h). */
    if (rv == 0)
        rv = flare_host_enable_relay_server(a.relay, NULL);
    if (rv == 0)
        rv = flare_multiaddr_parse(&listen, "/ip4/127.0.0.1/tcp/0");
    if (rv == 0)
        rv = flare_host_listen(a.relay, &listen);
    /* The private node listens too: DCUtR (holepunch.c) dials from there. */
    if (rv == 0)
        rv = flare_host_listen(a.node, &listen);

    uv_timer_init(&a.loop, &a.deadline);
    a.deadline.data = &a;
    if (rv == 0) {
        uv_timer_start(&a.deadline, on_deadline, DEADLINE_MS, 0);
        uv_run(&a.loop, UV_RUN_DEFAULT);
    } else {
        fprintf(stderr, "relay: set-up failed: %s\n", flare_strerror(rv));
    }

    flare_host_del(a.node);
    flare_host_del(a.relay);
    flare_uvio_del(a.uvio);
    uv_close((uv_handle_t *)&a.deadline, NULL);
    uv_run(&a.loop, UV_RUN_DEFAULT);
    uv_loop_close(&a.loop);
    return a.exit_code;
}
