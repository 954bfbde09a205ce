/* Strict parsing of numeric flag values: the whole string must be a number
 * in range, so "abc", "-5", "12x" or an overflow are refused, not read as 0. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static int fail(const char *flag, const char *s, const char *want)
{
    fprintf(stderr, "flare: %s: '%s' is not %s\n", flag, s, want);
    return -1;
}

int cli_parse_u64(const char *flag, const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char want[96];
    snprintf(want, sizeof(want), "a whole number from %llu to %llu", (unsigned long long)min,
             (unsigned long long)max);
    /* strtoull accepts leading spaces and a sign (negating the value):
     * only plain digits are numbers here. */
    if (!s || s[0] < '0' || s[0] > '9')
        return fail(flag, s ? s : "", want);
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return fail(flag, s, want);
    *out = v;
    return 0;
}

int cli_parse_int(const char *flag, const char *s, int min, int max, int *out)
{
    uint64_t v;
    if (min < 0 || cli_parse_u64(flag, s, (uint64_t)min, (uint64_t)max, &v))
        return -1;
    *out = (int)v;
    return 0;
}

int cli_parse_seconds(const char *flag, const char *s, double min, double max, double *out)
{
    char want[96];
    snprintf(want, sizeof(want), "a number of seconds from %g to %g", min, max);
    if (!s || ((s[0] < '0' || s[0] > '9') && s[0] != '.'))
        return fail(flag, s ? s : "", want);
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v) || v < min || v > max)
        return fail(flag, s, want);
    *out = v;
    return 0;
}

int cli_parse_bytes(const char *flag, const char *s, size_t *out)
{
    const char *want = "a byte count (a whole number, optionally with K, M or G)";
    char digits[32];
    size_t n = s ? strlen(s) : 0;
    unsigned shift = 0;
    if (n && (s[n - 1] == 'K' || s[n - 1] == 'M' || s[n - 1] == 'G')) {
        shift = s[n - 1] == 'K' ? 10 : s[n - 1] == 'M' ? 20 : 30;
        n--;
    }
    if (n == 0 || n >= sizeof(digits))
        return fail(flag, s ? s : "", want);
    memcpy(digits, s, n);
    digits[n] = 0;
    uint64_t v;
    if (cli_parse_u64(flag, digits, 0, SIZE_MAX >> shift, &v))
        return -1;
    *out = (size_t)v << shift;
    return 0;
}
