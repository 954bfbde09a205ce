/*
 * The WebSocket opening handshake over HTTP/1.1. Only what RFC 6455 needs
 * is read: the request or status line, Upgrade, Connection,
 * Sec-WebSocket-Key/-Version/-Accept and Host; other fields are skipped
 * (after a syntax check). Every field of the block counts against
 * FLARE__WS_HTTP_LINES.
 */
#include "transport/ws_http.h"

#include <gnutls/crypto.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

size_t flare__ws_http_end(const uint8_t *data, size_t len)
{
    for (size_t i = 3; i < len; i++)
        if (data[i] == '\n' && data[i - 1] == '\r' && data[i - 2] == '\n' && data[i - 3] == '\r')
            return i + 1;
    return 0;
}

int flare__ws_accept_for(const char *key, size_t keylen, char *out)
{
    char in[64 + sizeof(WS_GUID)];
    uint8_t digest[20];
    if (keylen > 64)
        return FLARE_ERR_INVALID_ARG;
    memcpy(in, key, keylen);
    memcpy(in + keylen, WS_GUID, sizeof(WS_GUID) - 1);
    if (gnutls_hash_fast(GNUTLS_DIG_SHA1, in, keylen + sizeof(WS_GUID) - 1, digest) < 0)
        return FLARE_ERR_INTERNAL;
    sodium_bin2base64(out, FLARE__WS_ACCEPT_LEN + 1, digest, sizeof(digest),
                      sodium_base64_VARIANT_ORIGINAL);
    return 0;
}

static int append_str(flare_buf *out, const char *s)
{
    return flare_buf_append(out, s, strlen(s));
}

int flare__ws_http_request(flare_buf *out, const char *host, const char *path,
                           const uint8_t nonce[16], char *key)
{
    if (strlen(host) >= FLARE__WS_HOST_MAX || strlen(path) >= 1024 || path[0] != '/' ||
        strpbrk(host, "\r\n") || strpbrk(path, "\r\n "))
        return FLARE_ERR_INVALID_ARG;
    sodium_bin2base64(key, FLARE__WS_KEY_LEN + 1, nonce, 16, sodium_base64_VARIANT_ORIGINAL);
    int rv = append_str(out, "GET ");
    if (rv == 0)
        rv = append_str(out, path);
    if (rv == 0)
        rv = append_str(out, " HTTP/1.1\r\nHost: ");
    if (rv == 0)
        rv = append_str(out, host);
    if (rv == 0)
        rv = append_str(out, "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                             "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ");
    if (rv == 0)
        rv = append_str(out, key);
    if (rv == 0)
        rv = append_str(out, "\r\n\r\n");
    return rv;
}

int flare__ws_http_response(flare_buf *out, const char *accept)
{
    int rv = append_str(out, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                             "Connection: Upgrade\r\nSec-WebSocket-Accept: ");
    if (rv == 0)
        rv = append_str(out, accept);
    if (rv == 0)
        rv = append_str(out, "\r\n\r\n");
    return rv;
}

static const char *reason_of(int status)
{
    switch (status) {
    case 405:
        return "Method Not Allowed";
    case 426:
        return "Upgrade Required";
    case 431:
        return "Request Header Fields Too Large";
    case 505:
        return "HTTP Version Not Supported";
    case 503:
        return "Service Unavailable";
    default:
        return "Bad Request";
    }
}

int flare__ws_http_refusal(flare_buf *out, int status)
{
    char s[256];
    const char *extra = status == 426 ? "Sec-WebSocket-Version: 13\r\nUpgrade: websocket\r\n" : "";
    int n =
        snprintf(s, sizeof(s), "HTTP/1.1 %d %s\r\n%sConnection: close\r\nContent-Length: 0\r\n\r\n",
                 status, reason_of(status), extra);
    return flare_buf_append(out, s, (size_t)n);
}

/* ---- parsing ------------------------------------------------------------------------ */

typedef struct span {
    const char *p;
    size_t n;
} span;

static int span_eq(span s, const char *lit)
{
    return s.n == strlen(lit) && strncasecmp(s.p, lit, s.n) == 0;
}

/* A comma-separated token list (Connection: keep-alive, Upgrade) holds tok. */
static int list_has(span v, const char *tok)
{
    size_t i = 0;
    while (i <= v.n) {
        size_t j = i;
        while (j < v.n && v.p[j] != ',')
            j++;
        span t = {v.p + i, j - i};
        while (t.n && (t.p[0] == ' ' || t.p[0] == '\t'))
            t.p++, t.n--;
        while (t.n && (t.p[t.n - 1] == ' ' || t.p[t.n - 1] == '\t'))
            t.n--;
        if (span_eq(t, tok))
            return 1;
        i = j + 1;
    }
    return 0;
}

static int is_tchar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* What the upgrade needs from a header block. */
typedef struct fields {
    span first; /* request or status line */
    span upgrade, connection, key, version, accept, host;
    int nkey, nhost, too_many;
} fields;

static void take(fields *f, span name, span value)
{
    if (span_eq(name, "upgrade"))
        f->upgrade = value;
    else if (span_eq(name, "connection"))
        f->connection = value;
    else if (span_eq(name, "sec-websocket-key"))
        f->key = value, f->nkey++;
    else if (span_eq(name, "sec-websocket-version"))
        f->version = value;
    else if (span_eq(name, "sec-websocket-accept"))
        f->accept = value;
    else if (span_eq(name, "host"))
        f->host = value, f->nhost++;
}

/* Splits a block into lines and fields. Returns 0 or FLARE_ERR_PROTO. */
static int split_fields(const uint8_t *data, size_t len, fields *f)
{
    memset(f, 0, sizeof(*f));
    const char *p = (const char *)data, *end = p + len;
    int nlines = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl || nl == p || nl[-1] != '\r')
            return FLARE_ERR_PROTO;
        span line = {p, (size_t)(nl - 1 - p)};
        p = nl + 1;
        if (memchr(line.p, '\0', line.n) || memchr(line.p, '\r', line.n))
            return FLARE_ERR_PROTO;
        if (nlines++ == 0) {
            f->first = line;
            continue;
        }
        if (line.n == 0)
            return p == end ? 0 : FLARE_ERR_PROTO;
        if (nlines > FLARE__WS_HTTP_LINES + 1) {
            f->too_many = 1;
            return FLARE_ERR_PROTO;
        }
        size_t i = 0;
        while (i < line.n && is_tchar(line.p[i]))
            i++;
        if (i == 0 || i == line.n || line.p[i] != ':')
            return FLARE_ERR_PROTO; /* also folded lines and space before ':' */
        span name = {line.p, i}, value = {line.p + i + 1, line.n - i - 1};
        while (value.n && (value.p[0] == ' ' || value.p[0] == '\t'))
            value.p++, value.n--;
        while (value.n && (value.p[value.n - 1] == ' ' || value.p[value.n - 1] == '\t'))
            value.n--;
        take(f, name, value);
    }
    return FLARE_ERR_PROTO; /* no blank line */
}

int flare__ws_http_parse_request(const uint8_t *data, size_t len, char *accept)
{
    if (len > FLARE__WS_HTTP_MAX)
        return 431;
    fields f;
    if (split_fields(data, len, &f))
        return f.too_many ? 431 : 400;
    /* Request line: GET SP target SP HTTP/1.1 */
    const char *sp1 = memchr(f.first.p, ' ', f.first.n);
    if (!sp1)
        return 400;
    span method = {f.first.p, (size_t)(sp1 - f.first.p)};
    span rest = {sp1 + 1, f.first.n - method.n - 1};
    const char *sp2 = memchr(rest.p, ' ', rest.n);
    if (!sp2 || sp2 == rest.p)
        return 400;
    span version = {sp2 + 1, rest.n - (size_t)(sp2 + 1 - rest.p)};
    if (version.n != 8 || strncmp(version.p, "HTTP/1.", 7) != 0)
        return 400;
    if (version.p[7] != '1')
        return 505;
    if (!(method.n == 3 && memcmp(method.p, "GET", 3) == 0))
        return 405;
    if (f.nhost != 1)
        return 400;
    if (!f.upgrade.p || !list_has(f.upgrade, "websocket") || !f.connection.p ||
        !list_has(f.connection, "upgrade"))
        return 426;
    if (!(f.version.n == 2 && memcmp(f.version.p, "13", 2) == 0))
        return 426;
    if (f.nkey != 1 || f.key.n != FLARE__WS_KEY_LEN)
        return 400;
    uint8_t nonce[18];
    size_t n = 0;
    if (sodium_base642bin(nonce, sizeof(nonce), f.key.p, f.key.n, NULL, &n, NULL,
                          sodium_base64_VARIANT_ORIGINAL) ||
        n != 16)
        return 400;
    return flare__ws_accept_for(f.key.p, f.key.n, accept) ? 400 : 0;
}

int flare__ws_http_parse_response(const uint8_t *data, size_t len, const char *accept)
{
    if (len > FLARE__WS_HTTP_MAX)
        return FLARE_ERR_PROTO;
    fields f;
    if (split_fields(data, len, &f))
        return FLARE_ERR_PROTO;
    /* Status line: HTTP/1.1 SP 3DIGIT SP reason */
    if (f.first.n < 12 || strncmp(f.first.p, "HTTP/1.1 ", 9) != 0)
        return FLARE_ERR_PROTO;
    if (strncmp(f.first.p + 9, "101", 3) != 0 || (f.first.n > 12 && f.first.p[12] != ' '))
        return FLARE_ERR_REFUSED;
    if (!f.upgrade.p || !list_has(f.upgrade, "websocket") || !f.connection.p ||
        !list_has(f.connection, "upgrade"))
        return FLARE_ERR_PROTO;
    if (f.accept.n != FLARE__WS_ACCEPT_LEN || memcmp(f.accept.p, accept, f.accept.n) != 0)
        return FLARE_ERR_PROTO;
    return 0;
}
