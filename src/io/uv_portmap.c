/* Port mapping helpers of the libuv driver: the default IPv4 gateway (from
 * /proc/net/route) and UPnP IGD through miniupnpc. miniupnpc blocks (SSDP
 * discovery waits up to UPNP_DISCOVER_MS, then HTTP/SOAP), so each request
 * runs on libuv's thread pool with its own copy of the request, and its
 * result is delivered from the loop. */
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "io/uv_int.h"

#ifdef FLARE_HAVE_MINIUPNPC
#include <miniupnpc/miniupnpc.h>
#include <miniupnpc/upnpcommands.h>
#include <miniupnpc/upnperrors.h>
#endif

#define UPNP_DISCOVER_MS 2000

/* ---- gateway ---------------------------------------------------------------------- */

/* Our IPv4 address on interface ifname. */
static int iface_addr(const char *ifname, flare_ipaddr *out)
{
    struct ifaddrs *ifs, *i;
    int rv = FLARE_ERR_NOT_FOUND;
    if (getifaddrs(&ifs) != 0)
        return FLARE_ERR_IO;
    for (i = ifs; i; i = i->ifa_next) {
        if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET && strcmp(i->ifa_name, ifname) == 0) {
            rv = flare__uv_from_sockaddr(i->ifa_addr, out);
            break;
        }
    }
    freeifaddrs(ifs);
    return rv;
}

int flare__uv_gateway(flare_io *io, int family, flare_ipaddr *gw, flare_ipaddr *local)
{
    (void)io;
    if (family != 4)
        return FLARE_ERR_UNSUPPORTED;
    FILE *f = fopen("/proc/net/route", "r");
    if (!f)
        return FLARE_ERR_UNSUPPORTED;
    char line[256], ifname[IF_NAMESIZE + 1];
    int rv = FLARE_ERR_NOT_FOUND;
    unsigned long dest, gateway, mask;
    unsigned flags;
    while (rv == FLARE_ERR_NOT_FOUND && fgets(line, sizeof(line), f)) {
        /* Iface Destination Gateway Flags RefCnt Use Metric Mask ... (hex,
         * network byte order as read on this host) */
        if (sscanf(line, "%16s %lx %lx %x %*d %*d %*d %lx", ifname, &dest, &gateway, &flags,
                   &mask) != 5)
            continue;
        if (dest != 0 || mask != 0 || !(flags & 0x2) /* RTF_GATEWAY */ || !(flags & 0x1))
            continue;
        memset(gw, 0, sizeof(*gw));
        gw->family = 4;
        uint32_t g = (uint32_t)gateway;
        memcpy(gw->ip, &g, 4); /* already in network order in memory */
        rv = iface_addr(ifname, local);
        local->port = 0;
    }
    fclose(f);
    return rv;
}

/* ---- UPnP ------------------------------------------------------------------------- */

struct flare_io_upnp {
    uv_work_t work;
    flare_uvio *u;
    flare_io_upnp_req req;
    flare_io_upnp_result res;
    /* The IGD: the driver's cached one going in (empty: discover), the one
     * used coming out (the loop thread caches it again). */
    char url[sizeof(((flare_uvio *)0)->igd_url)];
    char service[sizeof(((flare_uvio *)0)->igd_service)];
    flare_io_upnp_cb cb;
    void *user;
    int cancelled;
};

#ifdef FLARE_HAVE_MINIUPNPC
static int add_mapping(struct UPNPUrls *urls, struct IGDdatas *data, const flare_io_upnp_req *q,
                       const char *client, uint16_t *port, uint32_t *lease)
{
    const char *proto = q->tcp ? "TCP" : "UDP";
    char in[8], ext[8], lt[16], reserved[8] = "";
    snprintf(in, sizeof(in), "%u", (unsigned)q->internal.port);
    snprintf(ext, sizeof(ext), "%u",
             (unsigned)(q->external_port ? q->external_port : q->internal.port));
    snprintf(lt, sizeof(lt), "%u", (unsigned)q->lifetime);
    int r = UPNP_AddPortMapping(urls->controlURL, data->first.servicetype, ext, in, client,
                                q->description, proto, NULL, lt);
    if (r == 725) { /* OnlyPermanentLeasesSupported */
        r = UPNP_AddPortMapping(urls->controlURL, data->first.servicetype, ext, in, client,
                                q->description, proto, NULL, "0");
        *lease = 0;
    } else {
        *lease = q->lifetime;
    }
    if (r == UPNPCOMMAND_SUCCESS) {
        *port = (uint16_t)atoi(ext);
        return 0;
    }
    /* The port is taken (718 ConflictInMappingEntry, ...): IGDv2 picks one. */
    r = UPNP_AddAnyPortMapping(urls->controlURL, data->first.servicetype, ext, in, client,
                               q->description, proto, NULL, lt, reserved);
    if (r != UPNPCOMMAND_SUCCESS)
        return r == 606 || r == 718 || r == 725 ? FLARE_ERR_REFUSED : FLARE_ERR_IO;
    *lease = q->lifetime;
    *port = (uint16_t)atoi(reserved);
    return *port ? 0 : FLARE_ERR_PROTO;
}

/* Finds the IGD: SSDP discovery, then its description. Returns 0 with
 * urls/data filled (FreeUPNPUrls them), or FLARE_ERR_NOT_FOUND. */
static int discover(struct UPNPUrls *urls, struct IGDdatas *data)
{
    int err = 0;
    struct UPNPDev *devs =
        upnpDiscover(UPNP_DISCOVER_MS, NULL, NULL, UPNP_LOCAL_PORT_ANY, 0, 2, &err);
    if (!devs)
        return FLARE_ERR_NOT_FOUND;
    char lan[64] = "";
    int valid = UPNP_GetValidIGD(devs, urls, data, lan, sizeof(lan));
    freeUPNPDevlist(devs);
    if (valid == 1 || valid == 2)
        return 0;
    if (valid)
        FreeUPNPUrls(urls);
    return FLARE_ERR_NOT_FOUND;
}

/* One request against the IGD at url/service. */
static int upnp_request(flare_io_upnp *op, const char *url, const char *service)
{
    flare_io_upnp_result *res = &op->res;
    struct UPNPUrls urls = {.controlURL = (char *)url};
    struct IGDdatas data;
    memset(&data, 0, sizeof(data));
    snprintf(data.first.servicetype, sizeof(data.first.servicetype), "%s", service);
    char client[INET_ADDRSTRLEN], ext_ip[40] = "";
    inet_ntop(AF_INET, op->req.internal.ip, client, sizeof(client));
    if (op->req.unmap) {
        char ext[8];
        snprintf(ext, sizeof(ext), "%u", (unsigned)op->req.external_port);
        int r = UPNP_DeletePortMapping(url, service, ext, op->req.tcp ? "TCP" : "UDP", NULL);
        return r == UPNPCOMMAND_SUCCESS || r == 714 /* NoSuchEntryInArray */ ? 0 : FLARE_ERR_IO;
    }
    if (UPNP_GetExternalIPAddress(url, service, ext_ip) != UPNPCOMMAND_SUCCESS)
        return FLARE_ERR_IO;
    if (flare_ipaddr_parse(&res->external, ext_ip) != 0 || res->external.family != 4)
        return FLARE_ERR_PROTO;
    uint16_t port = 0;
    int rv = add_mapping(&urls, &data, &op->req, client, &port, &res->lifetime);
    res->external.port = port;
    return rv;
}

static void upnp_work(uv_work_t *w)
{
    flare_io_upnp *op = (flare_io_upnp *)w;
    /* The cached IGD first (no 2 s discovery: renewals, the delete at exit). */
    if (op->url[0] && upnp_request(op, op->url, op->service) == 0) {
        op->res.status = 0;
        return;
    }
    struct UPNPUrls urls;
    struct IGDdatas data;
    memset(&urls, 0, sizeof(urls));
    memset(&data, 0, sizeof(data));
    op->url[0] = 0;
    int rv = discover(&urls, &data);
    if (rv == 0) {
        rv = upnp_request(op, urls.controlURL, data.first.servicetype);
        snprintf(op->url, sizeof(op->url), "%s", urls.controlURL);
        snprintf(op->service, sizeof(op->service), "%s", data.first.servicetype);
        FreeUPNPUrls(&urls);
    }
    op->res.status = rv;
}
#endif

static void upnp_after(uv_work_t *w, int status)
{
    flare_io_upnp *op = (flare_io_upnp *)w;
    flare_uvio *u = op->u;
    if (status == UV_ECANCELED)
        op->res.status = FLARE_ERR_CLOSED;
    else if (!u->dying) {
        snprintf(u->igd_url, sizeof(u->igd_url), "%s", op->url);
        snprintf(u->igd_service, sizeof(u->igd_service), "%s", op->service);
    }
    if (!op->cancelled && !u->dying && op->cb)
        op->cb(op, &op->res, op->user);
    flare__free(u->mem, op);
    flare__uv_release(u);
}

int flare__uv_upnp(flare_io *io, const flare_io_upnp_req *req, flare_io_upnp_cb cb, void *user,
                   flare_io_upnp **out)
{
#ifdef FLARE_HAVE_MINIUPNPC
    flare_uvio *u = (flare_uvio *)io;
    if (!req || req->internal.family != 4 || (cb && !out))
        return FLARE_ERR_INVALID_ARG;
    flare_io_upnp *op = flare__calloc(u->mem, 1, sizeof(*op));
    if (!op)
        return FLARE_ERR_NOMEM;
    op->u = u;
    op->req = *req;
    op->req.description[sizeof(op->req.description) - 1] = 0;
    op->cb = cb;
    op->user = user;
    snprintf(op->url, sizeof(op->url), "%s", u->igd_url);
    snprintf(op->service, sizeof(op->service), "%s", u->igd_service);
    int r = uv_queue_work(u->loop, &op->work, upnp_work, upnp_after);
    if (r) {
        flare__free(u->mem, op);
        return flare__uv_err(r);
    }
    u->nhandles++;
    if (out)
        *out = op;
    return 0;
#else
    (void)io;
    (void)req;
    (void)cb;
    (void)user;
    (void)out;
    return FLARE_ERR_UNSUPPORTED;
#endif
}

void flare__uv_upnp_cancel(flare_io_upnp *op)
{
    if (!op)
        return;
    op->cancelled = 1;
    uv_cancel((uv_req_t *)&op->work); /* fails once running: then it finishes unseen */
}
