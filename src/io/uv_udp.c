/* libuv driver: UDP sockets. */
#include <string.h>
#include <unistd.h>

#include "core/mem.h"
#include "io/uv_int.h"

/* A send request owns a copy of the datagram. */
typedef struct sreq {
    uv_udp_send_t req;
    flare_uvio *u;
    uint8_t data[];
} sreq;

static void recv_cb(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *addr,
                    unsigned flags)
{
    flare_io_udp *x = h->data;
    flare_ipaddr from;
    /* nread < 0: an ICMP-reported error; addr NULL: nothing more to read;
     * partial: cannot happen with a 64 KiB buffer, but never deliver one. */
    if (x->o.gone || nread < 0 || !addr || (flags & UV_UDP_PARTIAL))
        return;
    if (flare__uv_from_sockaddr(addr, &from) != 0)
        return;
    x->cb(x, &from, (const uint8_t *)buf->base, (size_t)nread, x->user);
}

int flare__uv_udp_bind(flare_io *io, const flare_ipaddr *local, unsigned flags,
                       flare_io_udp_recv_cb cb, void *user, flare_io_udp **out)
{
    flare_uvio *u = (flare_uvio *)io;
    if (!local || (local->family != 4 && local->family != 6) || !cb || !out || u->dying)
        return FLARE_ERR_INVALID_ARG;
    int fd = flare__uv_socket(local->family, SOCK_DGRAM, local, flags);
    if (fd < 0)
        return fd;
    flare_io_udp *x = flare__calloc(u->mem, 1, sizeof(*x));
    if (!x) {
        close(fd);
        return FLARE_ERR_NOMEM;
    }
    uv_udp_init(u->loop, &x->udp);
    flare__uv_obj_add(u, &x->o, (uv_handle_t *)&x->udp);
    x->cb = cb;
    x->user = user;
    int r = uv_udp_open(&x->udp, fd);
    if (r != 0)
        close(fd);
    else
        r = uv_udp_recv_start(&x->udp, flare__uv_alloc_cb, recv_cb);
    if (r != 0) {
        flare__uv_obj_close(&x->o);
        return flare__uv_err(r);
    }
    *out = x;
    return 0;
}

int flare__uv_udp_addr(flare_io_udp *x, flare_ipaddr *local)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    int r = uv_udp_getsockname(&x->udp, (struct sockaddr *)&ss, &len);
    if (r != 0)
        return flare__uv_err(r);
    return flare__uv_from_sockaddr((struct sockaddr *)&ss, local);
}

static void send_cb(uv_udp_send_t *req, int status)
{
    sreq *w = (sreq *)req;
    flare__free(w->u->mem, w);
}

int flare__uv_udp_send(flare_io_udp *x, const flare_ipaddr *to, const uint8_t *data, size_t len)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    if (x->o.gone)
        return FLARE_ERR_STATE;
    if (!to || flare__uv_to_sockaddr(to, &ss, &sl) != 0 || len > 65535) /* no datagram is larger */
        return FLARE_ERR_INVALID_ARG;
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    /* Most datagrams go out at once; only a busy socket needs a copy. */
    int r = uv_udp_try_send(&x->udp, &b, 1, (struct sockaddr *)&ss);
    if (r >= 0)
        return 0;
    if (r != UV_EAGAIN)
        return flare__uv_err(r);
    sreq *w = flare__malloc(x->o.u->mem, sizeof(*w) + len);
    if (!w)
        return FLARE_ERR_NOMEM;
    w->u = x->o.u;
    memcpy(w->data, data, len);
    b = uv_buf_init((char *)w->data, (unsigned)len);
    r = uv_udp_send(&w->req, &x->udp, &b, 1, (struct sockaddr *)&ss, send_cb);
    if (r != 0) {
        flare__free(x->o.u->mem, w);
        return flare__uv_err(r);
    }
    return 0;
}

void flare__uv_udp_close(flare_io_udp *x)
{
    if (x && !x->o.gone)
        flare__uv_obj_close(&x->o);
}
