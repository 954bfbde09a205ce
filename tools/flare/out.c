/* Output helpers: human lines or JSON lines. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"

char *cli_json_str(char *dst, size_t cap, const char *s)
{
    size_t o = 0;
    if (cap < 3)
        return dst;
    dst[o++] = '"';
    for (; *s && o + 8 < cap; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            dst[o++] = '\\';
            dst[o++] = (char)ch;
        } else if (ch < 0x20) {
            o += (size_t)snprintf(dst + o, cap - o, "\\u%04x", ch);
        } else {
            dst[o++] = (char)ch;
        }
    }
    dst[o++] = '"';
    dst[o] = 0;
    return dst;
}

/* key/value pairs; a value beginning with \x01 is raw JSON, a NULL value
 * leaves the field out. */
void cli_jsonf(const char *event, ...)
{
    char tmp[4096];
    va_list ap;
    struct timespec ts; /* wall clock, so events of several processes line up */
    clock_gettime(CLOCK_REALTIME, &ts);
    printf("{\"event\":%s,\"ts\":%.6f", cli_json_str(tmp, sizeof(tmp), event),
           (double)ts.tv_sec + ts.tv_nsec / 1e9);
    va_start(ap, event);
    for (;;) {
        const char *k = va_arg(ap, const char *);
        if (!k)
            break;
        const char *v = va_arg(ap, const char *);
        if (!v)
            continue; /* a field an event has only sometimes is left out, never null */
        printf(",%s:", cli_json_str(tmp, sizeof(tmp), k));
        if (v[0] == '\x01')
            printf("%s", v + 1);
        else
            printf("%s", cli_json_str(tmp, sizeof(tmp), v));
    }
    va_end(ap);
    printf("}\n");
    fflush(stdout);
}

void cli_out(const char *event, const char *human_fmt, ...)
{
    (void)event;
    va_list ap;
    va_start(ap, human_fmt);
    vprintf(human_fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
}

void cli_debug(const char *fmt, ...)
{
    if (!CLI_HUMAN(CLI_LOG_DEBUG))
        return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "flare: debug: %ld.%03ld ", (long)ts.tv_sec, ts.tv_nsec / 1000000);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}
