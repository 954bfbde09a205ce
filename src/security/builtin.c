/* The security protocols the host can offer: the one place that lists
 * them (a new one is its operations file and one line here). Which of them
 * a host offers, and in which order, is flare_host_settings.security. */
#include <string.h>

#include "security/security.h"

extern const flare__security flare__sec_noise;
extern const flare__security flare__sec_tls;
extern const flare__security flare__sec_plaintext; /* simulations only */

static const flare__security *const builtin[] = {
    &flare__sec_noise,
    &flare__sec_tls,
    &flare__sec_plaintext,
};

const flare__security *flare__security_find(const char *id, size_t len)
{
    for (size_t i = 0; i < sizeof(builtin) / sizeof(builtin[0]); i++)
        if (strlen(builtin[i]->id) == len && memcmp(builtin[i]->id, id, len) == 0)
            return builtin[i];
    return NULL;
}
