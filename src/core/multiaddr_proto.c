/* Multiaddr protocol table (multiformats/multiaddr protocols.csv) and the
 * binary <-> text codec of each kind of value. */
#include <arpa/inet.h>
#include <string.h>

#include "flare/multibase.h"
#include "flare/multihash.h"
#include "flare/varint.h"
#include "multiaddr_internal.h"

static const flare__ma_proto protos[] = {
    /* The codes on nearly every address a node meets come first: the
     * look-up by code is a scan, run for each component decoded. */
    {FLARE_MA_IP4, "ip4", 4, FLARE__MA_IP4},
    {FLARE_MA_TCP, "tcp", 2, FLARE__MA_PORT},
    {FLARE_MA_P2P, "p2p", -1, FLARE__MA_PEERID},
    {FLARE_MA_UDP, "udp", 2, FLARE__MA_PORT},
    {FLARE_MA_QUIC_V1, "quic-v1", 0, FLARE__MA_NONE},
    {FLARE_MA_WEBRTC_DIRECT, "webrtc-direct", 0, FLARE__MA_NONE},
    {FLARE_MA_CERTHASH, "certhash", -1, FLARE__MA_CERTHASH},
    {FLARE_MA_P2P_CIRCUIT, "p2p-circuit", 0, FLARE__MA_NONE},
    {FLARE_MA_IP6, "ip6", 16, FLARE__MA_IP6},
    {FLARE_MA_DCCP, "dccp", 2, FLARE__MA_PORT},
    {FLARE_MA_IP6ZONE, "ip6zone", -1, FLARE__MA_NAME},
    {FLARE_MA_IPCIDR, "ipcidr", 1, FLARE__MA_U8},
    {FLARE_MA_DNS_ANY, "dns", -1, FLARE__MA_NAME},
    {FLARE_MA_DNS4, "dns4", -1, FLARE__MA_NAME},
    {FLARE_MA_DNS6, "dns6", -1, FLARE__MA_NAME},
    {FLARE_MA_DNSADDR, "dnsaddr", -1, FLARE__MA_NAME},
    {FLARE_MA_SCTP, "sctp", 2, FLARE__MA_PORT},
    {FLARE_MA_P2P_WEBRTC_STAR, "p2p-webrtc-star", 0, FLARE__MA_NONE},
    {FLARE_MA_P2P_WEBRTC_DIRECT, "p2p-webrtc-direct", 0, FLARE__MA_NONE},
    {FLARE_MA_P2P_STARDUST, "p2p-stardust", 0, FLARE__MA_NONE},
    {FLARE_MA_WEBRTC, "webrtc", 0, FLARE__MA_NONE},
    {FLARE_MA_UDT, "udt", 0, FLARE__MA_NONE},
    {FLARE_MA_UTP, "utp", 0, FLARE__MA_NONE},
    {FLARE_MA_UNIX, "unix", -1, FLARE__MA_PATH},
    {FLARE_MA_HTTPS, "https", 0, FLARE__MA_NONE},
    {FLARE_MA_TLS, "tls", 0, FLARE__MA_NONE},
    {FLARE_MA_SNI, "sni", -1, FLARE__MA_NAME},
    {FLARE_MA_NOISE, "noise", 0, FLARE__MA_NONE},
    {FLARE_MA_QUIC, "quic", 0, FLARE__MA_NONE},
    {FLARE_MA_WEBTRANSPORT, "webtransport", 0, FLARE__MA_NONE},
    {FLARE_MA_WS, "ws", 0, FLARE__MA_NONE},
    {FLARE_MA_WSS, "wss", 0, FLARE__MA_NONE},
    {FLARE_MA_P2P_WEBSOCKET_STAR, "p2p-websocket-star", 0, FLARE__MA_NONE},
    {FLARE_MA_HTTP, "http", 0, FLARE__MA_NONE},
};
#define NPROTOS (sizeof(protos) / sizeof(protos[0]))

const flare__ma_proto *flare__ma_proto_by_code(uint64_t code)
{
    for (size_t i = 0; i < NPROTOS; i++)
        if (protos[i].code == code)
            return &protos[i];
    return NULL;
}

const flare__ma_proto *flare__ma_proto_by_name(const char *name, size_t len)
{
    /* "ipfs" is the legacy name of p2p (same code, printed as p2p). */
    if (len == 4 && memcmp(name, "ipfs", 4) == 0)
        return flare__ma_proto_by_code(FLARE_MA_P2P);
    for (size_t i = 0; i < NPROTOS; i++)
        if (strlen(protos[i].name) == len && memcmp(protos[i].name, name, len) == 0)
            return &protos[i];
    return NULL;
}

const char *flare_ma_protocol_name(uint64_t code)
{
    const flare__ma_proto *p = flare__ma_proto_by_code(code);
    return p ? p->name : NULL;
}

int flare_ma_protocol_code(const char *name, size_t len, uint64_t *code)
{
    const flare__ma_proto *p = flare__ma_proto_by_name(name, len);
    if (!p)
        return FLARE_ERR_UNKNOWN_CODE;
    *code = p->code;
    return 0;
}

/* --- peer ids --- */

/* A peer id is an identity or sha2-256 multihash (libp2p peer-ids spec). */
static int peerid_check(const uint8_t *v, size_t len)
{
    flare_multihash_view mh;
    int rv = flare_multihash_parse_exact(v, len, &mh);
    if (rv < 0)
        return rv;
    if (mh.code != FLARE_MH_IDENTITY && mh.code != FLARE_MH_SHA2_256)
        return FLARE_ERR_UNKNOWN_CODE;
    if (mh.digest_len == 0)
        return FLARE_ERR_MALFORMED;
    if (len > FLARE_PEERID_MAX)
        return FLARE_ERR_TOO_LARGE;
    return 0;
}

static int too_large(int rv)
{
    return rv == FLARE_ERR_BUFFER_TOO_SMALL ? FLARE_ERR_TOO_LARGE : rv;
}

/* CIDv1: <varint 1><varint codec 0x72><multihash>. */
static int peerid_from_cid(const char *s, size_t len, uint8_t *out, size_t cap)
{
    uint8_t buf[FLARE_PEERID_MAX + 2 * FLARE_UVARINT_MAX_LEN];
    int n = flare_multibase_decode(s, len, buf, sizeof(buf), NULL);
    if (n < 0)
        return too_large(n);
    uint64_t version, codec;
    int a = flare_uvarint_decode(buf, (size_t)n, &version);
    if (a < 0)
        return a;
    if (version != 1)
        return FLARE_ERR_MALFORMED;
    int b = flare_uvarint_decode(buf + a, (size_t)(n - a), &codec);
    if (b < 0)
        return b;
    if (codec != FLARE_CID_LIBP2P_KEY)
        return FLARE_ERR_UNKNOWN_CODE;
    size_t off = (size_t)a + (size_t)b, mlen = (size_t)n - off;
    int rv = peerid_check(buf + off, mlen);
    if (rv < 0)
        return rv;
    if (mlen > cap)
        return FLARE_ERR_BUFFER_TOO_SMALL;
    memcpy(out, buf + off, mlen);
    return (int)mlen;
}

int flare_ma_peerid_decode(const char *s, size_t len, uint8_t *out, size_t cap)
{
    if (len == 0)
        return FLARE_ERR_MALFORMED;
    /* Bare base58btc multihashes start with 'Q' (sha2-256) or '1'
     * (identity); anything else is a multibase CID (peer-ids spec). */
    if (s[0] != 'Q' && s[0] != '1')
        return peerid_from_cid(s, len, out, cap);
    uint8_t buf[FLARE_PEERID_MAX];
    int n = flare_base_decode(FLARE_MULTIBASE_BASE58BTC, s, len, buf, sizeof(buf));
    if (n < 0)
        return too_large(n);
    int rv = peerid_check(buf, (size_t)n);
    if (rv < 0)
        return rv;
    if ((size_t)n > cap)
        return FLARE_ERR_BUFFER_TOO_SMALL;
    memcpy(out, buf, (size_t)n);
    return n;
}

int flare_ma_peerid_encode(const uint8_t *mh, size_t len, char *out, size_t cap)
{
    return flare_base_encode(FLARE_MULTIBASE_BASE58BTC, mh, len, out, cap);
}

/* --- value checks --- */

static int name_check(const uint8_t *v, size_t len)
{
    if (len == 0)
        return FLARE_ERR_MALFORMED;
    /* '/' would split the text form; NUL would truncate it. */
    for (size_t i = 0; i < len; i++)
        if (v[i] == '/' || v[i] == 0)
            return FLARE_ERR_MALFORMED;
    return 0;
}

/* "/seg/seg": absolute, no empty segment, no NUL, so that text and bytes
 * round-trip exactly. */
static int path_check(const uint8_t *v, size_t len)
{
    if (len < 2 || v[0] != '/' || v[len - 1] == '/')
        return FLARE_ERR_MALFORMED;
    for (size_t i = 0; i < len; i++) {
        if (v[i] == 0 || (v[i] == '/' && i + 1 < len && v[i + 1] == '/'))
            return FLARE_ERR_MALFORMED;
    }
    return 0;
}

int flare__ma_value_check(const flare__ma_proto *p, const uint8_t *v, size_t len)
{
    flare_multihash_view mh;
    if (p->size >= 0)
        return len == (size_t)p->size ? 0 : FLARE_ERR_MALFORMED;
    switch (p->kind) {
    case FLARE__MA_NAME:
        return name_check(v, len);
    case FLARE__MA_PATH:
        return path_check(v, len);
    case FLARE__MA_PEERID:
        return peerid_check(v, len);
    case FLARE__MA_CERTHASH: {
        int rv = flare_multihash_parse_exact(v, len, &mh);
        return rv < 0 ? rv : 0;
    }
    default:
        return FLARE_ERR_INTERNAL;
    }
}

/* --- binary -> text --- */

static int put_str(const char *s, size_t n, char *out, size_t cap)
{
    if (n + 1 > cap)
        return FLARE_ERR_BUFFER_TOO_SMALL;
    memcpy(out, s, n);
    out[n] = 0;
    return (int)n;
}

static int put_uint(unsigned v, char *out, size_t cap)
{
    char tmp[8];
    size_t n = 0;
    do {
        tmp[sizeof(tmp) - 1 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return put_str(tmp + sizeof(tmp) - n, n, out, cap);
}

static int put_ip(int af, const uint8_t *v, char *out, size_t cap)
{
    char tmp[INET6_ADDRSTRLEN];
    if (!inet_ntop(af, v, tmp, sizeof(tmp)))
        return FLARE_ERR_MALFORMED;
    return put_str(tmp, strlen(tmp), out, cap);
}

int flare__ma_value_to_text(const flare__ma_proto *p, const uint8_t *v, size_t len, char *out,
                            size_t cap)
{
    int rv = flare__ma_value_check(p, v, len);
    if (rv < 0)
        return rv;
    switch (p->kind) {
    case FLARE__MA_NONE:
        return put_str("", 0, out, cap);
    case FLARE__MA_IP4:
        return put_ip(AF_INET, v, out, cap);
    case FLARE__MA_IP6:
        return put_ip(AF_INET6, v, out, cap);
    case FLARE__MA_PORT:
        return put_uint((unsigned)v[0] << 8 | v[1], out, cap);
    case FLARE__MA_U8:
        return put_uint(v[0], out, cap);
    case FLARE__MA_NAME:
    case FLARE__MA_PATH:
        return put_str((const char *)v, len, out, cap);
    case FLARE__MA_PEERID:
        return flare_ma_peerid_encode(v, len, out, cap);
    case FLARE__MA_CERTHASH:
        return flare_multibase_encode(FLARE_MULTIBASE_BASE64URL, v, len, out, cap);
    }
    return FLARE_ERR_INTERNAL;
}

/* --- text -> binary --- */

static int parse_uint(const char *s, size_t len, unsigned max, unsigned *v)
{
    unsigned acc = 0;
    if (len == 0)
        return FLARE_ERR_MALFORMED;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return FLARE_ERR_MALFORMED;
        acc = acc * 10 + (unsigned)(s[i] - '0');
        if (acc > max)
            return FLARE_ERR_OUT_OF_RANGE;
    }
    *v = acc;
    return 0;
}

static int parse_ip(int af, const char *s, size_t len, uint8_t *out)
{
    char tmp[INET6_ADDRSTRLEN + 1];
    if (len == 0 || len >= sizeof(tmp) || memchr(s, 0, len))
        return FLARE_ERR_MALFORMED;
    memcpy(tmp, s, len);
    tmp[len] = 0;
    return inet_pton(af, tmp, out) == 1 ? 0 : FLARE_ERR_MALFORMED;
}

static int certhash_from_text(const char *s, size_t len, uint8_t *out, size_t cap)
{
    flare_multihash_view mh;
    int n = flare_multibase_decode(s, len, out, cap, NULL);
    if (n < 0)
        return too_large(n);
    int rv = flare_multihash_parse_exact(out, (size_t)n, &mh);
    return rv < 0 ? rv : n;
}

static int copy_value(const flare__ma_proto *p, const char *s, size_t len, uint8_t *out, size_t cap)
{
    int rv = flare__ma_value_check(p, (const uint8_t *)s, len);
    if (rv < 0)
        return rv;
    if (len > cap)
        return FLARE_ERR_TOO_LARGE;
    memcpy(out, s, len);
    return (int)len;
}

int flare__ma_value_from_text(const flare__ma_proto *p, const char *s, size_t len, uint8_t *out,
                              size_t cap)
{
    unsigned v;
    int rv;
    if (cap < 16)
        return FLARE_ERR_TOO_LARGE;
    switch (p->kind) {
    case FLARE__MA_NONE:
        return 0;
    case FLARE__MA_IP4:
        rv = parse_ip(AF_INET, s, len, out);
        return rv < 0 ? rv : 4;
    case FLARE__MA_IP6:
        rv = parse_ip(AF_INET6, s, len, out);
        return rv < 0 ? rv : 16;
    case FLARE__MA_PORT:
        if ((rv = parse_uint(s, len, 65535, &v)) < 0)
            return rv;
        out[0] = (uint8_t)(v >> 8);
        out[1] = (uint8_t)v;
        return 2;
    case FLARE__MA_U8:
        if ((rv = parse_uint(s, len, 255, &v)) < 0)
            return rv;
        out[0] = (uint8_t)v;
        return 1;
    case FLARE__MA_NAME:
    case FLARE__MA_PATH:
        return copy_value(p, s, len, out, cap);
    case FLARE__MA_PEERID:
        return too_large(flare_ma_peerid_decode(s, len, out, cap));
    case FLARE__MA_CERTHASH:
        return certhash_from_text(s, len, out, cap);
    }
    return FLARE_ERR_INTERNAL;
}
