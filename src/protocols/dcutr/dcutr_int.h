/* Internal helpers shared by the DCUtR initiator and responder. */
#ifndef FLARE_PROTOCOLS_DCUTR_INT_H
#define FLARE_PROTOCOLS_DCUTR_INT_H

#include "flare/dcutr.h"

#define FLARE__DCUTR_RXCAP (FLARE_DCUTR_MAX_MSG + 10)

/* Validates a message as flare_dcutr_msg_decode does, without keeping its
 * addresses (the responder must not lose B's while reading SYNC). */
int flare__dcutr_msg_type(const uint8_t *in, size_t len, flare_dcutr_type *type);

/* Moves input into rx and looks for one complete frame there. Returns 1
 * (*msg, *mlen: the body inside rx; *flen: the bytes to consume with
 * flare__dcutr_rx_consume), 0 when all input is held and a frame is still
 * incomplete, or the flare_lpframe_parse error (TOO_LARGE, OVERLONG). */
int flare__dcutr_rx_frame(uint8_t *rx, size_t *rxlen, const uint8_t **in, size_t *len,
                          const uint8_t **msg, size_t *mlen, size_t *flen);
void flare__dcutr_rx_consume(uint8_t *rx, size_t *rxlen, size_t n);

/* Bounded event queue; when full the oldest event is dropped (callers poll
 * after every call, so this only bounds a careless glue). */
void flare__dcutr_evq_push(flare_dcutr_event *q, size_t *head, size_t *len,
                           const flare_dcutr_event *ev);
int flare__dcutr_evq_pop(flare_dcutr_event *q, size_t *head, size_t *len, flare_dcutr_event *ev);

/* Fills defaults into *out from s (NULL: all defaults). */
int flare__dcutr_settings(flare_dcutr_settings *out, const flare_dcutr_settings *s);

/* Logs a step when the settings carry a tracer. */
void flare__dcutr_trace(const flare_dcutr_settings *s, int initiator, unsigned attempt,
                        flare_dcutr_step step, flare_tstamp now, uint64_t value);
void flare__dcutr_trace_outcome(const flare_dcutr_settings *s, int ok, const flare_multiaddr *addr,
                                unsigned attempt);

#endif
