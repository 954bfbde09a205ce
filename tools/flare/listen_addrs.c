/* What `flare listen` prints for humans: addresses others can dial (never
 * 0.0.0.0) and the next command to run. */
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "cli.h"

/* rest: what follows the unspecified IP ("/tcp/4001/p2p/12D3..."). */
static int print_iface_addrs(int v6, const char *rest, char *best, size_t cap)
{
    uv_interface_address_t *ifs;
    int n = 0, count;
    if (uv_interface_addresses(&ifs, &count) != 0)
        return 0;
    for (int pass = 0; pass < 2; pass++) /* external interfaces first, loopback last */
        for (int i = 0; i < count; i++) {
            char ip[64];
            int fam = ifs[i].address.address4.sin_family;
            if (ifs[i].is_internal != pass || fam != (v6 ? AF_INET6 : AF_INET))
                continue;
            if (v6) {
                if (IN6_IS_ADDR_LINKLOCAL(&ifs[i].address.address6.sin6_addr))
                    continue; /* needs a zone, not dialable as is */
                uv_ip6_name(&ifs[i].address.address6, ip, sizeof(ip));
            } else {
                uv_ip4_name(&ifs[i].address.address4, ip, sizeof(ip));
            }
            char a[1200];
            snprintf(a, sizeof(a), "/ip%c/%s%s", v6 ? '6' : '4', ip, rest);
            printf("listening on %s\n", a);
            if (n++ == 0)
                snprintf(best, cap, "%s", a);
        }
    uv_free_interface_addresses(ifs, count);
    return n;
}

void cli_print_listening(const char *full_addr, const char *echo_proto, int relay)
{
    char best[1200];
    const char *rest = NULL;
    int v6 = 0;
    if (strncmp(full_addr, "/ip4/0.0.0.0/", 13) == 0)
        rest = full_addr + 12;
    else if (strncmp(full_addr, "/ip6/::/", 8) == 0) {
        rest = full_addr + 7;
        v6 = 1;
    }
    int n = 0;
    if (rest)
        n = print_iface_addrs(v6, rest, best, sizeof(best));
    if (n == 0) {
        snprintf(best, sizeof(best), "%s", full_addr);
        printf("listening on %s\n", full_addr);
        if (rest) /* no interface found: loopback always works on this machine */
            snprintf(best, sizeof(best), "%s%s", v6 ? "/ip6/::1" : "/ip4/127.0.0.1", rest);
    }
    if (!CLI_HUMAN(CLI_LOG_INFO))
        return;
    if (relay)
        printf("  use it: flare listen --relay %s\n", best);
    else if (echo_proto)
        printf("  connect: flare dial %s --echo %s --message hello\n", best, echo_proto);
    else
        printf("  connect: flare dial %s\n", best);
}
