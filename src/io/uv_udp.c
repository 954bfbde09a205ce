/* libuv driver: UDP sockets. Reads use recvmmsg (libuv's UV_UDP_RECVMMSG);
 * sends made while a socket is corked leave together through sendmmsg, runs
 * of equal-sized datagrams to one address as one UDP GSO super-datagram. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <string.h>
#include <unistd.h>

#include "core/mem.h"
#include "io/uv_int.h"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef SOL_UDP
#define SOL_UDP 17
#endif

/* The kernel takes at most 64 segments and 64 KiB per GSO send. */
#define GSO_MAX_SEGS  64
#define GSO_MAX_BYTES 65000

#define FLARE__UV_UDP_RCVBUF (4 << 20)
#define FLARE__UV_UDP_SNDBUF (1 << 20)

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
    if (x->o.gone)
        return;
    /* addr NULL: the end of a read batch (nothing more to read, the end of
     * one recvmmsg, or an ICMP-reported error). */
    if (!addr) {
        if (x->batch_cb)
            x->cb(x, NULL, NULL, 0, x->user);
        return;
    }
    /* Partial cannot happen with 64 KiB slots, but never deliver one. */
    if (nread < 0 || (flags & UV_UDP_PARTIAL))
        return;
    if (flare__uv_from_sockaddr(addr, &from) != 0)
        return;
    x->cb(x, &from, (const uint8_t *)buf->base, (size_t)nread, x->user);
}

static void udp_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    flare__uv_obj *o = h->data;
    flare_uvio *u = o->u;
    (void)suggested;
    if (!u->mmsg_buf)
        u->mmsg_buf = flare__malloc(u->mem, (size_t)FLARE__UV_MMSG_SLOTS << 16);
    if (!u->mmsg_buf) {
        flare__uv_alloc_cb(h, suggested, buf); /* one datagram per read */
        return;
    }
    buf->base = (char *)u->mmsg_buf;
    buf->len = (size_t)FLARE__UV_MMSG_SLOTS << 16;
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
    /* Room for bursts: QUIC sends a congestion window at a time, and a
     * datagram the kernel drops for want of buffer is a loss to it. The
     * kernel caps these at net.core.[rw]mem_max. */
    int rcv = FLARE__UV_UDP_RCVBUF, snd = FLARE__UV_UDP_SNDBUF;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &snd, sizeof(snd));
    flare_io_udp *x = flare__calloc(u->mem, 1, sizeof(*x));
    if (!x) {
        close(fd);
        return FLARE_ERR_NOMEM;
    }
    uv_udp_init_ex(u->loop, &x->udp, AF_UNSPEC | UV_UDP_RECVMMSG);
    flare__uv_obj_add(u, &x->o, (uv_handle_t *)&x->udp);
    x->cb = cb;
    x->user = user;
    x->batch_cb = (flags & FLARE_IO_UDP_BATCH) != 0;
    int r = uv_udp_open(&x->udp, fd);
    if (r != 0)
        close(fd);
    else
        r = uv_udp_recv_start(&x->udp, udp_alloc_cb, recv_cb);
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
    (void)status;
    flare__free(w->u->mem, w);
}

/* Through libuv's queue, with a copy: the socket is busy. */
static int send_queued(flare_io_udp *x, const struct sockaddr *to, const uint8_t *data, size_t len)
{
    sreq *w = flare__malloc(x->o.u->mem, sizeof(*w) + len);
    if (!w)
        return FLARE_ERR_NOMEM;
    w->u = x->o.u;
    memcpy(w->data, data, len);
    uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)len);
    int r = uv_udp_send(&w->req, &x->udp, &b, 1, to, send_cb);
    if (r != 0) {
        flare__free(x->o.u->mem, w);
        return flare__uv_err(r);
    }
    return 0;
}

static int send_now(flare_io_udp *x, const struct sockaddr *to, const uint8_t *data, size_t len)
{
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    /* Most datagrams go out at once; only a busy socket needs a copy. */
    int r = uv_udp_try_send(&x->udp, &b, 1, to);
    if (r >= 0)
        return 0;
    if (r != UV_EAGAIN)
        return flare__uv_err(r);
    return send_queued(x, to, data, len);
}

static int same_dest(const flare__uv_dgram *a, const flare__uv_dgram *b)
{
    return a->tolen == b->tolen && memcmp(&a->to, &b->to, a->tolen) == 0;
}

/* Datagrams q[i..] in one message each, or one GSO message per run of
 * equal-sized datagrams to one address (the last of a run may be shorter).
 * Returns the number of messages; cnt[m] says how many datagrams each has. */
static unsigned build_msgs(flare_io_udp *x, unsigned i, struct mmsghdr *mm, struct iovec *iov,
                           char (*cm)[CMSG_SPACE(sizeof(uint16_t))], unsigned *cnt)
{
    flare__uv_txq *t = &x->o.u->txq;
    unsigned nm = 0;
    while (i < t->n) {
        const flare__uv_dgram *d = &t->q[i];
        unsigned k = i + 1;
        size_t total = d->len;
        while (!x->no_gso && k < t->n && k - i < GSO_MAX_SEGS && t->q[k - 1].len == d->len &&
               t->q[k].len <= d->len && total + t->q[k].len <= GSO_MAX_BYTES &&
               same_dest(&t->q[k], d)) {
            total += t->q[k].len;
            k++;
        }
        struct msghdr *m = &mm[nm].msg_hdr;
        memset(m, 0, sizeof(*m));
        m->msg_name = (void *)&d->to;
        m->msg_namelen = d->tolen;
        iov[nm].iov_base = t->buf + d->off; /* a run is contiguous in buf */
        iov[nm].iov_len = total;
        m->msg_iov = &iov[nm];
        m->msg_iovlen = 1;
        if (k - i > 1) {
            memset(cm[nm], 0, sizeof(cm[nm]));
            m->msg_control = cm[nm];
            m->msg_controllen = sizeof(cm[nm]);
            struct cmsghdr *c = CMSG_FIRSTHDR(m);
            c->cmsg_level = SOL_UDP;
            c->cmsg_type = UDP_SEGMENT;
            c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
            uint16_t seg = (uint16_t)d->len;
            memcpy(CMSG_DATA(c), &seg, sizeof(seg));
        }
        cnt[nm++] = k - i;
        i = k;
    }
    return nm;
}

static void txq_flush(flare_io_udp *x)
{
    flare__uv_txq *t = &x->o.u->txq;
    struct mmsghdr mm[FLARE__UV_UDP_QMAX];
    struct iovec iov[FLARE__UV_UDP_QMAX];
    char cm[FLARE__UV_UDP_QMAX][CMSG_SPACE(sizeof(uint16_t))];
    unsigned cnt[FLARE__UV_UDP_QMAX];
    unsigned i = 0;
    uv_os_fd_t fd;
    int ok = uv_fileno((uv_handle_t *)&x->udp, &fd) == 0;
    /* Behind datagrams already in libuv's queue, the rest must queue too. */
    while (ok && i < t->n && uv_udp_get_send_queue_count(&x->udp) == 0) {
        unsigned nm = build_msgs(x, i, mm, iov, cm, cnt);
        int r = sendmmsg(fd, mm, nm, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (r < 0 && cnt[0] > 1 && (errno == EIO || errno == EINVAL || errno == EOPNOTSUPP)) {
            x->no_gso = 1; /* e.g. a device without checksum offload: one by one */
            continue;
        }
        if (r <= 0) {
            i += cnt[0]; /* undeliverable (unreachable, too big): lost like on the wire */
            continue;
        }
        for (int m = 0; m < r; m++)
            i += cnt[m];
    }
    for (; i < t->n; i++)
        send_queued(x, (const struct sockaddr *)&t->q[i].to, t->buf + t->q[i].off, t->q[i].len);
    t->n = 0;
    t->bytes = 0;
    t->owner = NULL;
}

int flare__uv_udp_send(flare_io_udp *x, const flare_ipaddr *to, const uint8_t *data, size_t len)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    if (x->o.gone)
        return FLARE_ERR_STATE;
    if (!to || flare__uv_to_sockaddr(to, &ss, &sl) != 0 || len > 65535) /* no datagram is larger */
        return FLARE_ERR_INVALID_ARG;
    flare__uv_txq *t = &x->o.u->txq;
    if (!x->corked || (t->owner && t->owner != x) || len > FLARE__UV_UDP_QBYTES / 4)
        return send_now(x, (struct sockaddr *)&ss, data, len);
    if (t->n == FLARE__UV_UDP_QMAX || t->bytes + len > FLARE__UV_UDP_QBYTES)
        txq_flush(x);
    t->owner = x;
    flare__uv_dgram *d = &t->q[t->n++];
    d->to = ss;
    d->tolen = sl;
    d->off = (uint32_t)t->bytes;
    d->len = (uint32_t)len;
    memcpy(t->buf + t->bytes, data, len);
    t->bytes += len;
    return 0;
}

void flare__uv_udp_cork(flare_io_udp *x, int on)
{
    if (on) {
        x->corked++;
        return;
    }
    if (x->corked > 0 && --x->corked == 0 && x->o.u->txq.owner == x)
        txq_flush(x);
}

void flare__uv_udp_close(flare_io_udp *x)
{
    if (!x || x->o.gone)
        return;
    if (x->o.u->txq.owner == x)
        txq_flush(x);
    x->corked = 0;
    flare__uv_obj_close(&x->o);
}
