#include "flare/version.h"

const char *flare_version(void)
{
    return FLARE_VERSION;
}

unsigned flare_version_num(void)
{
    return FLARE_VERSION_NUM;
}
