/*
 * flare/uvio.h - the libuv I/O driver: flare_io over real sockets.
 *
 * Sockets are created by flare (socket(), SO_REUSEADDR|SO_REUSEPORT when
 * FLARE_IO_REUSE is given, IPV6_V6ONLY for IPv6, bind) and handed to libuv
 * with uv_tcp_open / uv_udp_open, so a dial can leave from a listening port.
 * Time is uv_hrtime() (ns, monotonic); randomness is libsodium.
 *
 * All flare callbacks run from the loop (uv_run), never inside the flare_io
 * call that caused them. The driver is single-threaded: use it only from the
 * thread that runs the loop.
 *
 * SIGPIPE: libuv writes with write()/writev(), which cannot suppress the
 * signal per call, and a peer that resets its connection while we write
 * would otherwise end the process. flare_uvio_new therefore sets SIGPIPE to
 * SIG_IGN if its disposition is still SIG_DFL (a process-wide change; a
 * handler or SIG_IGN the application installed is left alone). Writes to a
 * reset connection then fail with EPIPE, reported as on_close(RESET).
 *
 * Behaviour the host can rely on:
 *  - dial errors found synchronously (socket, bind, connect returning e.g.
 *    EADDRNOTAVAIL) are reported through on_connect on a later loop
 *    iteration; dial itself fails only for FLARE_ERR_INVALID_ARG / _NOMEM.
 *  - listen and udp_bind report errors synchronously (no callback exists).
 *    A FLARE_IO_REUSE listen without FLARE_IO_SHARE first binds a probe
 *    socket (SO_REUSEADDR only) to the address: another listener there, in
 *    this process or another, makes it fail with FLARE_ERR_ADDR_IN_USE
 *    (TIME_WAIT leftovers and REUSE dial sockets on the port do not).
 *  - sock_read_pause is uv_read_stop / uv_read_start (the kernel's receive
 *    buffer then fills and TCP flow control stops the peer); a graceful
 *    sock_close of a paused socket reads again to discard until EOF.
 *    on_drain runs from the write completion that brings sock_pending() to
 *    the low-water mark.
 *  - sock_close(s, 0) sends the queued data and then FIN, and keeps reading
 *    (discarding) until the peer's EOF, so unread data does not make the
 *    kernel answer with RST; after 5 s without that it resets.
 *    sock_close(s, 1) sends RST (SO_LINGER 0) and drops queued data.
 *  - sock_write may be called before on_connect (the data waits for the
 *    connection); it returns FLARE_ERR_STATE after sock_shutdown.
 *  - a read error or reset gives on_close(FLARE_ERR_RESET for ECONNRESET /
 *    EPIPE, FLARE_ERR_TIMEOUT, FLARE_ERR_IO otherwise); a failed write does
 *    the same.
 *  - timers are kept in one heap ordered by (deadline, start order) and never
 *    fire before their deadline by uv_hrtime(); a deadline already passed
 *    fires on the next loop iteration.
 *  - udp_send copies the datagram; send errors after queueing are dropped
 *    (UDP is best effort).
 *  - udp_cork: one socket at a time holds the driver's send queue (64
 *    datagrams, 96 KiB); sends on another corked socket meanwhile leave at
 *    once. Uncorking (or closing) sends the queue with sendmmsg, a run of
 *    equal-sized datagrams to one address as one UDP_SEGMENT (GSO) message;
 *    a socket whose GSO send fails with EIO/EINVAL/EOPNOTSUPP sends one by
 *    one from then on. UDP reads use recvmmsg, 16 datagrams at a time.
 *  - UDP sockets ask for 4 MiB receive and 1 MiB send buffers (the kernel
 *    caps them at net.core.rmem_max / wmem_max).
 */
#ifndef FLARE_UVIO_H
#define FLARE_UVIO_H

#include <uv.h>

#include "flare/io.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct flare_uvio flare_uvio;

/* Creates a driver on loop (which must outlive it). mem NULL = libc.
 * Returns 0, FLARE_ERR_INVALID_ARG or FLARE_ERR_NOMEM. */
int flare_uvio_new(flare_uvio **out, uv_loop_t *loop, const flare_mem *mem);

/* The flare_io interface of u (valid until flare_uvio_del). */
/* Returns the driver interface of u (owned by u). */
flare_io *flare_uvio_io(flare_uvio *u);

/* Closes every listener, socket, UDP socket and timer of u; no flare callback
 * runs afterwards and every handle of u becomes invalid. libuv needs loop
 * iterations to finish closing: the caller runs the loop afterwards (e.g.
 * uv_run(loop, UV_RUN_DEFAULT) returns once nothing else is active), and the
 * driver frees its last memory from the final close callback. NULL is a
 * no-op. */
void flare_uvio_del(flare_uvio *u);

/* Number of libuv handles of u still open (for tests and diagnostics). */
/* Returns the libuv handles still open. */
size_t flare_uvio_handle_count(const flare_uvio *u);

#ifdef __cplusplus
}
#endif
#endif
