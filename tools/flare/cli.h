/* Shared pieces of the flare command-line tool. */
#ifndef FLARE_CLI_H
#define FLARE_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "flare/host.h"
#include "flare/keys.h"
#include "flare/multiaddr.h"
#include "flare/peerid.h"

extern int cli_json; /* --json: one JSON object per line, each with "event" */

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
/* FLARE_RECORD_DIR set: record received traffic as fuzz seeds (record.c). */
void cli_record_from_env(flare_host *h);

int cmd_id(int argc, char **argv);
int cmd_multiaddr(int argc, char **argv);
int cmd_listen(int argc, char **argv);
int cmd_dial(int argc, char **argv);
int cmd_ping(int argc, char **argv);
int cmd_relay(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_autonat(int argc, char **argv);

#endif
