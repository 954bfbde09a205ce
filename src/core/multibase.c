/* Multibase encodings. Every decoder checks each character and the tail bits,
 * so one text maps to one byte string. */
#include <string.h>

#include "flare/multibase.h"

static const char B58[] = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
static const char B36[] = "0123456789abcdefghijklmnopqrstuvwxyz";
static const char B32[] = "abcdefghijklmnopqrstuvwxyz234567";
static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char B64URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
static const char B16[] = "0123456789abcdef";

static int alpha_index(const char *alpha, size_t n, char c)
{
    for (size_t i = 0; i < n; i++)
        if (alpha[i] == c)
            return (int)i;
    return -1;
}

/* Big-number radix conversion (base58, base36): leading zero bytes become
 * leading alphabet[0] characters, as bitcoin does. */
/* Radix conversion is quadratic and uses the stack: libp2p only radix-encodes
 * keys and hashes, so larger inputs are refused. */
#define RADIX_MAX_INPUT 1024

static int radix_encode(const char *alpha, unsigned radix, const uint8_t *in, size_t len, char *out,
                        size_t cap)
{
    if (len > RADIX_MAX_INPUT)
        return FLARE_ERR_TOO_LARGE;
    size_t zeros = 0;
    while (zeros < len && in[zeros] == 0)
        zeros++;
    /* log(256)/log(36) < 1.55: enough digits for the slower radix. */
    size_t size = (len - zeros) * 155 / 100 + 1;
    uint8_t digits[RADIX_MAX_INPUT * 155 / 100 + 1];
    memset(digits, 0, size);
    size_t used = 0;
    for (size_t i = zeros; i < len; i++) {
        unsigned carry = in[i];
        size_t j = 0;
        for (; j < used || carry; j++) {
            carry += 256u * digits[j];
            digits[j] = (uint8_t)(carry % radix);
            carry /= radix;
        }
        used = j;
    }
    size_t total = zeros + used;
    if (total + 1 > cap)
        return FLARE_ERR_BUFFER_TOO_SMALL;
    size_t o = 0;
    for (size_t i = 0; i < zeros; i++)
        out[o++] = alpha[0];
    for (size_t i = 0; i < used; i++)
        out[o++] = alpha[digits[used - 1 - i]];
    out[o] = 0;
    return (int)o;
}

static int radix_decode(const char *alpha, unsigned radix, const char *in, size_t len, uint8_t *out,
                        size_t cap)
{
    if (len > RADIX_MAX_INPUT * 2)
        return FLARE_ERR_TOO_LARGE;
    size_t zeros = 0;
    while (zeros < len && in[zeros] == alpha[0])
        zeros++;
    size_t size = (len - zeros) * 75 / 100 + 1; /* log(58)/log(256) < 0.75 */
    uint8_t bytes[RADIX_MAX_INPUT * 2 * 75 / 100 + 1];
    memset(bytes, 0, size);
    size_t used = 0;
    for (size_t i = zeros; i < len; i++) {
        int d = alpha_index(alpha, radix, in[i]);
        if (d < 0)
            return FLARE_ERR_MALFORMED;
        unsigned carry = (unsigned)d;
        size_t j = 0;
        for (; j < used || carry; j++) {
            if (j >= size)
                return FLARE_ERR_MALFORMED;
            carry += radix * bytes[j];
            bytes[j] = (uint8_t)(carry & 0xff);
            carry >>= 8;
        }
        used = j;
    }
    size_t total = zeros + used;
    if (total > cap)
        return FLARE_ERR_BUFFER_TOO_SMALL;
    memset(out, 0, zeros);
    for (size_t i = 0; i < used; i++)
        out[zeros + i] = bytes[used - 1 - i];
    return (int)total;
}

/* Power-of-two bases (16, 32, 64): pack bits, most significant first. */
static int bits_encode(const char *alpha, unsigned bits, const uint8_t *in, size_t len, char *out,
                       size_t cap)
{
    size_t n = (len * 8 + bits - 1) / bits;
    if (n + 1 > cap)
        return FLARE_ERR_BUFFER_TOO_SMALL;
    uint32_t acc = 0;
    unsigned have = 0;
    size_t o = 0;
    unsigned mask = (1u << bits) - 1;
    for (size_t i = 0; i < len; i++) {
        acc = (acc << 8) | in[i];
        have += 8;
        while (have >= bits) {
            have -= bits;
            out[o++] = alpha[(acc >> have) & mask];
        }
    }
    if (have)
        out[o++] = alpha[(acc << (bits - have)) & mask];
    out[o] = 0;
    return (int)o;
}

static int bits_decode(const char *alpha, unsigned bits, const char *in, size_t len, uint8_t *out,
                       size_t cap)
{
    size_t nbits = len * bits;
    /* Leftover bits must be fewer than one character's worth... */
    if (nbits % 8 >= bits)
        return FLARE_ERR_MALFORMED;
    size_t n = nbits / 8;
    if (n > cap)
        return FLARE_ERR_BUFFER_TOO_SMALL;
    uint32_t acc = 0;
    unsigned have = 0;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int d = alpha_index(alpha, 1u << bits, in[i]);
        if (d < 0)
            return FLARE_ERR_MALFORMED;
        acc = (acc << bits) | (uint32_t)d;
        have += bits;
        if (have >= 8) {
            have -= 8;
            out[o++] = (uint8_t)(acc >> have);
        }
        acc &= (1u << have) - 1;
    }
    /* ...and zero, so each byte string has one encoding. */
    if (acc != 0)
        return FLARE_ERR_MALFORMED;
    return (int)o;
}

size_t flare_base_encoded_max(flare_multibase base, size_t len)
{
    switch (base) {
    case FLARE_MULTIBASE_BASE16:
        return len * 2;
    case FLARE_MULTIBASE_BASE32:
        return (len * 8 + 4) / 5;
    case FLARE_MULTIBASE_BASE64:
    case FLARE_MULTIBASE_BASE64URL:
        return (len * 8 + 5) / 6;
    case FLARE_MULTIBASE_BASE58BTC:
        return len * 138 / 100 + 1;
    case FLARE_MULTIBASE_BASE36:
        return len * 155 / 100 + 1;
    }
    return 0;
}

int flare_base_encode(flare_multibase base, const uint8_t *in, size_t len, char *out, size_t cap)
{
    switch (base) {
    case FLARE_MULTIBASE_BASE16:
        return bits_encode(B16, 4, in, len, out, cap);
    case FLARE_MULTIBASE_BASE32:
        return bits_encode(B32, 5, in, len, out, cap);
    case FLARE_MULTIBASE_BASE64:
        return bits_encode(B64, 6, in, len, out, cap);
    case FLARE_MULTIBASE_BASE64URL:
        return bits_encode(B64URL, 6, in, len, out, cap);
    case FLARE_MULTIBASE_BASE58BTC:
        return radix_encode(B58, 58, in, len, out, cap);
    case FLARE_MULTIBASE_BASE36:
        return radix_encode(B36, 36, in, len, out, cap);
    }
    return FLARE_ERR_UNKNOWN_CODE;
}

int flare_base_decode(flare_multibase base, const char *in, size_t len, uint8_t *out, size_t cap)
{
    switch (base) {
    case FLARE_MULTIBASE_BASE16:
        return bits_decode(B16, 4, in, len, out, cap);
    case FLARE_MULTIBASE_BASE32:
        return bits_decode(B32, 5, in, len, out, cap);
    case FLARE_MULTIBASE_BASE64:
        return bits_decode(B64, 6, in, len, out, cap);
    case FLARE_MULTIBASE_BASE64URL:
        return bits_decode(B64URL, 6, in, len, out, cap);
    case FLARE_MULTIBASE_BASE58BTC:
        return radix_decode(B58, 58, in, len, out, cap);
    case FLARE_MULTIBASE_BASE36:
        return radix_decode(B36, 36, in, len, out, cap);
    }
    return FLARE_ERR_UNKNOWN_CODE;
}

static int known_base(char c)
{
    switch (c) {
    case 'f':
    case 'b':
    case 'k':
    case 'z':
    case 'm':
    case 'u':
        return 1;
    }
    return 0;
}

int flare_multibase_encode(flare_multibase base, const uint8_t *in, size_t len, char *out,
                           size_t cap)
{
    if (!known_base((char)base))
        return FLARE_ERR_UNKNOWN_CODE;
    if (cap < 2)
        return FLARE_ERR_BUFFER_TOO_SMALL;
    out[0] = (char)base;
    int n = flare_base_encode(base, in, len, out + 1, cap - 1);
    return n < 0 ? n : n + 1;
}

int flare_multibase_decode(const char *in, size_t len, uint8_t *out, size_t cap,
                           flare_multibase *base)
{
    if (len < 1)
        return FLARE_ERR_TRUNCATED;
    if (!known_base(in[0]))
        return FLARE_ERR_UNKNOWN_CODE;
    if (base)
        *base = (flare_multibase)in[0];
    return flare_base_decode((flare_multibase)in[0], in + 1, len - 1, out, cap);
}
