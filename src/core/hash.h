/* A fast non-cryptographic hash for in-memory tables, a word at a time:
 * byte-wise hashing showed in profiles of busy nodes (every identify,
 * connection and DHT answer looks several keys up). Tables keyed by what a
 * peer chooses pass a per-host random seed, so that a peer cannot aim many
 * keys at one bucket. */
#ifndef FLARE_CORE_HASH_H
#define FLARE_CORE_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline uint64_t flare__hash_words(uint64_t seed, const void *data, size_t n)
{
    const uint8_t *p = data;
    const size_t total = n;
    uint64_t h = seed ^ 0xcbf29ce484222325ULL ^ n;
    for (; n >= 8; p += 8, n -= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0x9e3779b97f4a7c15ULL;
        h ^= h >> 32;
    }
    if (n) {
        uint64_t w = 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        /* The last word read whole and shifted: the same value as the
         * zero-padded copy, without a byte loop whose stores the load then
         * waits for (peer IDs are 38 bytes: every look-up has a tail). */
        if (total >= 8) {
            memcpy(&w, p + n - 8, 8);
            w >>= 8 * (8 - n);
        } else
#endif
            memcpy(&w, p, n);
        h = (h ^ w) * 0x9e3779b97f4a7c15ULL;
    }
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ULL;
    return h ^ (h >> 32);
}

#endif
