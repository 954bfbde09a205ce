/* The record store (GET_VALUE/PUT_VALUE) with per-namespace validators, and
 * the provider store (ADD_PROVIDER/GET_PROVIDERS). Both are bounded in
 * entries and sizes and expire what they hold; the stores are small, so
 * linear scans are fine. */
#include <string.h>

#include "core/mem.h"
#include "flare/keys.h"
#include "protocols/kad/kad.h"

#define HOUR (3600ull * FLARE_NS_PER_S)

/* ---- the pk namespace ---- */

static int pk_validate(const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen, void *user)
{
    (void)user;
    flare_peerid id;
    flare_pubkey pk;
    if (klen < 4 || memcmp(key, "/pk/", 4) != 0)
        return FLARE_ERR_MALFORMED;
    if (flare_peerid_from_bytes(&id, key + 4, klen - 4) != 0)
        return FLARE_ERR_MALFORMED;
    if (flare_pubkey_decode(&pk, val, vlen) != 0)
        return FLARE_ERR_MALFORMED;
    return flare_peerid_matches_pubkey(&id, &pk) ? 0 : FLARE_ERR_PEER_ID_MISMATCH;
}

/* Every valid value of a pk key is the same key: keep what we have. */
static int pk_select(const uint8_t *key, size_t klen, const uint8_t *a, size_t alen,
                     const uint8_t *b, size_t blen, void *user)
{
    (void)key, (void)klen, (void)a, (void)alen, (void)b, (void)blen, (void)user;
    return 0;
}

const flare__kad_validator flare__kad_pk_validator = {"pk", pk_validate, pk_select, NULL};

/* ---- records ---- */

void flare__kad_records_init(flare__kad_records *s, size_t max, flare_tstamp ttl,
                             const flare_mem *mem)
{
    memset(s, 0, sizeof(*s));
    s->mem = mem;
    s->max = max ? max : 1024;
    s->ttl = ttl ? ttl : 36 * HOUR;
}

static void rec_free(flare__kad_records *s, flare__kad_record *r)
{
    flare__free(s->mem, r->key);
    flare__free(s->mem, r->val);
}

void flare__kad_records_free(flare__kad_records *s)
{
    for (size_t i = 0; i < s->n; i++)
        rec_free(s, &s->r[i]);
    flare__free(s->mem, s->r);
    s->r = NULL;
    s->n = s->cap = 0;
}

int flare__kad_records_add_validator(flare__kad_records *s, const flare__kad_validator *v)
{
    if (!v || !v->validate || !v->select || !v->ns[0] || memchr(v->ns, '/', sizeof(v->ns)) ||
        !memchr(v->ns, 0, sizeof(v->ns)))
        return FLARE_ERR_INVALID_ARG;
    for (size_t i = 0; i < s->nv; i++)
        if (strcmp(s->v[i].ns, v->ns) == 0) {
            s->v[i] = *v;
            return 0;
        }
    if (s->nv == FLARE__KAD_MAX_VALIDATORS)
        return FLARE_ERR_LIMIT;
    s->v[s->nv++] = *v;
    return 0;
}

/* The validator of "/ns/rest" keys. */
static const flare__kad_validator *validator(const flare__kad_records *s, const uint8_t *key,
                                             size_t klen)
{
    if (klen < 2 || key[0] != '/')
        return NULL;
    const uint8_t *end = memchr(key + 1, '/', klen - 1);
    if (!end)
        return NULL;
    size_t nl = (size_t)(end - key - 1);
    for (size_t i = 0; i < s->nv; i++)
        if (strlen(s->v[i].ns) == nl && memcmp(s->v[i].ns, key + 1, nl) == 0)
            return &s->v[i];
    return NULL;
}

int flare__kad_record_validate(const flare__kad_records *s, const uint8_t *key, size_t klen,
                               const uint8_t *val, size_t vlen)
{
    if (klen > FLARE__KAD_MAX_KEY || vlen > FLARE__KAD_MAX_VALUE)
        return FLARE_ERR_TOO_LARGE;
    const flare__kad_validator *v = validator(s, key, klen);
    if (!v)
        return FLARE_ERR_UNSUPPORTED;
    return v->validate(key, klen, val, vlen, v->user);
}

int flare__kad_record_better(const flare__kad_records *s, const uint8_t *key, size_t klen,
                             const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    const flare__kad_validator *v = validator(s, key, klen);
    return v && v->select(key, klen, a, alen, b, blen, v->user) == 1;
}

static long rec_find(const flare__kad_records *s, const uint8_t *key, size_t klen)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->r[i].klen == klen && memcmp(s->r[i].key, key, klen) == 0)
            return (long)i;
    return -1;
}

static void rec_drop(flare__kad_records *s, size_t i)
{
    rec_free(s, &s->r[i]);
    s->r[i] = s->r[--s->n];
}

static void rec_expire(flare__kad_records *s, flare_tstamp now)
{
    for (size_t i = s->n; i-- > 0;)
        if (now > s->r[i].received + s->ttl)
            rec_drop(s, i);
}

static uint8_t *dup(const flare_mem *mem, const uint8_t *p, size_t len)
{
    uint8_t *d = flare__malloc(mem, len ? len : 1);
    if (d && len)
        memcpy(d, p, len);
    return d;
}

int flare__kad_records_put(flare__kad_records *s, const uint8_t *key, size_t klen,
                           const uint8_t *val, size_t vlen, flare_tstamp now)
{
    int rv = flare__kad_record_validate(s, key, klen, val, vlen);
    if (rv)
        return rv;
    rec_expire(s, now);
    long i = rec_find(s, key, klen);
    if (i >= 0 && !flare__kad_record_better(s, key, klen, s->r[i].val, s->r[i].vlen, val, vlen)) {
        if (s->r[i].vlen == vlen && memcmp(s->r[i].val, val, vlen) == 0) {
            s->r[i].received = now; /* the same record again: refreshed */
            return 0;
        }
        return FLARE_ERR_EXISTS;
    }
    if (i < 0 && s->n == s->max)
        return FLARE_ERR_LIMIT;
    if (i < 0 && s->n == s->cap) { /* grows by doubling: most nodes hold few records */
        size_t cap = s->cap ? 2 * s->cap : 4;
        cap = cap > s->max ? s->max : cap;
        flare__kad_record *nr = flare__realloc(s->mem, s->r, cap * sizeof(*nr));
        if (!nr)
            return FLARE_ERR_NOMEM;
        s->r = nr;
        s->cap = cap;
    }
    flare__kad_record nr = {dup(s->mem, key, klen), klen, dup(s->mem, val, vlen), vlen, now};
    if (!nr.key || !nr.val) {
        rec_free(s, &nr);
        return FLARE_ERR_NOMEM;
    }
    if (i >= 0) {
        rec_free(s, &s->r[i]);
        s->r[i] = nr;
    } else {
        s->r[s->n++] = nr;
    }
    return 0;
}

const flare__kad_record *flare__kad_records_get(flare__kad_records *s, const uint8_t *key,
                                                size_t klen, flare_tstamp now)
{
    rec_expire(s, now);
    long i = rec_find(s, key, klen);
    return i >= 0 ? &s->r[i] : NULL;
}

/* ---- providers ---- */

void flare__kad_providers_init(flare__kad_providers *s, size_t max_keys, size_t max_per_key,
                               flare_tstamp ttl, const flare_mem *mem)
{
    memset(s, 0, sizeof(*s));
    s->mem = mem;
    s->max_keys = max_keys ? max_keys : 4096;
    s->max_per_key = max_per_key ? max_per_key : 20;
    s->ttl = ttl ? ttl : 48 * HOUR;
}

void flare__kad_providers_free(flare__kad_providers *s)
{
    for (size_t i = 0; i < s->n; i++)
        flare__free(s->mem, s->k[i].p);
    flare__free(s->mem, s->k);
    s->k = NULL;
    s->n = s->cap = 0;
}

static long pkey_find(const flare__kad_providers *s, const uint8_t *key, size_t klen)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->k[i].klen == klen && memcmp(s->k[i].key, key, klen) == 0)
            return (long)i;
    return -1;
}

void flare__kad_providers_expire(flare__kad_providers *s, flare_tstamp now)
{
    for (size_t i = s->n; i-- > 0;) {
        flare__kad_pkey *k = &s->k[i];
        for (size_t j = k->n; j-- > 0;)
            if (now >= k->p[j].expires)
                k->p[j] = k->p[--k->n];
        if (!k->n) {
            flare__free(s->mem, k->p);
            s->k[i] = s->k[--s->n];
        }
    }
}

static flare__kad_pkey *pkey_new(flare__kad_providers *s, const uint8_t *key, size_t klen)
{
    if (s->n == s->max_keys)
        return NULL;
    if (s->n == s->cap) { /* grows by doubling: most nodes hold few keys */
        size_t cap = s->cap ? 2 * s->cap : 8;
        cap = cap > s->max_keys ? s->max_keys : cap;
        flare__kad_pkey *nk = flare__realloc(s->mem, s->k, cap * sizeof(*nk));
        if (!nk)
            return NULL;
        s->k = nk;
        s->cap = cap;
    }
    flare__kad_pkey *k = &s->k[s->n];
    memset(k, 0, sizeof(*k));
    k->p = flare__calloc(s->mem, s->max_per_key, sizeof(*k->p));
    if (!k->p)
        return NULL;
    memcpy(k->key, key, klen);
    k->klen = (uint8_t)klen;
    s->n++;
    return k;
}

int flare__kad_providers_add(flare__kad_providers *s, const uint8_t *key, size_t klen,
                             const flare_peerid *id, flare_tstamp now)
{
    if (!klen || klen > sizeof(s->k->key))
        return FLARE_ERR_TOO_LARGE;
    if (!id->len)
        return FLARE_ERR_INVALID_ARG;
    flare__kad_providers_expire(s, now);
    long i = pkey_find(s, key, klen);
    flare__kad_pkey *k = i >= 0 ? &s->k[i] : pkey_new(s, key, klen);
    if (!k)
        return s->n == s->max_keys ? FLARE_ERR_LIMIT : FLARE_ERR_NOMEM;
    for (size_t j = 0; j < k->n; j++)
        if (flare_peerid_equal(&k->p[j].id, id)) {
            k->p[j].expires = now + s->ttl;
            return 0;
        }
    if (k->n == s->max_per_key)
        return FLARE_ERR_LIMIT;
    k->p[k->n].id = *id;
    k->p[k->n].expires = now + s->ttl;
    k->n++;
    return 0;
}

size_t flare__kad_providers_get(flare__kad_providers *s, const uint8_t *key, size_t klen,
                                flare_tstamp now, flare_peerid *out, size_t n)
{
    flare__kad_providers_expire(s, now);
    long i = pkey_find(s, key, klen);
    if (i < 0)
        return 0;
    size_t m = 0;
    for (size_t j = 0; j < s->k[i].n && m < n; j++)
        out[m++] = s->k[i].p[j].id;
    return m;
}
