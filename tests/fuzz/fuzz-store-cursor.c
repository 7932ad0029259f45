#define G_LOG_DOMAIN "DvFuzzStoreCursor"

/* The opaque list cursor (?cursor= on every list endpoint) and the text of
 * a list filter, through dv_store_list() on a SQLite store in a temp dir
 * holding a few users (ordered by name, TEXT) and jobs (ordered by
 * created_at descending, INT).
 *
 * Input: byte 0 chooses the table (bit 0), whether a prefix filter is
 * added (bit 1) and the page size (bits 2-7); the rest up to the first
 * '\n' is the cursor, what follows it the filter value.  Properties
 * checked: a failure is a DV_ERROR (INVALID_ARGUMENT naming "cursor" for
 * a bad cursor); a page holds at most the page size; a next cursor, when
 * given, is accepted again. */

#include "dv-error.h"
#include "dv-store.h"
#include "fuzz.h"

#include <glib/gstdio.h>

static DvStore *dv_fuzz_store;
static char *dv_fuzz_dir;
static char *dv_fuzz_db;

static void
dv_fuzz_cleanup(void)
{
    g_autofree char *wal = NULL;
    g_autofree char *shm = NULL;

    g_clear_pointer(&dv_fuzz_store, dv_store_free);
    if (dv_fuzz_dir == NULL)
        return;
    wal = g_strconcat(dv_fuzz_db, "-wal", NULL);
    shm = g_strconcat(dv_fuzz_db, "-shm", NULL);
    g_unlink(dv_fuzz_db);
    g_unlink(wal);
    g_unlink(shm);
    g_rmdir(dv_fuzz_dir);
    g_clear_pointer(&dv_fuzz_db, g_free);
    g_clear_pointer(&dv_fuzz_dir, g_free);
}

static void
dv_fuzz_insert(const DvTableDef *def, JsonObject *record)
{
    g_autoptr(GError) error = NULL;

    if (!dv_store_insert(dv_fuzz_store, def, record, &error))
        g_error("cannot seed the store: %s", error->message);
}

static void
dv_fuzz_setup(void)
{
    g_autoptr(GError) error = NULL;
    static const char *const names[] = { "alice", "bob", "carol", "dave", "eve", "ünïcode" };

    dv_fuzz_dir = g_dir_make_tmp("dv-fuzz-store-XXXXXX", &error);
    if (dv_fuzz_dir == NULL)
        g_error("%s", error->message);
    dv_fuzz_db = g_build_filename(dv_fuzz_dir, "drover.db", NULL);
    dv_fuzz_store = dv_store_open(dv_fuzz_db, DV_STORE_OPEN_MIGRATE, &error);
    if (dv_fuzz_store == NULL)
        g_error("%s", error->message);
    atexit(dv_fuzz_cleanup);

    for (guint i = 0; i < G_N_ELEMENTS(names); i++) {
        g_autoptr(JsonObject) user = json_object_new();
        g_autoptr(JsonObject) job = json_object_new();
        g_autofree char *user_id = g_uuid_string_random();
        g_autofree char *job_id = g_uuid_string_random();

        json_object_set_string_member(user, "id", user_id);
        json_object_set_string_member(user, "name", names[i]);
        json_object_set_string_member(user, "password_hash", "x");
        json_object_set_string_member(user, "role", "admin");
        json_object_set_boolean_member(user, "disabled", FALSE);
        json_object_set_int_member(user, "created_at", 1000 + i);
        dv_fuzz_insert(&dv_table_users, user);

        json_object_set_string_member(job, "id", job_id);
        json_object_set_string_member(job, "kind", i % 2 ? "vm.create" : "host.refresh");
        json_object_set_string_member(job, "state", "succeeded");
        json_object_set_int_member(job, "progress", 100);
        json_object_set_boolean_member(job, "cancel_requested", FALSE);
        json_object_set_int_member(job, "attempts", 1);
        /* Two jobs per timestamp: the id tie-break matters. */
        json_object_set_int_member(job, "created_at", 1000 + i / 2);
        json_object_set_int_member(job, "updated_at", 1000 + i / 2);
        dv_fuzz_insert(&dv_table_jobs, job);
    }
}

static JsonArray *
dv_fuzz_list(const DvTableDef *def, const DvFilter *filter, guint limit, const char *cursor,
             char **ret_next, GError **error)
{
    JsonArray *page = dv_store_list(dv_fuzz_store, def, filter, filter != NULL ? 1 : 0, limit,
                                    cursor, ret_next, error);

    if (page == NULL) {
        DV_FUZZ_CHECK(*error != NULL && (*error)->domain == DV_ERROR);
        DV_FUZZ_CHECK(ret_next == NULL || *ret_next == NULL);
        return NULL;
    }
    DV_FUZZ_CHECK(json_array_get_length(page) <= MAX(limit, 1));
    return page;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonArray) page = NULL;
    g_autofree char *input = NULL;
    g_autofree char *next = NULL;
    const DvTableDef *def;
    DvFilter filter = { 0 };
    const char *cursor;
    char *nl;
    guint limit;
    gboolean use_filter;

    if (size < 1 || size > DV_FUZZ_MAX_INPUT)
        return 0;
    if (dv_fuzz_store == NULL)
        dv_fuzz_setup();

    def = (data[0] & 1) ? &dv_table_jobs : &dv_table_users;
    use_filter = (data[0] & 2) != 0;
    limit = data[0] >> 2; /* 0..63: 0 is clamped to 1 */
    input = dv_fuzz_strndup(data + 1, size - 1);
    cursor = input;
    nl = strchr(input, '\n');
    if (nl != NULL)
        *nl = '\0';
    filter.column = def == &dv_table_jobs ? "kind" : "name";
    filter.op = DV_FILTER_PREFIX;
    filter.value = nl != NULL ? nl + 1 : "";

    page = dv_fuzz_list(def, use_filter ? &filter : NULL, limit, cursor[0] != '\0' ? cursor : NULL,
                        &next, &error);
    if (page == NULL) {
        if (cursor[0] != '\0' && g_strcmp0(dv_error_get_field(error), "cursor") == 0)
            DV_FUZZ_CHECK(g_error_matches(error, DV_ERROR, DV_ERROR_INVALID_ARGUMENT));
        return 0;
    }
    if (next != NULL) {
        /* A cursor we hand out must be taken back. */
        g_autoptr(JsonArray) page2 = NULL;
        g_autofree char *next2 = NULL;
        page2 = dv_fuzz_list(def, use_filter ? &filter : NULL, limit, next, &next2, &error);
        if (page2 == NULL)
            g_printerr("next cursor %s refused: %s\n", next, error->message);
        DV_FUZZ_CHECK(page2 != NULL);
    }
    return 0;
}
