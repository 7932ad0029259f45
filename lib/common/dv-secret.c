#define G_LOG_DOMAIN "DvSecret"

#include "dv-secret.h"

#include <sodium.h>
#include <string.h>

struct _DvSecret {
    gsize len;
    guint8 *data; /* sodium_malloc'd, len + 1 bytes */
};

void
dv_secret_init_library(void)
{
    if (sodium_init() < 0)
        g_error("libsodium could not be initialised");
}

DvSecret *
dv_secret_new(gsize len)
{
    DvSecret *secret = g_new0(DvSecret, 1);

    dv_secret_init_library();
    secret->len = len;
    secret->data = sodium_malloc(len + 1);
    if (secret->data == NULL)
        g_error("sodium_malloc(%" G_GSIZE_FORMAT ") failed", len + 1);
    sodium_memzero(secret->data, len + 1);
    return secret;
}

DvSecret *
dv_secret_new_from_data(const void *data, gsize len)
{
    DvSecret *secret = dv_secret_new(len);
    if (len > 0)
        memcpy(secret->data, data, len);
    return secret;
}

DvSecret *
dv_secret_new_from_string(const char *str)
{
    return dv_secret_new_from_data(str, strlen(str));
}

DvSecret *
dv_secret_new_random(gsize len)
{
    DvSecret *secret = dv_secret_new(len);
    randombytes_buf(secret->data, len);
    return secret;
}

void
dv_secret_free(DvSecret *secret)
{
    if (secret == NULL)
        return;
    sodium_free(secret->data); /* wipes before freeing */
    g_free(secret);
}

const guint8 *
dv_secret_get_data(const DvSecret *secret)
{
    return secret->data;
}

guint8 *
dv_secret_get_data_mutable(DvSecret *secret)
{
    return secret->data;
}

const char *
dv_secret_get_string(const DvSecret *secret)
{
    return (const char *)secret->data;
}

gsize
dv_secret_get_len(const DvSecret *secret)
{
    return secret->len;
}

gboolean
dv_secret_equal(const DvSecret *a, const DvSecret *b)
{
    if (a->len != b->len)
        return FALSE;
    return sodium_memcmp(a->data, b->data, a->len) == 0;
}

void
dv_secret_str_free(char *str)
{
    if (str == NULL)
        return;
    sodium_memzero(str, strlen(str));
    g_free(str);
}
