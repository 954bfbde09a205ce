/* The stream muxers a byte-stream connection's upgrade offers, in
 * preference order: the one place that lists them. */
#include "muxer/muxer.h"

extern const flare__muxer flare__mux_yamux;

static const flare__muxer *const builtin[] = {
    &flare__mux_yamux,
};

size_t flare__muxers_builtin(const flare__muxer *const **list)
{
    *list = builtin;
    return sizeof(builtin) / sizeof(builtin[0]);
}
