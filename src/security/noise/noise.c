/* libp2p Noise: framing, the signed handshake payload, and transport frames
 * over the XX handshake of noise_xx.c. */
#include <sodium.h>
#include <string.h>

#include "core/keys_held.h"
#include "core/mem.h"
#include "flare/noise.h"
#include "noise.pb-c.h"
#include "security/noise/noise_internal.h"
#include "security/noise/noise_xx.h"

#define SIG_PREFIX     "noise-libp2p-static-key:"
#define SIG_PREFIX_LEN (sizeof(SIG_PREFIX) - 1)
#define MUXER_NAME_MAX 255
#define FRAME_HDR      2
/* The receive buffer (for a frame cut by the end of a read) is freed after
 * IN_QUIET reads in a row that left nothing in it: an idle session holds
 * none, a streaming one (whose reads cut frames all the time) keeps it
 * rather than allocate one per frame. */
#define IN_QUIET 8

enum { ST_HANDSHAKE, ST_DONE, ST_DEAD };

/* What only the handshake needs, freed once it is done (an established
 * session holds none of it). */
typedef struct hs_only {
    flare_privkey identity;     /* our copy */
    flare_sig_cache *sig_cache; /* may be NULL */
    flare__noise_xx hs;
} hs_only;

struct flare__noise_state {
    const flare_mem *mem;
    flare_rng rng;
    hs_only *hso;          /* NULL once the handshake is done */
    flare_peerid expected; /* len 0: accept any */
    char **muxers;
    size_t nmuxers;
    size_t max_plain;
    int state;
    int started;
    flare__noise_xx *hs; /* &hso->hs during the handshake, then NULL */
    flare__noise_cipher tx, rx;
    uint8_t s_pub[32]; /* kept for the test hook after hs is wiped */
    flare_buf in;      /* received, unprocessed bytes */
    unsigned in_quiet; /* reads in a row that left in empty */
    flare_buf scratch; /* decrypted handshake payloads */
    flare__pubkey_held remote_key;
    flare_pubkey *remote_full; /* flare_noise_remote_key's expansion, on demand */
    flare_peerid remote_id;
    char **rmuxers;
    size_t nrmuxers;
    const char *selected;
    uint8_t *override; /* test hook: raw payload to send */
    size_t override_len;
};

/* --- allocation helpers ------------------------------------------------- */

/* protobuf-c reports allocation failure and bad input alike (NULL), so the
 * allocator remembers which it was. */
typedef struct pb_mem {
    const flare_mem *mem;
    int failed;
} pb_mem;

static void *pb_alloc(void *data, size_t size)
{
    pb_mem *m = data;
    void *p = flare__malloc(m->mem, size);
    if (!p)
        m->failed = 1;
    return p;
}

static void pb_free(void *data, void *p)
{
    flare__free(((pb_mem *)data)->mem, p);
}

static void free_strings(const flare_mem *mem, char **v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        flare__free(mem, v[i]);
    flare__free(mem, v);
}

/* Copies n strings; returns NULL on allocation failure (n == 0 gives NULL). */
static int dup_strings(const flare_mem *mem, const char *const *src, size_t n, char ***dst)
{
    *dst = NULL;
    if (n == 0)
        return 0;
    char **v = flare__calloc(mem, n, sizeof(char *));
    if (!v)
        return FLARE_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(src[i]);
        v[i] = flare__malloc(mem, len + 1);
        if (!v[i]) {
            free_strings(mem, v, i);
            return FLARE_ERR_NOMEM;
        }
        memcpy(v[i], src[i], len + 1);
    }
    *dst = v;
    return 0;
}

/* --- lifecycle ----------------------------------------------------------- */

void flare_noise_settings_default(flare_noise_settings *s)
{
    memset(s, 0, sizeof(*s));
    s->struct_size = sizeof(*s);
    s->max_plaintext_buffer = FLARE_NOISE_DEFAULT_MAX_PLAINTEXT_BUFFER;
}

static int check_settings(const flare_noise_settings *s)
{
    if (!s || s->struct_size != sizeof(*s) || !s->identity || !s->max_plaintext_buffer ||
        (s->prologue == NULL && s->prologue_len > 0) || (s->nmuxers && !s->muxers) ||
        s->nmuxers > FLARE_NOISE_MAX_MUXERS)
        return FLARE_ERR_INVALID_ARG;
    for (size_t i = 0; i < s->nmuxers; i++) {
        if (!s->muxers[i])
            return FLARE_ERR_INVALID_ARG;
        size_t len = strlen(s->muxers[i]);
        if (len == 0 || len > MUXER_NAME_MAX)
            return FLARE_ERR_INVALID_ARG;
    }
    if (s->expected_remote && s->expected_remote->len > FLARE_PEERID_MAX)
        return FLARE_ERR_INVALID_ARG;
    return 0;
}

/* An established session keeps only what its transport phase needs: the
 * identity key copy (~1.2 KB), the handshake state (~300 bytes) and the
 * handshake scratch go. */
static void drop_hs(struct flare__noise_state *st)
{
    if (!st->hso)
        return;
    flare__noise_xx_clear(&st->hso->hs); /* ephemeral and static secrets */
    flare_privkey_clear(&st->hso->identity);
    flare__free(st->mem, st->hso);
    st->hso = NULL;
    st->hs = NULL;
}

int flare_noise_init(flare_noise *n, const flare_noise_settings *s, const flare_mem *mem,
                     flare_rng rng)
{
    n->st = NULL;
    int rv = check_settings(s);
    if (rv)
        return rv;
    if (!rng.fn)
        return FLARE_ERR_INVALID_ARG;
    struct flare__noise_state *st = flare__calloc(mem, 1, sizeof(*st));
    if (!st)
        return FLARE_ERR_NOMEM;
    st->mem = flare__mem(mem);
    st->rng = rng;
    st->hso = flare__malloc(st->mem, sizeof(*st->hso));
    if (!st->hso) {
        flare__free(st->mem, st);
        return FLARE_ERR_NOMEM;
    }
    st->hso->identity = *s->identity;
    st->hso->sig_cache = s->sig_cache;
    st->hs = &st->hso->hs;
    if (s->expected_remote)
        st->expected = *s->expected_remote;
    st->max_plain = s->max_plaintext_buffer;
    flare_buf_init(&st->in, st->mem);
    flare_buf_init(&st->scratch, st->mem);
    if ((rv = dup_strings(st->mem, s->muxers, s->nmuxers, &st->muxers)) != 0) {
        drop_hs(st);
        flare__free(st->mem, st);
        return rv;
    }
    st->nmuxers = s->nmuxers;
    /* A fresh static key per session, as go-libp2p: the spec allows it. A
     * kept one (js, rust) would let peers' signature caches skip our
     * signature; a fresh one leaves nothing worth stealing after a session. */
    uint8_t static_priv[32];
    rng.fn(static_priv, sizeof(static_priv), rng.user);
    flare__noise_xx_init(st->hs, s->initiator, s->prologue, s->prologue_len, static_priv);
    sodium_memzero(static_priv, sizeof(static_priv));
    memcpy(st->s_pub, st->hs->s_pub, 32);
    st->state = ST_HANDSHAKE;
    n->st = st;
    return 0;
}

void flare_noise_free(flare_noise *n)
{
    struct flare__noise_state *st = n ? n->st : NULL;
    if (!st)
        return;
    const flare_mem *mem = st->mem;
    drop_hs(st);
    flare__noise_cipher_clear(&st->tx);
    flare__noise_cipher_clear(&st->rx);
    /* The whole allocation: consumed plaintext stays behind base. */
    if (st->in.alloc)
        sodium_memzero(st->in.alloc, st->in.cap);
    if (st->scratch.alloc)
        sodium_memzero(st->scratch.alloc, st->scratch.cap);
    flare_buf_free(&st->in);
    flare_buf_free(&st->scratch);
    free_strings(mem, st->muxers, st->nmuxers);
    free_strings(mem, st->rmuxers, st->nrmuxers);
    flare__free(mem, st->override);
    flare__pubkey_held_free(&st->remote_key, mem);
    flare__free(mem, st->remote_full);
    sodium_memzero(st, sizeof(*st));
    flare__free(mem, st);
    n->st = NULL;
}

/* --- handshake payload --------------------------------------------------- */

static void sig_message(const uint8_t static_pub[32], uint8_t out[SIG_PREFIX_LEN + 32])
{
    memcpy(out, SIG_PREFIX, SIG_PREFIX_LEN);
    memcpy(out + SIG_PREFIX_LEN, static_pub, 32);
}

/* Packs our NoiseHandshakePayload into st->scratch. */
static int build_payload(struct flare__noise_state *st)
{
    st->scratch.len = 0;
    if (st->override)
        return flare_buf_append(&st->scratch, st->override, st->override_len);
    uint8_t key[FLARE_PUBKEY_PROTO_MAX], sig[FLARE_SIG_MAX], msg[SIG_PREFIX_LEN + 32];
    size_t siglen = 0;
    int klen = flare_pubkey_encode(&st->hso->identity.pub, key, sizeof(key));
    if (klen < 0)
        return klen;
    sig_message(st->s_pub, msg);
    int rv = flare_privkey_sign(&st->hso->identity, msg, sizeof(msg), sig, &siglen);
    if (rv)
        return rv;
    FlareNoise__NoiseHandshakePayload p = FLARE_NOISE__NOISE_HANDSHAKE_PAYLOAD__INIT;
    FlareNoise__NoiseExtensions ext = FLARE_NOISE__NOISE_EXTENSIONS__INIT;
    p.has_identity_key = p.has_identity_sig = 1;
    p.identity_key.data = key;
    p.identity_key.len = (size_t)klen;
    p.identity_sig.data = sig;
    p.identity_sig.len = siglen;
    if (st->nmuxers) {
        ext.n_stream_muxers = st->nmuxers;
        ext.stream_muxers = st->muxers;
        p.extensions = &ext;
    }
    size_t sz = flare_noise__noise_handshake_payload__get_packed_size(&p);
    if ((rv = flare_buf_reserve(&st->scratch, sz)) != 0)
        return rv;
    st->scratch.len = flare_noise__noise_handshake_payload__pack(&p, st->scratch.base);
    return 0;
}

static int take_muxers(struct flare__noise_state *st, const FlareNoise__NoiseExtensions *ext)
{
    if (!ext || ext->n_stream_muxers == 0)
        return 0;
    if (ext->n_stream_muxers > FLARE_NOISE_MAX_MUXERS)
        return FLARE_ERR_TOO_LARGE;
    for (size_t i = 0; i < ext->n_stream_muxers; i++)
        if (!ext->stream_muxers[i])
            return FLARE_ERR_MALFORMED;
    int rv = dup_strings(st->mem, (const char *const *)ext->stream_muxers, ext->n_stream_muxers,
                         &st->rmuxers);
    if (rv)
        return rv;
    st->nrmuxers = ext->n_stream_muxers;
    return 0;
}

/* Checks the remote's payload against its static key st->hs->rs: the identity
 * key decodes, signs the static key, and is the expected peer. */
static int check_payload(struct flare__noise_state *st, const FlareNoise__NoiseHandshakePayload *p)
{
    if (!p->has_identity_key || !p->has_identity_sig)
        return FLARE_ERR_PROTO;
    flare_pubkey key;
    int rv = flare_pubkey_decode(&key, p->identity_key.data, p->identity_key.len);
    if (rv < 0)
        return rv;
    uint8_t msg[SIG_PREFIX_LEN + 32];
    sig_message(st->hs->rs, msg);
    rv = flare_sig_cache_verify(st->hso->sig_cache, &key, msg, sizeof(msg), p->identity_sig.data,
                                p->identity_sig.len);
    if (rv)
        return rv < 0 ? rv : FLARE_ERR_BAD_SIGNATURE;
    if ((rv = flare_peerid_from_pubkey(&st->remote_id, &key)) < 0)
        return rv;
    if (st->expected.len && !flare_peerid_equal(&st->expected, &st->remote_id))
        return FLARE_ERR_PEER_ID_MISMATCH;
    if ((rv = flare__pubkey_hold(&st->remote_key, &key, st->mem)) < 0)
        return rv;
    return take_muxers(st, p->extensions);
}

static int verify_payload(struct flare__noise_state *st, const uint8_t *data, size_t len)
{
    pb_mem m = {st->mem, 0};
    ProtobufCAllocator a = {pb_alloc, pb_free, &m};
    FlareNoise__NoiseHandshakePayload *p =
        flare_noise__noise_handshake_payload__unpack(&a, len, data);
    if (!p)
        return m.failed ? FLARE_ERR_NOMEM : FLARE_ERR_MALFORMED;
    int rv = check_payload(st, p);
    flare_noise__noise_handshake_payload__free_unpacked(p, &a);
    return rv;
}

/* --- handshake messages -------------------------------------------------- */

/* Frames and appends our next handshake message with payload (p, len). */
static int write_message(struct flare__noise_state *st, const uint8_t *p, size_t len,
                         flare_buf *out)
{
    size_t total = flare__noise_xx_overhead(st->hs) + len;
    if (total > FLARE_NOISE_MAX_MSG)
        return FLARE_ERR_TOO_LARGE;
    int rv = flare_buf_reserve(out, FRAME_HDR + total);
    if (rv)
        return rv;
    uint8_t *f = out->base + out->len;
    rv = flare__noise_xx_write(st->hs, st->rng, p, len, f + FRAME_HDR);
    if (rv < 0)
        return rv;
    f[0] = (uint8_t)(rv >> 8);
    f[1] = (uint8_t)rv;
    out->len += FRAME_HDR + (size_t)rv;
    return 0;
}

static int write_signed_message(struct flare__noise_state *st, flare_buf *out)
{
    int rv = build_payload(st);
    if (rv)
        return rv;
    return write_message(st, st->scratch.base, st->scratch.len, out);
}

static void pick_muxer(struct flare__noise_state *st)
{
    char **ini = st->hs->initiator ? st->muxers : st->rmuxers;
    char **resp = st->hs->initiator ? st->rmuxers : st->muxers;
    size_t ni = st->hs->initiator ? st->nmuxers : st->nrmuxers;
    size_t nr = st->hs->initiator ? st->nrmuxers : st->nmuxers;
    st->selected = NULL;
    for (size_t i = 0; i < ni && !st->selected; i++)
        for (size_t j = 0; j < nr; j++)
            if (strcmp(ini[i], resp[j]) == 0) {
                st->selected = ini[i];
                break;
            }
}

static int finish_handshake(struct flare__noise_state *st)
{
    int rv = flare__noise_xx_split(st->hs, &st->tx, &st->rx);
    if (rv)
        return rv;
    pick_muxer(st);
    drop_hs(st);
    if (st->scratch.alloc)
        sodium_memzero(st->scratch.alloc, st->scratch.cap);
    flare_buf_free(&st->scratch);
    st->state = ST_DONE;
    return 0;
}

static int recv_handshake(struct flare__noise_state *st, const uint8_t *f, size_t len,
                          flare_buf *out)
{
    if (st->hs->initiator && !st->started)
        return FLARE_ERR_STATE;
    int rv = flare_buf_reserve(&st->scratch, len);
    if (rv)
        return rv;
    st->scratch.len = 0;
    int index = st->hs->msg;
    int plen = flare__noise_xx_read(st->hs, f, len, st->scratch.base);
    if (plen < 0)
        return plen;
    if (index == 0) /* -> e: the initiator must not send a payload yet */
        return plen ? FLARE_ERR_PROTO : write_signed_message(st, out);
    if ((rv = verify_payload(st, st->scratch.base, (size_t)plen)) != 0)
        return rv;
    if (index == 1 && (rv = write_signed_message(st, out)) != 0)
        return rv;
    return finish_handshake(st);
}

int flare_noise_start(flare_noise *n, flare_buf *out)
{
    struct flare__noise_state *st = n->st;
    if (!st || st->state != ST_HANDSHAKE || st->started)
        return FLARE_ERR_STATE;
    if (!st->hs->initiator) {
        st->started = 1;
        return 0;
    }
    int rv = write_message(st, NULL, 0, out);
    if (rv) {
        st->state = ST_DEAD;
        return rv;
    }
    st->started = 1;
    return 0;
}

/* --- transport ----------------------------------------------------------- */

static int recv_transport(struct flare__noise_state *st, const uint8_t *f, size_t len,
                          flare_buf *plain)
{
    if (len < FLARE__NOISE_TAGLEN)
        return FLARE_ERR_TRUNCATED;
    size_t n = len - FLARE__NOISE_TAGLEN;
    int rv = flare_buf_reserve(plain, n + 1); /* + 1: never a NULL base */
    if (rv)
        return rv;
    rv = flare__noise_cipher_decrypt(&st->rx, NULL, 0, f, len, plain->base + plain->len);
    if (rv)
        return rv;
    plain->len += n;
    return 0;
}

/* Handles the complete frames in p[0..avail); *used receives the bytes
 * consumed (frames held back by the plaintext bound are not consumed). */
static int process_frames(struct flare__noise_state *st, const uint8_t *p, size_t avail,
                          size_t *used, flare_buf *out, flare_buf *plain)
{
    size_t off = 0;
    int rv = 0;
    while (avail - off >= FRAME_HDR) {
        size_t flen = (size_t)p[off] << 8 | p[off + 1];
        if (avail - off < FRAME_HDR + flen)
            break;
        if (st->state == ST_DONE) {
            if (plain->len >= st->max_plain)
                break; /* backpressure: keep the rest as ciphertext */
            rv = recv_transport(st, p + off + FRAME_HDR, flen, plain);
        } else {
            rv = recv_handshake(st, p + off + FRAME_HDR, flen, out);
        }
        if (rv)
            break;
        off += FRAME_HDR + flen;
    }
    *used = off;
    return rv;
}

/* Completes the frame at the start of st->in from in (copying only the
 * bytes it still lacks) and processes what st->in holds. *took receives the
 * bytes of in it used; *whole is 1 when st->in is empty afterwards, 0 when
 * a frame is still incomplete or held back by the plaintext bound. */
static int finish_buffered(struct flare__noise_state *st, const uint8_t *in, size_t len,
                           size_t *took, int *whole, flare_buf *out, flare_buf *plain)
{
    size_t t = 0;
    int rv;
    *whole = 0;
    while (t < len) {
        size_t have = st->in.len, need = FRAME_HDR - (have < FRAME_HDR ? have : FRAME_HDR);
        if (have >= FRAME_HDR) {
            size_t flen = FRAME_HDR + ((size_t)st->in.base[0] << 8 | st->in.base[1]);
            need = have < flen ? flen - have : 0; /* held back: a whole frame or more */
        }
        if (need == 0)
            break;
        size_t k = need < len - t ? need : len - t;
        if ((rv = flare_buf_append(&st->in, in + t, k)) != 0)
            return rv;
        t += k;
    }
    *took = t;
    size_t used = 0;
    rv = process_frames(st, st->in.base, st->in.len, &used, out, plain);
    flare_buf_consume(&st->in, used);
    *whole = st->in.len == 0;
    return rv;
}

/* Frames are read straight from in; only a frame cut by the end of in is
 * copied (and then only its own bytes), or everything when the plaintext
 * bound holds frames back. */
static int recv_frames(struct flare__noise_state *st, const uint8_t *in, size_t len, flare_buf *out,
                       flare_buf *plain)
{
    /* Bytes held back may not exceed the plaintext bound plus one frame. */
    size_t cap = st->max_plain < SIZE_MAX / 2 ? st->max_plain + FRAME_HDR + FLARE_NOISE_MAX_MSG
                                              : SIZE_MAX / 2;
    size_t used = 0;
    int rv;
    if (st->in.len) {
        size_t took = 0;
        int whole = 0;
        if ((rv = finish_buffered(st, in, len, &took, &whole, out, plain)) != 0)
            return rv;
        in += took;
        len -= took;
        if (!whole) {
            if (len > cap - st->in.len)
                return FLARE_ERR_LIMIT;
            if ((rv = flare_buf_append(&st->in, in, len)) != 0)
                return rv;
            rv = process_frames(st, st->in.base, st->in.len, &used, out, plain);
            flare_buf_consume(&st->in, used);
            return rv;
        }
    }
    rv = process_frames(st, in, len, &used, out, plain);
    if (rv)
        return rv;
    if (len - used > cap)
        return FLARE_ERR_LIMIT;
    return flare_buf_append(&st->in, in + used, len - used);
}

static int recv_bytes(struct flare__noise_state *st, const uint8_t *in, size_t len, flare_buf *out,
                      flare_buf *plain)
{
    int rv = recv_frames(st, in, len, out, plain);
    if (st->in.len)
        st->in_quiet = 0;
    else if (st->in_quiet < IN_QUIET)
        st->in_quiet++;
    if (st->in_quiet >= IN_QUIET && st->in.cap)
        flare_buf_free(&st->in);
    return rv;
}

int flare_noise_recv(flare_noise *n, const uint8_t *in, size_t len, flare_buf *out,
                     flare_buf *plain)
{
    struct flare__noise_state *st = n->st;
    if (!st || st->state == ST_DEAD)
        return FLARE_ERR_STATE;
    if (!out || !plain || (len && !in))
        return FLARE_ERR_INVALID_ARG;
    int rv = recv_bytes(st, in, len, out, plain);
    if (rv)
        st->state = ST_DEAD;
    return rv;
}

int flare_noise_encrypt(flare_noise *n, const uint8_t *data, size_t len, flare_buf *out)
{
    struct flare__noise_state *st = n->st;
    if (!st || st->state != ST_DONE)
        return FLARE_ERR_STATE;
    if (len == 0)
        return 0;
    if (!data || !out)
        return FLARE_ERR_INVALID_ARG;
    size_t frames = (len + FLARE_NOISE_MAX_PLAINTEXT - 1) / FLARE_NOISE_MAX_PLAINTEXT;
    if (frames > UINT64_MAX - st->tx.n) {
        /* Checked up front so that no frame is half-written. */
        st->state = ST_DEAD;
        return FLARE_ERR_NONCE_EXHAUSTED;
    }
    if (frames > (SIZE_MAX - len) / (FRAME_HDR + FLARE__NOISE_TAGLEN))
        return FLARE_ERR_NOMEM;
    int rv = flare_buf_reserve(out, len + frames * (FRAME_HDR + FLARE__NOISE_TAGLEN));
    if (rv)
        return rv;
    while (len > 0) {
        size_t chunk = len < FLARE_NOISE_MAX_PLAINTEXT ? len : FLARE_NOISE_MAX_PLAINTEXT;
        size_t clen = chunk + FLARE__NOISE_TAGLEN;
        uint8_t *f = out->base + out->len;
        f[0] = (uint8_t)(clen >> 8);
        f[1] = (uint8_t)clen;
        rv = flare__noise_cipher_encrypt(&st->tx, NULL, 0, data, chunk, f + FRAME_HDR);
        if (rv) {
            st->state = ST_DEAD;
            return rv;
        }
        out->len += FRAME_HDR + clen;
        data += chunk;
        len -= chunk;
    }
    return 0;
}

int flare_noise_encrypt_pair(flare_noise *n, const uint8_t *head, size_t hlen, const uint8_t *data,
                             size_t len, flare_buf *out)
{
    struct flare__noise_state *st = n->st;
    if (!st || st->state != ST_DONE)
        return FLARE_ERR_STATE;
    if ((hlen && !head) || (len && !data) || !out)
        return FLARE_ERR_INVALID_ARG;
    if (hlen > SIZE_MAX - len)
        return FLARE_ERR_NOMEM;
    size_t total = hlen + len;
    if (total == 0)
        return 0;
    size_t frames = (total + FLARE_NOISE_MAX_PLAINTEXT - 1) / FLARE_NOISE_MAX_PLAINTEXT;
    if (frames > UINT64_MAX - st->tx.n) {
        st->state = ST_DEAD;
        return FLARE_ERR_NONCE_EXHAUSTED;
    }
    if (frames > (SIZE_MAX - total) / (FRAME_HDR + FLARE__NOISE_TAGLEN))
        return FLARE_ERR_NOMEM;
    int rv = flare_buf_reserve(out, total + frames * (FRAME_HDR + FLARE__NOISE_TAGLEN));
    if (rv)
        return rv;
    while (total > 0) {
        size_t chunk = total < FLARE_NOISE_MAX_PLAINTEXT ? total : FLARE_NOISE_MAX_PLAINTEXT;
        /* This frame's text: what is left of head, then data. */
        flare__noise_piece pc[2];
        size_t np = 0, h = hlen < chunk ? hlen : chunk;
        if (h)
            pc[np++] = (flare__noise_piece){head, h};
        if (chunk > h)
            pc[np++] = (flare__noise_piece){data, chunk - h};
        size_t clen = chunk + FLARE__NOISE_TAGLEN;
        uint8_t *f = out->base + out->len;
        f[0] = (uint8_t)(clen >> 8);
        f[1] = (uint8_t)clen;
        rv = flare__noise_cipher_encrypt_gather(&st->tx, pc, np, f + FRAME_HDR);
        if (rv) {
            st->state = ST_DEAD;
            return rv;
        }
        out->len += FRAME_HDR + clen;
        head += h;
        hlen -= h;
        data += chunk - h;
        total -= chunk;
    }
    return 0;
}

/* --- queries ------------------------------------------------------------- */

int flare_noise_handshake_done(const flare_noise *n)
{
    return n->st && n->st->state == ST_DONE;
}

const flare_peerid *flare_noise_remote_peerid(const flare_noise *n)
{
    return flare_noise_handshake_done(n) ? &n->st->remote_id : NULL;
}

int flare__noise_remote_key_copy(const flare_noise *n, flare_pubkey *out)
{
    if (!flare_noise_handshake_done(n))
        return FLARE_ERR_STATE;
    return flare__pubkey_held_get(&n->st->remote_key, out);
}

/* The host copies the key out (above); a full flare_pubkey is made only for
 * a caller of this API, once, and lives as long as the session. */
const flare_pubkey *flare_noise_remote_key(const flare_noise *n)
{
    struct flare__noise_state *st = flare_noise_handshake_done(n) ? n->st : NULL;
    if (st && !st->remote_full) {
        flare_pubkey *k = flare__malloc(st->mem, sizeof(*k));
        if (!k || flare__pubkey_held_get(&st->remote_key, k) < 0) {
            flare__free(st->mem, k);
            return NULL;
        }
        st->remote_full = k;
    }
    return st ? st->remote_full : NULL;
}

size_t flare_noise_remote_muxers(const flare_noise *n, const char *const **list)
{
    if (!flare_noise_handshake_done(n) || n->st->nrmuxers == 0) {
        if (list)
            *list = NULL;
        return 0;
    }
    if (list)
        *list = (const char *const *)n->st->rmuxers;
    return n->st->nrmuxers;
}

const char *flare_noise_selected_muxer(const flare_noise *n)
{
    return flare_noise_handshake_done(n) ? n->st->selected : NULL;
}

size_t flare_noise_buffered(const flare_noise *n)
{
    return n->st ? n->st->in.len : 0;
}

/* --- test hooks ---------------------------------------------------------- */

void flare__noise_test_set_nonces(flare_noise *n, uint64_t send, uint64_t recv)
{
    n->st->tx.n = send;
    n->st->rx.n = recv;
}

const uint8_t *flare__noise_test_static_pub(const flare_noise *n)
{
    return n->st->s_pub;
}

int flare__noise_test_set_payload(flare_noise *n, const uint8_t *p, size_t len)
{
    struct flare__noise_state *st = n->st;
    flare__free(st->mem, st->override);
    st->override = NULL;
    st->override_len = 0;
    if (len == 0)
        return 0;
    if (!(st->override = flare__malloc(st->mem, len)))
        return FLARE_ERR_NOMEM;
    memcpy(st->override, p, len);
    st->override_len = len;
    return 0;
}
