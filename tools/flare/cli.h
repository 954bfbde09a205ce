/* Shared pieces of the flare command-line tool. */
#ifndef FLARE_CLI_H
#define FLARE_CLI_H

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
