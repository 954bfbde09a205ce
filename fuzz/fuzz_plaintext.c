/* libFuzzer: the /plaintext/2.0.0 Exchange, as a message body and as wire
 * bytes into a session in two pieces; a decoded Exchange must re-encode to
 * a frame that decodes to the same key and ID. */
#include <string.h>

#include "security/plaintext.h"
#include "security/security.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    flare_pubkey k, k2;
    flare_peerid id, id2;
    if (flare__plaintext_decode(data, size, &k, &id) == 0) {
        flare_buf b;
        flare_buf_init(&b, NULL);
        if (flare__plaintext_encode(&k, &b) == 0) {
            const uint8_t *m = b.base;
            while (*m & 0x80)
                m++;
            m++;
            if (flare__plaintext_decode(m, b.len - (size_t)(m - b.base), &k2, &id2) != 0 ||
                !flare_pubkey_equal(&k, &k2) || !flare_peerid_equal(&id, &id2))
                __builtin_trap();
        }
        flare_buf_free(&b);
    }
    static flare_privkey me;
    if (me.pub.len == 0) {
        uint8_t seed[32] = {1};
        flare_privkey_from_seed(&me, seed);
    }
    const flare__security *sec =
        flare__security_find(FLARE__PLAINTEXT_ID, strlen(FLARE__PLAINTEXT_ID));
    flare__security_cfg c = {0};
    c.identity = &me;
    void *s = NULL;
    if (!sec || sec->init(&s, &c) != 0)
        return 0;
    flare_buf out, plain;
    flare_buf_init(&out, NULL);
    flare_buf_init(&plain, NULL);
    size_t half = size / 2;
    if (sec->recv(s, data, half, &out, &plain) == 0)
        (void)sec->recv(s, data + half, size - half, &out, &plain);
    if (sec->handshake_done(s) && !sec->remote_peer(s))
        __builtin_trap();
    sec->free(s);
    flare_buf_free(&out);
    flare_buf_free(&plain);
    return 0;
}
