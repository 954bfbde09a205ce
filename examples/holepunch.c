/*
 * holepunch.c - the Flare flow in one process over loopback TCP:
 *
 *   R  a public relay (Circuit Relay v2 server)
 *   B  a "private" node that reserves a slot on R
 *   A  a dialer that reaches B at B's relayed address
 *      /ip4/.../p2p/R/p2p-circuit/p2p/B
 *
 * Once A's relayed (limited) connection reaches B, B starts DCUtR on it:
 * both exchange addresses, measure the RTT through the relay and dial each
 * other at the same time, so that two NATs would both see outgoing traffic
 * and let the other side in. The outcome arrives at B as
 * FLARE_HOST_EV_HOLEPUNCH (error 0 and the direct connection, or an error
 * and a reason) and every step as FLARE_HOST_EV_HOLEPUNCH_STEP.
 *
 * On loopback there is no NAT to punch through, and by default a host does
 * not dial the private/loopback addresses a peer hands it (a peer must not
 * make us knock on ports of our own LAN): dial_private_peer_addrs = 1 below
 * lets this demo try. Whatever happens (a direct connection, a failure, or
 * no punch at all) is printed as it is; the example then exits.
 *
 * Build: cc holepunch.c $(pkg-config --cflags --libs flare) -o holepunch
 * Exit status: 0 when A reached B through the relay (whatever the punch
 * did), 1 otherwise.
 */
#include <flare/flare.h>

#include <stdio.h>

#define DEADLINE_MS 15000

typedef struct app {
    uv_loop_t loop;
    uv_timer_t deadline;
    flare_uvio *uvio;
    flare_host *relay, *b, *a;
    int reserving, relayed;
    int exit_code;
} app;

static void finish(app *a, int code)
{
    a->exit_code = code;
    uv_stop(&a->loop);
}

static const char *addr_str(const flare_multiaddr *ma, char *buf, size_t cap)
{
    if (!ma || flare_multiaddr_to_string(ma, buf, cap) < 0)
        snprintf(buf, cap, "?");
    return buf;
}

/* A's dial through the relay finished. The connection is "limited": only
 * protocols registered with FLARE_HANDLER_ALLOW_LIMITED run on it, until
 * DCUtR replaces it with a direct one. */
static void on_dialed(flare_host *h, flare_conn *conn, int status, void *user)
{
    app *a = user;
    char str[FLARE_MULTIADDR_STR_MAX];
    (void)h;
    if (status) {
        fprintf(stderr, "holepunch: A could not reach B via the relay: %s\n",
                flare_strerror(status));
        finish(a, 1);
        return;
    }
    a->relayed = 1;
    printf("holepunch: A reached B %s (%s)\n",
           flare_conn_is_limited(conn) ? "through the relay" : "directly",
           addr_str(flare_conn_remote_addr(conn), str, sizeof(str)));
    /* B now runs DCUtR on this connection: see b_event. The punch takes a
     * few RTTs and up to three attempts; the deadline bounds the wait. */
}

static void relay_event(flare_host *h, const flare_host_event *ev, void *user)
{
    app *a = user;
    if (ev->type != FLARE_HOST_EV_LISTENING || a->reserving)
        return;
    flare_multiaddr relay_addr = *ev->u.listen.addr;
    int rv = flare_multiaddr_with_peerid(&relay_addr, flare_host_peerid(h));
    if (rv == 0)
        rv = flare_host_relay_reserve(a->b, &relay_addr);
    if (rv) {
        fprintf(stderr, "holepunch: B cannot reserve: %s\n", flare_strerror(rv));
        finish(a, 1);
    }
    a->reserving = 1;
}

static void b_event(flare_host *h, const flare_host_event *ev, void *user)
{
    app *a = user;
    char str[FLARE_MULTIADDR_STR_MAX];
    int rv;
    (void)h;
    switch (ev->type) {
    case FLARE_HOST_EV_RESERVATION_OK:
        /* B is reachable via R: A dials that relayed address. */
        printf("holepunch: B reserved on the relay: %s\n",
               addr_str(ev->u.reservation.addr, str, sizeof(str)));
        rv = flare_host_dial(a->a, ev->u.reservation.addr, NULL, on_dialed, a);
        if (rv) {
            fprintf(stderr, "holepunch: A cannot dial: %s\n", flare_strerror(rv));
            finish(a, 1);
        }
        break;
    case FLARE_HOST_EV_RESERVATION_FAILED:
        fprintf(stderr, "holepunch: reservation failed: %s\n",
                flare_strerror(ev->u.reservation.error));
        finish(a, 1);
        break;
    case FLARE_HOST_EV_HOLEPUNCH_STEP:
        printf("holepunch:   step %-14s attempt %u%s%s\n",
               ev->u.holepunch_step.step ? ev->u.holepunch_step.step : "?",
               ev->u.holepunch_step.attempt, ev->u.holepunch_step.reason ? "  reason: " : "",
               ev->u.holepunch_step.reason ? ev->u.holepunch_step.reason : "");
        break;
    case FLARE_HOST_EV_HOLEPUNCH:
        if (ev->u.holepunch.error == 0)
            printf("holepunch: DIRECT connection after %u attempt(s): %s\n",
                   ev->u.holepunch.attempt, addr_str(ev->u.holepunch.addr, str, sizeof(str)));
        else
            printf("holepunch: no direct connection: %s%s%s\n",
                   flare_strerror(ev->u.holepunch.error), ev->u.holepunch.reason ? " - " : "",
                   ev->u.holepunch.reason ? ev->u.holepunch.reason : "");
        /* skip-no-addrs: B had no address to offer A. DCUtR offers the
         * external addresses other peers observed for B (the address
         * manager's, see flare_host_external_addrs), public ones only
         * unless dial_private_peer_addrs; in a short loopback run B has
         * none yet, the expected outcome here. Behind real NATs, identify
         * gives B its observed public addresses and the punch proceeds. */
        finish(a, 0); /* the outcome is known, good or bad */
        break;
    default:
        break;
    }
}

static void on_deadline(uv_timer_t *t)
{
    app *a = t->data;
    if (a->relayed)
        printf("holepunch: no hole punch outcome within %d ms (DCUtR did not run to the end)\n",
               DEADLINE_MS);
    else
        fprintf(stderr, "holepunch: A never reached B within %d ms\n", DEADLINE_MS);
    finish(a, a->relayed ? 0 : 1);
}

static int make_host(app *a, flare_host **out, flare_host_event_cb cb)
{
    flare_privkey key;
    flare_host_settings cfg;
    int rv = flare_privkey_generate(&key, flare_os_rng());
    if (rv)
        return rv;
    flare_host_settings_default(&cfg); /* DCUtR is on by default */
    cfg.enable_autonat_client = 0;
    cfg.dial_private_peer_addrs = 1; /* loopback only: see the top of this file */
    rv = flare_host_new(out, flare_uvio_io(a->uvio), &key, &cfg, NULL);
    flare_privkey_clear(&key);
    if (rv == 0 && cb)
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
        rv = make_host(&a, &a.b, b_event);
    if (rv == 0)
        rv = make_host(&a, &a.a, NULL);
    if (rv == 0)
        rv = flare_host_enable_relay_server(a.relay, NULL);
    if (rv == 0)
        rv = flare_multiaddr_parse(&listen, "/ip4/127.0.0.1/tcp/0");
    /* B and A listen too: DCUtR dials from the listen port (SO_REUSEPORT). */
    if (rv == 0)
        rv = flare_host_listen(a.relay, &listen);
    if (rv == 0)
        rv = flare_host_listen(a.b, &listen);
    if (rv == 0)
        rv = flare_host_listen(a.a, &listen);

    uv_timer_init(&a.loop, &a.deadline);
    a.deadline.data = &a;
    if (rv == 0) {
        uv_timer_start(&a.deadline, on_deadline, DEADLINE_MS, 0);
        uv_run(&a.loop, UV_RUN_DEFAULT);
    } else {
        fprintf(stderr, "holepunch: set-up failed: %s\n", flare_strerror(rv));
    }

    flare_host_del(a.a);
    flare_host_del(a.b);
    flare_host_del(a.relay);
    flare_uvio_del(a.uvio);
    uv_close((uv_handle_t *)&a.deadline, NULL);
    uv_run(&a.loop, UV_RUN_DEFAULT);
    uv_loop_close(&a.loop);
    return a.exit_code;
}
