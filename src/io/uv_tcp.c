/* libuv driver: TCP listeners and sockets. */
#include <string.h>
#include <unistd.h>

#include "core/mem.h"
#include "io/uv_int.h"

/* A write request owns a copy of the data. */
typedef struct wreq {
    uv_write_t req;
    flare_io_sock *s;
    size_t len;
    uint8_t data[];
} wreq;

static int valid_family(const flare_ipaddr *a)
{
    return a && (a->family == 4 || a->family == 6);
}

/* Dial failures are reported with the codes on_connect promises. connect()
 * says EADDRNOTAVAIL when the 4-tuple from our (shared) port is taken, e.g.
 * by the connection a simultaneous open produced through our listener:
 * that is "address in use" for a dial. */
static int dial_err(int uverr)
{
    int e = flare__uv_err(uverr);
    if (e == FLARE_ERR_ADDR_NOT_AVAIL)
        return FLARE_ERR_ADDR_IN_USE;
    return e == FLARE_ERR_RESET || e == FLARE_ERR_NOMEM ? FLARE_ERR_IO : e;
}

/* Frees the socket (after libuv's close callback). */
static void sock_release(flare_io_sock *s)
{
    if (s->linger.idx != SIZE_MAX)
        flare__uv_timer_stop(&s->linger);
    flare__uv_obj_close(&s->o);
}

/* The connection died under the host: release it, then tell the host. */
static void sock_fail(flare_io_sock *s, int reason)
{
    int notify = !s->o.gone;
    sock_release(s);
    if (notify && s->cbs.on_close)
        s->cbs.on_close(s, reason, s->user);
}

/* After a graceful sock_close: discard what still arrives until EOF, so the
 * kernel does not answer unread data with a RST that could destroy our last
 * bytes in flight. */
static void drain_read(flare_io_sock *s, ssize_t nread)
{
    if (nread == UV_EOF) {
        s->eof = 1;
        if (s->shut_done)
            sock_release(s);
    } else if (nread < 0) {
        sock_release(s);
    }
}

static void read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    flare_io_sock *s = st->data;
    if (s->o.gone) {
        if (!uv_is_closing((uv_handle_t *)st))
            drain_read(s, nread);
        return;
    }
    if (nread > 0) {
        if (s->cbs.on_read)
            s->cbs.on_read(s, (const uint8_t *)buf->base, (size_t)nread, s->user);
    } else if (nread == UV_EOF) {
        /* libuv stops reading after EOF by itself. */
        s->eof = 1;
        s->reading = 0;
        if (s->cbs.on_read)
            s->cbs.on_read(s, s->o.u->rbuf, 0, s->user);
    } else if (nread < 0) {
        sock_fail(s, flare__uv_err((int)nread));
    }
}

/* Starts reading unless the host paused it (or it is already on). */
static int start_reading(flare_io_sock *s)
{
    if (s->reading || s->eof || (s->rpaused && !s->o.gone))
        return 0;
    int r = uv_read_start((uv_stream_t *)&s->tcp, flare__uv_alloc_cb, read_cb);
    s->reading = r == 0;
    return r;
}

static flare_io_sock *sock_alloc(flare_uvio *u)
{
    flare_io_sock *s = flare__calloc(u->mem, 1, sizeof(*s));
    if (!s)
        return NULL;
    uv_tcp_init(u->loop, &s->tcp);
    flare__uv_obj_add(u, &s->o, (uv_handle_t *)&s->tcp);
    s->linger.u = u;
    s->linger.idx = SIZE_MAX;
    return s;
}

/* --- dialing -------------------------------------------------------------- */

static void connect_cb(uv_connect_t *req, int status)
{
    flare_io_sock *s = req->handle->data;
    if (s->o.gone)
        return; /* closed by the host (status is UV_ECANCELED) */
    if (status == 0) {
        s->connected = 1;
        status = start_reading(s);
    }
    if (status != 0) {
        sock_release(s);
        status = dial_err(status);
    }
    if (s->cbs.on_connect)
        s->cbs.on_connect(s, status, s->user);
}

void flare__uv_sock_deferred(flare_io_sock *s)
{
    int notify = !s->o.gone;
    s->deferred = 0;
    sock_release(s);
    if (notify && s->cbs.on_connect)
        s->cbs.on_connect(s, s->defer_status, s->user);
}

/* Socket, bind and connect; returns 0 or a uv error / FLARE_ERR_* from
 * flare__uv_socket (both negative). */
static int dial_start(flare_io_sock *s, const flare_ipaddr *local, const flare_ipaddr *remote,
                      unsigned flags, int *flare_err)
{
    int fd = flare__uv_socket(remote->family, SOCK_STREAM, local, flags);
    if (fd < 0) {
        *flare_err = fd;
        return fd;
    }
    int r = uv_tcp_open(&s->tcp, fd);
    if (r != 0) {
        close(fd);
        return r;
    }
    uv_tcp_nodelay(&s->tcp, 1);
    struct sockaddr_storage ss;
    socklen_t len;
    flare__uv_to_sockaddr(remote, &ss, &len);
    return uv_tcp_connect(&s->conn_req, &s->tcp, (struct sockaddr *)&ss, connect_cb);
}

int flare__uv_dial(flare_io *io, const flare_ipaddr *local, const flare_ipaddr *remote,
                   unsigned flags, const flare_io_sock_cbs *cbs, void *user, flare_io_sock **out)
{
    flare_uvio *u = (flare_uvio *)io;
    if (!valid_family(remote) || !cbs || !out || u->dying)
        return FLARE_ERR_INVALID_ARG;
    if (local && local->family && local->family != remote->family)
        return FLARE_ERR_INVALID_ARG;
    flare_io_sock *s = sock_alloc(u);
    if (!s)
        return FLARE_ERR_NOMEM;
    s->cbs = *cbs;
    s->user = user;
    int ferr = 0;
    int r = dial_start(s, local, remote, flags, &ferr);
    if (r != 0) {
        /* e.g. EADDRNOTAVAIL when a simultaneous open already produced the
         * connection through our listener: report it on the next turn. */
        int st = ferr ? ferr : dial_err(r);
        flare__uv_defer(u, s, st == FLARE_ERR_NOMEM ? FLARE_ERR_IO : st);
    }
    *out = s;
    return 0;
}

/* --- listening ------------------------------------------------------------ */

static void conn_cb(uv_stream_t *server, int status)
{
    flare_io_listener *l = server->data;
    if (l->o.gone || status < 0)
        return;
    flare_io_sock *s = sock_alloc(l->o.u);
    if (!s)
        return;
    if (uv_accept(server, (uv_stream_t *)&s->tcp) != 0) {
        flare__uv_obj_close(&s->o);
        return;
    }
    s->connected = 1;
    uv_tcp_nodelay(&s->tcp, 1);
    l->cb(l, s, l->user);
    if (!s->o.gone) {
        int r = start_reading(s);
        if (r != 0)
            sock_fail(s, flare__uv_err(r));
    }
}

/* SO_REUSEPORT lets a second listener bind an address silently (and the
 * kernel then splits connections between them). Before listening on fd,
 * bind a probe to the same address with SO_REUSEADDR only: it conflicts with
 * any other listener there (and not with TIME_WAIT leftovers, nor with our
 * own not-yet-listening fd or REUSE dial sockets on the port). */
static int check_exclusive(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return FLARE_ERR_IO;
    flare_ipaddr a;
    int rv = flare__uv_from_sockaddr((struct sockaddr *)&ss, &a);
    if (rv)
        return rv;
    int probe = flare__uv_socket(a.family, SOCK_STREAM, &a, FLARE__UV_REUSEADDR_ONLY);
    if (probe < 0)
        return probe;
    close(probe);
    return 0;
}

int flare__uv_listen(flare_io *io, const flare_ipaddr *local, unsigned flags, flare_io_accept_cb cb,
                     void *user, flare_io_listener **out)
{
    flare_uvio *u = (flare_uvio *)io;
    if (!valid_family(local) || !cb || !out || u->dying)
        return FLARE_ERR_INVALID_ARG;
    int fd = flare__uv_socket(local->family, SOCK_STREAM, local, flags);
    if (fd < 0)
        return fd;
    if ((flags & FLARE_IO_REUSE) && !(flags & FLARE_IO_SHARE)) {
        int rv = check_exclusive(fd);
        if (rv) {
            close(fd);
            return rv;
        }
    }
    flare_io_listener *l = flare__calloc(u->mem, 1, sizeof(*l));
    if (!l) {
        close(fd);
        return FLARE_ERR_NOMEM;
    }
    uv_tcp_init(u->loop, &l->tcp);
    flare__uv_obj_add(u, &l->o, (uv_handle_t *)&l->tcp);
    l->cb = cb;
    l->user = user;
    int r = uv_tcp_open(&l->tcp, fd);
    if (r != 0)
        close(fd);
    else
        r = uv_listen((uv_stream_t *)&l->tcp, SOMAXCONN, conn_cb);
    if (r != 0) {
        flare__uv_obj_close(&l->o);
        return flare__uv_err(r);
    }
    *out = l;
    return 0;
}

int flare__uv_listener_addr(flare_io_listener *l, flare_ipaddr *local)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    int r = uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&ss, &len);
    if (r != 0)
        return flare__uv_err(r);
    return flare__uv_from_sockaddr((struct sockaddr *)&ss, local);
}

void flare__uv_listener_close(flare_io_listener *l)
{
    if (l && !l->o.gone)
        flare__uv_obj_close(&l->o);
}

/* --- sockets -------------------------------------------------------------- */

void flare__uv_sock_set_cbs(flare_io_sock *s, const flare_io_sock_cbs *cbs, void *user)
{
    s->cbs = *cbs;
    s->user = user;
}

static void write_cb(uv_write_t *req, int status)
{
    wreq *w = (wreq *)req;
    flare_io_sock *s = w->s;
    size_t before = s->pending;
    s->pending -= w->len;
    flare__free(s->o.u->mem, w);
    if (status < 0 && status != UV_ECANCELED)
        sock_fail(s, flare__uv_err(status));
    else if (!s->o.gone && before > s->lowat && s->pending <= s->lowat && s->cbs.on_drain)
        s->cbs.on_drain(s, s->user);
}

/* Queues data[0..len) behind earlier writes (and behind a pending connect);
 * the request owns a copy. */
static int queue_write(flare_io_sock *s, const uint8_t *data, size_t len)
{
    wreq *w = flare__malloc(s->o.u->mem, sizeof(*w) + len);
    if (!w)
        return FLARE_ERR_NOMEM;
    memcpy(w->data, data, len);
    w->s = s;
    w->len = len;
    uv_buf_t b = {.base = (char *)w->data, .len = len}; /* uv_buf_init takes 32 bits */
    int r = uv_write(&w->req, (uv_stream_t *)&s->tcp, &b, 1, write_cb);
    if (r != 0) {
        flare__free(s->o.u->mem, w);
        return r == UV_EPIPE || r == UV_ENOTCONN ? FLARE_ERR_STATE : flare__uv_err(r);
    }
    s->pending += len;
    return 0;
}

int flare__uv_sock_write(flare_io_sock *s, const uint8_t *data, size_t len)
{
    if (s->o.gone || s->deferred || s->shut)
        return FLARE_ERR_STATE;
    if (len == 0)
        return 0;
    /* Hand the bytes to the kernel now: no copy and no request for what it
     * takes. uv_try_write refuses (EAGAIN) while a connect or bytes of
     * earlier writes are still queued, which keeps the order. Errors
     * go through the queued path, so they are reported as before (from
     * write_cb). */
    if (s->connected) {
        uv_buf_t b = {.base = (char *)data, .len = len};
        int n = uv_try_write((uv_stream_t *)&s->tcp, &b, 1);
        if (n > 0) {
            data += n;
            len -= (size_t)n;
            if (len == 0)
                return 0;
        }
    }
    return queue_write(s, data, len);
}

size_t flare__uv_sock_pending(flare_io_sock *s)
{
    return s->pending;
}

void flare__uv_sock_read_pause(flare_io_sock *s, int paused)
{
    if (s->o.gone || s->deferred)
        return;
    s->rpaused = paused != 0;
    if (!s->connected)
        return; /* connect_cb starts reading unless paused */
    if (paused && s->reading) {
        uv_read_stop((uv_stream_t *)&s->tcp);
        s->reading = 0;
    } else if (!paused) {
        /* Fails only for a handle libuv no longer reads (closing, or its
         * read side ended): nothing more would arrive anyway. */
        (void)start_reading(s);
    }
}

void flare__uv_sock_set_lowat(flare_io_sock *s, size_t lowat)
{
    s->lowat = lowat;
}

int flare__uv_sock_addrs(flare_io_sock *s, flare_ipaddr *local, flare_ipaddr *remote)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss), r;
    if (s->o.gone || s->deferred)
        return FLARE_ERR_STATE;
    if (local) {
        if ((r = uv_tcp_getsockname(&s->tcp, (struct sockaddr *)&ss, &len)) != 0)
            return flare__uv_err(r);
        if ((r = flare__uv_from_sockaddr((struct sockaddr *)&ss, local)) != 0)
            return r;
    }
    if (remote) {
        len = sizeof(ss);
        if ((r = uv_tcp_getpeername(&s->tcp, (struct sockaddr *)&ss, &len)) != 0)
            return flare__uv_err(r);
        if ((r = flare__uv_from_sockaddr((struct sockaddr *)&ss, remote)) != 0)
            return r;
    }
    return 0;
}

static void shutdown_cb(uv_shutdown_t *req, int status)
{
    flare_io_sock *s = req->handle->data;
    s->shut_done = 1;
    /* A graceful sock_close waits for this (our data and FIN are out) and
     * for the peer's EOF. */
    if (s->o.gone && !uv_is_closing((uv_handle_t *)&s->tcp) && (s->eof || status < 0))
        sock_release(s);
}

void flare__uv_sock_shutdown(flare_io_sock *s)
{
    if (s->o.gone || s->deferred || s->shut)
        return;
    if (uv_shutdown(&s->shut_req, (uv_stream_t *)&s->tcp, shutdown_cb) == 0)
        s->shut = 1;
}

/* RST instead of FIN: linger 0 makes close() abort the connection. */
static void set_linger0(flare_io_sock *s)
{
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&s->tcp, &fd) == 0) {
        struct linger lg = {1, 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
}

static void linger_cb(flare_io_timer *t, void *user)
{
    flare_io_sock *s = user;
    set_linger0(s); /* the peer neither read nor closed in time */
    sock_release(s);
}

void flare__uv_sock_close(flare_io_sock *s, int abort)
{
    if (!s || s->o.gone)
        return;
    s->o.gone = 1;
    if (s->deferred)
        return; /* the deferred failure releases it, silently */
    if (abort) {
        set_linger0(s);
        sock_release(s);
        return;
    }
    if (!s->connected) {
        sock_release(s); /* cancels the dial */
        return;
    }
    if (!s->shut) {
        if (uv_shutdown(&s->shut_req, (uv_stream_t *)&s->tcp, shutdown_cb) != 0) {
            sock_release(s);
            return;
        }
        s->shut = 1;
    }
    if (s->shut_done && s->eof) {
        sock_release(s);
        return;
    }
    if (start_reading(s) != 0) { /* paused by the host: drain_read needs reads */
        sock_release(s);
        return;
    }
    /* Wait for shutdown_cb and EOF (drain_read), bounded by the linger. */
    s->linger.cb = linger_cb;
    s->linger.user = s;
    flare__uv_timer_start(&s->linger, uv_hrtime() + FLARE__UV_LINGER_NS);
}
