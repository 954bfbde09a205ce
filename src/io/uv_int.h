/* Internal types of the libuv driver (src/io/uv*.c). */
#ifndef FLARE_IO_UV_INT_H
#define FLARE_IO_UV_INT_H

#include <sys/socket.h>
#include <uv.h>

#include "flare/uvio.h"

/* Every libuv-backed object (socket, listener, UDP socket) starts with this
 * header so flare_uvio_del can close them all and one close callback can free
 * them. The object's memory lives until libuv's close callback. */
typedef struct flare__uv_obj {
    struct flare__uv_obj *prev, *next;
    flare_uvio *u;
    uv_handle_t *h;
    int gone; /* the host may no longer see callbacks for it */
} flare__uv_obj;

/* A graceful close waits at most this long for the queued data to leave and
 * for the peer's EOF, then resets. */
#define FLARE__UV_LINGER_NS (5 * FLARE_NS_PER_S)

struct flare_io_timer {
    flare_uvio *u;
    flare_io_timer_cb cb;
    void *user;
    flare_tstamp deadline;
    uint64_t seq;
    size_t idx;                         /* position in the heap, or SIZE_MAX when not armed */
    struct flare_io_timer *prev, *next; /* host timers, freed by flare_uvio_del */
};

struct flare_io_sock {
    flare__uv_obj o;
    uv_tcp_t tcp;
    uv_connect_t conn_req;
    uv_shutdown_t shut_req;
    flare_io_sock_cbs cbs;
    void *user;
    size_t pending;        /* bytes queued in write requests */
    size_t lowat;          /* on_drain when pending falls to this */
    int connected;         /* handshake done (dialed or accepted) */
    int reading;           /* uv_read_start is in effect */
    int rpaused;           /* the host paused reading */
    int shut;              /* uv_shutdown issued */
    int shut_done;         /* its callback ran */
    int eof;               /* the peer's FIN arrived */
    flare_io_timer linger; /* bounds a graceful close (not in the timer list) */
    int defer_status;      /* dial failure waiting to be reported */
    int deferred;          /* on the driver's deferred list */
    struct flare_io_sock *defer_next;
};

struct flare_io_listener {
    flare__uv_obj o;
    uv_tcp_t tcp;
    flare_io_accept_cb cb;
    void *user;
};

struct flare_io_udp {
    flare__uv_obj o;
    uv_udp_t udp;
    flare_io_udp_recv_cb cb;
    void *user;
};

#define FLARE__UV_READ_BUF 65536

struct flare_uvio {
    flare_io io;
    uv_loop_t *loop;
    const flare_mem *mem;
    flare__uv_obj objs; /* list head of live objects */
    size_t nhandles;    /* libuv handles not yet closed (objects + 2 below) */
    int dying;
    uv_idle_t idle;   /* runs deferred dial failures and due timers */
    uv_timer_t timer; /* wakes the loop for the earliest flare timer */
    flare_io_sock *defer_head, *defer_tail;
    flare_io_timer *timers; /* every timer */
    flare_io_timer **heap;
    size_t nheap, capheap;
    uint64_t timer_seq;
    int timer_due;
    uint8_t rbuf[FLARE__UV_READ_BUF];    /* shared: reads are consumed at once */
    char igd_url[512], igd_service[128]; /* the last UPnP IGD found (uv_portmap.c) */
};

/* Conversions and error mapping (uv.c). */
int flare__uv_to_sockaddr(const flare_ipaddr *a, struct sockaddr_storage *ss, socklen_t *len);
int flare__uv_from_sockaddr(const struct sockaddr *sa, flare_ipaddr *a);
int flare__uv_err(int uverr);
/* Internal flag for flare__uv_socket: SO_REUSEADDR without SO_REUSEPORT. */
#define FLARE__UV_REUSEADDR_ONLY 0x100
/* socket() + REUSE + V6ONLY (IPv6) + bind (if local has an address family).
 * Returns the fd or a FLARE_ERR_*. */
int flare__uv_socket(int family, int type, const flare_ipaddr *local, unsigned flags);

/* Object bookkeeping (uv.c). */
void flare__uv_obj_add(flare_uvio *u, flare__uv_obj *o, uv_handle_t *h);
/* uv_close with the generic freeing callback, if not already closing. */
void flare__uv_obj_close(flare__uv_obj *o);
/* Queues a dial failure for the next loop iteration. */
void flare__uv_defer(flare_uvio *u, flare_io_sock *s, int status);

/* The heap timers (uv.c), also used inside the driver. */
void flare__uv_timer_start(flare_io_timer *t, flare_tstamp deadline);
void flare__uv_timer_stop(flare_io_timer *t);

void flare__uv_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf);

/* Operation tables for the parts in uv_tcp.c / uv_udp.c. */
int flare__uv_listen(flare_io *io, const flare_ipaddr *local, unsigned flags, flare_io_accept_cb cb,
                     void *user, flare_io_listener **out);
int flare__uv_listener_addr(flare_io_listener *l, flare_ipaddr *local);
void flare__uv_listener_close(flare_io_listener *l);
int flare__uv_dial(flare_io *io, const flare_ipaddr *local, const flare_ipaddr *remote,
                   unsigned flags, const flare_io_sock_cbs *cbs, void *user, flare_io_sock **out);
void flare__uv_sock_set_cbs(flare_io_sock *s, const flare_io_sock_cbs *cbs, void *user);
int flare__uv_sock_write(flare_io_sock *s, const uint8_t *data, size_t len);
size_t flare__uv_sock_pending(flare_io_sock *s);
void flare__uv_sock_read_pause(flare_io_sock *s, int paused);
void flare__uv_sock_set_lowat(flare_io_sock *s, size_t lowat);
int flare__uv_sock_addrs(flare_io_sock *s, flare_ipaddr *local, flare_ipaddr *remote);
void flare__uv_sock_shutdown(flare_io_sock *s);
void flare__uv_sock_close(flare_io_sock *s, int abort);
void flare__uv_sock_deferred(flare_io_sock *s);

int flare__uv_udp_bind(flare_io *io, const flare_ipaddr *local, unsigned flags,
                       flare_io_udp_recv_cb cb, void *user, flare_io_udp **out);
int flare__uv_udp_addr(flare_io_udp *u, flare_ipaddr *local);
int flare__uv_udp_send(flare_io_udp *u, const flare_ipaddr *to, const uint8_t *data, size_t len);
void flare__uv_udp_close(flare_io_udp *u);

int flare__uv_resolve(flare_io *io, const char *name, int family, flare_io_resolve_cb cb,
                      void *user, flare_io_resolve **out);
void flare__uv_resolve_cancel(flare_io_resolve *r);

/* uv_portmap.c: the default gateway, and UPnP IGD on libuv's thread pool.
 * Work in flight counts in nhandles (the driver outlives it);
 * flare__uv_release drops one and frees a dying driver at zero. */
int flare__uv_gateway(flare_io *io, int family, flare_ipaddr *gw, flare_ipaddr *local);
int flare__uv_upnp(flare_io *io, const flare_io_upnp_req *req, flare_io_upnp_cb cb, void *user,
                   flare_io_upnp **out);
void flare__uv_upnp_cancel(flare_io_upnp *op);
void flare__uv_release(flare_uvio *u);

#endif
