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

/* ma = /ip4/IP/<transport>, then /p2p/PEER unless peer is NULL. */
static int transport_addr(flare_multiaddr *ma, const char *ip, const char *transport,
                          const flare_peerid *peer)
{
    char s[128];
    snprintf(s, sizeof(s), "/ip4/%s/%s", ip, transport);
    int rv = flare_multiaddr_parse(ma, s);
    return rv || !peer ? rv : flare_multiaddr_with_peerid(ma, peer);
}

static int world_node(flare_sim_world *w, flare_sim_world_node *n, const char *name,
                      flare_sim_lan *lan, const char *ip, uint8_t seed, const char *transport,
                      const flare_mem *mem)
{
    n->name = name;
    flare_test_host_spec sp = {.name = name,
                               .lan = lan,
                               .ip = ip,
                               .seed = {seed},
                               .on_event = flare_sim_world_on_event,
                               .user = n,
                               .mem = mem};
    flare_multiaddr ma;
    int rv = flare_test_host_make(w->sim, &sp, &n->sh, &n->h);
    if (rv == 0)
        rv = transport_addr(&ma, ip, transport, NULL);
    return rv ? rv : flare_host_listen(n->h, &ma);
}

/* Runs w's simulation in 100 ms steps until *flag is set, 10 s at most. */
static void world_run_until(flare_sim_world *w, const int *flag)
{
    for (int i = 0; i < 100 && !*flag; i++)
        flare_sim_run_for(w->sim, 100 * FLARE_NS_PER_MS);
}

int flare_test_world_setup(flare_sim_world *w, const flare_test_world_spec *spec)
{
    flare_sim_nat_config def;
    flare_sim_nat_config_default(&def);
    memset(w, 0, sizeof(*w));
    if (!(w->sim = flare_sim_new(5, NULL)))
        return FLARE_ERR_NOMEM;
    flare_sim_lan *inet = flare_sim_internet(w->sim);
    flare_sim_lan *la = flare_sim_lan_new(w->sim, "lan-a");
    flare_sim_lan *lb = flare_sim_lan_new(w->sim, "lan-b");
    w->nat_a = flare_sim_nat_new(w->sim, "nat-a", inet, "203.0.113.1", la, "10.0.1.1",
                                 spec->nat_a ? spec->nat_a : &def);
    w->nat_b = flare_sim_nat_new(w->sim, "nat-b", inet, "203.0.113.2", lb, "10.0.2.1",
                                 spec->nat_b ? spec->nat_b : &def);
    if (!w->nat_a || !w->nat_b)
        return FLARE_ERR_NOMEM;
    flare_sim_link nl = {.delay = 25 * FLARE_NS_PER_MS};
    flare_sim_nat_link_set(w->nat_a, &nl);
    flare_sim_nat_link_set(w->nat_b, &nl);
    const char *t = spec->transport;
    int rv = world_node(w, &w->r, "R", inet, FLARE_SIM_WORLD_RELAY_IP, 1, t, NULL);
    if (rv)
        return rv;
    flare_sim_link_set(w->r.sh, &nl);
    if ((rv = world_node(w, &w->a, "A", la, "10.0.1.2", 2, t, NULL)) ||
        (rv = world_node(w, &w->b, "B", lb, "10.0.2.2", 3, t, spec->mem_b)) ||
        (rv = flare_host_enable_relay_server(w->r.h, NULL)))
        return rv;
    flare_multiaddr rma;
    if ((rv = transport_addr(&rma, FLARE_SIM_WORLD_RELAY_IP, t, flare_host_peerid(w->r.h))) ||
        (rv = flare_host_relay_reserve(w->b.h, &rma)))
        return rv;
    flare_host_dial(w->a.h, &rma, NULL, NULL, NULL);
    world_run_until(w, &w->b.rsv_ok);
    if (!w->b.rsv_ok)
        return FLARE_ERR_TIMEOUT;
    flare_sim_run_for(w->sim, 500 * FLARE_NS_PER_MS);
    if ((rv = flare_sim_world_dial_relayed(w)))
        return rv;
    world_run_until(w, &w->dial_calls);
    return !w->dial_calls ? FLARE_ERR_TIMEOUT : w->dial_status;
}

void flare_test_node_event(flare_host *h, const flare_host_event *ev, void *node)
{
    flare_test_node *n = node;
    (void)h;
    switch (ev->type) {
    case FLARE_HOST_EV_CONN_OPENED:
        n->opened++;
        break;
    case FLARE_HOST_EV_CONN_CLOSED:
        n->closed++;
        n->closed_err = ev->u.conn.error;
        break;
    case FLARE_HOST_EV_IDENTIFIED:
        n->identified++;
        break;
    case FLARE_HOST_EV_OBSERVED_ADDR:
        n->observed++;
        n->observed_addr = *ev->u.observed.addr;
        break;
    case FLARE_HOST_EV_PING:
        n->pings++;
        n->rtt = ev->u.ping.rtt;
        break;
    default:
        break;
    }
}

int flare_test_node_make(flare_sim *sim, flare_sim_lan *lan, flare_test_node *n, const char *name,
                         const char *ip, uint8_t seed, flare_tstamp delay,
                         const flare_host_settings *cfg)
{
    memset(n, 0, sizeof(*n));
    n->ip = ip;
    flare_test_host_spec sp = {.name = name,
                               .lan = lan,
                               .ip = ip,
                               .link = {.delay = delay},
                               .seed = {seed},
                               .cfg = cfg,
                               .on_event = flare_test_node_event,
                               .user = n};
    return flare_test_host_make(sim, &sp, &n->sh, &n->h);
}

void flare_test_run_ms(flare_sim *sim, long ms)
{
    flare_sim_run_for(sim, (flare_tstamp)ms * FLARE_NS_PER_MS);
}

int flare_test_pair_make(flare_sim *sim, flare_test_pair *p, flare_host_event_cb on_event,
                         void *user)
{
    flare_test_host_spec spa = {.name = "A",
                                .lan = flare_sim_internet(sim),
                                .ip = "198.51.100.1",
                                .seed = {1},
                                .on_event = on_event,
                                .user = user};
    flare_test_host_spec spb = {.name = "B",
                                .lan = flare_sim_internet(sim),
                                .ip = "198.51.100.2",
                                .seed = {2},
                                .listen_port = 4001};
    memset(p, 0, sizeof(*p));
    int rv = flare_test_host_make(sim, &spa, &p->sha, &p->a);
    if (!rv)
        rv = flare_test_host_make(sim, &spb, &p->shb, &p->b);
    if (!rv)
        rv = flare_test_tcp_addr(&p->bma, "198.51.100.2", 4001, flare_host_peerid(p->b));
    return rv;
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

/* ---- bulk echo client ---------------------------------------------------- */

int flare_test_bulk_init(flare_test_bulk *b, size_t len, size_t chunk)
{
    memset(b, 0, sizeof(*b));
    b->len = len;
    b->chunk = chunk;
    b->match = 1;
    if (!(b->data = malloc(len ? len : 1)))
        return FLARE_ERR_NOMEM;
    for (size_t i = 0; i < len; i++)
        b->data[i] = (uint8_t)(i * 7 + (i >> 10));
    return 0;
}

void flare_test_bulk_free(flare_test_bulk *b)
{
    free(b->data);
    b->data = NULL;
}

static void bulk_push(flare_test_bulk *b)
{
    while (b->off < b->len) {
        size_t n = b->len - b->off < b->chunk ? b->len - b->off : b->chunk;
        int rv = flare_stream_write(b->s, b->data + b->off, n);
        if (rv < 0) {
            b->write_err = rv;
            return;
        }
        b->off += n;
        if (rv == 1)
            return; /* on_writable resumes */
    }
    flare_stream_close_write(b->s);
}

static void bulk_open(flare_stream *s, int status, void *user)
{
    flare_test_bulk *b = user;
    (void)s;
    b->open_status = status;
    b->opened = status == 0;
    if (b->opened)
        bulk_push(b);
}

static void bulk_data(flare_stream *s, const uint8_t *d, size_t len, void *user)
{
    flare_test_bulk *b = user;
    (void)s;
    if (b->got + len > b->len || memcmp(d, b->data + b->got, len) != 0)
        b->match = 0;
    b->got += len;
}

static void bulk_eof(flare_stream *s, void *user)
{
    (void)s;
    ((flare_test_bulk *)user)->eof = 1;
}

static void bulk_writable(flare_stream *s, void *user)
{
    (void)s;
    bulk_push(user);
}

const flare_stream_cbs flare_test_bulk_cbs = {
    .on_open = bulk_open, .on_data = bulk_data, .on_eof = bulk_eof, .on_writable = bulk_writable};
