/* The heads of the fuzz inputs that drive a core: byte 0 picks a mode
 * (side, options); with a split point, byte 1 says where the rest, what the
 * peer sent, is cut in two deliveries: data[0, split), data[split, size). */
#ifndef FLARE_FUZZ_INPUT_HEAD_H
#define FLARE_FUZZ_INPUT_HEAD_H

#include <stddef.h>
#include <stdint.h>

/* libFuzzer's entry point, defined by each target. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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

/* Takes the mode byte off *data. Returns 0 when the input is empty. */
static inline int flare_fuzz_mode_input(const uint8_t **data, size_t *size, uint8_t *mode)
{
    if (*size < 1)
        return 0;
    *mode = (*data)[0];
    *data += 1;
    *size -= 1;
    return 1;
}

#endif
