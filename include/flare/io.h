/*
 * flare/io.h - the I/O driver interface.
 *
 * The host (src/host/) owns no sockets, clocks or RNG: it calls a flare_io,
 * implemented by the libuv driver (src/io/uv.c, real sockets) and by the
 * simulated network (src/io/sim*.c, deterministic and seeded). The same host
 * code runs on both.
 *
 * Rules every driver keeps, so host code is simple:
 *  - Callbacks run from the driver's loop, never from inside the call that
 *    caused them (a dial never calls on_connect before returning).
 *  - Writes copy the data (or hold it) and never fail because the kernel or
 *    the link is busy; sock_pending() tells how much is still queued so the
 *    host can apply backpressure. The queue has no bound of its own: the
 *    host keeps it bounded (a peer that never reads must not make it grow)
 *    with sock_read_pause() and on_drain.
 *  - sock_read_pause(s, 1) stops on_read (data and EOF) until
 *    sock_read_pause(s, 0); the transport's flow control then stops the
 *    peer (the kernel's receive buffer fills, TCP advertises a zero
 *    window). Resuming delivers what arrived meanwhile from the loop, never
 *    inside the call. Pausing before on_connect or inside on_read is fine.
 *  - on_drain runs (from the loop) when completed writes bring sock_pending()
 *    from above the socket's low-water mark (sock_set_lowat, default 0) to
 *    at or below it; never for a closed socket.
 *  - After sock_close() no callback for that socket runs again and the handle
 *    must not be used. on_close runs only for closes the host did not ask for
 *    (EOF is on_read with len 0, followed by nothing else from the peer).
 *  - Handles may be closed from inside their own callbacks.
 *  - Stream sockets are TCP: FLARE_IO_REUSE binds with SO_REUSEADDR and
 *    SO_REUSEPORT, so a dial can leave from a listening port (hole punching).
 *    A REUSE listener still owns its address: listen fails with
 *    FLARE_ERR_ADDR_IN_USE if another listener (another process, or this
 *    one) is bound to it, unless FLARE_IO_SHARE is given too (then the
 *    kernel spreads connections across the sharing listeners).
 */
#ifndef FLARE_IO_H
#define FLARE_IO_H

#include "flare/common.h"
#include "flare/ipaddr.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct flare_io flare_io;
typedef struct flare_io_sock flare_io_sock;
typedef struct flare_io_listener flare_io_listener;
typedef struct flare_io_timer flare_io_timer;
typedef struct flare_io_udp flare_io_udp;
typedef struct flare_io_resolve flare_io_resolve;
typedef struct flare_io_upnp flare_io_upnp;

/* A UPnP IGD request (flare_io_ops.upnp). */
typedef struct flare_io_upnp_req {
    int unmap;              /* 0: add a port mapping; 1: delete it */
    int tcp;                /* 1 TCP, 0 UDP */
    flare_ipaddr internal;  /* our LAN address and the port to map (IPv4) */
    uint16_t external_port; /* wanted (map; another may be given) or held (unmap) */
    uint32_t lifetime;      /* lease in seconds (map) */
    char description[64];
} flare_io_upnp_req;

typedef struct flare_io_upnp_result {
    int status;            /* 0, FLARE_ERR_NOT_FOUND (no IGD), _REFUSED, _IO, ... */
    flare_ipaddr external; /* map: the IGD's external address and the mapped port */
    uint32_t lifetime;     /* map: the lease granted (0: permanent) */
} flare_io_upnp_result;

/* Flags for listen and dial. */
#define FLARE_IO_REUSE 0x1 /* SO_REUSEADDR | SO_REUSEPORT */
#define FLARE_IO_SHARE 0x2 /* listen: share the address with other REUSE listeners */

typedef struct flare_io_sock_cbs {
    /* A dial finished: status 0, or FLARE_ERR_UNREACHABLE / _REFUSED /
     * _TIMEOUT / _ADDR_IN_USE / _IO. After a failure the socket is gone. */
    void (*on_connect)(flare_io_sock *s, int status, void *user);
    /* Bytes arrived. len == 0 means the peer finished sending (EOF). */
    void (*on_read)(flare_io_sock *s, const uint8_t *data, size_t len, void *user);
    /* The connection died (reset, error): the socket is gone afterwards. */
    void (*on_close)(flare_io_sock *s, int reason, void *user);
    /* Optional: the write queue fell to the low-water mark (see above). */
    void (*on_drain)(flare_io_sock *s, void *user);
} flare_io_sock_cbs;

/* A listener accepted s; the callee must call sock_set_cbs (or sock_close)
 * before returning. */
typedef void (*flare_io_accept_cb)(flare_io_listener *l, flare_io_sock *s, void *user);
typedef void (*flare_io_timer_cb)(flare_io_timer *t, void *user);
typedef void (*flare_io_udp_recv_cb)(flare_io_udp *u, const flare_ipaddr *from, const uint8_t *data,
                                     size_t len, void *user);
/* A name resolved: status 0 and an address (port 0), or FLARE_ERR_NOT_FOUND
 * (no address of the family asked for) or another error; ip is NULL then. */
typedef void (*flare_io_resolve_cb)(flare_io_resolve *r, int status, const flare_ipaddr *ip,
                                    void *user);
/* A UPnP request finished; op is gone once this returns. */
typedef void (*flare_io_upnp_cb)(flare_io_upnp *op, const flare_io_upnp_result *r, void *user);

typedef struct flare_io_ops {
    /* Monotonic time in ns. */
    flare_tstamp (*now)(flare_io *io);
    /* Randomness for the host's cores. */
    void (*random)(flare_io *io, uint8_t *dst, size_t len);
    /* Wall-clock time in UTC Unix seconds (relay reservations carry it on
     * the wire). The simulator starts at FLARE_SIM_EPOCH. */
    uint64_t (*unix_time)(flare_io *io);

    /* TCP. local->port 0 picks a port. listen errors: FLARE_ERR_ADDR_IN_USE
     * (taken), FLARE_ERR_ADDR_NOT_AVAIL (not an address of this host),
     * FLARE_ERR_PERMISSION (e.g. a privileged port), FLARE_ERR_IO. */
    int (*listen)(flare_io *io, const flare_ipaddr *local, unsigned flags, flare_io_accept_cb cb,
                  void *user, flare_io_listener **out);
    int (*listener_addr)(flare_io_listener *l, flare_ipaddr *local);
    void (*listener_close)(flare_io_listener *l);
    /* local may be NULL (any address, ephemeral port). */
    int (*dial)(flare_io *io, const flare_ipaddr *local, const flare_ipaddr *remote, unsigned flags,
                const flare_io_sock_cbs *cbs, void *user, flare_io_sock **out);
    void (*sock_set_cbs)(flare_io_sock *s, const flare_io_sock_cbs *cbs, void *user);
    int (*sock_write)(flare_io_sock *s, const uint8_t *data, size_t len);
    size_t (*sock_pending)(flare_io_sock *s);
    /* paused != 0 stops reading (on_read), 0 resumes; see the rules above. */
    void (*sock_read_pause)(flare_io_sock *s, int paused);
    /* The queue size at or below which on_drain is reported. */
    void (*sock_set_lowat)(flare_io_sock *s, size_t lowat);
    int (*sock_addrs)(flare_io_sock *s, flare_ipaddr *local, flare_ipaddr *remote);
    /* Half-close: send FIN after queued data. */
    void (*sock_shutdown)(flare_io_sock *s);
    /* abort != 0 resets (RST) instead of a graceful close. */
    void (*sock_close)(flare_io_sock *s, int abort);

    /* One-shot timers at an absolute deadline; start on a running timer
     * re-arms it. */
    int (*timer_new)(flare_io *io, flare_io_timer_cb cb, void *user, flare_io_timer **out);
    void (*timer_start)(flare_io_timer *t, flare_tstamp deadline);
    void (*timer_stop)(flare_io_timer *t);
    void (*timer_del)(flare_io_timer *t);

    /* UDP (QUIC, later). One socket can listen and send. */
    int (*udp_bind)(flare_io *io, const flare_ipaddr *local, unsigned flags,
                    flare_io_udp_recv_cb cb, void *user, flare_io_udp **out);
    int (*udp_addr)(flare_io_udp *u, flare_ipaddr *local);
    int (*udp_send)(flare_io_udp *u, const flare_ipaddr *to, const uint8_t *data, size_t len);
    void (*udp_close)(flare_io_udp *u);

    /* Optional (NULL: names are not resolved, as in the simulator): looks a
     * DNS name up with the system resolver, asynchronously, for an address
     * of family (4, 6, or 0 for either); cb runs once from the loop, unless
     * resolve_cancel(*out) was called before. */
    int (*resolve)(flare_io *io, const char *name, int family, flare_io_resolve_cb cb, void *user,
                   flare_io_resolve **out);
    void (*resolve_cancel)(flare_io_resolve *r);
    /* Port mapping (optional: a driver without them leaves them NULL). The
     * default gateway of IP version family and our address towards it (port
     * 0): 0, FLARE_ERR_NOT_FOUND (no default route) or FLARE_ERR_UNSUPPORTED. */
    int (*gateway)(flare_io *io, int family, flare_ipaddr *gw, flare_ipaddr *local);
    /* UPnP IGD (SSDP discovery, then SOAP): runs off the loop, cb runs from
     * the loop. A request started with cb NULL runs to completion on its
     * own (a delete at shutdown). Returns 0 with *out set (may be NULL when
     * cb is NULL), FLARE_ERR_UNSUPPORTED, FLARE_ERR_INVALID_ARG or
     * FLARE_ERR_NOMEM. */
    int (*upnp)(flare_io *io, const flare_io_upnp_req *req, flare_io_upnp_cb cb, void *user,
                flare_io_upnp **out);
    /* No callback for op after this; the request itself may still finish. */
    void (*upnp_cancel)(flare_io_upnp *op);
} flare_io_ops;

struct flare_io {
    const flare_io_ops *ops;
};

/* Convenience wrappers. */
static inline flare_tstamp flare_io_now(flare_io *io)
{
    return io->ops->now(io);
}

#ifdef __cplusplus
}
#endif
#endif
