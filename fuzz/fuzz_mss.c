/* Feeds fuzz input to a multistream-select listener or dialer. Byte 0 picks
 * the role and options, byte 1 a split point; the rest is the peer's stream. */
#include "flare/mss.h"

#include <stdlib.h>
#include <string.h>

#include "input_head.h"

static const char *const PROTOS[] = {"/a/1", "/ipfs/ping/1.0.0"};

static int match(const char *proto, size_t len, void *user)
{
    (void)user;
    if (strlen(proto) != len)
        abort();
    return len > 3 && proto[0] == '/' && proto[1] == 'z';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t mode;
    size_t split;
    if (!flare_fuzz_split_input(&data, &size, &mode, &split))
        return 0;
    flare_mss_settings s = {0};
    s.role = (mode & 1) ? FLARE_MSS_LISTENER : FLARE_MSS_DIALER;
    s.protocols = PROTOS;
    s.nprotocols = (mode & 2) ? 1 : 2;
    s.optimistic = (mode & 4) != 0;
    if (mode & 8)
        s.supports = match;
    flare_mss m;
    flare_buf out;
    flare_buf_init(&out, NULL);
    if (flare_mss_init(&m, &s, NULL))
        abort();
    if ((mode & 16) && flare_mss_start(&m, &out))
        abort();
    size_t used = 0, total = 0;
    int rv = flare_mss_recv(&m, data, split, &used, &out);
    if (used > split)
        abort();
    total = used;
    if (rv == 0) {
        if (used != split)
            abort();
        rv = flare_mss_recv(&m, data + split, size - split, &used, &out);
        if (used > size - split)
            abort();
        total += used;
    }
    if (rv == 1 && (!flare_mss_done(&m) || !flare_mss_selected(&m)))
        abort();
    (void)total;
    flare_mss_free(&m);
    flare_buf_free(&out);
    return 0;
}
