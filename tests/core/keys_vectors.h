/* Test helper: looks up "<name> <value>" lines in tests/vectors files. */
#ifndef FLARE_TEST_KEYS_VECTORS_H
#define FLARE_TEST_KEYS_VECTORS_H

#include <stdlib.h>

#include "support/test.h"

/* Copies the value of the line whose first words equal key into out. */
static inline void vec_str(const char *file, const char *key, char *out, size_t cap)
{
    size_t len;
    char path[256];
    snprintf(path, sizeof(path), "tests/vectors/%s", file);
    char *txt = flare_test_read_source_file(path, &len);
    assert_non_null(txt);
    size_t kl = strlen(key);
    for (char *line = txt; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = 0;
        if (line[0] != '#' && strncmp(line, key, kl) == 0 && line[kl] == ' ') {
            assert_true(strlen(line + kl + 1) < cap);
            strcpy(out, line + kl + 1);
            free(txt);
            return;
        }
        line = nl ? nl + 1 : NULL;
    }
    free(txt);
    fail_msg("vector %s not found in %s", key, file);
}

static inline size_t vec_hex(const char *file, const char *key, uint8_t *out, size_t cap)
{
    char *hex = malloc(2 * cap + 1);
    assert_non_null(hex);
    vec_str(file, key, hex, 2 * cap + 1);
    size_t n = flare_test_unhex(hex, out, cap);
    free(hex);
    return n;
}

#endif
