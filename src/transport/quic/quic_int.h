/*
 * transport/quic/quic_int.h - state shared by the QUIC endpoint (quic_ep.c)
 * and its connections and streams (quic_conn.c, quic_stream.c).
 */
#ifndef FLARE_TRANSPORT_QUIC_INT_H
#define FLARE_TRANSPORT_QUIC_INT_H

#include <netinet/in.h>
#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>
#include <sys/socket.h>

#include "core/mem.h"
#include "transport/quic/quic.h"

/* Send data is held in chunks of this size; they never move. */
#define FLARE__QUIC_CHUNK 16384
/* CIDs one connection may have mapped on the endpoint (ours plus the
 * client's original destination CID). */
#define FLARE__QUIC_MAX_CIDS 10
/* Connection IDs we let the peer hand us. */
#define FLARE__QUIC_ACTIVE_CID_LIMIT 8
/* Datagrams one connection may send per flush before yielding. */
#define FLARE__QUIC_BURST 64

typedef struct flare__quic_chunk {
    struct flare__quic_chunk *next;
    size_t len;
    uint8_t data[FLARE__QUIC_CHUNK];
} flare__quic_chunk;

struct flare__quic_stream {
    flare__quic_conn *qc;
    int64_t id;
    void *user;
    struct flare__quic_stream *next, *prev; /* all streams of the connection */
    /* Send queue: head..tail; head_off bytes of head are acknowledged; the
     * unsent position is (send_chunk, send_off). */
    flare__quic_chunk *head, *tail, *send_chunk;
    size_t head_off, send_off;
    size_t queued; /* bytes not yet acknowledged */
    size_t unsent; /* bytes not yet handed to ngtcp2 */
    unsigned fin : 1, fin_sent : 1, blocked : 1, shut_wr : 1, reset : 1, full : 1;
    unsigned closed : 1, rd_done : 1;
};

typedef struct flare__quic_cid_ent {
    ngtcp2_cid cid;
    flare__quic_conn *qc;
    struct flare__quic_cid_ent *next; /* bucket chain */
} flare__quic_cid_ent;

struct flare__quic_conn {
    flare__quic_ep *ep;
    ngtcp2_conn *conn;
    gnutls_session_t tls;
    ngtcp2_crypto_conn_ref ref;
    void *user;
    struct flare__quic_conn *next, *prev; /* all connections */
    flare__quic_stream *streams;
    size_t nstreams;
    flare__quic_cid_ent *cids[FLARE__QUIC_MAX_CIDS];
    size_t ncids;
    struct sockaddr_storage remote_sa;
    socklen_t remote_len;
    flare_ipaddr remote;
    int verify_err; /* verify's refusal */
    uint64_t close_code;
    unsigned server : 1, verified : 1, established : 1, closing : 1, dead : 1;
    unsigned counted_hs : 1, dirty : 1, in_cb : 1;
    int dead_err;
    uint64_t dead_code;
};

struct flare__quic_ep {
    flare__quic_config cfg;
    const flare_mem *mem;
    struct sockaddr_storage local_sa;
    socklen_t local_len;
    flare__quic_conn *conns;
    size_t nconns, nhandshakes;
    flare__quic_cid_ent **buckets;
    size_t nbuckets;
    uint8_t hash_key[16];
    uint8_t reset_secret[32];
    flare_tstamp reset_window;
    uint32_t resets_in_window;
    int depth; /* nesting of endpoint calls (deferred frees wait for 0) */
    uint8_t pkt[FLARE__QUIC_MAX_DGRAM];
};

/* quic_ep.c */
int flare__quic_cid_add(flare__quic_ep *ep, flare__quic_conn *qc, const ngtcp2_cid *cid);
void flare__quic_cid_remove(flare__quic_ep *ep, const ngtcp2_cid *cid);
void flare__quic_rand(flare__quic_ep *ep, uint8_t *dst, size_t len);
void flare__quic_sa_from(struct sockaddr_storage *sa, socklen_t *len, const flare_ipaddr *a);
void flare__quic_sa_to(flare_ipaddr *a, const struct sockaddr *sa);

/* quic_conn.c */
int flare__quic_conn_new_server(flare__quic_ep *ep, const ngtcp2_pkt_hd *hd,
                                const flare_ipaddr *from, flare_tstamp now, flare__quic_conn **out);
/* Reads one packet; the connection may be dead afterwards. */
void flare__quic_conn_read(flare__quic_conn *qc, const flare_ipaddr *from, const uint8_t *data,
                           size_t len, flare_tstamp now);
void flare__quic_conn_write(flare__quic_conn *qc, flare_tstamp now);
void flare__quic_conn_expire(flare__quic_conn *qc, flare_tstamp now);
/* Marks the connection dead with err (closed() runs and it is freed when the
 * endpoint reaps). */
void flare__quic_conn_kill(flare__quic_conn *qc, int err, uint64_t app_code);
/* Runs closed() and frees every dead connection. */
void flare__quic_reap(flare__quic_ep *ep);
void flare__quic_conn_free(flare__quic_conn *qc);

/* quic_stream.c */
flare__quic_stream *flare__quic_stream_new(flare__quic_conn *qc, int64_t id);
void flare__quic_stream_free(flare__quic_stream *st);
/* Writes stream data into packets until nothing more fits; returns 0 or a
 * fatal ngtcp2 error. */
int flare__quic_streams_write(flare__quic_conn *qc, ngtcp2_path_storage *ps, flare_tstamp now,
                              size_t *budget);
void flare__quic_stream_acked(flare__quic_stream *st, uint64_t datalen);
void flare__quic_send(flare__quic_conn *qc, const ngtcp2_path *path, const uint8_t *data,
                      size_t len);

#endif
