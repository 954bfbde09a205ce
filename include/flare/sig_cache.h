/*
 * flare/sig_cache.h - a cache of signatures that verified.
 *
 * Peers send the same signed bytes again and again: a node's signed peer
 * record reaches every peer it connects to, again on each reconnect and
 * identify push, and a Noise peer that keeps its static key signs the same
 * bytes in every handshake. Checking a signature (Ed25519: tens of
 * microseconds) costs far more than hashing what it covers, so a verifier
 * remembers the digest of each (key type, public key, message, signature)
 * that verified and skips the check when exactly those bytes come again.
 *
 * The digest is BLAKE2b-256 (libsodium crypto_generichash) over an
 * unambiguous encoding of all four: a hit means these exact bytes verified
 * before. Only successes are stored, so input that fails to verify (a
 * forgery) is checked in full every time and never enters the cache.
 *
 * The cache has a fixed number of entries (32 bytes each) chosen at
 * creation, in 4-way sets with least-recently-used replacement: it never
 * allocates after flare_sig_cache_new, and a peer sending new signatures
 * only evicts older entries (costing a verification later, nothing more).
 *
 * Ownership: the caller creates and deletes it; it must outlive every user
 * (hosts, sessions). It is NOT thread-safe: share one only between users
 * that run in the same thread (e.g. many hosts on one event loop or one
 * simulator); flare_host makes a small one of its own when its settings
 * give none.
 */
#ifndef FLARE_SIG_CACHE_H
#define FLARE_SIG_CACHE_H

#include "flare/common.h"
#include "flare/keys.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Entries of the cache a host makes for itself (16 KiB). */
#define FLARE_SIG_CACHE_DEFAULT_ENTRIES 512
/* Most entries of one cache (512 MiB of digests). */
#define FLARE_SIG_CACHE_MAX_ENTRIES (1u << 24)

typedef struct flare_sig_cache flare_sig_cache;

typedef struct flare_sig_cache_stats {
    uint64_t hits;    /* verifications skipped: the bytes had verified before */
    uint64_t misses;  /* verifications run (cache consulted, not found) */
    uint64_t stored;  /* successful verifications remembered */
    uint64_t evicted; /* entries dropped to make room */
    size_t capacity;  /* entries */
} flare_sig_cache_stats;

/* Creates a cache of at least `entries` entries (rounded up to a power of
 * two, at least 4). Returns 0, FLARE_ERR_INVALID_ARG (out NULL, entries 0
 * or above FLARE_SIG_CACHE_MAX_ENTRIES) or FLARE_ERR_NOMEM. */
int flare_sig_cache_new(flare_sig_cache **out, size_t entries, const flare_mem *mem);
/* Frees the cache (NULL is fine). */
void flare_sig_cache_del(flare_sig_cache *c);

/* As flare_pubkey_verify, consulting c first: 0 at once if exactly these
 * (key type, key, msg, sig) verified before; otherwise verifies, and
 * remembers them if they verify. c NULL: plain flare_pubkey_verify.
 * Returns what flare_pubkey_verify returns. */
int flare_sig_cache_verify(flare_sig_cache *c, const flare_pubkey *k, const uint8_t *msg,
                           size_t len, const uint8_t *sig, size_t siglen);

/* Fills *out with c's counters. */
void flare_sig_cache_stats_get(const flare_sig_cache *c, flare_sig_cache_stats *out);

#ifdef __cplusplus
}
#endif
#endif
