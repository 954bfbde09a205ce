/* Noise XX handshake state (Noise rev 34, sections 5.3 and 7.5). */
#include <sodium.h>
#include <string.h>

#include "security/noise/noise_xx.h"

void flare__noise_xx_init(flare__noise_xx *hs, int initiator, const uint8_t *prologue,
                          size_t prologue_len, const uint8_t static_priv[32])
{
    memset(hs, 0, sizeof(*hs));
    flare__noise_sym_init(&hs->ss, FLARE__NOISE_XX_NAME, prologue, prologue_len);
    hs->initiator = initiator ? 1 : 0;
    memcpy(hs->s, static_priv, 32);
    crypto_scalarmult_base(hs->s_pub, hs->s);
}

int flare__noise_xx_our_turn(const flare__noise_xx *hs)
{
    if (hs->msg > 2)
        return 0;
    /* The initiator writes messages 0 and 2, the responder message 1. */
    return (hs->msg % 2 == 0) == (hs->initiator == 1);
}

size_t flare__noise_xx_overhead(const flare__noise_xx *hs)
{
    static const size_t o[3] = {FLARE__NOISE_XX_MSG1_OVERHEAD, FLARE__NOISE_XX_MSG2_OVERHEAD,
                                FLARE__NOISE_XX_MSG3_OVERHEAD};
    return hs->msg <= 2 ? o[hs->msg] : 0;
}

/* MixKey(DH(priv, pub)); an all-zero shared secret (low-order point) fails. */
static int mix_dh(flare__noise_xx *hs, const uint8_t priv[32], const uint8_t pub[32])
{
    uint8_t shared[32];
    if (crypto_scalarmult(shared, priv, pub) != 0) {
        sodium_memzero(shared, sizeof(shared));
        return FLARE_ERR_CRYPTO;
    }
    flare__noise_sym_mix_key(&hs->ss, shared, sizeof(shared));
    sodium_memzero(shared, sizeof(shared));
    return 0;
}

static void gen_ephemeral(flare__noise_xx *hs, flare_rng rng, uint8_t *out)
{
    rng.fn(hs->e, sizeof(hs->e), rng.user);
    crypto_scalarmult_base(hs->e_pub, hs->e);
    memcpy(out, hs->e_pub, 32);
    flare__noise_sym_mix_hash(&hs->ss, hs->e_pub, 32);
}

int flare__noise_xx_write(flare__noise_xx *hs, flare_rng rng, const uint8_t *payload, size_t len,
                          uint8_t *out)
{
    if (!flare__noise_xx_our_turn(hs))
        return FLARE_ERR_STATE;
    size_t pos = 0, n;
    int rv = 0;
    if (hs->msg == 0) { /* -> e */
        gen_ephemeral(hs, rng, out);
        pos = 32;
    } else if (hs->msg == 1) { /* <- e, ee, s, es */
        gen_ephemeral(hs, rng, out);
        pos = 32;
        if ((rv = mix_dh(hs, hs->e, hs->re)) != 0)
            return rv;
        if ((rv = flare__noise_sym_encrypt_hash(&hs->ss, hs->s_pub, 32, out + pos, &n)) != 0)
            return rv;
        pos += n;
        if ((rv = mix_dh(hs, hs->s, hs->re)) != 0)
            return rv;
    } else { /* -> s, se */
        if ((rv = flare__noise_sym_encrypt_hash(&hs->ss, hs->s_pub, 32, out, &n)) != 0)
            return rv;
        pos = n;
        if ((rv = mix_dh(hs, hs->s, hs->re)) != 0)
            return rv;
    }
    if ((rv = flare__noise_sym_encrypt_hash(&hs->ss, payload, len, out + pos, &n)) != 0)
        return rv;
    hs->msg++;
    return (int)(pos + n);
}

int flare__noise_xx_read(flare__noise_xx *hs, const uint8_t *msg, size_t len, uint8_t *payload)
{
    if (hs->msg > 2 || flare__noise_xx_our_turn(hs))
        return FLARE_ERR_STATE;
    if (len < flare__noise_xx_overhead(hs))
        return FLARE_ERR_TRUNCATED;
    size_t pos = 0, n;
    int rv;
    if (hs->msg == 0 || hs->msg == 1) { /* e */
        memcpy(hs->re, msg, 32);
        flare__noise_sym_mix_hash(&hs->ss, hs->re, 32);
        pos = 32;
    }
    if (hs->msg == 1) { /* ee, s, es (initiator side) */
        if ((rv = mix_dh(hs, hs->e, hs->re)) != 0)
            return rv;
        if ((rv = flare__noise_sym_decrypt_hash(&hs->ss, msg + pos, 48, hs->rs, &n)) != 0)
            return rv;
        pos += 48;
        if ((rv = mix_dh(hs, hs->e, hs->rs)) != 0)
            return rv;
    } else if (hs->msg == 2) { /* s, se (responder side) */
        if ((rv = flare__noise_sym_decrypt_hash(&hs->ss, msg, 48, hs->rs, &n)) != 0)
            return rv;
        pos = 48;
        if ((rv = mix_dh(hs, hs->e, hs->rs)) != 0)
            return rv;
    }
    if ((rv = flare__noise_sym_decrypt_hash(&hs->ss, msg + pos, len - pos, payload, &n)) != 0)
        return rv;
    hs->msg++;
    return (int)n;
}

int flare__noise_xx_split(const flare__noise_xx *hs, flare__noise_cipher *send,
                          flare__noise_cipher *recv)
{
    if (hs->msg != 3)
        return FLARE_ERR_STATE;
    if (hs->initiator)
        flare__noise_sym_split(&hs->ss, send, recv);
    else
        flare__noise_sym_split(&hs->ss, recv, send);
    return 0;
}

void flare__noise_xx_clear(flare__noise_xx *hs)
{
    sodium_memzero(hs, sizeof(*hs));
}
