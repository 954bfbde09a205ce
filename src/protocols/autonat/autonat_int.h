/* Internal helpers shared by the AutoNAT cores. */
#ifndef FLARE_AUTONAT_INT_H
#define FLARE_AUTONAT_INT_H

#include "flare/autonat.h"

/* Fixed-window limiter: at most global_limit accepted requests per period,
 * and per_peer_limit per peer (per_peer_limit 0 = no per-peer limit). */
int flare__autonat_limiter_init(flare__autonat_limiter *l, unsigned global_limit,
                                unsigned per_peer_limit, flare_tstamp period, const flare_mem *mem);
void flare__autonat_limiter_free(flare__autonat_limiter *l);
/* Counts a request if allowed: returns 1 (allowed, counted) or 0 (limited). */
int flare__autonat_limiter_take(flare__autonat_limiter *l, const flare_peerid *peer,
                                flare_tstamp now);

/* Appends a fixed64 field. */
int flare__autonat_put_fixed64(flare_buf *b, uint32_t num, uint64_t v);
/* Appends body[0..len) as one frame, or FLARE_ERR_TOO_LARGE over max. */
int flare__autonat_frame(flare_buf *out, const flare_buf *body, size_t max);

/* 1 if a's first component is ip4/ip6 with the same address as b's. */
int flare__autonat_same_ip(const flare_multiaddr *a, const flare_multiaddr *b);
/* a without a trailing /p2p/ component (copied to out). */
void flare__autonat_strip_p2p(flare_multiaddr *out, const flare_multiaddr *a);

#endif
