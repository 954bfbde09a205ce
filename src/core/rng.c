#include <sodium.h>
#include <string.h>

#include "flare/common.h"

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

void flare_prng_seed(flare_prng *p, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        p->s[i] = splitmix64(&seed);
}

uint64_t flare_prng_next(flare_prng *p)
{
    uint64_t *s = p->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

static void prng_fill(uint8_t *dst, size_t len, void *user)
{
    flare_prng *p = user;
    while (len > 0) {
        uint64_t v = flare_prng_next(p);
        size_t n = len < 8 ? len : 8;
        memcpy(dst, &v, n);
        dst += n;
        len -= n;
    }
}

flare_rng flare_prng_rng(flare_prng *p)
{
    flare_rng r = {prng_fill, p};
    return r;
}

static void os_fill(uint8_t *dst, size_t len, void *user)
{
    (void)user;
    randombytes_buf(dst, len);
}

flare_rng flare_os_rng(void)
{
    flare_rng r = {os_fill, NULL};
    return r;
}
