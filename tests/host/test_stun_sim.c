/* The STUN server of every host on the simulated network: a client behind a
 * cone NAT asks a public node's QUIC port (shared by first byte) and learns
 * its NAT mapping; QUIC keeps working on that port; a flood from one source
 * is rate limited; malformed and authenticated requests get no answer; a
 * dedicated STUN socket serves a node without a QUIC listener; a host with
 * the server turned off stays silent. */
#include "support/test.h"

#include "flare/host.h"
#include "flare/sim.h"
#include "flare/stun.h"
#include "support/helpers.h"

#define MS FLARE_NS_PER_MS

typedef struct client {
    flare_io *io;
    flare_io_udp *u;
    int answers, bad;
    flare_ipaddr mapped;
    uint8_t txid[12];
} client;

static void on_recv(flare_io_udp *u, const flare_ipaddr *from, const uint8_t *data, size_t len,
                    void *user)
{
    client *c = user;
    (void)u;
    (void)from;
    flare_stun_msg m;
    if (!flare_stun_is_stun(data, len))
        return; /* QUIC's answer to junk on its port (a stateless reset) */
    if (flare_stun_parse(&m, data, len) != 0 || m.cls != FLARE_STUN_SUCCESS ||
        flare_stun_get_addr(&m, FLARE_STUN_ATTR_XOR_MAPPED_ADDRESS, &c->mapped) != 0) {
        c->bad++;
        return;
    }
    c->answers++;
}

static void client_open(client *c, flare_sim_host *sh, const char *local)
{
    memset(c, 0, sizeof(*c));
    c->io = flare_sim_host_io(sh);
    flare_ipaddr a;
    assert_int_equal(flare_ipaddr_parse(&a, local), 0);
    assert_int_equal(c->io->ops->udp_bind(c->io, &a, 0, on_recv, c, &c->u), 0);
}

static void send_req(client *c, const flare_ipaddr *to, uint8_t id, int integrity)
{
    uint8_t b[128];
    c->txid[0] = id;
    flare_stun_builder bl;
    flare_stun_build_init(&bl, b, sizeof(b), FLARE_STUN_BINDING, FLARE_STUN_REQUEST, c->txid);
    if (integrity)
        flare_stun_add_integrity(&bl, (const uint8_t *)"pw", 2);
    flare_stun_add_fingerprint(&bl);
    int n = flare_stun_build_finish(&bl);
    assert_true(n > 0);
    assert_int_equal(c->io->ops->udp_send(c->u, to, b, (size_t)n), 0);
}

static void node(flare_sim *sim, flare_sim_lan *lan, const char *name, const char *ip, uint8_t seed,
                 flare_sim_host **sh, flare_host **h)
{
    flare_test_host_spec sp = {
        .name = name, .lan = lan, .ip = ip, .link = {.delay = 10 * MS}, .seed = {seed}};
    assert_int_equal(flare_test_host_make(sim, &sp, sh, h), 0);
}

static void test_stun_on_quic_port(void **st)
{
    (void)st;
    flare_sim *sim = flare_sim_new(3, NULL);
    flare_sim_lan *lan = flare_sim_lan_new(sim, "lan-b");
    flare_sim_nat_config cfg;
    flare_sim_nat_config_default(&cfg);
    cfg.port_preservation = 0;
    assert_non_null(flare_sim_nat_new(sim, "nat-b", flare_sim_internet(sim), "203.0.113.9", lan,
                                      "10.0.0.1", &cfg));
    flare_sim_host *sa, *sb;
    flare_host *a, *b;
    node(sim, flare_sim_internet(sim), "a", "198.51.100.1", 1, &sa, &a);
    node(sim, lan, "b", "10.0.0.2", 2, &sb, &b);
    flare_multiaddr ma;
    assert_int_equal(flare_multiaddr_parse(&ma, "/ip4/198.51.100.1/udp/4001/quic-v1"), 0);
    assert_int_equal(flare_host_listen(a, &ma), 0);

    client c;
    client_open(&c, sb, "10.0.0.2:5000");
    flare_ipaddr srv;
    flare_ipaddr_parse(&srv, "198.51.100.1:4001");
    send_req(&c, &srv, 1, 0);
    flare_test_run_ms(sim, 200);
    assert_int_equal(c.answers, 1);
    assert_int_equal(c.bad, 0);
    /* The NAT's mapping of 10.0.0.2:5000, not our own address. */
    char s[64];
    flare_ipaddr_to_string(&c.mapped, s, sizeof(s));
    assert_true(strncmp(s, "203.0.113.9:", 12) == 0);
    assert_int_not_equal(c.mapped.port, 5000);

    /* QUIC still works on the shared port. */
    assert_int_equal(flare_multiaddr_with_peerid(&ma, flare_host_peerid(a)), 0);
    flare_test_dial r = {0};
    assert_int_equal(flare_host_dial(b, &ma, NULL, flare_test_dial_cb, &r), 0);
    flare_test_run_ms(sim, 2000);
    assert_int_equal(r.status, 0);

    /* A flood from one source: the burst (20) is answered, the rest not. */
    flare_stun_server_stats ss0, ss1;
    assert_int_equal(flare_host_stun_server_stats(a, &ss0), 0);
    c.answers = 0;
    for (int i = 0; i < 200; i++)
        send_req(&c, &srv, (uint8_t)i, 0);
    flare_test_run_ms(sim, 200);
    assert_true(c.answers >= 20 && c.answers <= 24);
    assert_int_equal(flare_host_stun_server_stats(a, &ss1), 0);
    assert_true(ss1.rate_limited - ss0.rate_limited >= 170);

    /* Malformed and authenticated requests: silence. */
    flare_test_run_ms(sim, 5000); /* the bucket refills */
    c.answers = 0;
    uint8_t junk[24] = {0x00, 0x01, 0x00, 0x08, 0x21, 0x12, 0xa4, 0x42};
    c.io->ops->udp_send(c.u, &srv, junk, sizeof(junk)); /* length field wrong */
    c.io->ops->udp_send(c.u, &srv, junk, 3);
    send_req(&c, &srv, 9, 1);
    flare_test_run_ms(sim, 200);
    assert_int_equal(c.answers, 0);
    assert_int_equal(c.bad, 0);

    /* Turned off: silence; on again: an answer. */
    assert_int_equal(flare_host_stun_server_enable(a, 0), 0);
    send_req(&c, &srv, 10, 0);
    flare_test_run_ms(sim, 200);
    assert_int_equal(c.answers, 0);
    assert_int_equal(flare_host_stun_server_enable(a, 1), 0);
    send_req(&c, &srv, 11, 0);
    flare_test_run_ms(sim, 200);
    assert_int_equal(c.answers, 1);
    c.io->ops->udp_close(c.u);
    flare_host_del(a);
    flare_host_del(b);
    flare_sim_del(sim);
}

static void test_stun_dedicated_port(void **st)
{
    (void)st;
    flare_sim *sim = flare_sim_new(4, NULL);
    flare_sim_host *sa, *sb;
    flare_host *a, *b;
    node(sim, flare_sim_internet(sim), "a", "198.51.100.1", 1, &sa, &a);
    node(sim, flare_sim_internet(sim), "b", "198.51.100.2", 2, &sb, &b);
    flare_ipaddr local, bound;
    flare_ipaddr_parse(&local, "198.51.100.1:3478");
    assert_int_equal(flare_host_stun_listen(a, &local, &bound), 0);
    assert_true(flare_ipaddr_equal(&local, &bound));
    assert_int_equal(flare_host_stun_listen(a, &local, NULL), FLARE_ERR_EXISTS);
    client c;
    client_open(&c, sb, "198.51.100.2:6000");
    send_req(&c, &local, 1, 0);
    flare_test_run_ms(sim, 200);
    assert_int_equal(c.answers, 1);
    char s[64];
    flare_ipaddr_to_string(&c.mapped, s, sizeof(s));
    assert_string_equal(s, "198.51.100.2:6000");
    c.io->ops->udp_close(c.u);
    flare_host_del(a);
    flare_host_del(b);
    flare_sim_del(sim);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stun_on_quic_port),
        cmocka_unit_test(test_stun_dedicated_port),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
