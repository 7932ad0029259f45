#define G_LOG_DOMAIN "DvFuzzMain"

/* Replay driver for builds without libFuzzer (idea from systemd's
 * src/fuzz/fuzz-main.c): feeds each file named on the command line, or
 * each file of each directory named, to LLVMFuzzerTestOneInput().  A
 * crash or a failed check aborts, which fails the meson test. */

#include "fuzz.h"

#include <stdlib.h>
#include <string.h>

static int
dv_fuzz_compare(gconstpointer a, gconstpointer b)
{
    return g_strcmp0(*(const char *const *)a, *(const char *const *)b);
}

static gboolean
dv_fuzz_run_file(const char *path)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *data = NULL;
    gsize len = 0;

    if (!g_file_get_contents(path, &data, &len, &error)) {
        g_printerr("%s\n", error->message);
        return FALSE;
    }
    g_print("%s (%" G_GSIZE_FORMAT " bytes)\n", path, len);
    /* A private copy of exactly @len bytes, so ASan sees any read past
     * the end (g_file_get_contents() adds a NUL). */
    {
        g_autofree uint8_t *copy = g_memdup2(data, len);
        LLVMFuzzerTestOneInput(copy, len);
    }
    return TRUE;
}

static gboolean
dv_fuzz_run_dir(const char *dir_path, guint *n_run)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GDir) dir = g_dir_open(dir_path, 0, &error);
    g_autoptr(GPtrArray) paths = g_ptr_array_new_with_free_func(g_free);
    const char *name;

    if (dir == NULL) {
        g_printerr("%s\n", error->message);
        return FALSE;
    }
    while ((name = g_dir_read_name(dir)) != NULL) {
        if (name[0] == '.')
            continue;
        g_ptr_array_add(paths, g_build_filename(dir_path, name, NULL));
    }
    g_ptr_array_sort(paths, dv_fuzz_compare);
    for (guint i = 0; i < paths->len; i++) {
        const char *path = g_ptr_array_index(paths, i);
        if (g_file_test(path, G_FILE_TEST_IS_DIR))
            continue;
        if (!dv_fuzz_run_file(path))
            return FALSE;
        (*n_run)++;
    }
    return TRUE;
}

int
main(int argc, char **argv)
{
    guint n_run = 0;

    if (argc < 2) {
        g_printerr("usage: %s CORPUS-DIR|FILE...\n", argv[0]);
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        gboolean ok;
        if (g_file_test(argv[i], G_FILE_TEST_IS_DIR)) {
            ok = dv_fuzz_run_dir(argv[i], &n_run);
        } else {
            ok = dv_fuzz_run_file(argv[i]);
            n_run++;
        }
        if (!ok)
            return 1;
    }
    /* An empty corpus would make the test pass while testing nothing. */
    if (n_run == 0) {
        g_printerr("no inputs found\n");
        return 1;
    }
    g_print("%u inputs ran\n", n_run);
    return 0;
}
