/* Shared pieces of the flare command-line tool. */
#ifndef FLARE_CLI_H
#define FLARE_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "flare/host.h"
#include "flare/kad.h"
#include "flare/keys.h"
#include "flare/multiaddr.h"
#include "flare/peerid.h"

extern int cli_json; /* --json: one JSON object per line, each with "event" */

/* Log level of the human output (-q, -v, FLARE_LOG): error prints errors
 * only, warn adds warnings, info the events (default), debug connection and
 * stream details on stderr. --json output does not depend on it. */
enum { CLI_LOG_ERROR, CLI_LOG_WARN, CLI_LOG_INFO, CLI_LOG_DEBUG };
extern int cli_log;
#define CLI_HUMAN(level) (!cli_json && cli_log >= (level))
int cli_parse_log_level(const char *s); /* -1 if unknown */
void cli_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Usage (tools/flare/help.c). */
void cli_usage(FILE *f);
int cli_command_help(const char *cmd); /* -1: no such command */
int cli_is_command(const char *cmd);
/* Human output of a listen address: an unspecified one (0.0.0.0, ::) is
 * expanded to this machine's interface addresses, then the command to
 * connect from elsewhere (tools/flare/listen_addrs.c). */
void cli_print_listening(const char *full_addr, const char *echo_proto, int relay);
/* After a multiaddr that does not parse: a hint if it looks like host:port. */
void cli_multiaddr_hint(const char *s);

/* Output: a line of JSON (with --json) or a human-readable line. Fields are
 * given as alternating key / value strings; values starting with '\x01' are
 * raw JSON (numbers, arrays, booleans). */
void cli_out(const char *event, const char *human_fmt, ...);
void cli_jsonf(const char *event, ...); /* key, value, ..., NULL */
char *cli_json_str(char *dst, size_t cap, const char *s);

/* Loads or creates the identity: --key FILE (created when missing), --seed
 * HEX (32 bytes), or a fresh random key. */
int cli_load_identity(flare_privkey *k, const char *key_file, const char *seed_hex);

/* Strict numeric flag values (tools/flare/args.c): the whole string, in
 * [min, max]; otherwise a message naming the flag goes to stderr and -1 is
 * returned (the command then exits 2). */
int cli_parse_u64(const char *flag, const char *s, uint64_t min, uint64_t max, uint64_t *out);
int cli_parse_int(const char *flag, const char *s, int min, int max, int *out);
int cli_parse_seconds(const char *flag, const char *s, double min, double max, double *out);
/* A byte count: a whole number, optionally followed by K, M or G (binary
 * multiples), that fits a size_t. */
int cli_parse_bytes(const char *flag, const char *s, size_t *out);
/* A multiaddr to dial: /dns, /dns4 and /dns6 names of TCP addresses are
 * resolved with the system resolver (resolve.c); WebSocket ones are left to
 * the library. */
int cli_resolve_multiaddr(const flare_multiaddr *in, flare_multiaddr *out);
int cli_parse_dial_addr(flare_multiaddr *ma, const char *s);
/* FLARE_RECORD_DIR set: record received traffic as fuzz seeds (record.c). */
void cli_record_from_env(flare_host *h);

/* The DHT options of the node commands (tools/flare/cmd_dht.c):
 * --bootstrap MADDR (repeatable), --dht-mode auto|client|server and
 * --dht-disjoint-paths N. */
#define CLI_DHT_MAX_BOOT  16
#define CLI_DHT_MAX_PATHS 16
typedef struct cli_dht_opts {
    flare_multiaddr boot[CLI_DHT_MAX_BOOT];
    int nboot;
    flare_kad_mode mode;
    int mode_set;
    size_t disjoint_paths; /* 0: the library's default */
} cli_dht_opts;
/* 1 if a is a DHT flag (its value v taken), 0 if not, -1 for a bad value
 * (reported). */
int cli_dht_parse(cli_dht_opts *o, const char *a, const char *v);
/* Starts the DHT when a DHT flag was given (or force). Returns 0 or the
 * error (reported). */
int cli_dht_enable(flare_host *h, const cli_dht_opts *o, int force);
/* The `dht` event. */
void cli_dht_event(const flare_host_event *ev);
/* A `peer` or `provider` event. */
void cli_dht_print_peer(const char *event, const flare_kad_peer *p);
/* The multihash of a CID (v0 or v1) into out. Returns its length or -1. */
int cli_cid_multihash(const char *s, uint8_t *out, size_t cap);

int cmd_id(int argc, char **argv);
int cmd_multiaddr(int argc, char **argv);
int cmd_listen(int argc, char **argv);
int cmd_dial(int argc, char **argv);
int cmd_ping(int argc, char **argv);
int cmd_relay(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_autonat(int argc, char **argv);
int cmd_stun(int argc, char **argv);
int cmd_dht(int argc, char **argv);
int cmd_sim(int argc, char **argv);

#endif
