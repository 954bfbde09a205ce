/*
 * transport/quic/quic_mux.h - a QUIC connection's streams behind the host's
 * muxer operations (muxer/muxer.h): the host polls events and reads and
 * writes by stream id as with yamux; the QUIC core's callbacks feed it.
 *
 * Received bytes wait in a per-stream buffer until the host reads them; only
 * then is the QUIC receive window extended, so the buffer never holds more
 * than the window. A stream's id is its QUIC id plus one (the host reserves
 * 0 for the session; QUIC numbers from 0); streams past 2^32 are refused.
 */
#ifndef FLARE_TRANSPORT_QUIC_MUX_H
#define FLARE_TRANSPORT_QUIC_MUX_H

#include "muxer/muxer.h"
#include "transport/quic/quic.h"

typedef struct flare__quic_mux flare__quic_mux;

extern const flare__muxer_ops flare__quic_mux_ops;

/* A session over qc; flush(user) sends what the host's calls produced,
 * gone(user) runs when the host frees the session. */
flare__quic_mux *flare__quic_mux_new(flare__quic_conn *qc, const flare_mem *mem,
                                     void (*flush)(void *user), void (*gone)(void *user),
                                     void *user);
/* The QUIC connection is gone (err): a SESSION_ERROR event; every call
 * fails from now on. */
void flare__quic_mux_conn_lost(flare__quic_mux *m, int err);

/* Forwarded QUIC core callbacks (streams carry the mux's state as user). */
int flare__quic_mux_stream_open(flare__quic_mux *m, flare__quic_stream *st);
void flare__quic_mux_stream_data(flare__quic_stream *st, const uint8_t *data, size_t len, int fin);
void flare__quic_mux_stream_reset(flare__quic_stream *st);
void flare__quic_mux_stream_writable(flare__quic_stream *st);
void flare__quic_mux_stream_closed(flare__quic_stream *st);
/* Events waiting for the host. */
int flare__quic_mux_has_events(const flare__quic_mux *m);

#endif
