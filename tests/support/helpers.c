#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support/helpers.h"

flare_multiaddr flare_test_ma(const char *s)
{
    flare_multiaddr m;
    if (flare_multiaddr_parse(&m, s) != 0) {
        fprintf(stderr, "not a multiaddr: %s\n", s);
        abort();
    }
    return m;
}

flare_peerid flare_test_pid(unsigned n)
{
    uint8_t b[34] = {0x12,      0x20, (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8),
                     (uint8_t)n};
    flare_peerid id;
    if (flare_peerid_from_bytes(&id, b, sizeof(b)) != 0)
        abort();
    return id;
}

/* ---- allocator: a size header before each block ------------------------------------ */

static int h_fails(flare_test_heap *h)
{
    return ++h->calls == h->fail_at;
}

static void *h_raw(size_t n, flare_test_heap *h)
{
    size_t *p = malloc(n + sizeof(max_align_t));
    if (!p)
        return NULL;
    *p = n;
    h->blocks++;
    h->bytes += (long)n;
    if (h->bytes > h->peak)
        h->peak = h->bytes;
    return (char *)p + sizeof(max_align_t);
}

static void *h_malloc(size_t n, void *u)
{
    return h_fails(u) ? NULL : h_raw(n, u);
}

static void h_free(void *q, void *u)
{
    if (!q)
        return;
    size_t *p = (size_t *)(void *)((char *)q - sizeof(max_align_t));
    flare_test_heap *h = u;
    h->bytes -= (long)*p;
    h->blocks--;
    free(p);
}

static void *h_calloc(size_t k, size_t n, void *u)
{
    if (n && k > (size_t)-1 / n)
        return NULL;
    void *q = h_malloc(k * n, u);
    if (q)
        memset(q, 0, k * n);
    return q;
}

/* A failed realloc leaves the old block as it was. */
static void *h_realloc(void *q, size_t n, void *u)
{
    if (h_fails(u))
        return NULL;
    void *r = h_raw(n, u);
    if (!r || !q)
        return r;
    size_t old = *(size_t *)(void *)((char *)q - sizeof(max_align_t));
    memcpy(r, q, old < n ? old : n);
    h_free(q, u);
    return r;
}

flare_mem flare_test_heap_mem(flare_test_heap *heap)
{
    return (flare_mem){heap, h_malloc, h_free, h_calloc, h_realloc};
}

/* ---- hosts on the simulator --------------------------------------------------------- */

void flare_test_settings_default(flare_host_settings *cfg)
{
    flare_host_settings_default(cfg);
    cfg->doc_addrs_public = 1;
}

int flare_test_tcp_addr(flare_multiaddr *ma, const char *ip, int port, const flare_peerid *peer)
{
    char s[96];
    snprintf(s, sizeof(s), "/ip4/%s/tcp/%d", ip, port);
    int rv = flare_multiaddr_parse(ma, s);
    return rv || !peer ? rv : flare_multiaddr_with_peerid(ma, peer);
}

int flare_test_host_make(flare_sim *sim, const flare_test_host_spec *sp, flare_sim_host **sh,
                         flare_host **h)
{
    *sh = flare_sim_host_new(sim, sp->name);
    if (!*sh)
        return FLARE_ERR_NOMEM;
    int rv = flare_sim_host_add_addr(*sh, sp->lan, sp->ip);
    if (rv)
        return rv;
    flare_sim_link_set(*sh, &sp->link);
    flare_privkey k;
    if ((rv = flare_privkey_from_seed(&k, sp->seed)) != 0)
        return rv;
    flare_host_settings cfg;
    if (sp->cfg)
        cfg = *sp->cfg;
    else
        flare_test_settings_default(&cfg);
    if ((rv = flare_host_new(h, flare_sim_host_io(*sh), &k, &cfg, sp->mem)) != 0)
        return rv;
    flare_host_set_event_cb(*h, sp->on_event, sp->user);
    if (!sp->listen_port)
        return 0;
    flare_multiaddr ma;
    if ((rv = flare_test_tcp_addr(&ma, sp->ip, sp->listen_port, NULL)) != 0)
        return rv;
    return flare_host_listen(*h, &ma);
}

void flare_test_run_ms(flare_sim *sim, long ms)
{
    flare_sim_run_for(sim, (flare_tstamp)ms * FLARE_NS_PER_MS);
}

void flare_test_dial_cb(flare_host *h, flare_conn *c, int status, void *user)
{
    flare_test_dial *d = user;
    (void)h;
    d->calls++;
    d->status = status;
    d->conn = c;
}

/* ---- bare sockets ------------------------------------------------------------------- */

static void raw_connect(flare_io_sock *s, int status, void *user)
{
    flare_test_raw *r = user;
    r->connected = status == 0;
    if (status) {
        r->s = NULL;
        r->closed = 1;
    } else if (r->len) {
        r->io->ops->sock_write(s, r->payload, r->len);
    }
}

static void raw_read(flare_io_sock *s, const uint8_t *d, size_t len, void *user)
{
    flare_test_raw *r = user;
    (void)s;
    (void)d;
    if (len == 0)
        r->eof = 1;
}

static void raw_close(flare_io_sock *s, int reason, void *user)
{
    flare_test_raw *r = user;
    (void)s;
    (void)reason;
    r->closed = 1;
    r->s = NULL;
}

static const flare_io_sock_cbs raw_cbs = {
    .on_connect = raw_connect, .on_read = raw_read, .on_close = raw_close};

int flare_test_raw_dial(flare_test_raw *r, flare_io *io, const flare_ipaddr *target,
                        const void *payload, size_t len)
{
    memset(r, 0, sizeof(*r));
    r->io = io;
    r->payload = payload;
    r->len = len;
    return io->ops->dial(io, NULL, target, 0, &raw_cbs, r, &r->s);
}

void flare_test_raw_close(flare_test_raw *r)
{
    if (r->s)
        r->io->ops->sock_close(r->s, 1);
}

/* ---- echo service ------------------------------------------------------------------- */

static void echo_data(flare_stream *s, const uint8_t *d, size_t len, void *user)
{
    int rv = flare_stream_write(s, d, len);
    if (rv != 0 && rv != 1 && user)
        ++*(int *)user;
    if (rv == 1)
        flare_stream_pause(s, 1); /* backpressure: read again once drained */
}

static void echo_writable(flare_stream *s, void *user)
{
    (void)user;
    flare_stream_pause(s, 0);
}

static void echo_eof(flare_stream *s, void *user)
{
    (void)user;
    flare_stream_close_write(s);
}

const flare_stream_cbs flare_test_echo_cbs = {
    .on_data = echo_data, .on_eof = echo_eof, .on_writable = echo_writable};
