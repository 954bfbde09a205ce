/*
 * Kademlia DHT (/ipfs/kad/1.0.0) protocol core: the message codec, XOR
 * distance, the k-bucket routing table, the iterative lookup and the record
 * and provider stores. Sans-I/O: time and randomness come from the caller;
 * the host service (src/services/kad.c) moves the bytes.
 *
 * Everything a peer sends is bounded here: messages by size, closer and
 * provider peers by count, addresses per peer by count, records by size, the
 * stores by entries.
 */
#ifndef FLARE_PROTOCOLS_KAD_H
#define FLARE_PROTOCOLS_KAD_H

#include "flare/buf.h"
#include "flare/common.h"
#include "flare/ipaddr.h"
#include "flare/multiaddr.h"
#include "flare/peerid.h"

#define FLARE__KAD_ID        "/ipfs/kad/1.0.0"
#define FLARE__KAD_K         20
#define FLARE__KAD_ALPHA     3
#define FLARE__KAD_BETA      3            /* closest peers that must answer to end a lookup */
#define FLARE__KAD_MAX_MSG   (64u * 1024) /* one framed message */
#define FLARE__KAD_MAX_PEERS 20           /* closer or provider peers kept per message */
#define FLARE__KAD_MAX_ADDRS 8            /* addresses kept per peer */
#define FLARE__KAD_MAX_KEY   256          /* bytes of a key */
#define FLARE__KAD_MAX_VALUE 10240        /* bytes of a record value */

typedef enum {
    FLARE__KAD_PUT_VALUE = 0,
    FLARE__KAD_GET_VALUE = 1,
    FLARE__KAD_ADD_PROVIDER = 2,
    FLARE__KAD_GET_PROVIDERS = 3,
    FLARE__KAD_FIND_NODE = 4,
    FLARE__KAD_PING = 5,
} flare__kad_type;

typedef enum {
    FLARE__KAD_NOT_CONNECTED = 0,
    FLARE__KAD_CONNECTED = 1,
    FLARE__KAD_CAN_CONNECT = 2,
    FLARE__KAD_CANNOT_CONNECT = 3,
} flare__kad_conn_type;

/* ---- messages ------------------------------------------------------------------ */

/* A view of bytes: into the decoded input, or the caller's when encoding. */
typedef struct flare__kad_bytes {
    const uint8_t *p;
    size_t len;
} flare__kad_bytes;

typedef struct flare__kad_peer {
    flare__kad_bytes id; /* a valid binary peer ID after decoding */
    flare__kad_bytes addrs[FLARE__KAD_MAX_ADDRS];
    size_t naddrs;
    int conn; /* flare__kad_conn_type */
} flare__kad_peer;

typedef struct flare__kad_msg {
    int type; /* flare__kad_type */
    int32_t cluster_level;
    flare__kad_bytes key;
    int has_record;
    flare__kad_bytes rec_key, rec_value, rec_time;
    flare__kad_peer closer[FLARE__KAD_MAX_PEERS];
    size_t ncloser;
    flare__kad_peer providers[FLARE__KAD_MAX_PEERS];
    size_t nproviders;
    size_t ndropped; /* peers or addresses over a bound or invalid, skipped */
} flare__kad_msg;

/* Decodes one message body (no length prefix); views point into in. Peers
 * with an invalid ID, addresses that do not parse and entries beyond the
 * bounds are skipped and counted in ndropped. Returns 0, FLARE_ERR_TOO_LARGE
 * (over FLARE__KAD_MAX_MSG, a key or value over its bound),
 * FLARE_ERR_UNKNOWN_CODE (message type) or a protobuf error. The peer
 * slots past ncloser / nproviders are left undefined (not cleared). */
int flare__kad_msg_decode(flare__kad_msg *m, const uint8_t *in, size_t len);
/* Appends m as one varint-length-prefixed message. out is unchanged on
 * error (FLARE_ERR_TOO_LARGE, FLARE_ERR_INVALID_ARG, FLARE_ERR_NOMEM). */
int flare__kad_msg_encode(flare_buf *out, const flare__kad_msg *m);
/* An empty message of type t. */
void flare__kad_msg_init(flare__kad_msg *m, flare__kad_type t);

/* ---- keys and distance ---------------------------------------------------------- */

typedef struct flare__kad_key {
    uint8_t b[32];
} flare__kad_key;

/* The Kademlia key of a DHT key: SHA-256 of its bytes. */
void flare__kad_key_of(flare__kad_key *k, const uint8_t *data, size_t len);
void flare__kad_key_of_peer(flare__kad_key *k, const flare_peerid *id);
/* Leading bits a and b share (256 when equal). */
int flare__kad_cpl(const flare__kad_key *a, const flare__kad_key *b);
/* Compares the XOR distances of a and b to target: <0, 0, >0. */
int flare__kad_dist_cmp(const flare__kad_key *target, const flare__kad_key *a,
                        const flare__kad_key *b);
/* A random key sharing exactly cpl leading bits with self (cpl < 256). */
void flare__kad_random_key(flare__kad_key *out, const flare__kad_key *self, int cpl, flare_rng rng);
/* The IP group for the diversity limits: /24 of IPv4, /48 of IPv6; 0 for an
 * address that is not public (loopback, private, ...), which no limit
 * applies to. doc_is_public counts the documentation ranges as public (the
 * simulator and NAT lab use them). */
uint64_t flare__kad_ip_group(const flare_ipaddr *ip, int doc_is_public);

/* ---- routing table ----------------------------------------------------------------- */

typedef struct flare__kad_rt_cfg {
    size_t k;                /* bucket size (FLARE__KAD_K) */
    size_t replacements;     /* replacement cache per bucket */
    size_t max_group_bucket; /* peers of one IP group per bucket */
    size_t max_group_table;  /* peers of one IP group in the table */
} flare__kad_rt_cfg;

/* The key first: a closest-peers walk reads the keys of whole buckets and
 * the IDs of the chosen few. */
typedef struct flare__kad_rt_entry {
    flare__kad_key key;
    uint64_t group;
    flare_tstamp last_ok;
    flare_peerid id;
} flare__kad_rt_entry;

/* The arrays grow to their use (up to k and cfg.replacements): the deep
 * buckets of every node stay nearly empty. */
typedef struct flare__kad_bucket {
    flare__kad_rt_entry *e; /* n of cap, least recently seen first */
    size_t n, cap;
    flare__kad_rt_entry *r; /* replacement cache: nr of rcap, newest last */
    size_t nr, rcap;
} flare__kad_bucket;

#define FLARE__KAD_BUCKETS 257 /* by common prefix length with us; 256 is us */

typedef struct flare__kad_rt {
    const flare_mem *mem;
    flare__kad_rt_cfg cfg;
    flare_peerid self;
    flare__kad_key self_key;
    flare__kad_bucket *b[FLARE__KAD_BUCKETS]; /* allocated on first use */
    uint64_t nonempty[4];                     /* bit c: bucket c holds a peer (256 never does) */
    size_t size;
} flare__kad_rt;

/* Outcomes of flare__kad_rt_seen. */
enum {
    FLARE__KAD_RT_UPDATED = 0, /* already in the table: moved to the tail */
    FLARE__KAD_RT_ADDED = 1,
    FLARE__KAD_RT_CACHED = 2, /* bucket full: kept as a replacement */
};

/* cfg NULL: the defaults (k 20, 10 replacements, 2 per group per bucket,
 * 10 per group in the table). */
void flare__kad_rt_init(flare__kad_rt *rt, const flare_peerid *self, const flare__kad_rt_cfg *cfg,
                        const flare_mem *mem);
void flare__kad_rt_free(flare__kad_rt *rt);
/* A peer completed an exchange with us (only then may it enter). Returns a
 * FLARE__KAD_RT_* outcome, FLARE_ERR_LIMIT (its IP group is at its limit),
 * FLARE_ERR_INVALID_ARG (ourselves) or FLARE_ERR_NOMEM. */
int flare__kad_rt_seen(flare__kad_rt *rt, const flare_peerid *id, uint64_t group, flare_tstamp now);
/* The peer failed to answer: removed, and the newest replacement of its
 * bucket takes its place. Returns 1 if it was in the table, else 0. */
int flare__kad_rt_remove(flare__kad_rt *rt, const flare_peerid *id);
int flare__kad_rt_has(const flare__kad_rt *rt, const flare_peerid *id);
/* Up to n peers closest to target, closest first (equal keys in table
 * order). Returns the count. It walks the buckets outward from target's
 * and sorts each on its own: about n entries are looked at, not the table. */
size_t flare__kad_rt_closest(const flare__kad_rt *rt, const flare__kad_key *target,
                             flare_peerid *out, size_t n);
/* As flare__kad_rt_closest, into pointers to the entries (valid until the
 * table next changes). */
size_t flare__kad_rt_closest_entries(const flare__kad_rt *rt, const flare__kad_key *target,
                                     const flare__kad_rt_entry **out, size_t n);
/* The highest common prefix length of a peer in the table (-1 if empty). */
int flare__kad_rt_max_cpl(const flare__kad_rt *rt);
/* The i-th peer in table order (for walks); NULL past the end. */
const flare__kad_rt_entry *flare__kad_rt_at(const flare__kad_rt *rt, size_t i);

/* ---- iterative lookup ---------------------------------------------------------------- */

enum {
    FLARE__KAD_C_NEW,
    FLARE__KAD_C_WAITING,
    FLARE__KAD_C_OK,
    FLARE__KAD_C_FAILED,
};

typedef struct flare__kad_cand {
    flare_peerid id;
    flare__kad_key key;
    uint8_t state;
    uint8_t path; /* the disjoint path that found it */
    uint8_t hop;  /* 0 for seeds, the finder's hop + 1 otherwise */
} flare__kad_cand;

typedef struct flare__kad_lookup {
    const flare_mem *mem;
    flare__kad_key target;
    flare_peerid self;
    size_t alpha, beta, k, paths, cap;
    flare__kad_cand *c; /* sorted by distance to target; room for alloc (up to cap) */
    size_t alloc;
    size_t n;
    size_t inflight;
    size_t next_path;
    int follow;      /* the beta closest answered: the follow-up runs */
    int no_followup; /* set by the caller: it ends once the beta closest answered */
    size_t queried, answered, followups;
} flare__kad_lookup;

/* Lookup steps (flare__kad_lookup_next). */
enum {
    FLARE__KAD_L_WAIT = 0,  /* nothing to send now: wait for answers */
    FLARE__KAD_L_QUERY = 1, /* query *out */
    FLARE__KAD_L_DONE = 2,  /* the k closest were asked (or nobody is left) */
};

/* A lookup of target by alpha parallel queries over paths disjoint paths
 * (1 = plain Kademlia; the paths share one candidate list and the rule
 * below applies to it). It ends in two steps, as go-libp2p-kad-dht's: once
 * the beta closest live peers seen (not failed) have all answered, the
 * peers of the k closest live ones not asked yet are asked all at once (not
 * limited by alpha; one that fails brings in the next live one), and the
 * peers they name are not followed; the lookup is done when the k closest
 * live ones all answered. beta = k (or more) is the strict
 * rule: go on until the k closest peers seen have all answered, then no
 * follow-up is left. A caller that needs neither the k closest nor a
 * connection to them (a table refresh of a DHT client) sets no_followup
 * after init: the lookup then ends once the beta closest answered. alpha,
 * beta, k 0: the defaults. It keeps at most 8k candidates. Returns 0 or
 * FLARE_ERR_NOMEM. */
int flare__kad_lookup_init(flare__kad_lookup *l, const flare__kad_key *target,
                           const flare_peerid *self, size_t alpha, size_t beta, size_t k,
                           size_t paths, const flare_mem *mem);
void flare__kad_lookup_free(flare__kad_lookup *l);
/* A starting peer (from the routing table); seeds are spread over the paths. */
void flare__kad_lookup_seed(flare__kad_lookup *l, const flare_peerid *id);
int flare__kad_lookup_next(flare__kad_lookup *l, flare_peerid *out);
/* id answered with closer peers (binary IDs, already validated; ignored
 * in the follow-up). */
void flare__kad_lookup_ok(flare__kad_lookup *l, const flare_peerid *id, const flare_peerid *closer,
                          size_t n);
void flare__kad_lookup_fail(flare__kad_lookup *l, const flare_peerid *id);
int flare__kad_lookup_done(const flare__kad_lookup *l);
/* Up to n peers that answered, closest first (the lookup's result). */
size_t flare__kad_lookup_result(const flare__kad_lookup *l, flare_peerid *out, size_t n);
/* The largest hop count among the answered peers in the result (-1: none). */
int flare__kad_lookup_hops(const flare__kad_lookup *l);

/* ---- records ---------------------------------------------------------------------------- */

/* A namespace's rules: validate says whether value may be stored under key
 * (0 or an error); select returns 1 if b is better than a (ties keep a). */
#define FLARE__KAD_MAX_NS 31

typedef struct flare__kad_validator {
    char ns[FLARE__KAD_MAX_NS + 1]; /* "pk" for keys "/pk/..."; copied with the struct */
    int (*validate)(const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen, void *user);
    int (*select)(const uint8_t *key, size_t klen, const uint8_t *a, size_t alen, const uint8_t *b,
                  size_t blen, void *user);
    void *user;
} flare__kad_validator;

/* The public key namespace: /pk/<binary peer ID>, value a PublicKey whose
 * peer ID is that one. */
extern const flare__kad_validator flare__kad_pk_validator;

#define FLARE__KAD_MAX_VALIDATORS 8

typedef struct flare__kad_record {
    uint8_t *key;
    size_t klen;
    uint8_t *val;
    size_t vlen;
    flare_tstamp received;
} flare__kad_record;

typedef struct flare__kad_records {
    const flare_mem *mem;
    flare__kad_validator v[FLARE__KAD_MAX_VALIDATORS];
    size_t nv;
    flare__kad_record *r;
    size_t n, cap, max;
    flare_tstamp ttl;
} flare__kad_records;

/* At most max records (0: 1024), each kept ttl ns (0: 36 h). */
void flare__kad_records_init(flare__kad_records *s, size_t max, flare_tstamp ttl,
                             const flare_mem *mem);
void flare__kad_records_free(flare__kad_records *s);
/* Adds (or replaces) a namespace's validator. FLARE_ERR_INVALID_ARG (no
 * callbacks, an empty namespace or one with '/'), FLARE_ERR_LIMIT when full. */
int flare__kad_records_add_validator(flare__kad_records *s, const flare__kad_validator *v);
/* Validates key/value against its namespace (FLARE_ERR_UNSUPPORTED: no
 * validator for it; the validator's error otherwise). */
int flare__kad_record_validate(const flare__kad_records *s, const uint8_t *key, size_t klen,
                               const uint8_t *val, size_t vlen);
/* Validates and stores; an existing record is replaced only when the
 * namespace selects the new one (then 0, else FLARE_ERR_EXISTS). */
int flare__kad_records_put(flare__kad_records *s, const uint8_t *key, size_t klen,
                           const uint8_t *val, size_t vlen, flare_tstamp now);
/* The record of key, NULL if none or expired. */
const flare__kad_record *flare__kad_records_get(flare__kad_records *s, const uint8_t *key,
                                                size_t klen, flare_tstamp now);
/* 1 if b is the better value of key (by its namespace), else 0. */
int flare__kad_record_better(const flare__kad_records *s, const uint8_t *key, size_t klen,
                             const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);

/* ---- providers ---------------------------------------------------------------------------- */

typedef struct flare__kad_prov {
    flare_peerid id;
    flare_tstamp expires;
} flare__kad_prov;

typedef struct flare__kad_pkey {
    uint8_t key[64]; /* a multihash */
    uint8_t klen;
    flare__kad_prov *p;
    size_t n;
} flare__kad_pkey;

typedef struct flare__kad_providers {
    const flare_mem *mem;
    flare__kad_pkey *k;
    size_t n, cap, max_keys, max_per_key;
    flare_tstamp ttl;
} flare__kad_providers;

/* At most max_keys keys (0: 4096) of max_per_key providers (0: 20) each,
 * kept ttl ns (0: 48 h) after their last announcement. */
void flare__kad_providers_init(flare__kad_providers *s, size_t max_keys, size_t max_per_key,
                               flare_tstamp ttl, const flare_mem *mem);
void flare__kad_providers_free(flare__kad_providers *s);
/* Records (or refreshes) id as a provider of key. FLARE_ERR_TOO_LARGE for a
 * key over 64 bytes; FLARE_ERR_LIMIT when the store or the key is full. */
int flare__kad_providers_add(flare__kad_providers *s, const uint8_t *key, size_t klen,
                             const flare_peerid *id, flare_tstamp now);
/* Up to n live providers of key. Returns the count. */
size_t flare__kad_providers_get(flare__kad_providers *s, const uint8_t *key, size_t klen,
                                flare_tstamp now, flare_peerid *out, size_t n);
/* Drops expired entries. */
void flare__kad_providers_expire(flare__kad_providers *s, flare_tstamp now);

#endif
