/* FLARE_RECORD_DIR=DIR: writes what each connection receives as inputs of
 * the host fuzz targets (format: fuzz/host_harness.h), so traffic of real
 * peers (js-libp2p in tests/interop) seeds them. The plaintext after Noise
 * goes to DIR/fuzz_host_conn/, the raw bytes to DIR/fuzz_host_raw/. A debug
 * aid: off (and costing one pointer test per chunk) unless the variable is
 * set. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "flare/io.h"
#include "host/host_int.h"

#define REC_MAX_CONNS 16

typedef struct rec_file {
    uint64_t conn_id;
    int used;
    flare_tstamp last[2];
} rec_file;

static struct {
    char dir[512];
    rec_file f[REC_MAX_CONNS];
} rec;

static rec_file *rec_find(const flare_conn *c)
{
    for (int i = 0; i < REC_MAX_CONNS; i++)
        if (rec.f[i].used && rec.f[i].conn_id == c->id)
            return &rec.f[i];
    for (int i = 0; i < REC_MAX_CONNS; i++)
        if (!rec.f[i].used) {
            rec.f[i].used = 1;
            rec.f[i].conn_id = c->id;
            return &rec.f[i];
        }
    return NULL;
}

/* Appends one SEND record, after RUN records for the time since the last. */
static void rec_append(const flare_conn *c, rec_file *f, int raw, const uint8_t *d, size_t len)
{
    char path[700];
    snprintf(path, sizeof(path), "%s/%s/flare-%ld-%llu", rec.dir,
             raw ? "fuzz_host_raw" : "fuzz_host_conn", (long)getpid(),
             (unsigned long long)f->conn_id);
    flare_tstamp now = flare_io_now(c->host->io);
    FILE *fp = fopen(path, "ab");
    if (!fp)
        return;
    if (!f->last[raw]) {
        /* flags bit 0: no muxer came with Noise (multistream selects yamux) */
        int early = c->sec_st && c->sec->early_muxer && c->sec->early_muxer(c->sec_st);
        uint8_t hdr[4] = {early ? 0 : 1, 2, 1, 1};
        fwrite(hdr, 1, sizeof(hdr), fp);
    } else {
        long units = (long)((now - f->last[raw]) / (5 * FLARE_NS_PER_MS));
        for (; units > 0; units -= 256) {
            uint8_t run[2] = {1, (uint8_t)((units > 256 ? 256 : units) - 1)};
            fwrite(run, 1, 2, fp);
        }
    }
    f->last[raw] = now ? now : 1;
    for (size_t off = 0; off < len;) {
        size_t n = len - off > 65535 ? 65535 : len - off;
        uint8_t h[3] = {0, (uint8_t)(n >> 8), (uint8_t)n};
        fwrite(h, 1, 3, fp);
        fwrite(d + off, 1, n, fp);
        off += n;
    }
    fclose(fp);
}

static void rec_tap(flare_conn *c, int what, const uint8_t *d, size_t len, void *user)
{
    (void)user;
    if (what != FLARE__TAP_RECV_PLAIN && what != FLARE__TAP_RECV_WIRE)
        return;
    rec_file *f = rec_find(c);
    if (f)
        rec_append(c, f, what == FLARE__TAP_RECV_WIRE, d, len);
}

void cli_record_from_env(flare_host *h)
{
    const char *dir = getenv("FLARE_RECORD_DIR");
    if (!dir || !*dir)
        return;
    snprintf(rec.dir, sizeof(rec.dir), "%s", dir);
    char sub[600];
    mkdir(rec.dir, 0755);
    snprintf(sub, sizeof(sub), "%s/fuzz_host_conn", rec.dir);
    mkdir(sub, 0755);
    snprintf(sub, sizeof(sub), "%s/fuzz_host_raw", rec.dir);
    mkdir(sub, 0755);
    h->tap = rec_tap;
    h->tap_user = NULL;
}
