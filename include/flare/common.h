/*
 * flare/common.h - conventions shared by every flare module.
 *
 * Errors: functions return 0 (FLARE_OK) or a negative FLARE_ERR_* code;
 * flare_strerror() names it. Functions that produce a count return it as a
 * non-negative value. Codes below FLARE_ERR_FATAL on a protocol object mean the
 * object is dead: the only legal call left is its _free/_del.
 *
 * Memory: every constructor takes a const flare_mem * (NULL = libc). Objects
 * embedded in another use _init/_free; heap objects use _new/_del.
 *
 * Time: a flare_tstamp is nanoseconds on a monotonic clock chosen by the
 * caller. Protocol cores never read a clock: time is an argument.
 *
 * Randomness: cores take a flare_rng from their caller and never read the OS
 * RNG themselves, so tests and the simulator are deterministic.
 */
#ifndef FLARE_COMMON_H
#define FLARE_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FLARE_VERSION_STR "0.1.0"

typedef uint64_t flare_tstamp;
#define FLARE_TSTAMP_NEVER UINT64_MAX
#define FLARE_NS_PER_MS    1000000ULL
#define FLARE_NS_PER_S     1000000000ULL

enum flare_error {
    FLARE_OK = 0,
    FLARE_ERR_NOMEM = -1,             /* allocation failed */
    FLARE_ERR_INVALID_ARG = -2,       /* caller passed something invalid */
    FLARE_ERR_TRUNCATED = -3,         /* input ends before the structure does */
    FLARE_ERR_OVERLONG = -4,          /* non-minimal or over-long encoding */
    FLARE_ERR_UNKNOWN_CODE = -5,      /* unknown code / type / protocol id */
    FLARE_ERR_OUT_OF_RANGE = -6,      /* a value outside its allowed range */
    FLARE_ERR_MALFORMED = -7,         /* structurally invalid input */
    FLARE_ERR_BAD_SIGNATURE = -8,     /* signature does not verify */
    FLARE_ERR_UNSUPPORTED = -9,       /* valid but not supported here */
    FLARE_ERR_BUFFER_TOO_SMALL = -10, /* output buffer too small */
    FLARE_ERR_AGAIN = -11,            /* need more input; not an error of the peer */
    FLARE_ERR_TOO_LARGE = -12,        /* a message exceeds its size limit */
    FLARE_ERR_PROTO = -13,            /* the peer violated the protocol */
    FLARE_ERR_PEER_ID_MISMATCH = -14, /* remote identity is not the expected one */
    FLARE_ERR_CRYPTO = -15,           /* decryption / key agreement failed */
    FLARE_ERR_NEGOTIATION = -16,      /* no common protocol (multistream "na") */
    FLARE_ERR_CLOSED = -17,           /* closed (gracefully) */
    FLARE_ERR_RESET = -18,            /* reset by the peer or locally */
    FLARE_ERR_TIMEOUT = -19,          /* a deadline passed */
    FLARE_ERR_LIMIT = -20,            /* a resource limit was hit */
    FLARE_ERR_IO = -21,               /* an I/O error from the driver */
    FLARE_ERR_NOT_FOUND = -22,        /* no such thing */
    FLARE_ERR_STATE = -23,            /* the call is not valid in this state */
    FLARE_ERR_NONCE_EXHAUSTED = -24,  /* cipher nonce space used up */
    FLARE_ERR_FLOW_CONTROL = -25,     /* peer exceeded a flow-control window */
    FLARE_ERR_REFUSED = -26,          /* the peer (or a policy) refused */
    FLARE_ERR_UNREACHABLE = -27,      /* no route / dial failed */
    FLARE_ERR_ADDR_IN_USE = -28,      /* local address already in use */
    FLARE_ERR_EXISTS = -29,           /* already exists */
    FLARE_ERR_LIMITED = -30,          /* not allowed over a limited (relayed) connection */
    FLARE_ERR_ADDR_NOT_AVAIL = -31,   /* no such local address (EADDRNOTAVAIL) */
    FLARE_ERR_PERMISSION = -32,       /* the OS refused (EACCES/EPERM: e.g. a port < 1024) */
    FLARE_ERR_FATAL = -500,           /* codes below this are fatal to their object */
    FLARE_ERR_INTERNAL = -501,        /* a bug in flare */
};

/* Returns a static, human-readable name for a FLARE_ERR_* code. */
const char *flare_strerror(int err);

/* Allocator hooks (ngtcp2_mem style). All four must be set. */
typedef struct flare_mem {
    void *user;
    void *(*malloc)(size_t size, void *user);
    void (*free)(void *ptr, void *user);
    void *(*calloc)(size_t nmemb, size_t size, void *user);
    void *(*realloc)(void *ptr, size_t size, void *user);
} flare_mem;

/* The libc allocator. */
/* Returns the libc allocator (static; never NULL). */
const flare_mem *flare_mem_default(void);

/* Randomness source supplied by the caller (OS RNG in drivers, seeded PRNG in
 * tests and the simulator). Must fill all len bytes. */
typedef void (*flare_rand_fn)(uint8_t *dst, size_t len, void *user);
typedef struct flare_rng {
    flare_rand_fn fn;
    void *user;
} flare_rng;

/* A reproducible PRNG (xoshiro256**) for tests and the simulator; not for
 * keys in production. */
typedef struct flare_prng {
    uint64_t s[4];
} flare_prng;
void flare_prng_seed(flare_prng *p, uint64_t seed);
/* Returns the next 64 pseudo-random bits. */
uint64_t flare_prng_next(flare_prng *p);
/* A flare_rng backed by p. */
/* Returns a flare_rng drawing from p (p must outlive it). */
flare_rng flare_prng_rng(flare_prng *p);
/* The OS RNG (libsodium randombytes). For drivers and key generation only. */
/* Returns a flare_rng reading the OS random source. */
flare_rng flare_os_rng(void);

#ifdef __cplusplus
}
#endif
#endif
