/* The SDP subset of libp2p's WebRTC signalling (sdp.h). */
#include "transport/webrtc/sdp.h"

#include <stdio.h>
#include <string.h>

typedef struct span {
    const char *p;
    size_t n;
} span;

static int span_eq(span s, const char *lit)
{
    size_t n = strlen(lit);
    return s.n == n && memcmp(s.p, lit, n) == 0;
}

static int starts(span s, const char *lit)
{
    size_t n = strlen(lit);
    return s.n >= n && memcmp(s.p, lit, n) == 0;
}

/* The next space-separated token of *s. */
static span token(span *s)
{
    while (s->n > 0 && *s->p == ' ')
        s->p++, s->n--;
    span t = {s->p, 0};
    while (t.n < s->n && s->p[t.n] != ' ')
        t.n++;
    s->p += t.n;
    s->n -= t.n;
    return t;
}

static int parse_u32(span t, uint32_t *v)
{
    if (t.n == 0 || t.n > 10)
        return FLARE_ERR_MALFORMED;
    uint64_t x = 0;
    for (size_t i = 0; i < t.n; i++) {
        if (t.p[i] < '0' || t.p[i] > '9')
            return FLARE_ERR_MALFORMED;
        x = x * 10 + (uint64_t)(t.p[i] - '0');
    }
    if (x > UINT32_MAX)
        return FLARE_ERR_MALFORMED;
    *v = (uint32_t)x;
    return 0;
}

/* ice-char (RFC 8839): ALPHA / DIGIT / "+" / "/". */
static int copy_ice(span v, char *out, size_t min)
{
    if (v.n < min || v.n > FLARE__SDP_ICE_MAX)
        return FLARE_ERR_MALFORMED;
    for (size_t i = 0; i < v.n; i++) {
        char c = v.p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '/'))
            return FLARE_ERR_MALFORMED;
    }
    memcpy(out, v.p, v.n);
    out[v.n] = 0;
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* "sha-256 AB:CD:..." */
static int parse_fp(span v, uint8_t fp[32])
{
    span alg = token(&v);
    if (!span_eq(alg, "sha-256") && !span_eq(alg, "SHA-256"))
        return FLARE_ERR_UNSUPPORTED;
    span hex = token(&v);
    if (hex.n != 32 * 3 - 1)
        return FLARE_ERR_MALFORMED;
    for (size_t i = 0; i < 32; i++) {
        int hi = hexval(hex.p[3 * i]), lo = hexval(hex.p[3 * i + 1]);
        if (hi < 0 || lo < 0 || (i < 31 && hex.p[3 * i + 2] != ':'))
            return FLARE_ERR_MALFORMED;
        fp[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

int flare__sdp_cand_parse(const char *in, size_t len, flare__sdp_cand *c)
{
    span s = {in, len};
    if (len > 512)
        return FLARE_ERR_MALFORMED;
    if (starts(s, "a="))
        s.p += 2, s.n -= 2;
    if (!starts(s, "candidate:"))
        return FLARE_ERR_MALFORMED;
    s.p += 10, s.n -= 10;
    memset(c, 0, sizeof(*c));
    span f = token(&s), comp = token(&s), tr = token(&s), prio = token(&s), addr = token(&s),
         port = token(&s), typ = token(&s), type = token(&s);
    uint32_t v;
    if (f.n == 0 || f.n > 32 || !span_eq(typ, "typ"))
        return FLARE_ERR_MALFORMED;
    memcpy(c->foundation, f.p, f.n);
    if (parse_u32(comp, &v) != 0 || v < 1 || v > 256)
        return FLARE_ERR_MALFORMED;
    if (v != 1)
        return FLARE_ERR_UNSUPPORTED; /* data channels use RTP component 1 only */
    c->component = 1;
    if (!span_eq(tr, "udp") && !span_eq(tr, "UDP"))
        return FLARE_ERR_UNSUPPORTED;
    if (parse_u32(prio, &c->priority) != 0)
        return FLARE_ERR_MALFORMED;
    if (parse_u32(port, &v) != 0 || v == 0 || v > 65535)
        return FLARE_ERR_MALFORMED;
    if (addr.n == 0 || addr.n >= 64)
        return FLARE_ERR_MALFORMED;
    char ip[64], full[80];
    memcpy(ip, addr.p, addr.n);
    ip[addr.n] = 0;
    int v6 = strchr(ip, ':') != NULL;
    if (v6 ? strspn(ip, "0123456789abcdefABCDEF:.") != addr.n : strspn(ip, "0123456789.") != addr.n)
        return FLARE_ERR_UNSUPPORTED; /* an mDNS name */
    snprintf(full, sizeof(full), v6 ? "[%s]:%u" : "%s:%u", ip, v);
    if (flare_ipaddr_parse(&c->addr, full) != 0 || c->addr.family != (v6 ? 6 : 4))
        return FLARE_ERR_MALFORMED;
    if (span_eq(type, "host"))
        c->type = FLARE__CAND_HOST;
    else if (span_eq(type, "srflx"))
        c->type = FLARE__CAND_SRFLX;
    else if (span_eq(type, "prflx"))
        c->type = FLARE__CAND_PRFLX;
    else if (span_eq(type, "relay"))
        c->type = FLARE__CAND_RELAY;
    else
        return FLARE_ERR_MALFORMED;
    return 0;
}

/* Credentials, fingerprint and role may sit at session level (Firefox) or
 * in the media section; the rest belongs to the data channel section. */
static int on_attr(span a, flare__sdp *d, int in_app)
{
    if (starts(a, "ice-lite")) {
        d->ice_lite = 1;
        return 0;
    }
    if (starts(a, "ice-ufrag:"))
        return copy_ice((span){a.p + 10, a.n - 10}, d->ufrag, 4);
    if (starts(a, "ice-pwd:"))
        return copy_ice((span){a.p + 8, a.n - 8}, d->pwd, 22);
    if (starts(a, "fingerprint:")) {
        int rc = parse_fp((span){a.p + 12, a.n - 12}, d->fp);
        d->has_fp = rc == 0;
        return rc;
    }
    if (starts(a, "setup:")) {
        span v = {a.p + 6, a.n - 6};
        d->setup = span_eq(v, "actpass")   ? FLARE__SDP_SETUP_ACTPASS
                   : span_eq(v, "active")  ? FLARE__SDP_SETUP_ACTIVE
                   : span_eq(v, "passive") ? FLARE__SDP_SETUP_PASSIVE
                                           : FLARE__SDP_SETUP_NONE;
        return d->setup == FLARE__SDP_SETUP_NONE ? FLARE_ERR_MALFORMED : 0;
    }
    uint32_t v;
    if (!in_app)
        return 0;
    if (starts(a, "sctp-port:")) {
        if (parse_u32((span){a.p + 10, a.n - 10}, &v) != 0 || v == 0 || v > 65535)
            return FLARE_ERR_MALFORMED;
        d->sctp_port = (uint16_t)v;
        return 0;
    }
    if (starts(a, "max-message-size:")) {
        if (parse_u32((span){a.p + 17, a.n - 17}, &v) != 0)
            return FLARE_ERR_MALFORMED;
        d->max_message_size = v;
        return 0;
    }
    if (starts(a, "mid:")) {
        if (a.n - 4 > 32)
            return FLARE_ERR_MALFORMED;
        memcpy(d->mid, a.p + 4, a.n - 4);
        d->mid[a.n - 4] = 0;
        return 0;
    }
    if (starts(a, "candidate:")) {
        flare__sdp_cand c;
        int rc = flare__sdp_cand_parse(a.p, a.n, &c);
        if (rc == FLARE_ERR_UNSUPPORTED)
            return 0; /* TCP, mDNS: not for us */
        if (rc != 0)
            return rc;
        if (d->ncand < FLARE__SDP_MAX_CANDS)
            d->cand[d->ncand++] = c;
    }
    return 0;
}

int flare__sdp_parse(const char *in, size_t len, flare__sdp *d)
{
    if (len > FLARE__SDP_MAX_LEN)
        return FLARE_ERR_TOO_LARGE;
    memset(d, 0, sizeof(*d));
    d->sctp_port = 5000;
    d->max_message_size = 65536;
    int in_app = 0, seen_app = 0, in_other = 0, lines = 0;
    size_t off = 0;
    while (off < len) {
        size_t e = off;
        while (e < len && in[e] != '\n')
            e++;
        span l = {in + off, e - off};
        off = e + 1;
        if (l.n > 0 && l.p[l.n - 1] == '\r')
            l.n--;
        if (l.n == 0)
            continue;
        if (++lines > FLARE__SDP_MAX_LINES)
            return FLARE_ERR_TOO_LARGE;
        if (l.n < 2 || l.p[1] != '=' || memchr(l.p, 0, l.n) != NULL)
            return FLARE_ERR_MALFORMED;
        span v = {l.p + 2, l.n - 2};
        if (l.p[0] == 'm') {
            span kind = token(&v), port = token(&v), proto = token(&v), fmt = token(&v);
            uint32_t pv;
            in_app = span_eq(kind, "application") && span_eq(proto, "UDP/DTLS/SCTP") &&
                     span_eq(fmt, "webrtc-datachannel") && !seen_app;
            if (in_app && (parse_u32(port, &pv) != 0 || pv > 65535))
                return FLARE_ERR_MALFORMED;
            seen_app |= in_app;
            in_other = !in_app;
            continue;
        }
        if (l.p[0] == 'a' && !in_other) {
            int rc = on_attr(v, d, in_app);
            if (rc != 0)
                return rc;
        }
    }
    if (!seen_app)
        return FLARE_ERR_UNSUPPORTED;
    if (d->ufrag[0] == 0 || d->pwd[0] == 0 || !d->has_fp)
        return FLARE_ERR_PROTO;
    return 0;
}

/* The string value of "key" in a flat JSON object, unescaped into out. */
static int json_string(const char *in, size_t len, const char *key, char *out, size_t cap)
{
    char pat[40];
    int pn = snprintf(pat, sizeof(pat), "\"%s\"", key);
    for (size_t i = 0; i + (size_t)pn <= len; i++) {
        if (memcmp(in + i, pat, (size_t)pn) != 0)
            continue;
        size_t j = i + (size_t)pn;
        while (j < len && (in[j] == ' ' || in[j] == ':'))
            j++;
        if (j >= len || in[j] != '"')
            return FLARE_ERR_MALFORMED;
        size_t k = 0;
        for (j++; j < len && in[j] != '"'; j++) {
            char c = in[j];
            if (c == '\\') {
                if (++j >= len)
                    return FLARE_ERR_MALFORMED;
                c = in[j];
                if (c != '"' && c != '\\' && c != '/')
                    return FLARE_ERR_UNSUPPORTED;
            }
            if (k + 1 >= cap)
                return FLARE_ERR_TOO_LARGE;
            out[k++] = c;
        }
        if (j >= len)
            return FLARE_ERR_MALFORMED;
        out[k] = 0;
        return (int)k;
    }
    return FLARE_ERR_NOT_FOUND;
}

int flare__sdp_cand_json_parse(const char *in, size_t len, flare__sdp_cand *c)
{
    if (len > 2048)
        return FLARE_ERR_TOO_LARGE;
    char v[513];
    int n = json_string(in, len, "candidate", v, sizeof(v));
    if (n < 0)
        return n == FLARE_ERR_TOO_LARGE ? FLARE_ERR_MALFORMED : n;
    if (n == 0)
        return FLARE_ERR_NOT_FOUND;
    return flare__sdp_cand_parse(v, (size_t)n, c);
}

static const char *const cand_types[] = {"host", "srflx", "prflx", "relay"};

static int cand_line(const flare__sdp_cand *c, char *out, size_t cap)
{
    char ip[FLARE_IPADDR_STR_MAX];
    flare_ipaddr a = c->addr;
    a.port = 0;
    int n = flare_ipaddr_to_string(&a, ip, sizeof(ip));
    if (n < 0)
        return n;
    /* to_string wraps IPv6 in brackets and adds ":0": keep the bare IP. */
    char *colon = strrchr(ip, ':');
    if (colon != NULL)
        *colon = 0;
    const char *bare = ip[0] == '[' ? ip + 1 : ip;
    char *rb = strchr(ip, ']');
    if (rb != NULL)
        *rb = 0;
    /* A reflexive or relayed candidate carries its related address
     * (RFC 8839; Firefox requires it): hidden as 0.0.0.0:0 (::), as browsers do. */
    n = snprintf(out, cap, "candidate:%s 1 udp %u %s %u typ %s%s",
                 c->foundation[0] ? c->foundation : "1", c->priority, bare, c->addr.port,
                 cand_types[c->type & 3],
                 c->type == FLARE__CAND_HOST ? ""
                 : c->addr.family == 6       ? " raddr :: rport 0"
                                             : " raddr 0.0.0.0 rport 0");
    return n < 0 || (size_t)n >= cap ? FLARE_ERR_BUFFER_TOO_SMALL : n;
}

int flare__sdp_write(const flare__sdp *d, uint64_t sess_id, flare_buf *out)
{
    static const char *const setups[] = {"actpass", "actpass", "active", "passive"};
    /* An answer names the offer's media section (mid); "0" otherwise. */
    const char *mid =
        d->mid[0] && strspn(d->mid, "abcdefghijklmnopqrstuvwxyz"
                                    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") == strlen(d->mid)
            ? d->mid
            : "0";
    char buf[1024];
    char fp[32 * 3];
    for (int i = 0; i < 32; i++)
        snprintf(fp + 3 * i, 4, "%02X%s", d->fp[i], i < 31 ? ":" : "");
    int n = snprintf(buf, sizeof(buf),
                     "v=0\r\no=- %llu 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n%s"
                     "a=group:BUNDLE %s\r\n"
                     "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"
                     "c=IN IP4 0.0.0.0\r\na=mid:%s\r\na=ice-options:trickle\r\n"
                     "a=ice-ufrag:%s\r\na=ice-pwd:%s\r\na=fingerprint:sha-256 %s\r\n"
                     "a=setup:%s\r\na=sctp-port:%u\r\na=max-message-size:%u\r\n",
                     (unsigned long long)(sess_id & 0x7fffffffffffffffULL),
                     d->ice_lite ? "a=ice-lite\r\n" : "", mid, mid, d->ufrag, d->pwd, fp,
                     setups[d->setup & 3], d->sctp_port ? d->sctp_port : 5000,
                     d->max_message_size ? d->max_message_size : 16384);
    if (n < 0 || (size_t)n >= sizeof(buf))
        return FLARE_ERR_BUFFER_TOO_SMALL;
    int rc = flare_buf_append(out, buf, (size_t)n);
    for (size_t i = 0; rc == 0 && i < d->ncand && i < FLARE__SDP_MAX_CANDS; i++) {
        char line[200];
        int k = cand_line(&d->cand[i], line, sizeof(line));
        if (k < 0)
            return k;
        rc = flare_buf_append(out, "a=", 2);
        if (rc == 0)
            rc = flare_buf_append(out, line, (size_t)k);
        if (rc == 0)
            rc = flare_buf_append(out, "\r\n", 2);
    }
    return rc;
}

int flare__sdp_cand_json_write(const flare__sdp_cand *c, flare_buf *out)
{
    char line[200], buf[300];
    int k = cand_line(c, line, sizeof(line));
    if (k < 0)
        return k;
    int n = snprintf(buf, sizeof(buf),
                     "{\"candidate\":\"%s\",\"sdpMid\":\"0\",\"sdpMLineIndex\":0}", line);
    if (n < 0 || (size_t)n >= sizeof(buf))
        return FLARE_ERR_BUFFER_TOO_SMALL;
    return flare_buf_append(out, buf, (size_t)n);
}
