/*
 * The Noise XX handshake pattern (Noise_XX_25519_ChaChaPoly_SHA256):
 *   -> e
 *   <- e, ee, s, es
 *   -> s, se
 * Payloads are opaque here; the libp2p layer (noise.c) fills and checks them.
 * Ephemeral keys come from the caller's flare_rng, so tests can replay the
 * cacophony vectors. Internal to the Noise module.
 */
#ifndef FLARE_SECURITY_NOISE_XX_H
#define FLARE_SECURITY_NOISE_XX_H

#include "flare/common.h"
#include "security/noise/noise_sym.h"

#define FLARE__NOISE_XX_NAME "Noise_XX_25519_ChaChaPoly_SHA256"

/* Fixed bytes each message carries besides its payload. */
#define FLARE__NOISE_XX_MSG1_OVERHEAD 32
#define FLARE__NOISE_XX_MSG2_OVERHEAD (32 + 32 + 16 + 16)
#define FLARE__NOISE_XX_MSG3_OVERHEAD (32 + 16 + 16)

typedef struct flare__noise_xx {
    flare__noise_symmetric ss;
    int initiator;
    int msg; /* index of the next message (0..2); 3 once complete */
    uint8_t s[32], s_pub[32];
    uint8_t e[32], e_pub[32];
    uint8_t rs[32], re[32];
} flare__noise_xx;

/* Sets up the handshake with our static private key (the public half is
 * derived). */
void flare__noise_xx_init(flare__noise_xx *hs, int initiator, const uint8_t *prologue,
                          size_t prologue_len, const uint8_t static_priv[32]);
/* 1 if the next message is ours to write. */
int flare__noise_xx_our_turn(const flare__noise_xx *hs);
/* Overhead of the next message (bytes besides the payload). */
size_t flare__noise_xx_overhead(const flare__noise_xx *hs);
/* Writes the next message (overhead + len bytes) into out. Returns the
 * length written, FLARE_ERR_STATE if it is not our turn, FLARE_ERR_CRYPTO if
 * a DH yields zero. */
int flare__noise_xx_write(flare__noise_xx *hs, flare_rng rng, const uint8_t *payload, size_t len,
                          uint8_t *out);
/* Reads the next message; the payload (len - overhead bytes) goes to payload.
 * Returns the payload length, FLARE_ERR_TRUNCATED (shorter than the
 * overhead), FLARE_ERR_CRYPTO (bad tag or degenerate DH) or FLARE_ERR_STATE. */
int flare__noise_xx_read(flare__noise_xx *hs, const uint8_t *msg, size_t len, uint8_t *payload);
/* After the third message: the two transport ciphers. */
int flare__noise_xx_split(const flare__noise_xx *hs, flare__noise_cipher *send,
                          flare__noise_cipher *recv);
void flare__noise_xx_clear(flare__noise_xx *hs);

#endif
