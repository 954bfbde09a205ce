/* Internal: a multiaddr held at its encoded length. flare_multiaddr is a
 * 402-byte value (room for the longest address); a connection keeps two
 * for its whole life, and nearly all are 8-byte /ip4/../tcp/.. or 20-byte
 * /ip6/../tcp/.. ones. Short ones live inline, longer ones on the heap;
 * readers expand one into a flare_multiaddr of their own. */
#ifndef FLARE_CORE_MULTIADDR_HELD_H
#define FLARE_CORE_MULTIADDR_HELD_H

#include "flare/multiaddr.h"

#define FLARE__MA_HELD_INLINE 22 /* /ip6/../tcp/.. is 20 bytes */

typedef struct flare__ma_held {
    uint8_t *big; /* heap copy of a longer address, or NULL */
    uint16_t len;
    uint8_t small[FLARE__MA_HELD_INLINE];
} flare__ma_held;

/* Replaces h's address by a copy of ma (the empty one too). 0, or
 * FLARE_ERR_NOMEM (then h holds the empty address). */
int flare__ma_hold(flare__ma_held *h, const flare_multiaddr *ma, const flare_mem *mem);
/* Expands h into *tmp and returns tmp. */
const flare_multiaddr *flare__ma_held_get(const flare__ma_held *h, flare_multiaddr *tmp);
/* 1 if h holds exactly ma. */
int flare__ma_held_equal(const flare__ma_held *h, const flare_multiaddr *ma);
void flare__ma_held_free(flare__ma_held *h, const flare_mem *mem);

#endif
