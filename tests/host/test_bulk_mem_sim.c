/* A bulk sender on many streams of one connection, obeying each stream's
 * backpressure (stop at 1, go on at on_writable), must be slowed down by the
 * connection's memory budget, not lose its connection to it: on the
 * simulator, 16 streams each write 4 MiB as fast as they may to a sink over a
 * slow link, with the default per-connection memory limit. */
#include <stdlib.h>

#include "support/test.h"

#include "flare/host.h"
#include "flare/sim.h"
#include "host/host_int.h"

#define MS      FLARE_NS_PER_MS
#define S       FLARE_NS_PER_S
#define NSTREAM 16
#define PER     (4u << 20)
#define CHUNK   (256u << 10)

typedef struct sender {
    flare_stream *s;
    size_t sent;
    int closed, err;
} sender;

typedef struct world {
    size_t received;
    int conn_closed, conn_err;
    sender tx[NSTREAM];
} world;

static uint8_t chunk[CHUNK];

static void on_event(flare_host *h, const flare_host_event *ev, void *user)
{
    world *w = user;
    (void)h;
    if (ev->type == FLARE_HOST_EV_CONN_CLOSED) {
        w->conn_closed++;
        w->conn_err = ev->u.conn.error;
    }
}

static void sink_data(flare_stream *s, const uint8_t *d, size_t n, void *user)
{
    (void)s;
    (void)d;
    ((world *)user)->received += n;
}

/* Writes until the stream says stop (1) or its share is out. */
static void pump(flare_stream *s, sender *x)
{
    while (x->sent < PER) {
        size_t n = PER - x->sent < CHUNK ? PER - x->sent : CHUNK;
        int rv = flare_stream_write(s, chunk, n);
        if (rv < 0) {
            x->err = rv;
            return;
        }
        x->sent += n;
        if (rv == 1)
            return;
    }
    flare_stream_close_write(s);
}

static void tx_open(flare_stream *s, int status, void *user)
{
    sender *x = user;
    if (status == 0)
        pump(s, x);
}

static void tx_writable(flare_stream *s, void *user)
{
    pump(s, user);
}

static void tx_close(flare_stream *s, int err, void *user)
{
    sender *x = user;
    (void)s;
    x->closed = 1;
    if (err && !x->err)
        x->err = err;
}

static flare_host *make_host(flare_sim *sim, const char *name, const char *ip, uint8_t seedb,
                             world *w)
{
    flare_host_settings cfg;
    flare_host_settings_default(&cfg);
    cfg.enable_autonat_client = cfg.enable_autonat_server = 0;
    flare_test_host_spec sp = {.name = name,
                               .lan = flare_sim_internet(sim),
                               .ip = ip,
                               /* Slow enough that the sender's queues fill up. */
                               .link = {.delay = 10 * MS, .rate = 20u << 20},
                               .seed = {seedb},
                               .cfg = &cfg,
                               .on_event = on_event,
                               .user = w};
    flare_sim_host *sh;
    flare_host *h;
    assert_int_equal(flare_test_host_make(sim, &sp, &sh, &h), 0);
    return h;
}

static void test_many_bulk_streams_keep_their_connection(void **state)
{
    (void)state;
    world w = {0};
    flare_sim *sim = flare_sim_new(5, NULL);
    flare_host *b = make_host(sim, "sink", "198.51.100.1", 1, &w);
    flare_host *a = make_host(sim, "sender", "198.51.100.2", 2, &w);
    flare_stream_cbs sink = {.on_data = sink_data};
    assert_int_equal(flare_host_set_handler(b, "/sink", &sink, &w, 0), 0);
    flare_multiaddr ma;
    assert_int_equal(flare_multiaddr_parse(&ma, "/ip4/198.51.100.1/tcp/4001"), 0);
    assert_int_equal(flare_host_listen(b, &ma), 0);
    flare_conn *c = flare_test_dial_ok(sim, a, &ma, 2000);
    flare_stream_cbs tx = {.on_open = tx_open, .on_writable = tx_writable, .on_close = tx_close};
    for (int i = 0; i < NSTREAM; i++)
        assert_int_equal(flare_conn_new_stream(c, "/sink", &tx, &w.tx[i], 0, &w.tx[i].s), 0);
    for (int t = 0; t < 120 && w.received < (size_t)NSTREAM * PER && !w.conn_closed; t++)
        flare_sim_run_for(sim, 1 * S);
    print_message("received %zu of %zu bytes, connection closed %d (%s)\n", w.received,
                  (size_t)NSTREAM * PER, w.conn_closed, flare_strerror(w.conn_err));
    assert_int_equal(w.conn_closed, 0);
    for (int i = 0; i < NSTREAM; i++)
        assert_int_equal(w.tx[i].err, 0);
    assert_int_equal(w.received, (size_t)NSTREAM * PER);
    flare_host_del(a);
    flare_host_del(b);
    flare_sim_del(sim);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_many_bulk_streams_keep_their_connection),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
