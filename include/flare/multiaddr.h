/*
 * flare/multiaddr.h - multiaddr (multiformats/multiaddr), binary and text.
 *
 * A flare_multiaddr is a fixed-capacity value holding the binary form, so it
 * can be copied, compared with memcmp and stored without allocation. Every
 * constructor validates every component, so a flare_multiaddr obtained from
 * this API is always well formed (the zero value, len 0, is the empty
 * address; it is legal as a value but not accepted from text or bytes).
 *
 * Codes are those of multiformats/multiaddr protocols.csv. Supported: ip4,
 * tcp, dccp, ip6, ip6zone, ipcidr, dns, dns4, dns6, dnsaddr, sctp, udp,
 * p2p-webrtc-star, p2p-webrtc-direct, p2p-stardust, webrtc-direct, webrtc,
 * p2p-circuit, udt, utp, unix, p2p (text alias "ipfs"), https, tls, sni,
 * noise, quic, quic-v1, webtransport, certhash, ws, wss, p2p-websocket-star,
 * http. Others (onion, garlic, ...) give FLARE_ERR_UNKNOWN_CODE.
 *
 * Text conventions (as go-multiaddr):
 *  - "/p2p/" values: base58btc multihash ("Qm...", "12D3Koo...") or a CIDv1
 *    with the libp2p-key codec in any multibase; the multihash must be
 *    identity or sha2-256 and at most FLARE_PEERID_MAX bytes. Printed as
 *    base58btc. "/ipfs/" parses as p2p.
 *  - "/certhash/" values: multibase of a multihash (raw multihash in binary);
 *    printed as base64url ('u').
 *  - "/unix/" takes the rest of the string as an absolute path; the binary
 *    value is that path with its leading '/' ("/unix/a/b" -> "/a/b"). Paths
 *    must be canonical (no empty segments) and unix must be the last
 *    component (in bytes too), so text and bytes round-trip.
 *  - Name-like values (dns*, sni, ip6zone) are non-empty and hold no '/' or
 *    NUL byte.
 *  - Trailing '/' characters are ignored on parse; "" and "/" are rejected.
 */
#ifndef FLARE_MULTIADDR_H
#define FLARE_MULTIADDR_H

#include "flare/common.h"
#include "flare/ipaddr.h"
#include "flare/peerid.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FLARE_MULTIADDR_MAX 400 /* bytes of binary form */
/* Enough for the text form of any valid flare_multiaddr (with NUL). */
#define FLARE_MULTIADDR_STR_MAX 4096

/* Protocol codes (protocols.csv). */
#define FLARE_MA_IP4                0x04
#define FLARE_MA_TCP                0x06
#define FLARE_MA_DCCP               0x21
#define FLARE_MA_IP6                0x29
#define FLARE_MA_IP6ZONE            0x2a
#define FLARE_MA_IPCIDR             0x2b
#define FLARE_MA_DNS_ANY            0x35 /* "dns" (FLARE_MA_DNS is a class) */
#define FLARE_MA_DNS4               0x36
#define FLARE_MA_DNS6               0x37
#define FLARE_MA_DNSADDR            0x38
#define FLARE_MA_SCTP               0x84
#define FLARE_MA_UDP                0x0111
#define FLARE_MA_P2P_WEBRTC_STAR    0x0113
#define FLARE_MA_P2P_WEBRTC_DIRECT  0x0114
#define FLARE_MA_P2P_STARDUST       0x0115
#define FLARE_MA_WEBRTC_DIRECT      0x0118
#define FLARE_MA_WEBRTC             0x0119
#define FLARE_MA_P2P_CIRCUIT        0x0122
#define FLARE_MA_UDT                0x012d
#define FLARE_MA_UTP                0x012e
#define FLARE_MA_UNIX               0x0190
#define FLARE_MA_P2P                0x01a5
#define FLARE_MA_HTTPS              0x01bb
#define FLARE_MA_TLS                0x01c0
#define FLARE_MA_SNI                0x01c1
#define FLARE_MA_NOISE              0x01c6
#define FLARE_MA_QUIC               0x01cc
#define FLARE_MA_QUIC_V1            0x01cd
#define FLARE_MA_WEBTRANSPORT       0x01d1
#define FLARE_MA_CERTHASH           0x01d2
#define FLARE_MA_WS                 0x01dd
#define FLARE_MA_WSS                0x01de
#define FLARE_MA_P2P_WEBSOCKET_STAR 0x01df
#define FLARE_MA_HTTP               0x01e0

typedef struct flare_multiaddr {
    uint16_t len;
    uint8_t bytes[FLARE_MULTIADDR_MAX];
} flare_multiaddr;

/* One component, as returned by the iterator. value points into the
 * multiaddr (the raw binary value, without its length prefix). */
typedef struct flare_ma_component {
    uint64_t code;
    const char *name; /* static, e.g. "ip4" */
    const uint8_t *value;
    size_t value_len;
} flare_ma_component;

/* --- protocol table --- */

/* Name of a supported protocol code, or NULL. */
/* Returns a static name, or NULL for an unknown code. */
const char *flare_ma_protocol_name(uint64_t code);
/* Code of a protocol name ("ipfs" gives FLARE_MA_P2P), or
 * FLARE_ERR_UNKNOWN_CODE. The name need not be NUL-terminated. */
int flare_ma_protocol_code(const char *name, size_t len, uint64_t *code);

/* --- conversions --- */

/* Validates in[0..len) (every code known, every length and value valid) and
 * copies it. Errors: FLARE_ERR_MALFORMED (empty, bad value), _TRUNCATED,
 * _OVERLONG (varints), _UNKNOWN_CODE, _TOO_LARGE (> FLARE_MULTIADDR_MAX or a
 * p2p multihash > FLARE_PEERID_MAX). On error *ma is emptied. */
int flare_multiaddr_from_bytes(flare_multiaddr *ma, const uint8_t *in, size_t len);

/* Parses the NUL-terminated text form. Errors: FLARE_ERR_MALFORMED (syntax,
 * missing value, bad address/number/encoding), _UNKNOWN_CODE (unknown
 * protocol name, multibase or CID codec), _OUT_OF_RANGE (port > 65535,
 * ipcidr > 255), _TOO_LARGE. On error *ma is emptied. */
int flare_multiaddr_parse(flare_multiaddr *ma, const char *s);
/* As above, for s[0..len) (need not be NUL-terminated). */
/* Returns as flare_multiaddr_parse. */
int flare_multiaddr_parse_n(flare_multiaddr *ma, const char *s, size_t len);

/* Writes the text form, NUL-terminated, and returns its length. The empty
 * address prints as "/". Errors: FLARE_ERR_BUFFER_TOO_SMALL, and
 * _MALFORMED if ma was corrupted by hand. FLARE_MULTIADDR_STR_MAX always
 * suffices. */
int flare_multiaddr_to_string(const flare_multiaddr *ma, char *out, size_t cap);

/* Iterates: set *offset = 0, then call until it returns 0. Returns 1 and
 * fills *c, 0 at the end, or a negative error if ma was corrupted. */
int flare_multiaddr_next(const flare_multiaddr *ma, size_t *offset, flare_ma_component *c);

/* Text form of one component's value (no leading '/', empty for protocols
 * without a value; for unix the absolute path). Returns the length. Errors:
 * FLARE_ERR_BUFFER_TOO_SMALL, _UNKNOWN_CODE, _MALFORMED. */
int flare_multiaddr_component_to_string(const flare_ma_component *c, char *out, size_t cap);

/* Appends one component with binary value[0..len) (value may be NULL for
 * zero-size protocols). The value is validated as in from_bytes. Errors: as
 * from_bytes, plus FLARE_ERR_TOO_LARGE if the result would not fit and
 * FLARE_ERR_MALFORMED after a /unix/ path; *ma is unchanged on error. */
int flare_multiaddr_push(flare_multiaddr *ma, uint64_t code, const uint8_t *value, size_t len);

/* --- structure helpers --- */

/* Appends suffix. FLARE_ERR_TOO_LARGE (ma unchanged) if it does not fit,
 * FLARE_ERR_MALFORMED if ma ends with /unix/ (a path must come last). */
int flare_multiaddr_encapsulate(flare_multiaddr *ma, const flare_multiaddr *suffix);
/* Drops the LAST component with code, and everything after it (which may
 * leave ma empty). FLARE_ERR_NOT_FOUND if there is none. */
int flare_multiaddr_decapsulate(flare_multiaddr *ma, uint64_t code);
/* 1 if byte-identical, else 0. */
/* Returns 1 if equal, else 0. */
int flare_multiaddr_equal(const flare_multiaddr *a, const flare_multiaddr *b);
/* 1 if a component with code is present, else 0. */
/* Returns 1 if ma contains a component with code, else 0. */
int flare_multiaddr_has(const flare_multiaddr *ma, uint64_t code);
/* The first component with code (value points into ma). 0, or
 * FLARE_ERR_NOT_FOUND. */
int flare_multiaddr_find(const flare_multiaddr *ma, uint64_t code, flare_ma_component *c);

/* --- peer ids --- */

/* The LAST /p2p/ component's multihash. FLARE_ERR_NOT_FOUND if none. */
int flare_multiaddr_get_peerid(const flare_multiaddr *ma, flare_peerid *id);
/* Appends /p2p/ID unless ma already ends with it. FLARE_ERR_PEER_ID_MISMATCH
 * if ma ends with a different /p2p/ (appending would be meaningless),
 * FLARE_ERR_INVALID_ARG if id is not a valid peer-id multihash,
 * FLARE_ERR_TOO_LARGE. */
int flare_multiaddr_with_peerid(flare_multiaddr *ma, const flare_peerid *id);

/* Peer-id text conversion used for /p2p/ (shared with the peerid module):
 * decodes base58btc or a CIDv1 libp2p-key in any multibase into the binary
 * multihash (validated: identity or sha2-256, at most FLARE_PEERID_MAX).
 * Returns its length. Errors: FLARE_ERR_MALFORMED, _UNKNOWN_CODE (multibase,
 * CID codec or multihash code), _TOO_LARGE, _TRUNCATED, _OVERLONG. */
int flare_ma_peerid_decode(const char *s, size_t len, uint8_t *out, size_t cap);
/* base58btc of a binary multihash, NUL-terminated; returns the length.
 * Errors: FLARE_ERR_BUFFER_TOO_SMALL. */
int flare_ma_peerid_encode(const uint8_t *mh, size_t len, char *out, size_t cap);

/* --- relays: <relay addr>/p2p/RELAY/p2p-circuit[/p2p/TARGET] --- */

/* 1 if ma has a /p2p-circuit component, else 0. */
/* Returns 1 if ma contains /p2p-circuit, else 0. */
int flare_multiaddr_is_relayed(const flare_multiaddr *ma);
/* Splits at the last /p2p-circuit. relay_addr gets everything before it
 * (ending in /p2p/RELAY), relay the RELAY id, target the last /p2p/ after
 * the circuit (len 0 if none). Any output may be NULL. Errors:
 * FLARE_ERR_NOT_FOUND (not relayed), FLARE_ERR_MALFORMED (no /p2p/RELAY
 * right before /p2p-circuit). */
int flare_multiaddr_relay_split(const flare_multiaddr *ma, flare_multiaddr *relay_addr,
                                flare_peerid *relay, flare_peerid *target);
/* Builds relay_addr[/p2p/relay]/p2p-circuit[/p2p/target]. relay_addr may
 * already end in /p2p/RELAY (then relay may be NULL or must match); target
 * may be NULL or empty. out may alias relay_addr. Errors:
 * FLARE_ERR_INVALID_ARG (no relay id anywhere, or an invalid id),
 * FLARE_ERR_PEER_ID_MISMATCH, FLARE_ERR_TOO_LARGE. */
int flare_multiaddr_make_relayed(flare_multiaddr *out, const flare_multiaddr *relay_addr,
                                 const flare_peerid *relay, const flare_peerid *target);

/* --- classification, for address filtering --- */

typedef enum flare_ma_class {
    FLARE_MA_PUBLIC,      /* global unicast */
    FLARE_MA_PRIVATE,     /* RFC 1918, fc00::/7 */
    FLARE_MA_LOOPBACK,    /* 127/8, ::1 */
    FLARE_MA_LINK_LOCAL,  /* 169.254/16, fe80::/10 */
    FLARE_MA_CGNAT,       /* 100.64/10 */
    FLARE_MA_UNSPECIFIED, /* 0.0.0.0, :: */
    FLARE_MA_DOC,         /* TEST-NET-1/2/3, 2001:db8::/32, 3fff::/20 */
    FLARE_MA_DNS,         /* dns, dns4, dns6, dnsaddr */
    FLARE_MA_OTHER,       /* multicast, reserved, no IP at all, ... */
} flare_ma_class;

/* Classifies by the first ip4/ip6/dns* component. IPv4-mapped
 * (::ffff:0:0/96) and NAT64 (64:ff9b::/96) IPv6 addresses classify as
 * their embedded IPv4 address. */
/* Returns the class of ma's IP address. */
flare_ma_class flare_multiaddr_classify(const flare_multiaddr *ma);
/* Classifies a bare IP (family 4 or 6; port ignored). */
/* Returns the class of ip. */
flare_ma_class flare_ipaddr_classify(const flare_ipaddr *ip);
/* Static name, e.g. "public". */
/* Returns a static name. */
const char *flare_ma_class_name(flare_ma_class c);
/* 1 if c is publicly routable: FLARE_MA_PUBLIC, and FLARE_MA_DOC when
 * doc_is_public (the NAT lab and simulator use TEST-NET addresses as public
 * ones). DNS names are not counted: resolve them first. */
/* Returns 1 if class c is publicly routable (documentation ranges too if doc_is_public), else 0. */
int flare_ma_class_is_public(flare_ma_class c, int doc_is_public);

/* --- thin waist: IP + port --- */

/* Reads the leading /ip4|ip6/ADDR/tcp|udp/PORT (an /ip6zone/ before ip6 is
 * skipped); later components are ignored. *proto (may be NULL) gets
 * FLARE_MA_TCP or FLARE_MA_UDP. FLARE_ERR_UNSUPPORTED if ma does not start
 * that way. */
int flare_multiaddr_to_ipaddr(const flare_multiaddr *ma, flare_ipaddr *ip, int *proto);
/* Builds /ip4|ip6/ADDR/tcp/PORT (proto FLARE_MA_TCP) or
 * /ip4|ip6/ADDR/udp/PORT/quic-v1 (proto FLARE_MA_UDP). FLARE_ERR_INVALID_ARG
 * for another proto or family. */
int flare_multiaddr_from_ipaddr(flare_multiaddr *ma, const flare_ipaddr *ip, int proto);

#ifdef __cplusplus
}
#endif
#endif
