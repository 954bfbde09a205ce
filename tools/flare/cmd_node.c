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
#include "node.h"

char *ma_str(const flare_multiaddr *ma, char *buf, size_t cap)
{
    if (!ma || flare_multiaddr_to_string(ma, buf, cap) < 0)
        snprintf(buf, cap, "?");
    return buf;
}

char *pid_str(const flare_peerid *p, char *buf, size_t cap)
{
    if (!p || p->len == 0 || flare_peerid_to_string(p, buf, cap) < 0)
        snprintf(buf, cap, "?");
    return buf;
}

void node_stop(node *n, int code)
{
    if (n->stopping)
        return;
    n->stopping = 1;
    n->exit_code = code;
    uv_stop(&n->loop);
}

/* The echo goes out once identified and, with --wait-holepunch, once the
 * punch has ended: over the direct connection when there is one. */
static void maybe_echo(node *n)
{
    if (!n->wanted_echo || n->echo_started || !n->identified || n->stopping)
        return;
    if (n->wait_holepunch && !n->holepunch_done && !n->echo_bytes)
        return; /* a long echo starts at once: it is to outlive the punch */
    flare_conn *c = flare_host_conn_to(n->host, &n->target);
    if (c && n->want_webrtc && flare_conn_is_limited(c))
        return; /* identify ran on the relayed connection; WebRTC comes next */
    if (!c) {
        fprintf(stderr, "echo: no connection to the peer\n");
        node_stop(n, 1);
        return;
    }
    start_echo(n, c);
}

void maybe_done(node *n)
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
        if (n->have_target && flare_peerid_equal(ev->u.identified.peer, &n->target)) {
            /* A /webrtc dial: pings and the echo wait for the WebRTC
             * connection, identified after the relayed one. */
            flare_conn *c = flare_host_conn_to(h, &n->target);
            int later = n->want_webrtc && c && flare_conn_is_limited(c);
            if (n->identified && !n->want_webrtc)
                break;
            n->identified = 1;
            if (n->ping_count && !later && n->pings_sent == 0 &&
                !uv_is_active((uv_handle_t *)&n->ping_timer))
                uv_timer_start(&n->ping_timer, ping_tick, 0, 1000);
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
        break;
    }
    case FLARE_HOST_EV_HOLEPUNCH: {
        char att[32], rtt[32];
        snprintf(att, sizeof(att), "\001%u", ev->u.holepunch.attempt);
        snprintf(rtt, sizeof(rtt), "\001%.3f", (double)ev->u.holepunch.rtt / 1e6);
        if (cli_json)
            cli_jsonf("holepunch", "peerId", pid_str(ev->u.holepunch.peer, pid, sizeof(pid)),
                      "role", ev->u.holepunch.initiator ? "initiator" : "responder", "result",
                      ev->u.holepunch.error ? "failed" : "direct", "addr",
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
    if (n->no_webrtc)
        cfg.enable_webrtc = 0;
    cfg.dial_private_peer_addrs = n->allow_private_addrs;
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
    if (o->keepalive >= 0)
        cfg.keepalive_interval = (flare_tstamp)o->keepalive * FLARE_NS_PER_S;
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
        n->want_webrtc =
            rv == 0 && flare_multiaddr_is_relayed(&ma) && flare_multiaddr_has(&ma, FLARE_MA_WEBRTC);
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
