/* Secret bytes in guarded memory (sodium_malloc), wiped on free.
 * Never log one, never put one in an error message. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _DvSecret DvSecret;

/* Initialises libsodium; safe to call many times.  Aborts only if the
 * library cannot start, which means no randomness is available. */
void dv_secret_init_library(void);

DvSecret *dv_secret_new(gsize len);                       /* zero-filled */
DvSecret *dv_secret_new_from_data(const void *data, gsize len);
DvSecret *dv_secret_new_from_string(const char *str);     /* copies str */
DvSecret *dv_secret_new_random(gsize len);
void dv_secret_free(DvSecret *secret);

/* Borrowed pointers into guarded memory; valid until the secret is freed.
 * The data is always followed by a NUL byte so text secrets can be used
 * as C strings. */
const guint8 *dv_secret_get_data(const DvSecret *secret);
guint8 *dv_secret_get_data_mutable(DvSecret *secret);
const char *dv_secret_get_string(const DvSecret *secret);
gsize dv_secret_get_len(const DvSecret *secret);
gboolean dv_secret_equal(const DvSecret *a, const DvSecret *b);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(DvSecret, dv_secret_free)

/* A string that held a secret: wipe, then free. */
void dv_secret_str_free(char *str);

G_END_DECLS
