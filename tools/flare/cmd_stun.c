/* flare stun SERVER: asks a STUN server (HOST:PORT, IP, or a multiaddr
 * /ip4|ip6/ADDR/udp/PORT) for our reflexive address with one Binding
 * transaction (RFC 8489 retransmissions), prints it and exits. */
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "cli.h"
#include "flare/stun.h"
#include "flare/uvio.h"

typedef struct stun_cli {
    uv_loop_t loop;
    flare_uvio *uvio;
    flare_io *io;
    flare_io_udp *udp;
    flare_io_timer *timer, *deadline;
    flare_ipaddr server;
    flare_stun_txn txn;
    char server_str[FLARE_IPADDR_STR_MAX];
    int done, exit_code;
} stun_cli;

static void finish(stun_cli *c, int code)
{
    if (c->done)
        return;
    c->done = 1;
    c->exit_code = code;
    uv_stop(&c->loop);
}

static void fail(stun_cli *c, const char *msg)
{
    if (cli_json)
        cli_jsonf("error", "where", "stun", "addr", c->server_str, "error", msg, NULL);
    else
        fprintf(stderr, "flare: stun %s: %s\n", c->server_str, msg);
    finish(c, 1);
}

static void pump(stun_cli *c)
{
    uint8_t out[FLARE_STUN_TXN_MAX_REQ];
    flare_tstamp now = flare_io_now(c->io);
    int n = flare_stun_txn_poll_send(&c->txn, now, out, sizeof(out));
    if (n == FLARE_ERR_TIMEOUT) {
        fail(c, flare_strerror(n));
        return;
    }
    if (n > 0) {
        cli_debug("stun: request to %s (%u)", c->server_str, c->txn.sends);
        c->io->ops->udp_send(c->udp, &c->server, out, (size_t)n);
    }
    flare_tstamp at = flare_stun_txn_expiry(&c->txn);
    if (at != FLARE_TSTAMP_NEVER)
        c->io->ops->timer_start(c->timer, at);
}

static void on_timer(flare_io_timer *t, void *user)
{
    (void)t;
    pump(user);
}

static void on_deadline(flare_io_timer *t, void *user)
{
    (void)t;
    fail(user, flare_strerror(FLARE_ERR_TIMEOUT));
}

static void on_recv(flare_io_udp *u, const flare_ipaddr *from, const uint8_t *data, size_t len,
                    void *user)
{
    stun_cli *c = user;
    (void)u;
    flare_stun_msg m;
    if (c->done || !flare_ipaddr_equal(from, &c->server) || flare_stun_parse(&m, data, len) != 0 ||
        !flare_stun_txn_match(&c->txn, &m))
        return; /* not the answer: keep waiting */
    double rtt = (double)(flare_io_now(c->io) - c->txn.last_sent) / 1e6;
    if (m.cls == FLARE_STUN_ERROR) {
        int code = 0;
        char msg[64];
        flare_stun_get_error(&m, &code, NULL, NULL);
        snprintf(msg, sizeof(msg), "error response %d", code);
        fail(c, msg);
        return;
    }
    flare_ipaddr mapped;
    if (flare_stun_get_addr(&m, FLARE_STUN_ATTR_XOR_MAPPED_ADDRESS, &mapped) != 0 &&
        flare_stun_get_addr(&m, FLARE_STUN_ATTR_MAPPED_ADDRESS, &mapped) != 0) {
        fail(c, "no mapped address in the response");
        return;
    }
    char ms[FLARE_IPADDR_STR_MAX], rtts[32];
    flare_ipaddr_to_string(&mapped, ms, sizeof(ms));
    snprintf(rtts, sizeof(rtts), "\001%.3f", rtt);
    if (cli_json)
        cli_jsonf("stun", "server", c->server_str, "mapped", ms, "rtt_ms", rtts, NULL);
    else if (CLI_HUMAN(CLI_LOG_ERROR))
        printf("mapped address %s (server %s, rtt %.1f ms)\n", ms, c->server_str, rtt);
    finish(c, 0);
}

/* SERVER as a multiaddr, an IP[:PORT], [IPv6]:PORT or NAME[:PORT]. */
static int resolve(const char *s, flare_ipaddr *out)
{
    if (s[0] == '/') {
        flare_multiaddr ma;
        int proto = 0;
        if (flare_multiaddr_parse(&ma, s) || flare_multiaddr_to_ipaddr(&ma, out, &proto) ||
            proto != FLARE_MA_UDP)
            return -1;
        return 0;
    }
    if (flare_ipaddr_parse(out, s) == 0) {
        if (!out->port)
            out->port = FLARE_STUN_DEFAULT_PORT;
        return 0;
    }
    char host[256];
    const char *colon = strrchr(s, ':');
    size_t hl = colon ? (size_t)(colon - s) : strlen(s);
    if (hl == 0 || hl >= sizeof(host))
        return -1;
    memcpy(host, s, hl);
    host[hl] = 0;
    uint64_t port = FLARE_STUN_DEFAULT_PORT;
    if (colon && cli_parse_u64("SERVER port", colon + 1, 1, 65535, &port))
        return -1;
    struct addrinfo hints = {.ai_socktype = SOCK_DGRAM}, *res = NULL;
    if (getaddrinfo(host, NULL, &hints, &res) != 0 || !res)
        return -1;
    char ip[INET6_ADDRSTRLEN];
    int rv = getnameinfo(res->ai_addr, res->ai_addrlen, ip, sizeof(ip), NULL, 0, NI_NUMERICHOST);
    freeaddrinfo(res);
    if (rv != 0 || flare_ipaddr_parse(out, ip) != 0)
        return -1;
    out->port = (uint16_t)port;
    return 0;
}

static int run(stun_cli *c, double timeout_s)
{
    flare_ipaddr any = {.family = c->server.family};
    int rv = c->io->ops->udp_bind(c->io, &any, 0, on_recv, c, &c->udp);
    if (rv == 0)
        rv = c->io->ops->timer_new(c->io, on_timer, c, &c->timer);
    if (rv == 0)
        rv = c->io->ops->timer_new(c->io, on_deadline, c, &c->deadline);
    uint8_t txid[FLARE_STUN_TXID_LEN], req[64];
    flare_rng rng = flare_os_rng();
    rng.fn(txid, sizeof(txid), rng.user);
    flare_stun_builder b;
    flare_stun_build_init(&b, req, sizeof(req), FLARE_STUN_BINDING, FLARE_STUN_REQUEST, txid);
    flare_stun_add_fingerprint(&b);
    int n = flare_stun_build_finish(&b);
    flare_tstamp now = flare_io_now(c->io);
    if (rv == 0)
        rv = n < 0 ? n : flare_stun_txn_start(&c->txn, NULL, req, (size_t)n, now);
    if (rv) {
        fail(c, flare_strerror(rv));
        return 1;
    }
    c->io->ops->timer_start(c->deadline, now + (flare_tstamp)(timeout_s * 1e9));
    pump(c);
    uv_run(&c->loop, UV_RUN_DEFAULT);
    return c->exit_code;
}

int cmd_stun(int argc, char **argv)
{
    const char *server = NULL;
    double timeout_s = 10;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--json") == 0)
            continue;
        if (strcmp(a, "--timeout") == 0 && i + 1 < argc) {
            if (cli_parse_seconds(a, argv[++i], 0.001, 86400, &timeout_s))
                return 2;
        } else if (a[0] != '-' && !server) {
            server = a;
        } else {
            fprintf(stderr, "flare: unexpected argument '%s'\n", a);
            return 2;
        }
    }
    if (!server) {
        fprintf(stderr, "usage: flare stun SERVER [--timeout S] [--json]\n");
        return 2;
    }
    static stun_cli c;
    if (resolve(server, &c.server) != 0) {
        fprintf(stderr, "flare: stun: '%s' is not HOST:PORT or /ip4|ip6/ADDR/udp/PORT\n", server);
        return 2;
    }
    flare_ipaddr_to_string(&c.server, c.server_str, sizeof(c.server_str));
    uv_loop_init(&c.loop);
    if (flare_uvio_new(&c.uvio, &c.loop, NULL) != 0)
        return 1;
    c.io = flare_uvio_io(c.uvio);
    int code = run(&c, timeout_s);
    flare_uvio_del(c.uvio);
    uv_run(&c.loop, UV_RUN_DEFAULT);
    uv_loop_close(&c.loop);
    return code;
}
