/*
 * /flare/migrate/1.0.0: moves a stream of a relayed connection onto a
 * direct connection to the same peer (the host side: src/services/migrate.c).
 *
 * The side that initiated the direct connection opens a stream on it with
 * this protocol and sends MIGRATE naming one stream of the relayed
 * connection (its muxer stream id and who opened it), how many of the
 * stream's bytes it has received (rx) and the oldest byte it can still
 * send again (floor). The peer answers ACCEPT with its own rx, or REFUSE.
 * After ACCEPT the migrate stream carries the old stream's bytes: each side
 * first sends again what the other has not received (from the peer's rx),
 * then goes on. Messages have a fixed size; integers are big-endian.
 *
 *   MIGRATE  0x01  stream_id u32  opener u8  rx u64  floor u64   (22 bytes)
 *   ACCEPT   0x02  rx u64                                        (9 bytes)
 *   REFUSE   0x03  reason u8                                     (2 bytes)
 *
 * Sans-I/O: encoding and parsing only.
 */
#ifndef FLARE_MIGRATE_H
#define FLARE_MIGRATE_H

#include "flare/common.h"

#define FLARE__MIGRATE_PROTOCOL "/flare/migrate/1.0.0"

typedef enum {
    FLARE__MIG_MIGRATE = 1,
    FLARE__MIG_ACCEPT = 2,
    FLARE__MIG_REFUSE = 3,
} flare__mig_type;

/* Who opened the named stream, from the sender's point of view. */
enum { FLARE__MIG_OPENER_SENDER = 0, FLARE__MIG_OPENER_RECEIVER = 1 };

typedef enum {
    FLARE__MIG_R_UNKNOWN = 1,   /* no such stream between us */
    FLARE__MIG_R_STATE = 2,     /* it cannot move now (negotiating, closing, busy) */
    FLARE__MIG_R_OFFSET = 3,    /* the offsets do not fit what either side holds */
    FLARE__MIG_R_DISABLED = 4,  /* migration is off here */
    FLARE__MIG_R_MALFORMED = 5, /* the message made no sense */
} flare__mig_reason;

typedef struct flare__mig_msg {
    flare__mig_type type;
    uint32_t stream_id;
    uint8_t opener;
    uint8_t reason;
    uint64_t rx, floor;
} flare__mig_msg;

#define FLARE__MIG_MSG_MAX 22

/* Writes m into out (FLARE__MIG_MSG_MAX bytes of room); returns its size. */
size_t flare__mig_encode(const flare__mig_msg *m, uint8_t *out);
/* Parses one message from the start of in: its size (bytes used), 0 when
 * more bytes are needed, or FLARE_ERR_PROTO (unknown type, opener or
 * reason, floor above rx... anything no honest peer sends). */
int flare__mig_parse(const uint8_t *in, size_t len, flare__mig_msg *m);

#endif
