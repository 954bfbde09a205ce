/* libuv driver: names through the system resolver (uv_getaddrinfo, on
 * libuv's thread pool). A request owns its memory until libuv's callback,
 * which may come after a cancel or after the driver is gone: it then only
 * frees the request. */
#include <string.h>

#include "core/mem.h"
#include "io/uv_int.h"

struct flare_io_resolve {
    uv_getaddrinfo_t req;
    const flare_mem *mem;
    flare_io_resolve_cb cb;
    void *user;
    int cancelled;
};

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    flare_io_resolve *r = req->data;
    flare_ipaddr ip;
    int rv = status == UV_ECANCELED ? FLARE_ERR_CLOSED : status ? FLARE_ERR_NOT_FOUND : 1;
    for (struct addrinfo *a = res; a && rv == 1; a = a->ai_next)
        if (flare__uv_from_sockaddr(a->ai_addr, &ip) == 0)
            rv = 0;
    if (rv == 1)
        rv = FLARE_ERR_NOT_FOUND;
    if (res)
        uv_freeaddrinfo(res);
    if (!r->cancelled) {
        ip.port = 0;
        r->cb(r, rv, rv ? NULL : &ip, r->user);
    }
    flare__free(r->mem, r);
}

int flare__uv_resolve(flare_io *io, const char *name, int family, flare_io_resolve_cb cb,
                      void *user, flare_io_resolve **out)
{
    flare_uvio *u = (flare_uvio *)io;
    flare_io_resolve *r = flare__calloc(u->mem, 1, sizeof(*r));
    if (!r)
        return FLARE_ERR_NOMEM;
    r->mem = u->mem;
    r->cb = cb;
    r->user = user;
    r->req.data = r;
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = family == 4 ? AF_INET : family == 6 ? AF_INET6 : AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rv = uv_getaddrinfo(u->loop, &r->req, on_resolved, name, NULL, &hints);
    if (rv) {
        flare__free(r->mem, r);
        return flare__uv_err(rv);
    }
    *out = r;
    return 0;
}

void flare__uv_resolve_cancel(flare_io_resolve *r)
{
    r->cancelled = 1;
    uv_cancel((uv_req_t *)&r->req); /* fails once running: the callback frees */
}
