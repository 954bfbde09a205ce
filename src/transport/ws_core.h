/*
 * A WebSocket endpoint as a sans-I/O byte pipe: the HTTP/1.1 upgrade
 * (ws_http.c), then RFC 6455 framing by libwslay's event API running on
 * memory (its recv/send callbacks read the caller's input and append to the
 * caller's output buffer). The caller's byte stream rides in binary
 * messages; text messages are refused. Callers pass the bytes from the
 * peer, the current time and (for clients) the randomness for the key and
 * the masking keys; nothing here calls back into the caller, so a caller
 * may free the endpoint right after any call.
 */
#ifndef FLARE_TRANSPORT_WS_CORE_H
#define FLARE_TRANSPORT_WS_CORE_H

#include "flare/buf.h"
#include "flare/common.h"
#include "transport/ws_http.h"

struct wslay_event_context;

#define FLARE__WS_FRAME_MAX ((size_t)1 << 20) /* largest frame payload accepted */
#define FLARE__WS_MSG_OUT   65536             /* our messages are at most this long */

typedef struct flare__ws_settings {
    int client;
    flare_rng rng;             /* client: the key and the masking keys */
    flare_tstamp upgrade_time; /* the upgrade must finish within it (0: 10 s) */
    size_t frame_max;          /* 0: FLARE__WS_FRAME_MAX */
} flare__ws_settings;

enum { FLARE__WS_UPGRADE, FLARE__WS_OPEN, FLARE__WS_CLOSED };

/* Events of flare__ws_input. */
#define FLARE__WS_EV_OPEN 1u /* the upgrade finished */
#define FLARE__WS_EV_EOF  2u /* the peer sent its close frame */

typedef struct flare__ws {
    int client, state;
    flare_rng rng;
    flare_tstamp deadline;
    size_t frame_max;
    flare_buf hdr; /* the upgrade block so far */
    char accept[FLARE__WS_ACCEPT_LEN + 1];
    struct wslay_event_context *ctx;
    /* During one call: the input left and where output goes. */
    const uint8_t *in;
    size_t inlen;
    flare_buf *app, *wire;
    int cb_err;
    uint8_t frame_op;    /* opcode of the frame being received */
    uint8_t msg_op;      /* opcode of the data message being received */
    int refused;         /* server: the HTTP status we refused with */
    uint16_t close_code; /* the peer's close code (0: none yet) */
} flare__ws;

/* now starts the upgrade's clock. */
int flare__ws_init(flare__ws *ws, const flare__ws_settings *s, flare_tstamp now,
                   const flare_mem *mem);
void flare__ws_free(flare__ws *ws);
/* Client: writes the upgrade request for host (the Host field) and path
 * (NULL: "/"). */
int flare__ws_start(flare__ws *ws, flare_buf *wire, const char *host, const char *path);
/* Bytes from the peer: the stream's bytes go to app, what we must send
 * (the server's answer, pongs, close replies) to wire; *events gets
 * FLARE__WS_EV_*. Errors: FLARE_ERR_PROTO (a bad request, answer or frame:
 * wire holds the refusal or close frame to send before closing),
 * FLARE_ERR_REFUSED (the server said no), FLARE_ERR_TOO_LARGE (an upgrade
 * block or frame over its bound), FLARE_ERR_NOMEM. */
int flare__ws_input(flare__ws *ws, const uint8_t *data, size_t len, flare_buf *app, flare_buf *wire,
                    unsigned *events);
/* The stream's bytes toward the peer, in binary messages (only once open). */
int flare__ws_write(flare__ws *ws, const uint8_t *data, size_t len, flare_buf *wire);
/* A ping with payload (at most 125 bytes); the pong is answered silently. */
int flare__ws_ping(flare__ws *ws, const uint8_t *payload, size_t len, flare_buf *wire);
/* Our close frame (code 1000: normal, 1001: going away); no writes after. */
int flare__ws_close(flare__ws *ws, uint16_t code, flare_buf *wire);
/* The upgrade's deadline (FLARE_TSTAMP_NEVER once open). */
flare_tstamp flare__ws_deadline(const flare__ws *ws);
/* FLARE_ERR_TIMEOUT if the upgrade is not done at now, else 0. */
int flare__ws_check_time(const flare__ws *ws, flare_tstamp now);

#endif
