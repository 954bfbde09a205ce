/* flare/version.h and flare_version(): the macros, the run-time values and
 * the project version CMake read from the header agree. */
#include "support/test.h"

#include <stdio.h>
#include <stdlib.h>

#include "flare/common.h"
#include "flare/flare.h"
#include "flare/version.h"

static void test_runtime_matches_header(void **state)
{
    (void)state;
    assert_string_equal(flare_version(), FLARE_VERSION);
    assert_int_equal(flare_version_num(), FLARE_VERSION_NUM);
}

static void test_macros_agree(void **state)
{
    char s[32];
    (void)state;
    snprintf(s, sizeof(s), "%d.%d.%d", FLARE_VERSION_MAJOR, FLARE_VERSION_MINOR,
             FLARE_VERSION_PATCH);
    assert_string_equal(s, FLARE_VERSION);
    assert_int_equal(FLARE_VERSION_NUM,
                     FLARE_VERSION_MAJOR * 65536 + FLARE_VERSION_MINOR * 256 + FLARE_VERSION_PATCH);
    /* The identify agent version ("flare/<version>") uses the older macro. */
    assert_string_equal(FLARE_VERSION_STR, FLARE_VERSION);
}

/* The library's build takes its version (SONAME, flare.pc, the CMake
 * package) from the header: the generated flare.pc must say the same. */
static void test_pc_version(void **state)
{
    (void)state;
    const char *bin = getenv("FLARE_BINARY_DIR");
    if (!bin)
        skip();
    char path[1024], line[256], want[64];
    snprintf(path, sizeof(path), "%s/flare.pc", bin);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    snprintf(want, sizeof(want), "Version: %s\n", flare_version());
    int found = 0;
    while (fgets(line, sizeof(line), f))
        if (strcmp(line, want) == 0)
            found = 1;
    fclose(f);
    assert_true(found);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_runtime_matches_header),
        cmocka_unit_test(test_macros_agree),
        cmocka_unit_test(test_pc_version),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
