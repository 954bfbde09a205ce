/* identify: decode arbitrary bodies; whatever decodes must re-encode and
 * decode to the same listen addresses and protocols. */
#include <assert.h>
#include <string.h>

#include "flare/identify.h"
#include "flare/lpframe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    flare_identify_msg m;
    if (flare_identify_decode(&m, data, size, NULL) != 0)
        return 0;
    flare_identify_out o = {0};
    o.agent_version = m.has_agent_version ? m.agent_version : NULL;
    o.pubkey = m.has_pubkey ? &m.pubkey : NULL;
    o.listen = m.listen;
    o.nlisten = m.nlisten;
    o.observed = m.has_observed ? &m.observed : NULL;
    o.protocols = (const char *const *)m.protocols;
    o.nprotocols = m.nprotocols;
    flare_buf b;
    flare_buf_init(&b, NULL);
    if (flare_identify_encode(&o, &b) == 0) {
        const uint8_t *msg;
        size_t len;
        int n = flare_lpframe_parse(b.base, b.len, FLARE_IDENTIFY_MAX_MSG, &msg, &len);
        assert(n == (int)b.len);
        flare_identify_msg m2;
        assert(flare_identify_decode(&m2, msg, len, NULL) == 0);
        assert(m2.nlisten == m.nlisten && m2.nprotocols == m.nprotocols);
        for (size_t i = 0; i < m.nprotocols; i++)
            assert(strcmp(m.protocols[i], m2.protocols[i]) == 0);
        flare_identify_msg_free(&m2);
    }
    flare_buf_free(&b);
    flare_identify_msg_free(&m);
    return 0;
}
