/* Feeds fuzz input to the hard-NAT punch codec and exchange. Byte 0 picks
 * the side, byte 1 a split point; the rest is what the peer sent. */
#include "flare/hardpunch.h"

#include <stdlib.h>

#include "input_head.h"

static void check_decode(const uint8_t *data, size_t size)
{
    flare_hardpunch_msg m;
    if (flare_hardpunch_msg_decode(&m, data, size) != 0)
        return;
    if (m.info.tcp_step > FLARE_HARDPUNCH_MAX_STEP || m.info.nat > FLARE_HARDPUNCH_NAT_HARD ||
        (m.info.has_tcp && m.info.tcp.port == 0))
        abort();
    /* what we decoded encodes again */
    flare_buf b;
    flare_buf_init(&b, NULL);
    if (flare_hardpunch_msg_encode(&m, &b) != 0)
        abort();
    flare_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t mode;
    size_t split;
    if (!flare_fuzz_split_input(&data, &size, &mode, &split))
        return 0;
    check_decode(data, size);

    flare_hardpunch_settings s;
    flare_hardpunch_settings_default(&s);
    flare_hardpunch_info mine = {.nat = (flare_hardpunch_nat)(mode % 3), .tcp_step = 1};
    if (flare_ipaddr_parse(&mine.tcp, "203.0.113.9") != 0)
        abort();
    mine.tcp.port = 40000;
    mine.has_tcp = 1;
    flare_buf out;
    flare_buf_init(&out, NULL);
    flare_hardpunch hp;
    if (flare_hardpunch_init(&hp, mode & 4 ? 1 : 0, &mine, &s, 0, &out) != 0)
        abort();
    flare_hardpunch_recv(&hp, data, split, 1, &out);
    flare_hardpunch_recv(&hp, data + split, size - split, 2, &out);
    flare_hardpunch_handle_expiry(&hp, flare_hardpunch_expiry(&hp));
    if (hp.rxlen > sizeof(hp.rx))
        abort();
    flare_hardpunch_plan plan;
    flare_hardpunch_plan_tcp(&hp.mine, &hp.peer, &s, &plan);
    if (plan.n > FLARE_HARDPUNCH_MAX_SOCKETS)
        abort();
    for (unsigned i = 0; plan.role == FLARE_HARDPUNCH_ROLE_EASY && i < plan.n; i++)
        if (plan.ports[i] < 1024)
            abort();
    flare_buf_free(&out);
    return 0;
}
