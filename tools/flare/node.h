/* The node commands (flare listen, dial, ping, relay): the state shared by
 * cmd_node.c (the host, its events and the commands), node_echo.c (the echo,
 * the echo stream and the message) and node_args.c (their flags). */
#ifndef FLARE_CLI_NODE_H
#define FLARE_CLI_NODE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "cli.h"
#include "flare/buf.h"
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
    int want_webrtc;      /* dial .../p2p-circuit/webrtc/...: the echo waits for that connection */
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
    int no_webrtc;                  /* --no-webrtc: no /p2p-circuit/webrtc */
    int allow_private_addrs;        /* --allow-private-addrs: dial a peer's private addresses */
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
    int keepalive;                       /* seconds; -1: the host's default, 0: off */
    /* --max-*: resource manager limits, applied over the host's defaults. */
    size_t rc_val[16];
    unsigned rc_set;    /* bit i: rc_flags[i] given */
    char security[128]; /* --security as protocol IDs ("" = the host's default) */
    /* Secure WebSockets: --tls-cert/--tls-key (a /tls/ws listener's
     * certificate chain and key, PEM) and --tls-ca (trusted for wss dials
     * instead of the system's store). */
    const char *tls_cert, *tls_key, *tls_ca;
} node_opts;

/* cmd_node.c */
char *ma_str(const flare_multiaddr *ma, char *buf, size_t cap);
char *pid_str(const flare_peerid *p, char *buf, size_t cap);
void node_stop(node *n, int code);
void maybe_done(node *n);

/* node_echo.c */
extern const flare_stream_cbs echo_server;
void start_echo(node *n, flare_conn *c);
int load_message(node *n);

/* node_args.c */
int parse_common(int argc, char **argv, node *n, node_opts *o, int need_target);
int apply_policy(flare_host *h, const node_opts *o);
void apply_rc_flags(const node_opts *o, flare_host_settings *cfg);

#endif
