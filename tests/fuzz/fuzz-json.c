#define G_LOG_DOMAIN "DvFuzzJson"

/* Request bodies: dv_json_parse_object() with the daemon's caps, then
 * dv_json_check_fields() with the field tables of POST /vms (nested
 * objects too), the getters, and the checks the engine runs on names and
 * descriptions.  Properties checked: an error is a DV_ERROR with a valid
 * UTF-8 message; an accepted body without doubles serialises to JSON that
 * parses again to the same text; nothing leaks (LeakSanitizer). */

#include "dv-error.h"
#include "dv-json.h"
#include "dv-validate.h"
#include "fuzz.h"

static const DvFieldSpec dv_fuzz_vm_fields[] = {
    { "name", DV_FIELD_STRING, TRUE },
    { "host", DV_FIELD_STRING_OR_NULL, FALSE },
    { "template", DV_FIELD_STRING_OR_NULL, FALSE },
    { "vcpus", DV_FIELD_INT, FALSE },
    { "memory_mib", DV_FIELD_INT_OR_NULL, FALSE },
    { "secure_boot", DV_FIELD_BOOL, FALSE },
    { "disks", DV_FIELD_ARRAY, FALSE },
    { "labels", DV_FIELD_OBJECT, FALSE },
    { "description", DV_FIELD_STRING_OR_NULL, FALSE },
    { NULL },
};

static const DvFieldSpec dv_fuzz_disk_fields[] = {
    { "size_mib", DV_FIELD_INT, TRUE },
    { "pool", DV_FIELD_STRING, FALSE },
    { "format", DV_FIELD_STRING, FALSE },
    { NULL },
};

static void
dv_fuzz_check_error(const GError *error)
{
    DV_FUZZ_CHECK(error != NULL);
    DV_FUZZ_CHECK(error->domain == DV_ERROR);
    DV_FUZZ_CHECK(error->message != NULL);
    DV_FUZZ_CHECK(g_utf8_validate(error->message, -1, NULL));
}

static void
dv_fuzz_check_fields(JsonObject *obj)
{
    g_autoptr(GError) error = NULL;
    JsonArray *disks;

    if (!dv_json_check_fields(obj, dv_fuzz_vm_fields, NULL, &error)) {
        dv_fuzz_check_error(error);
        return;
    }
    /* Accepted: the types are what the specs say. */
    DV_FUZZ_CHECK(dv_json_get_string(obj, "name", NULL) != NULL);
    (void)dv_json_get_int(obj, "vcpus", 1);
    (void)dv_json_get_int(obj, "memory_mib", 1024);
    (void)dv_json_get_bool(obj, "secure_boot", FALSE);
    (void)dv_json_get_object(obj, "labels");
    if (!dv_validate_name("name", dv_json_get_string(obj, "name", NULL), &error)) {
        dv_fuzz_check_error(error);
        g_clear_error(&error);
    }
    if (!dv_validate_text("description", dv_json_get_string(obj, "description", NULL),
                          DV_DESCRIPTION_MAX, &error)) {
        dv_fuzz_check_error(error);
        g_clear_error(&error);
    }
    disks = dv_json_get_array(obj, "disks");
    for (guint i = 0; disks != NULL && i < json_array_get_length(disks); i++) {
        JsonNode *node = json_array_get_element(disks, i);
        g_autofree char *path = g_strdup_printf("disks[%u].", i);
        if (!JSON_NODE_HOLDS_OBJECT(node))
            continue;
        if (!dv_json_check_fields(json_node_get_object(node), dv_fuzz_disk_fields, path, &error)) {
            dv_fuzz_check_error(error);
            DV_FUZZ_CHECK(g_str_has_prefix(dv_error_get_field(error), "disks["));
            return;
        }
    }
}

/* json-glib writes some doubles back as text that is not JSON (1e999 as
 * "inf.0", 1e-99 as "1e-99.0").  No field spec of Drover's accepts a
 * double, so none is ever stored or sent back; the round trip is checked
 * on the rest. */
static gboolean
dv_fuzz_has_double(JsonNode *node)
{
    if (JSON_NODE_HOLDS_OBJECT(node)) {
        JsonObjectIter iter;
        JsonNode *member;
        json_object_iter_init(&iter, json_node_get_object(node));
        while (json_object_iter_next(&iter, NULL, &member)) {
            if (dv_fuzz_has_double(member))
                return TRUE;
        }
        return FALSE;
    }
    if (JSON_NODE_HOLDS_ARRAY(node)) {
        JsonArray *arr = json_node_get_array(node);
        for (guint i = 0; i < json_array_get_length(arr); i++) {
            if (dv_fuzz_has_double(json_array_get_element(arr, i)))
                return TRUE;
        }
        return FALSE;
    }
    return JSON_NODE_HOLDS_VALUE(node) && json_node_get_value_type(node) == G_TYPE_DOUBLE;
}

static void
dv_fuzz_round_trip(JsonObject *obj)
{
    g_autoptr(JsonNode) node = dv_json_node_new_object(json_object_ref(obj));
    g_autoptr(JsonNode) copy = dv_json_node_deep_copy(node);
    g_autofree char *text = dv_json_node_to_string(copy, FALSE);
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) again = NULL;
    g_autofree char *text_again = NULL;

    DV_FUZZ_CHECK(text != NULL);
    if (dv_fuzz_has_double(node))
        return;
    /* What we accepted and would store must read back (stored JSON
     * columns are parsed by dv_json_object_from_text()). */
    again = dv_json_object_from_text(text, &error);
    if (again == NULL)
        g_printerr("does not parse again: %s: %s\n", text, error->message);
    DV_FUZZ_CHECK(again != NULL);
    text_again = dv_json_object_to_string(again, FALSE);
    DV_FUZZ_CHECK(g_strcmp0(text, text_again) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) obj = NULL;

    /* Up to the daemon's cap, so the seeds that overflowed the stack of
     * json-glib's recursive parser replay. */
    if (size > DV_JSON_MAX_BODY + 1)
        return 0;
    obj =
        dv_json_parse_object((const char *)data, size, DV_JSON_MAX_BODY, DV_JSON_MAX_DEPTH, &error);
    if (obj == NULL) {
        dv_fuzz_check_error(error);
        return 0;
    }
    DV_FUZZ_CHECK(error == NULL);
    dv_fuzz_check_fields(obj);
    dv_fuzz_round_trip(obj);
    return 0;
}
