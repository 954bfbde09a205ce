/* A set-associative cache of the digests of signatures that verified. */
#include <sodium.h>
#include <string.h>

#include "core/mem.h"
#include "flare/sig_cache.h"

#define WAYS       4
#define DIGEST_LEN crypto_generichash_BYTES /* 32: BLAKE2b-256 */

typedef struct entry {
    uint8_t d[DIGEST_LEN];
} entry;

/* Each set is WAYS entries, most recently used first; used[s] counts the
 * filled ones (an all-zero digest is a possible digest, so fill state is
 * kept apart). */
struct flare_sig_cache {
    const flare_mem *mem;
    size_t nsets; /* a power of two */
    entry *e;     /* nsets * WAYS */
    uint8_t *used;
    flare_sig_cache_stats st;
};

int flare_sig_cache_new(flare_sig_cache **out, size_t entries, const flare_mem *mem)
{
    if (!out || entries == 0 || entries > FLARE_SIG_CACHE_MAX_ENTRIES)
        return FLARE_ERR_INVALID_ARG;
    *out = NULL;
    size_t nsets = 1;
    while (nsets * WAYS < entries)
        nsets <<= 1;
    flare_sig_cache *c = flare__calloc(mem, 1, sizeof(*c));
    if (!c)
        return FLARE_ERR_NOMEM;
    c->mem = flare__mem(mem);
    c->nsets = nsets;
    c->e = flare__calloc(mem, nsets * WAYS, sizeof(entry));
    c->used = flare__calloc(mem, nsets, 1);
    if (!c->e || !c->used) {
        flare_sig_cache_del(c);
        return FLARE_ERR_NOMEM;
    }
    c->st.capacity = nsets * WAYS;
    *out = c;
    return 0;
}

void flare_sig_cache_del(flare_sig_cache *c)
{
    if (!c)
        return;
    flare__free(c->mem, c->e);
    flare__free(c->mem, c->used);
    flare__free(c->mem, c);
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* BLAKE2b-256 of type || len(key) || len(msg) || len(sig) || key || msg ||
 * sig, lengths as 64-bit little-endian: fixed-width lengths up front make
 * the encoding injective, so equal digests mean equal inputs unless
 * BLAKE2b-256 itself collides. */
static int digest(const flare_pubkey *k, const uint8_t *msg, size_t len, const uint8_t *sig,
                  size_t siglen, uint8_t out[DIGEST_LEN])
{
    uint8_t head[1 + 3 * 8];
    head[0] = (uint8_t)k->type;
    put_u64(head + 1, k->len);
    put_u64(head + 9, len);
    put_u64(head + 17, siglen);
    crypto_generichash_state s;
    if (crypto_generichash_init(&s, NULL, 0, DIGEST_LEN) != 0 ||
        crypto_generichash_update(&s, head, sizeof(head)) != 0 ||
        crypto_generichash_update(&s, k->data, k->len) != 0 ||
        (len && crypto_generichash_update(&s, msg, len) != 0) ||
        crypto_generichash_update(&s, sig, siglen) != 0 ||
        crypto_generichash_final(&s, out, DIGEST_LEN) != 0)
        return FLARE_ERR_INTERNAL;
    return 0;
}

static size_t set_of(const flare_sig_cache *c, const uint8_t d[DIGEST_LEN])
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)d[i] << (8 * i);
    return (size_t)(v & (c->nsets - 1));
}

/* Moves way i of set s to the front (most recently used). */
static void to_front(entry *set, size_t i, const uint8_t d[DIGEST_LEN])
{
    memmove(&set[1], &set[0], i * sizeof(entry));
    memcpy(set[0].d, d, DIGEST_LEN);
}

static int lookup(flare_sig_cache *c, const uint8_t d[DIGEST_LEN])
{
    size_t s = set_of(c, d);
    entry *set = &c->e[s * WAYS];
    for (size_t i = 0; i < c->used[s]; i++)
        if (memcmp(set[i].d, d, DIGEST_LEN) == 0) {
            to_front(set, i, d);
            return 1;
        }
    return 0;
}

static void store(flare_sig_cache *c, const uint8_t d[DIGEST_LEN])
{
    size_t s = set_of(c, d);
    entry *set = &c->e[s * WAYS];
    size_t n = c->used[s];
    if (n == WAYS) {
        c->st.evicted++;
        n--; /* the least recently used, last, is overwritten */
    } else {
        c->used[s]++;
    }
    to_front(set, n, d);
    c->st.stored++;
}

int flare_sig_cache_verify(flare_sig_cache *c, const flare_pubkey *k, const uint8_t *msg,
                           size_t len, const uint8_t *sig, size_t siglen)
{
    /* Arguments flare_pubkey_verify refuses outright are left to it. */
    if (!c || !k || (!msg && len) || !sig || siglen == 0 || siglen > FLARE_SIG_MAX ||
        k->len > FLARE_PUBKEY_DATA_MAX)
        return flare_pubkey_verify(k, msg, len, sig, siglen);
    uint8_t d[DIGEST_LEN];
    if (digest(k, msg, len, sig, siglen, d) != 0)
        return flare_pubkey_verify(k, msg, len, sig, siglen);
    if (lookup(c, d)) {
        c->st.hits++;
        return 0;
    }
    c->st.misses++;
    int rv = flare_pubkey_verify(k, msg, len, sig, siglen);
    if (rv == 0)
        store(c, d);
    return rv;
}

void flare_sig_cache_stats_get(const flare_sig_cache *c, flare_sig_cache_stats *out)
{
    if (!out)
        return;
    memset(out, 0, sizeof(*out));
    if (c)
        *out = c->st;
}
