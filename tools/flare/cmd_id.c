/* flare id, flare multiaddr, and identity loading. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "flare/multibase.h"

static int parse_seed(const char *hex, uint8_t seed[32])
{
    if (strlen(hex) != 64)
        return FLARE_ERR_INVALID_ARG;
    for (int i = 0; i < 32; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            return FLARE_ERR_INVALID_ARG;
        seed[i] = (uint8_t)v;
    }
    return 0;
}

/* A secret others can read is no longer only ours. The key still loads
 * (refusing would strand setups that copied keys around), with a warning. */
static void warn_key_mode(const char *path, unsigned mode)
{
    char m[16];
    snprintf(m, sizeof(m), "%04o", mode & 07777u);
    fprintf(stderr, "flare: warning: key file %s is readable by others (mode %s); run chmod 600\n",
            path, m);
    if (cli_json)
        cli_jsonf("warning", "where", "key", "keyFile", path, "mode", m, "warning",
                  "key file readable by group or others", NULL);
}

int cli_load_identity(flare_privkey *k, const char *key_file, const char *seed_hex)
{
    if (seed_hex) {
        uint8_t seed[32];
        int rv = parse_seed(seed_hex, seed);
        if (rv) {
            fprintf(stderr, "flare: --seed takes 64 hex digits\n");
            return rv;
        }
        return flare_privkey_from_seed(k, seed);
    }
    if (key_file) {
        unsigned mode = 0;
        int rv = flare_privkey_load_mode(k, key_file, &mode);
        if (rv == 0 && (mode & 077))
            warn_key_mode(key_file, mode);
        if (rv != FLARE_ERR_NOT_FOUND) {
            if (rv)
                fprintf(stderr, "flare: cannot load %s: %s\n", key_file, flare_strerror(rv));
            return rv;
        }
        rv = flare_privkey_generate(k, flare_os_rng());
        if (rv == 0)
            rv = flare_privkey_save(k, key_file);
        if (rv)
            fprintf(stderr, "flare: cannot create %s: %s\n", key_file, flare_strerror(rv));
        return rv;
    }
    return flare_privkey_generate(k, flare_os_rng());
}

int cmd_id(int argc, char **argv)
{
    const char *key_file = NULL, *seed = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--key") == 0 && i + 1 < argc)
            key_file = argv[++i];
        else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc)
            seed = argv[++i];
        else if (strcmp(argv[i], "--json") != 0) {
            fprintf(stderr, "usage: flare id [--key FILE | --seed HEX] [--json]\n");
            return 2;
        }
    }
    flare_privkey k;
    if (cli_load_identity(&k, key_file, seed))
        return 1;
    flare_peerid id;
    char pid[FLARE_PEERID_STR_MAX], cid[FLARE_PEERID_STR_MAX], pub[2 * FLARE_PUBKEY_PROTO_MAX];
    uint8_t enc[FLARE_PUBKEY_PROTO_MAX];
    int n = flare_pubkey_encode(&k.pub, enc, sizeof(enc));
    if (n < 0 || flare_peerid_from_pubkey(&id, &k.pub) ||
        flare_peerid_to_string(&id, pid, sizeof(pid)) < 0 ||
        flare_peerid_to_cid(&id, cid, sizeof(cid)) < 0 ||
        flare_multibase_encode(FLARE_MULTIBASE_BASE64, enc, (size_t)n, pub, sizeof(pub)) < 0) {
        fprintf(stderr, "flare: cannot encode the identity\n");
        return 1;
    }
    flare_privkey_clear(&k);
    if (cli_json)
        cli_jsonf("id", "peerId", pid, "cid", cid, "keyType", "Ed25519", "publicKey", pub + 1,
                  "keyFile", key_file, NULL);
    else
        printf("peer id:    %s\ncid:        %s\nkey type:   Ed25519\npublic key: %s (base64 "
               "protobuf)\n%s%s%s",
               pid, cid, pub + 1, key_file ? "key file:   " : "", key_file ? key_file : "",
               key_file ? "\n" : "");
    return 0;
}

int cmd_multiaddr(int argc, char **argv)
{
    const char *addr = NULL;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--json") != 0)
            addr = argv[i];
    if (!addr) {
        fprintf(stderr, "usage: flare multiaddr ADDR [--json]\n");
        return 2;
    }
    flare_multiaddr ma;
    int rv = flare_multiaddr_parse(&ma, addr);
    if (rv) {
        if (cli_json)
            cli_jsonf("error", "input", addr, "error", flare_strerror(rv), NULL);
        else
            fprintf(stderr, "flare: invalid multiaddr: %s\n", flare_strerror(rv));
        cli_multiaddr_hint(addr);
        return 1;
    }
    char text[1024], hex[2 * FLARE_MULTIADDR_MAX + 1], comps[4096];
    flare_multiaddr_to_string(&ma, text, sizeof(text));
    for (size_t i = 0; i < ma.len; i++)
        sprintf(hex + 2 * i, "%02x", ma.bytes[i]);
    hex[2 * ma.len] = 0;
    size_t off = 0, co = 0;
    flare_ma_component c;
    comps[co++] = '\x01';
    comps[co++] = '[';
    int first = 1;
    if (!cli_json)
        printf("multiaddr:  %s\nbinary:     %s\ncomponents:\n", text, hex);
    while (flare_multiaddr_next(&ma, &off, &c) == 1) {
        char val[512] = "", q1[600], q2[600];
        flare_multiaddr_component_to_string(&c, val, sizeof(val));
        if (cli_json)
            co += (size_t)snprintf(comps + co, sizeof(comps) - co,
                                   "%s{\"protocol\":%s,\"code\":%llu,\"value\":%s}",
                                   first ? "" : ",", cli_json_str(q1, sizeof(q1), c.name),
                                   (unsigned long long)c.code, cli_json_str(q2, sizeof(q2), val));
        else
            printf("  %-14s %s\n", c.name, val);
        first = 0;
    }
    snprintf(comps + co, sizeof(comps) - co, "]");
    const char *cls = flare_ma_class_name(flare_multiaddr_classify(&ma));
    int relayed = flare_multiaddr_is_relayed(&ma);
    flare_peerid pid;
    char ps[FLARE_PEERID_STR_MAX] = "";
    int has_peer = flare_multiaddr_get_peerid(&ma, &pid) == 0;
    if (has_peer)
        flare_peerid_to_string(&pid, ps, sizeof(ps));
    if (cli_json) {
        cli_jsonf("multiaddr", "multiaddr", text, "bytes", hex, "components", comps, "class", cls,
                  "relayed", relayed ? "\001true" : "\001false", "peerId", has_peer ? ps : NULL,
                  NULL);
    } else {
        printf("class:      %s\nrelayed:    %s\n", cls, relayed ? "yes" : "no");
        if (has_peer)
            printf("peer id:    %s\n", ps);
    }
    return 0;
}
