/* Helpers shared by the relay benchmarks: clock, identities, fd limit and
 * /proc readings of a process (RSS, CPU time, open descriptors).
 * Header-only (each benchmark is one executable). */
#ifndef FLARE_BENCH_PROC_H
#define FLARE_BENCH_PROC_H

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <unistd.h>
#include <uv.h>

#include "flare/keys.h"
#include "flare/peerid.h"

static inline double bench_now_s(void)
{
    return (double)uv_hrtime() / 1e9;
}

/* A deterministic identity per (tag, id): benchmarks know peer IDs in advance. */
static inline void bench_key(flare_privkey *k, uint8_t tag, uint32_t id)
{
    uint8_t seed[32] = {tag};
    memcpy(seed + 1, &id, sizeof(id));
    flare_privkey_from_seed(k, seed);
}

static inline void bench_peer(flare_peerid *p, uint8_t tag, uint32_t id)
{
    flare_privkey k;
    bench_key(&k, tag, id);
    flare_peerid_from_pubkey(p, &k.pub);
}

/* Soft RLIMIT_NOFILE up to the hard one (children inherit it). */
static inline void bench_raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static inline long bench_rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

/* utime + stime in seconds. */
static inline double bench_cpu_s(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t len = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[len] = 0;
    char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    unsigned long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Open file descriptors (entries of /proc/PID/fd), -1 if unreadable. */
static inline long bench_fd_count(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return -1;
    long n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

#endif
