#define G_LOG_DOMAIN "DvUpgradeFixture"

#include "dv-error.h"
#include "dv-json.h"
#include "dv-secret.h"
#include "dv-upgrade-fixture.h"
#include "dv-version.h"

#include <pwd.h>
#include <string.h>
#include <unistd.h>

/* "object_type/name/field", plaintext; the first four are under k1 and the
 * rest under k2 when rotating. */
const char *const dv_fixture_secrets[][2] = {
    { "run-as/kvm-root/password", "Kvm-root-pw-1" },
    { "guest-os-profile/win-std/admin_password", "Adm1n-profile-pw" },
    { "setting/application/smtp-password/value", "smtp-secret-value" },
    { "guest-os-profile/win-std/domain_join_password", "Join-domain-pw" },
    { "run-as/deployer/ssh_private_key", "-----BEGIN OPENSSH PRIVATE KEY-----\nfixture\n-----END OPENSSH PRIVATE KEY-----\n" },
    { "guest-os-profile/win-std/product_key", "ABCDE-FGHIJ-KLMNO-PQRST-UVWXY" },
    { "setting/deployment/sql-product-key/value", "SQL12-34567-89ABC" },
    { "setting/deploy-package/web-deploy/value", "Web-deploy-pw" },
};

guint
dv_fixture_n_secrets(void)
{
    return G_N_ELEMENTS(dv_fixture_secrets);
}

guint
dv_fixture_oldest_schema(void)
{
    return dv_version_get_releases(NULL)[0].schema;
}

static gboolean
exec(DvStore *store, const char *sql, const DvSqlParam *p, guint n, GError **error)
{
    return dv_db_exec(dv_store_get_db(store), sql, p, n, NULL, error);
}

typedef struct {
    const DvFixtureOptions *o;
    DvStore *store;
    DvKeyring *keyring;
    GHashTable *ids; /* "type/name" -> id */
} Ctx;

static const char *
add_id(Ctx *c, const char *type, const char *name)
{
    char *id = g_uuid_string_random();
    g_hash_table_insert(c->ids, g_strdup_printf("%s/%s", type, name), id);
    return id;
}

static gboolean
insert_pooled_catalog(Ctx *c, const char *host_id, gint64 now, GError **error)
{
    const char *cat = add_id(c, "catalog", "desks");
    const char *img = add_id(c, "catalog-image", "desks-v1");
    const char *base = add_id(c, "catalog-base", "desks-v1");
    g_autofree char *hosts = g_strdup_printf("[\"%s\"]", host_id);

    if (!exec(c->store,
              "INSERT INTO catalogs (id, name, catalog_type, state, master_vm_name, "
              "master_snapshot, target_kind, host_ids, pool_name, machine_spec, naming_scheme, "
              "next_index, personal_disk_mib, current_image_id, created_at, updated_at) VALUES (?, "
              "'desks', 'pooled', 'ready', 'gold', 's1', 'hosts', ?, 'default', "
              "'{\"vcpus\":1,\"memory_mib\":512}', 'desk-##', 3, 0, ?, ?, ?)",
              DV_SQL_ARGS(DV_SQL_TEXT_P(cat), DV_SQL_TEXT_P(hosts), DV_SQL_TEXT_P(img),
                          DV_SQL_INT_P(now), DV_SQL_INT_P(now)),
              error) ||
        !exec(c->store,
              "INSERT INTO catalog_images (id, catalog_id, version, master_snapshot, is_current, "
              "created_at) VALUES (?, ?, 1, 's1', 1, ?)",
              DV_SQL_ARGS(DV_SQL_TEXT_P(img), DV_SQL_TEXT_P(cat), DV_SQL_INT_P(now)), error) ||
        !exec(
            c->store,
            "INSERT INTO catalog_bases (id, catalog_id, image_id, host_id, pool_name, volume_name, "
            "path, format, capacity, state, refcount, created_at, updated_at) VALUES (?, ?, ?, ?, "
            "'default', 'desks-base-v1.qcow2', '/var/lib/libvirt/images/desks-base-v1.qcow2', "
            "'qcow2', 1073741824, 'ready', 2, ?, ?)",
            DV_SQL_ARGS(DV_SQL_TEXT_P(base), DV_SQL_TEXT_P(cat), DV_SQL_TEXT_P(img),
                        DV_SQL_TEXT_P(host_id), DV_SQL_INT_P(now), DV_SQL_INT_P(now)),
            error))
        return FALSE;
    for (guint i = 1; i <= 2; i++) {
        g_autofree char *name = g_strdup_printf("desk-%02u", i);
        g_autofree char *uuid = g_uuid_string_random();
        g_autofree char *overlay =
            g_strdup_printf("/var/lib/libvirt/images/desks-%s-disk.qcow2", name);
        const char *id = add_id(c, "catalog-machine", name);
        if (!exec(c->store,
                  "INSERT INTO catalog_machines (id, catalog_id, name, name_index, host_id, "
                  "domain_uuid, image_id, base_id, overlay_path, state, step, created_at, "
                  "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'ready', 'define', ?, ?)",
                  DV_SQL_ARGS(DV_SQL_TEXT_P(id), DV_SQL_TEXT_P(cat), DV_SQL_TEXT_P(name),
                              DV_SQL_INT_P(i), DV_SQL_TEXT_P(host_id), DV_SQL_TEXT_P(uuid),
                              DV_SQL_TEXT_P(img), DV_SQL_TEXT_P(base), DV_SQL_TEXT_P(overlay),
                              DV_SQL_INT_P(now), DV_SQL_INT_P(now)),
                  error))
            return FALSE;
    }
    return TRUE;
}

static gboolean
insert_objects(Ctx *c, GError **error)
{
    gint64 now = dv_store_now();
    const char *ra1 = add_id(c, "run-as", "kvm-root");
    const char *ra2 = add_id(c, "run-as", "deployer");
    const char *prof = add_id(c, "guest-os-profile", "win-std");
    const char *cl = add_id(c, "cluster", "prod");
    const char *h1 = add_id(c, "host", "kvm1");
    const char *h2 = add_id(c, "host", "kvm2");
    static const char *const settings[][3] = {
        { "application", "smtp-password", "1" },
        { "deployment", "sql-product-key", "1" },
        { "deploy-package", "web-deploy", "1" },
        { "application", "banner", "0" },
    };
    g_autofree char *share = g_uuid_string_random();

    if (!exec(c->store, "INSERT INTO run_as_accounts (id, name, username, credential_kind, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
              DV_SQL_ARGS(DV_SQL_TEXT_P(ra1), DV_SQL_TEXT_P("kvm-root"), DV_SQL_TEXT_P("root"), DV_SQL_TEXT_P("password"), DV_SQL_INT_P(now), DV_SQL_INT_P(now)), error) ||
        !exec(c->store, "INSERT INTO run_as_accounts (id, name, username, credential_kind, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
              DV_SQL_ARGS(DV_SQL_TEXT_P(ra2), DV_SQL_TEXT_P("deployer"), DV_SQL_TEXT_P("deploy"), DV_SQL_TEXT_P("ssh-key"), DV_SQL_INT_P(now), DV_SQL_INT_P(now)), error) ||
        !exec(c->store, "INSERT INTO guest_os_profiles (id, name, admin_username, domain, domain_join_user, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
              DV_SQL_ARGS(DV_SQL_TEXT_P(prof), DV_SQL_TEXT_P("win-std"), DV_SQL_TEXT_P("Administrator"), DV_SQL_TEXT_P("corp.example"), DV_SQL_TEXT_P("joiner"), DV_SQL_INT_P(now), DV_SQL_INT_P(now)), error) ||
        !exec(c->store, "INSERT INTO clusters (id, name, hypervisor_type, hypervisor_major, created_at) VALUES (?, ?, ?, ?, ?)",
              DV_SQL_ARGS(DV_SQL_TEXT_P(cl), DV_SQL_TEXT_P("prod"), DV_SQL_TEXT_P("QEMU"), DV_SQL_INT_P(8), DV_SQL_INT_P(now)), error))
        return FALSE;
    for (guint i = 0; i < G_N_ELEMENTS(settings); i++) {
        const char *id = add_id(c, "setting", settings[i][1]);
        gboolean enc = settings[i][2][0] == '1';
        if (!exec(c->store, "INSERT INTO app_settings (id, scope, name, encrypted, value, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                  DV_SQL_ARGS(DV_SQL_TEXT_P(id), DV_SQL_TEXT_P(settings[i][0]), DV_SQL_TEXT_P(settings[i][1]), DV_SQL_INT_P(enc), DV_SQL_TEXT_P(enc ? NULL : "hello"), DV_SQL_INT_P(now), DV_SQL_INT_P(now)), error))
            return FALSE;
    }
    {
        const char *hosts[][5] = { { h1, "kvm1", "qemu+tls://kvm1.example/system", "8", "2" },
                                   { h2, "kvm2", "qemu+tls://kvm2.example/system", "9", "4" } };
        for (guint i = 0; i < 2; i++) {
            if (!exec(c->store, "INSERT INTO hosts (id, name, uri, cluster_id, state, hypervisor_type, hypervisor_major, domain_type, max_connections, max_concurrent_operations, run_as_id, created_at) VALUES (?, ?, ?, ?, 'ok', 'QEMU', ?, 'kvm', ?, ?, ?, ?)",
                      DV_SQL_ARGS(DV_SQL_TEXT_P(hosts[i][0]), DV_SQL_TEXT_P(hosts[i][1]), DV_SQL_TEXT_P(hosts[i][2]), DV_SQL_TEXT_P(cl),
                                  DV_SQL_INT_P(g_ascii_strtoll(hosts[i][3], NULL, 10)), DV_SQL_INT_P(g_ascii_strtoll(hosts[i][4], NULL, 10)),
                                  DV_SQL_INT_P(i == 0 ? 4 : 16), DV_SQL_TEXT_P(ra1), DV_SQL_INT_P(now)), error))
                return FALSE;
            for (guint v = 0; v < 3; v++) {
                g_autofree char *vid = g_uuid_string_random();
                g_autofree char *name = g_strdup_printf("%s-vm%u", hosts[i][1], v);
                if (!exec(c->store, "INSERT INTO vms (id, name, host_id, state, vcpus, memory_mib, origin, created_at, updated_at) VALUES (?, ?, ?, 'shutoff', 1, 512, 'discovered', ?, ?)",
                          DV_SQL_ARGS(DV_SQL_TEXT_P(vid), DV_SQL_TEXT_P(name), DV_SQL_TEXT_P(hosts[i][0]), DV_SQL_INT_P(now), DV_SQL_INT_P(now)), error))
                    return FALSE;
            }
        }
    }
    /* From schema 4 (0.2.0): a pooled catalog as 0.2.0 made it, its two
     * machines on overlays of the base (the upgrade's plan names them:
     * they move to transient disks on the base, docs/UPGRADE.md). */
    if ((c->o->schema != 0 ? c->o->schema : dv_fixture_oldest_schema()) >= 4 &&
        !insert_pooled_catalog(c, h1, now, error))
        return FALSE;
    /* Registered under the default's name but elsewhere: clashes with it. */
    if (!exec(c->store, "INSERT INTO library_shares (id, name, path, is_default, created_at) VALUES (?, 'default', '/srv/old-library', 1, ?)",
              DV_SQL_ARGS(DV_SQL_TEXT_P(share), DV_SQL_INT_P(now)), error))
        return FALSE;
    if (c->o->queued_job) {
        g_autofree char *jid = g_uuid_string_random();
        if (!exec(c->store, "INSERT INTO jobs (id, kind, state, target_name, progress, cancel_requested, attempts, created_at, updated_at) VALUES (?, 'vm.start', 'queued', 'kvm1-vm0', 0, 0, 0, ?, ?)",
                  DV_SQL_ARGS(DV_SQL_TEXT_P(jid), DV_SQL_INT_P(now), DV_SQL_INT_P(now)), error))
            return FALSE;
    }
    return TRUE;
}

static gboolean
store_fixed_secret(Ctx *c, guint i, GError **error)
{
    g_auto(GStrv) parts = g_strsplit(dv_fixture_secrets[i][0], "/", 0);
    guint n = g_strv_length(parts);
    const char *type = parts[0];
    const char *name = parts[n - 2];
    const char *field = parts[n - 1];
    g_autofree char *key = g_strdup_printf("%s/%s", type, name);
    const char *id = g_hash_table_lookup(c->ids, key);
    g_autoptr(DvSecret) s = dv_secret_new_from_data((const guint8 *)dv_fixture_secrets[i][1],
                                                    strlen(dv_fixture_secrets[i][1]));
    g_assert(id != NULL);
    return dv_keyring_store_secret(c->keyring, c->store, type, id, field, s, error);
}

/* Bench scale: hosts, VMs and secrets inserted in one transaction each. */
typedef struct {
    Ctx *c;
    GError **error;
} ScaleCtx;

static gboolean
scale_txn(DvDb *db, gpointer user_data, GError **error)
{
    Ctx *c = user_data;
    const DvFixtureOptions *o = c->o;
    gint64 now = dv_store_now();
    g_autoptr(GPtrArray) host_ids = g_ptr_array_new_with_free_func(g_free);
    const char *ra = g_hash_table_lookup(c->ids, "run-as/kvm-root");

    for (guint i = 0; i < o->n_hosts; i++) {
        char *id = g_uuid_string_random();
        g_autofree char *name = g_strdup_printf("bench-host-%05u", i);
        g_autofree char *uri = g_strdup_printf("qemu+tls://%s.example/system", name);
        g_ptr_array_add(host_ids, id);
        if (!dv_db_exec(db, "INSERT INTO hosts (id, name, uri, state, hypervisor_type, hypervisor_major, domain_type, max_connections, max_concurrent_operations, run_as_id, created_at) VALUES (?, ?, ?, 'ok', 'QEMU', 8, 'kvm', ?, 16, ?, ?)",
                        DV_SQL_ARGS(DV_SQL_TEXT_P(id), DV_SQL_TEXT_P(name), DV_SQL_TEXT_P(uri), DV_SQL_INT_P(i % 10 == 0 ? 2 : 4), DV_SQL_TEXT_P(ra), DV_SQL_INT_P(now)), NULL, error))
            return FALSE;
    }
    for (guint i = 0; i < o->n_vms && host_ids->len > 0; i++) {
        g_autofree char *id = g_uuid_string_random();
        g_autofree char *uuid = g_uuid_string_random();
        g_autofree char *name = g_strdup_printf("bench-vm-%06u", i);
        if (!dv_db_exec(db, "INSERT INTO vms (id, name, host_id, uuid, state, vcpus, memory_mib, origin, created_at, updated_at) VALUES (?, ?, ?, ?, 'running', 2, 2048, 'discovered', ?, ?)",
                        DV_SQL_ARGS(DV_SQL_TEXT_P(id), DV_SQL_TEXT_P(name), DV_SQL_TEXT_P(g_ptr_array_index(host_ids, i % host_ids->len)), DV_SQL_TEXT_P(uuid), DV_SQL_INT_P(now), DV_SQL_INT_P(now)), NULL, error))
            return FALSE;
    }
    /* Secrets: settings with encrypted values, sealed under the current key. */
    for (guint i = 0; i < o->n_secrets; i++) {
        g_autofree char *id = g_uuid_string_random();
        g_autofree char *sid = g_uuid_string_random();
        g_autofree char *name = g_strdup_printf("bench-setting-%06u", i);
        g_autofree char *plain = g_strdup_printf("bench secret value %06u", i);
        g_autoptr(DvSecret) s = dv_secret_new_from_data((const guint8 *)plain, strlen(plain));
        g_autofree char *key_id = dv_keyring_dup_current_key_id(c->keyring);
        g_autofree char *sealed = dv_keyring_seal(c->keyring, "setting", id, "value", s, error);
        if (sealed == NULL)
            return FALSE;
        if (!dv_db_exec(db, "INSERT INTO app_settings (id, scope, name, encrypted, created_at, updated_at) VALUES (?, 'application', ?, 1, ?, ?)",
                        DV_SQL_ARGS(DV_SQL_TEXT_P(id), DV_SQL_TEXT_P(name), DV_SQL_INT_P(now), DV_SQL_INT_P(now)), NULL, error) ||
            !dv_db_exec(db, "INSERT INTO secrets (id, object_type, object_id, field, key_id, value, updated_at) VALUES (?, 'setting', ?, 'value', ?, ?, ?)",
                        DV_SQL_ARGS(DV_SQL_TEXT_P(sid), DV_SQL_TEXT_P(id), DV_SQL_TEXT_P(key_id), DV_SQL_TEXT_P(sealed), DV_SQL_INT_P(now)), NULL, error))
            return FALSE;
    }
    return TRUE;
}

gboolean
dv_fixture_make(const DvFixtureOptions *o, GError **error)
{
    g_autofree char *location = o->database != NULL ? g_strdup(o->database)
                                                    : g_build_filename(o->state_dir, "drover.db", NULL);
    g_autoptr(DvStore) store = NULL;
    g_autoptr(DvKeyring) keyring = NULL;
    g_autoptr(GHashTable) ids = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    g_autofree char *inst_id = g_uuid_string_random();
    g_autofree char *inst_row = g_uuid_string_random();
    DvKeyringOptions ko = {
        .state_dir = o->state_dir,
        .machine_id_path = o->machine_id_path,
        .protectors = o->directory != NULL ? &((DvFixtureOptions *)o)->directory : NULL,
        .n_protectors = o->directory != NULL ? 1 : 0,
    };
    guint schema = o->schema != 0 ? o->schema : dv_fixture_oldest_schema();
    guint first_batch;
    Ctx c = { o, NULL, NULL, ids };

    if (g_mkdir_with_parents(o->state_dir, 0700) != 0) {
        g_set_error(error, DV_ERROR, DV_ERROR_UNAVAILABLE, "cannot create %s", o->state_dir);
        return FALSE;
    }
    if (o->account != NULL) {
        struct passwd *pw = getpwnam(o->account);
        if (pw == NULL) {
            g_set_error(error, DV_ERROR, DV_ERROR_NOT_FOUND, "no account %s", o->account);
            return FALSE;
        }
        ko.host_account_set = TRUE;
        ko.host_uid = pw->pw_uid;
        ko.host_user = o->account;
    }
    store = dv_store_open(location, 0, error);
    if (store == NULL || !dv_store_migrate_to(store, schema, error))
        return FALSE;
    c.store = store;
    {
        g_autoptr(JsonObject) existing = dv_store_find(store, &dv_table_settings, "name", "installation_id", NULL);
        if (existing == NULL &&
            !exec(store, "INSERT INTO settings (id, name, value, updated_at) VALUES (?, 'installation_id', ?, ?)",
                  DV_SQL_ARGS(DV_SQL_TEXT_P(inst_row), DV_SQL_TEXT_P(inst_id), DV_SQL_INT_P(dv_store_now())), error))
            return FALSE;
    }
    /* The directory protector is recorded before k1 exists, as
     * 'keys directory init' on a running installation would have. */
    keyring = dv_keyring_open(store, &ko, error);
    if (keyring == NULL || !dv_keyring_initialize(keyring, error))
        return FALSE;
    c.keyring = keyring;
    if (o->directory != NULL &&
        !dv_keyring_add_protector(keyring, o->directory, o->directory_config, error))
        return FALSE;
    if (o->recovery_key_out != NULL && !dv_keyring_recovery_create(keyring, o->recovery_key_out, error))
        return FALSE;
    if (!insert_objects(&c, error))
        return FALSE;
    first_batch = o->rotate ? 4 : G_N_ELEMENTS(dv_fixture_secrets);
    for (guint i = 0; i < first_batch; i++)
        if (!store_fixed_secret(&c, i, error))
            return FALSE;
    if (o->rotate) {
        g_autofree char *k2 = NULL;
        if (!dv_keyring_rotate(keyring, &k2, error))
            return FALSE;
        for (guint i = first_batch; i < G_N_ELEMENTS(dv_fixture_secrets); i++)
            if (!store_fixed_secret(&c, i, error))
                return FALSE;
    }
    if (o->n_hosts > 0 || o->n_secrets > 0)
        return dv_db_transaction(dv_store_get_db(store), scale_txn, &c, error);
    return TRUE;
}
