/* /plaintext/2.0.0 (plaintext.h) behind the security operations. Both sides
 * send their Exchange at once, whatever their role; once the peer's has
 * arrived and checks out, bytes pass through unchanged. */
#include <string.h>

#include "core/keys_held.h"
#include "core/mem.h"
#include "core/pb.h"
#include "flare/varint.h"
#include "security/plaintext.h"
#include "security/security.h"

int flare__plaintext_encode(const flare_pubkey *key, flare_buf *out)
{
    uint8_t kbuf[FLARE_PUBKEY_PROTO_MAX];
    int klen = flare_pubkey_encode(key, kbuf, sizeof(kbuf));
    if (klen < 0)
        return klen;
    flare_peerid id;
    int rv = flare_peerid_from_pubkey(&id, key);
    if (rv < 0)
        return rv;
    flare_buf msg;
    flare_buf_init(&msg, out->mem);
    rv = flare__pb_put_bytes_field(&msg, 1, id.bytes, id.len);
    if (rv == 0)
        rv = flare__pb_put_bytes_field(&msg, 2, kbuf, (size_t)klen);
    if (rv == 0) {
        rv = flare_buf_reserve(out, msg.len + FLARE_UVARINT_MAX_LEN);
        if (rv == 0)
            rv = flare_buf_append_uvarint(out, msg.len);
        if (rv == 0)
            rv = flare_buf_append(out, msg.base, msg.len);
    }
    flare_buf_free(&msg);
    return rv;
}

int flare__plaintext_decode(const uint8_t *msg, size_t len, flare_pubkey *key, flare_peerid *id)
{
    flare__pb_reader r;
    flare__pb_field f;
    const uint8_t *idp = NULL, *kp = NULL;
    size_t idlen = 0, klen = 0;
    int rv;
    flare__pb_reader_init(&r, msg, len);
    while ((rv = flare__pb_next(&r, &f)) == 1) {
        if (f.num != 1 && f.num != 2)
            continue;
        if (f.wire != FLARE__PB_LEN)
            return FLARE_ERR_MALFORMED;
        if (f.num == 1)
            idp = f.data, idlen = f.len;
        else
            kp = f.data, klen = f.len;
    }
    if (rv < 0)
        return rv;
    if (!idp || !kp)
        return FLARE_ERR_MALFORMED;
    if ((rv = flare_peerid_from_bytes(id, idp, idlen)) < 0 ||
        (rv = flare_pubkey_decode(key, kp, klen)) < 0)
        return rv;
    return flare_peerid_matches_pubkey(id, key) ? 0 : FLARE_ERR_PEER_ID_MISMATCH;
}

/* What only the handshake needs: freed once it is done, so an established
 * session holds just the peer's identity. */
typedef struct pt_hs {
    flare_buf acc;         /* the peer's Exchange frame while it arrives */
    flare_peerid expected; /* len 0: any */
} pt_hs;

/* An Ed25519 or secp256k1 peer ID holds the key itself: only a peer with
 * a larger key (ECDSA, RSA), whose ID is its hash, has it kept beside. */
typedef struct pt_sess {
    const flare_mem *mem;
    const flare_privkey *identity;
    pt_hs *hs;                      /* NULL once done */
    flare__pubkey_held *remote_key; /* NULL: remote_id holds it */
    flare_peerid remote_id;
    uint8_t done;
} pt_sess;

static void hs_free(pt_sess *s)
{
    if (s->hs) {
        flare_buf_free(&s->hs->acc);
        flare__free(s->mem, s->hs);
        s->hs = NULL;
    }
}

static int pt_init(void **sess, const flare__security_cfg *cfg)
{
    pt_sess *s = flare__calloc(cfg->mem, 1, sizeof(*s));
    if (!s)
        return FLARE_ERR_NOMEM;
    s->hs = flare__calloc(cfg->mem, 1, sizeof(*s->hs));
    if (!s->hs) {
        flare__free(cfg->mem, s);
        return FLARE_ERR_NOMEM;
    }
    s->mem = cfg->mem;
    s->identity = cfg->identity;
    flare_buf_init(&s->hs->acc, cfg->mem);
    if (cfg->expected_remote)
        s->hs->expected = *cfg->expected_remote;
    *sess = s;
    return 0;
}

static int pt_start(void *sess, flare_buf *out)
{
    pt_sess *s = sess;
    return flare__plaintext_encode(&s->identity->pub, out);
}

static int pt_finish(pt_sess *s, const uint8_t *msg, size_t len)
{
    flare_pubkey key;
    int rv = flare__plaintext_decode(msg, len, &key, &s->remote_id);
    if (rv < 0)
        return rv;
    if (s->hs->expected.len && !flare_peerid_equal(&s->hs->expected, &s->remote_id))
        return FLARE_ERR_PEER_ID_MISMATCH;
    flare_pubkey inl;
    if (flare_peerid_extract_pubkey(&s->remote_id, &inl) != 0) {
        s->remote_key = flare__calloc(s->mem, 1, sizeof(*s->remote_key));
        if (!s->remote_key)
            return FLARE_ERR_NOMEM;
        if ((rv = flare__pubkey_hold(s->remote_key, &key, s->mem)) < 0)
            return rv;
    }
    s->done = 1;
    hs_free(s);
    return 0;
}

/* Takes no byte past the Exchange frame into acc: what follows it is the
 * application's (multistream for the muxer, possibly in the same read). */
static int pt_recv(void *sess, const uint8_t *in, size_t len, flare_buf *out, flare_buf *plain)
{
    pt_sess *s = sess;
    (void)out;
    while (len > 0 && !s->done) {
        flare_buf *acc = &s->hs->acc;
        uint64_t n = 0;
        int h = flare_uvarint_decode(acc->base, acc->len, &n);
        size_t take = 1; /* the length prefix: a byte at a time */
        if (h > 0) {
            if (n > FLARE__PLAINTEXT_MAX_MSG)
                return FLARE_ERR_TOO_LARGE;
            take = (size_t)h + (size_t)n - acc->len;
            take = take < len ? take : len;
        } else if (h != FLARE_ERR_TRUNCATED) {
            return h;
        }
        int rv = flare_buf_append(acc, in, take);
        if (rv)
            return rv;
        in += take;
        len -= take;
        h = flare_uvarint_decode(acc->base, acc->len, &n);
        if (h == FLARE_ERR_TRUNCATED)
            continue;
        if (h < 0)
            return h;
        if (n > FLARE__PLAINTEXT_MAX_MSG)
            return FLARE_ERR_TOO_LARGE;
        if (acc->len == (size_t)h + (size_t)n && (rv = pt_finish(s, acc->base + h, n)) < 0)
            return rv;
    }
    return len ? flare_buf_append(plain, in, len) : 0;
}

static int pt_encrypt(void *sess, const uint8_t *data, size_t len, flare_buf *out)
{
    (void)sess;
    return flare_buf_append(out, data, len);
}

static int pt_encrypt_pair(void *sess, const uint8_t *head, size_t hlen, const uint8_t *data,
                           size_t len, flare_buf *out)
{
    (void)sess;
    int rv = flare_buf_reserve(out, hlen + len);
    if (rv == 0)
        rv = flare_buf_append(out, head, hlen);
    return rv ? rv : flare_buf_append(out, data, len);
}

static int pt_done(const void *sess)
{
    return ((const pt_sess *)sess)->done;
}

static int pt_key(const void *sess, flare_pubkey *out)
{
    const pt_sess *s = sess;
    if (!s->done)
        return FLARE_ERR_STATE;
    /* The decode checked that the ID matches the key. */
    return s->remote_key ? flare__pubkey_held_get(s->remote_key, out)
                         : flare_peerid_extract_pubkey(&s->remote_id, out);
}

static const flare_peerid *pt_peer(const void *sess)
{
    const pt_sess *s = sess;
    return s->done ? &s->remote_id : NULL;
}

static void pt_free(void *sess)
{
    pt_sess *s = sess;
    if (!s)
        return;
    hs_free(s);
    if (s->remote_key) {
        flare__pubkey_held_free(s->remote_key, s->mem);
        flare__free(s->mem, s->remote_key);
    }
    flare__free(s->mem, s);
}

const flare__security flare__sec_plaintext = {
    .id = FLARE__PLAINTEXT_ID,
    .init = pt_init,
    .start = pt_start,
    .recv = pt_recv,
    .encrypt = pt_encrypt,
    .encrypt_pair = pt_encrypt_pair,
    .handshake_done = pt_done,
    .remote_key = pt_key,
    .remote_peer = pt_peer,
    .free = pt_free,
};
