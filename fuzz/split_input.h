/* The head of the fuzz inputs that drive a core in two deliveries: byte 0
 * picks a mode (side, options), byte 1 a split point; the rest is what the
 * peer sent, delivered as data[0, split) and then data[split, size). */
#ifndef FLARE_FUZZ_SPLIT_INPUT_H
#define FLARE_FUZZ_SPLIT_INPUT_H

#include <stddef.h>
#include <stdint.h>

/* Takes the two head bytes off *data: the mode and the split point (at most
 * what is left). Returns 0 when the input is too short for them. */
static inline int flare_fuzz_split_input(const uint8_t **data, size_t *size, uint8_t *mode,
                                         size_t *split)
{
    if (*size < 2)
        return 0;
    *mode = (*data)[0];
    *split = (*data)[1];
    *data += 2;
    *size -= 2;
    if (*split > *size)
        *split = *size;
    return 1;
}

#endif
