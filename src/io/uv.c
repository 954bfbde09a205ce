/* libuv driver: the driver object, time, randomness, timers, deferred
 * callbacks, helpers shared by TCP and UDP, and teardown. */
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <sodium.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/mem.h"
#include "io/uv_int.h"

/* --- helpers -------------------------------------------------------------- */

int flare__uv_to_sockaddr(const flare_ipaddr *a, struct sockaddr_storage *ss, socklen_t *len)
{
    memset(ss, 0, sizeof(*ss));
    if (a->family == 4) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons(a->port);
        memcpy(&s4->sin_addr, a->ip, 4);
        *len = sizeof(*s4);
        return 0;
    }
    if (a->family == 6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(a->port);
        memcpy(&s6->sin6_addr, a->ip, 16);
        *len = sizeof(*s6);
        return 0;
    }
    return FLARE_ERR_INVALID_ARG;
}

int flare__uv_from_sockaddr(const struct sockaddr *sa, flare_ipaddr *a)
{
    memset(a, 0, sizeof(*a));
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        a->family = 4;
        a->port = ntohs(s4->sin_port);
        memcpy(a->ip, &s4->sin_addr, 4);
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        a->family = 6;
        a->port = ntohs(s6->sin6_port);
        memcpy(a->ip, &s6->sin6_addr, 16);
        return 0;
    }
    return FLARE_ERR_UNSUPPORTED;
}

int flare__uv_err(int uverr)
{
    switch (uverr) {
    case 0:
        return 0;
    case UV_ECONNREFUSED:
        return FLARE_ERR_REFUSED;
    case UV_ETIMEDOUT:
        return FLARE_ERR_TIMEOUT;
    case UV_EADDRINUSE:
        return FLARE_ERR_ADDR_IN_USE;
    case UV_EADDRNOTAVAIL:
        return FLARE_ERR_ADDR_NOT_AVAIL;
    case UV_EACCES:
    case UV_EPERM:
        return FLARE_ERR_PERMISSION;
    case UV_ENETUNREACH:
    case UV_EHOSTUNREACH:
        return FLARE_ERR_UNREACHABLE;
    case UV_ECONNRESET:
    case UV_EPIPE:
        return FLARE_ERR_RESET;
    case UV_ENOMEM:
        return FLARE_ERR_NOMEM;
    default:
        return FLARE_ERR_IO;
    }
}

static int sys_err(void)
{
    return flare__uv_err(uv_translate_sys_error(errno));
}

int flare__uv_socket(int family, int type, const flare_ipaddr *local, unsigned flags)
{
    int af = family == 6 ? AF_INET6 : AF_INET;
    int fd = socket(af, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return sys_err();
    int one = 1;
    if ((flags & (FLARE_IO_REUSE | FLARE__UV_REUSEADDR_ONLY)) &&
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0)
        goto fail;
    if ((flags & FLARE_IO_REUSE) &&
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0)
        goto fail;
    /* v6-only so [::]:p and 0.0.0.0:p can be bound side by side. */
    if (af == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) != 0)
        goto fail;
    if (local && local->family) {
        struct sockaddr_storage ss;
        socklen_t len;
        if (flare__uv_to_sockaddr(local, &ss, &len) != 0) {
            close(fd);
            return FLARE_ERR_INVALID_ARG;
        }
        if (bind(fd, (struct sockaddr *)&ss, len) != 0)
            goto fail;
    }
    return fd;
fail : {
    int err = sys_err();
    close(fd);
    return err;
}
}

void flare__uv_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    flare__uv_obj *o = h->data;
    buf->base = (char *)o->u->rbuf;
    buf->len = sizeof(o->u->rbuf);
}

/* --- object bookkeeping --------------------------------------------------- */

static void maybe_free(flare_uvio *u)
{
    if (u->dying && u->nhandles == 0) {
        const flare_mem *mem = u->mem;
        flare__free(mem, u->heap);
        flare__free(mem, u);
    }
}

void flare__uv_release(flare_uvio *u)
{
    u->nhandles--;
    maybe_free(u);
}

void flare__uv_obj_add(flare_uvio *u, flare__uv_obj *o, uv_handle_t *h)
{
    o->u = u;
    o->h = h;
    h->data = o;
    o->next = u->objs.next;
    o->prev = &u->objs;
    u->objs.next->prev = o;
    u->objs.next = o;
    u->nhandles++;
}

static void obj_closed(uv_handle_t *h)
{
    flare__uv_obj *o = h->data;
    flare_uvio *u = o->u;
    o->prev->next = o->next;
    o->next->prev = o->prev;
    flare__free(u->mem, o);
    u->nhandles--;
    maybe_free(u);
}

void flare__uv_obj_close(flare__uv_obj *o)
{
    o->gone = 1;
    if (!uv_is_closing(o->h))
        uv_close(o->h, obj_closed);
}

/* --- deferred work and timers --------------------------------------------- */

static void idle_cb(uv_idle_t *h);

static void idle_update(flare_uvio *u)
{
    if (u->dying)
        return;
    if (u->defer_head || u->timer_due)
        uv_idle_start(&u->idle, idle_cb);
}

static void run_deferred(flare_uvio *u)
{
    flare_io_sock *s = u->defer_head;
    u->defer_head = u->defer_tail = NULL;
    while (s) {
        flare_io_sock *next = s->defer_next;
        flare__uv_sock_deferred(s);
        s = next;
    }
}

void flare__uv_defer(flare_uvio *u, flare_io_sock *s, int status)
{
    s->defer_status = status;
    s->deferred = 1;
    s->defer_next = NULL;
    if (u->defer_tail)
        u->defer_tail->defer_next = s;
    else
        u->defer_head = s;
    u->defer_tail = s;
    idle_update(u);
}

static int timer_less(const flare_io_timer *a, const flare_io_timer *b)
{
    return a->deadline < b->deadline || (a->deadline == b->deadline && a->seq < b->seq);
}

static void heap_set(flare_uvio *u, size_t i, flare_io_timer *t)
{
    u->heap[i] = t;
    t->idx = i;
}

static void heap_up(flare_uvio *u, size_t i)
{
    flare_io_timer *t = u->heap[i];
    while (i > 0 && timer_less(t, u->heap[(i - 1) / 2])) {
        heap_set(u, i, u->heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    heap_set(u, i, t);
}

static void heap_down(flare_uvio *u, size_t i)
{
    flare_io_timer *t = u->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= u->nheap)
            break;
        if (c + 1 < u->nheap && timer_less(u->heap[c + 1], u->heap[c]))
            c++;
        if (!timer_less(u->heap[c], t))
            break;
        heap_set(u, i, u->heap[c]);
        i = c;
    }
    heap_set(u, i, t);
}

static void heap_remove(flare_uvio *u, flare_io_timer *t)
{
    size_t i = t->idx;
    t->idx = SIZE_MAX;
    flare_io_timer *last = u->heap[--u->nheap];
    if (i == u->nheap)
        return;
    heap_set(u, i, last);
    heap_up(u, i);
    heap_down(u, last->idx);
}

static void wake_cb(uv_timer_t *h);

/* Arms the libuv timer for the earliest flare timer. A due timer goes to the
 * idle handle instead of a zero timeout: libuv 1.44 re-runs zero timers
 * started from a timer callback in the same phase, which could spin. */
static void timers_arm(flare_uvio *u)
{
    u->timer_due = 0;
    if (u->nheap == 0) {
        uv_timer_stop(&u->timer);
        return;
    }
    flare_tstamp deadline = u->heap[0]->deadline;
    if (deadline <= uv_hrtime()) {
        u->timer_due = 1;
        uv_timer_stop(&u->timer);
        idle_update(u);
        return;
    }
    /* uv timers count from uv_now(), a (coarse) ms clock never ahead of
     * uv_hrtime(); rounding up from it means we never fire early. */
    uv_update_time(u->loop);
    flare_tstamp base = uv_now(u->loop) * FLARE_NS_PER_MS;
    uint64_t ms = deadline > base ? (deadline - base + FLARE_NS_PER_MS - 1) / FLARE_NS_PER_MS : 0;
    uv_timer_start(&u->timer, wake_cb, ms ? ms : 1, 0);
}

/* Fires due timers in (deadline, start order); timers (re)started by these
 * callbacks wait for the next iteration. */
static void timers_run(flare_uvio *u)
{
    flare_tstamp now = uv_hrtime();
    uint64_t limit = u->timer_seq;
    while (u->nheap && !u->dying) {
        flare_io_timer *t = u->heap[0];
        if (t->deadline > now || t->seq >= limit)
            break;
        heap_remove(u, t);
        t->cb(t, t->user);
    }
    if (!u->dying)
        timers_arm(u);
}

static void wake_cb(uv_timer_t *h)
{
    timers_run(h->data);
}

static void idle_cb(uv_idle_t *h)
{
    flare_uvio *u = h->data;
    uv_idle_stop(h);
    run_deferred(u);
    if (u->timer_due && !u->dying)
        timers_run(u);
}

static int uv_timer_new_(flare_io *io, flare_io_timer_cb cb, void *user, flare_io_timer **out)
{
    flare_uvio *u = (flare_uvio *)io;
    if (!cb || !out)
        return FLARE_ERR_INVALID_ARG;
    flare_io_timer *t = flare__calloc(u->mem, 1, sizeof(*t));
    if (!t)
        return FLARE_ERR_NOMEM;
    t->u = u;
    t->cb = cb;
    t->user = user;
    t->idx = SIZE_MAX;
    t->next = u->timers;
    if (u->timers)
        u->timers->prev = t;
    u->timers = t;
    *out = t;
    return 0;
}

void flare__uv_timer_stop(flare_io_timer *t)
{
    if (t->idx == SIZE_MAX)
        return;
    flare_uvio *u = t->u;
    int was_top = t->idx == 0;
    heap_remove(u, t);
    if (was_top)
        timers_arm(u);
}

void flare__uv_timer_start(flare_io_timer *t, flare_tstamp deadline)
{
    flare_uvio *u = t->u;
    if (t->idx != SIZE_MAX)
        heap_remove(u, t);
    if (u->nheap == u->capheap) {
        /* Keep the old deadline state on NOMEM: the timer just stays off. */
        size_t cap = u->capheap ? 2 * u->capheap : 16;
        flare_io_timer **h = flare__realloc(u->mem, u->heap, cap * sizeof(*h));
        if (!h) {
            timers_arm(u);
            return;
        }
        u->heap = h;
        u->capheap = cap;
    }
    t->deadline = deadline;
    t->seq = u->timer_seq++;
    heap_set(u, u->nheap++, t);
    heap_up(u, t->idx);
    if (t->idx == 0)
        timers_arm(u);
}

static void uv_timer_del_(flare_io_timer *t)
{
    if (!t)
        return;
    flare_uvio *u = t->u;
    flare__uv_timer_stop(t);
    if (t->prev)
        t->prev->next = t->next;
    else
        u->timers = t->next;
    if (t->next)
        t->next->prev = t->prev;
    flare__free(u->mem, t);
}

/* --- the driver ----------------------------------------------------------- */

static flare_tstamp uv_now_(flare_io *io)
{
    return uv_hrtime();
}

static void uv_random_(flare_io *io, uint8_t *dst, size_t len)
{
    randombytes_buf(dst, len);
}

static uint64_t uv_unix_time_(flare_io *io)
{
    (void)io;
    return (uint64_t)time(NULL);
}

static const flare_io_ops uv_ops = {
    .now = uv_now_,
    .random = uv_random_,
    .unix_time = uv_unix_time_,
    .listen = flare__uv_listen,
    .listener_addr = flare__uv_listener_addr,
    .listener_close = flare__uv_listener_close,
    .dial = flare__uv_dial,
    .sock_set_cbs = flare__uv_sock_set_cbs,
    .sock_write = flare__uv_sock_write,
    .sock_pending = flare__uv_sock_pending,
    .sock_read_pause = flare__uv_sock_read_pause,
    .sock_set_lowat = flare__uv_sock_set_lowat,
    .sock_addrs = flare__uv_sock_addrs,
    .sock_shutdown = flare__uv_sock_shutdown,
    .sock_close = flare__uv_sock_close,
    .timer_new = uv_timer_new_,
    .timer_start = flare__uv_timer_start,
    .timer_stop = flare__uv_timer_stop,
    .timer_del = uv_timer_del_,
    .udp_bind = flare__uv_udp_bind,
    .udp_addr = flare__uv_udp_addr,
    .udp_send = flare__uv_udp_send,
    .udp_close = flare__uv_udp_close,
    .resolve = flare__uv_resolve,
    .resolve_cancel = flare__uv_resolve_cancel,
    .gateway = flare__uv_gateway,
    .upnp = flare__uv_upnp,
    .upnp_cancel = flare__uv_upnp_cancel,
};

static void core_closed(uv_handle_t *h)
{
    flare_uvio *u = h->data;
    u->nhandles--;
    maybe_free(u);
}

/* libuv writes with write()/writev(), which cannot take MSG_NOSIGNAL: a
 * write to a connection the peer reset would raise SIGPIPE, whose default
 * action ends the process. Ignore it (EPIPE is then reported as an error)
 * unless the application installed its own disposition. */
static void ignore_sigpipe(void)
{
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) != 0 || sa.sa_handler != SIG_DFL ||
        (sa.sa_flags & SA_SIGINFO))
        return;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGPIPE, &sa, NULL);
}

int flare_uvio_new(flare_uvio **out, uv_loop_t *loop, const flare_mem *mem)
{
    if (!out || !loop)
        return FLARE_ERR_INVALID_ARG;
    ignore_sigpipe();
    if (sodium_init() < 0)
        return FLARE_ERR_INTERNAL;
    flare_uvio *u = flare__calloc(mem, 1, sizeof(*u));
    if (!u)
        return FLARE_ERR_NOMEM;
    u->io.ops = &uv_ops;
    u->loop = loop;
    u->mem = mem;
    u->objs.next = u->objs.prev = &u->objs;
    uv_idle_init(loop, &u->idle);
    uv_timer_init(loop, &u->timer);
    u->idle.data = u;
    u->timer.data = u;
    u->nhandles = 2;
    *out = u;
    return 0;
}

flare_io *flare_uvio_io(flare_uvio *u)
{
    return &u->io;
}

size_t flare_uvio_handle_count(const flare_uvio *u)
{
    return u->nhandles;
}

void flare_uvio_del(flare_uvio *u)
{
    if (!u)
        return;
    u->dying = 1;
    u->defer_head = u->defer_tail = NULL;
    /* Timers are plain memory: free them now. */
    while (u->timers) {
        flare_io_timer *t = u->timers;
        u->timers = t->next;
        flare__free(u->mem, t);
    }
    u->nheap = 0;
    for (flare__uv_obj *o = u->objs.next; o != &u->objs; o = o->next)
        flare__uv_obj_close(o);
    uv_close((uv_handle_t *)&u->idle, core_closed);
    uv_close((uv_handle_t *)&u->timer, core_closed);
}
