/* Shared by the fuzz targets (see docs/TESTING.md, "Fuzzing").
 *
 * Each fuzz-<name>.c defines LLVMFuzzerTestOneInput().  Built with
 * -fsanitize=fuzzer (tools/fuzz) libFuzzer drives it; otherwise fuzz-main.c
 * supplies a main() that replays a corpus, which is how `meson test
 * --suite fuzz` runs every target over tests/fuzz/corpus/<name>/.
 */
#pragma once

#include <glib.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A target's inputs are kept small: the parsers have their own caps far
 * above this, and a bigger input only slows libFuzzer down. */
#define DV_FUZZ_MAX_INPUT (64 * 1024)

/* Breaks the run when a property the target checks does not hold, in
 * every build type (g_assert() may be compiled out). */
#define DV_FUZZ_CHECK(expr)                                                                        \
    G_STMT_START                                                                                   \
    {                                                                                              \
        if (G_UNLIKELY(!(expr))) {                                                                 \
            g_printerr("%s:%d: fuzz check failed: %s\n", __FILE__, __LINE__, #expr);               \
            abort();                                                                               \
        }                                                                                          \
    }                                                                                              \
    G_STMT_END

/* The input as a NUL-terminated copy (most of our parsers take C strings;
 * an embedded NUL ends the string there, as it would for the caller). */
static inline char *
dv_fuzz_strndup(const uint8_t *data, size_t size)
{
    char *s = g_malloc(size + 1);

    if (size > 0)
        memcpy(s, data, size);
    s[size] = '\0';
    return s;
}
