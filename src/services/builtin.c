/* The host with the built-in services (the one place that lists them) and
 * the built-in transports (src/transport/builtin.c). The
 * order is the order their hooks run in (DCUtR sees a new connection before
 * identify opens its stream on it). */
#include "services/services.h"
#include "transport/transport.h"

static const flare__service *const builtin[] = {
    &flare__svc_relay_client, &flare__svc_dcutr,    &flare__svc_relay_server,
    &flare__svc_ping,         &flare__svc_identify, &flare__svc_autonat,
    &flare__svc_autorelay,    &flare__svc_portmap,  &flare__svc_stun_server,
};

size_t flare__services_builtin(const flare__service *const **list)
{
    *list = builtin;
    return sizeof(builtin) / sizeof(builtin[0]);
}

int flare_host_new(flare_host **out, flare_io *io, const flare_privkey *key,
                   const flare_host_settings *cfg, const flare_mem *mem)
{
    const flare__transport *const *trs;
    size_t ntrs = flare__transports_builtin(&trs);
    return flare__host_new(out, io, key, cfg, mem, builtin, sizeof(builtin) / sizeof(builtin[0]),
                           trs, ntrs);
}
