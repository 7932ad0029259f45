/* Shared by the system tests (tests that use the local qemu:///system):
 * reachability, per-test names, and cleanup that runs in the parent
 * process after each isolated test, pass or fail. */
#pragma once

#include <sys/types.h>

#include "dv-virt.h"

G_BEGIN_DECLS

#define DV_TEST_SYSTEM_URI "qemu:///system"

/* TRUE when libvirtd answers; otherwise fails the test when services are
 * required (CI=true, DV_REQUIRE_SERVICES=1) and skips it with the reason
 * elsewhere.  Checked once per process. */
gboolean dv_test_system_check_daemon(DvVirt *virt);

/* "<tag>-<parent pid>-<hash of the test path>-": the parent (which cleans
 * up) and the child (which runs the test) derive the same names. */
char *dv_test_system_prefix_new(const char *tag, pid_t parent);
/* <tmp>/<prefix without its trailing '-'>. */
char *dv_test_system_dir_new(const char *prefix);

/* Removes every domain named @prefix*, the pool "<prefix>pool" with its
 * volumes, and @dir (may be NULL). */
void dv_test_system_cleanup(DvVirt *virt, const char *prefix, const char *dir);
/* The same on another local daemon (e.g. qemu:///session). */
void dv_test_system_cleanup_uri(DvVirt *virt, const char *uri, const char *prefix, const char *dir);
void dv_test_system_remove_tree(const char *dir);

/* Runs `virsh -q -c DV_TEST_SYSTEM_URI ARGS...` and returns its stdout
 * (owned); ends the test with virsh's stderr when it fails. */
char *dv_test_virsh(const char *const *args);

/* The parent's side of one isolated test: removes what an earlier run
 * under @prefix left (domains, pools, the per-test dir and the state dir
 * "<tmp>/<prefix>state"), creates the per-test dir (mode 0755, for qemu),
 * runs the test again as a subprocess for at most @timeout_s, cleans up
 * again, then asserts the subprocess passed. */
void dv_test_system_run_isolated(DvVirt *virt, const char *prefix, guint timeout_s);

/* Creates a transient dir pool @name over @dir on @vh. */
void dv_test_system_pool_create(DvVirtHost *vh, const char *name, const char *dir);

/* Copies @from over @to and makes it world-readable (for qemu). */
void dv_test_copy_file(const char *from, const char *to);

/* The tiny guest's files: $DV_TINY_GUEST_DIR when set and not empty, else
 * @cache_dir (the build tree's cache). */
const char *dv_test_tiny_guest_dir(const char *cache_dir);
/* Runs @script (scripts/build-tiny-guest) for @dir, with --marker @marker
 * unless it is NULL; quick when the cache is complete.  Ends the test with
 * the script's output when it fails. */
void dv_test_tiny_guest_build(const char *script, const char *dir, const char *marker);

/* Copies the tiny guest's file @name from its cache (@cache_dir, see
 * dv_test_tiny_guest_dir()) into @dir; returns the copy's path (owned). */
char *dv_test_tiny_guest_copy(const char *cache_dir, const char *dir, const char *name);

/* Waits until the file @log has a line containing @want; returns the wait
 * in seconds, or ends the test with the log after @timeout_s. */
double dv_test_wait_log(const char *log, const char *want, guint timeout_s);

G_END_DECLS
