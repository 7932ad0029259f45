# Drover: a thin front to Meson.  See README.md.
BUILD ?= build
STATE_DIR ?= /var/lib/drover
LISTEN ?= 127.0.0.1:8420
MESON_ARGS ?=
# make run is the tour's server: it also accepts libvirt's simulated hosts
# (test:///...), which an installed droverd refuses unless its config says
# [hosts] simulated = true.  RUN_ARGS= turns that off.
RUN_ARGS ?= --allow-simulated-hosts

.PHONY: all deps build run check check-asan check-leaks bench deb clean

ASAN_BUILD ?= $(BUILD)-asan
# The suite "unsettled" is not run by make check: api-console-remote-system,
# whose VNC stream stalls or desynchronises in about one run in three, cause
# not found (docs/TESTING.md); run it by name: make check TESTS=api-console-remote-system.
# The suite "no-asan" runs in the regular pass only: migrate-system (minutes
# on two daemons), and the console tests whose libsoup 3.2.3 WebSocket
# client asserts in its own finalize under the sanitizer's timing
# (docs/TESTING.md, "Sanitizers"); droverd's console code is the same in both.
ASAN_SUITES ?= --suite unit --suite store --suite api --suite engine --suite keys --suite fuzz --suite upgrade --no-suite no-asan

all: build

deps:
	@./scripts/install-deps

$(BUILD)/build.ninja:
	@meson setup $(BUILD) $(MESON_ARGS) >/dev/null

build: deps $(BUILD)/build.ninja
	@ninja -C $(BUILD)

run: build
	@./scripts/ensure-libvirtd
	@./scripts/ensure-default-pool
	@exec ./$(BUILD)/src/daemon/droverd --state-dir $(STATE_DIR) --listen $(LISTEN) \
		--add-local-host qemu:///system $(RUN_ARGS)

# The regular pass and the sanitizer pass (its build included) run side by
# side: most tests wait on a guest or a daemon on one core, and run one after
# the other the two took 27 of the 30 minutes make check may use.  The
# sanitizer pass writes to $(ASAN_BUILD)/check.log, printed when both have
# ended; the failures of either are printed last.
check: build
	@./scripts/ensure-libvirtd
	@mkdir -p $(ASAN_BUILD)
	@echo "make check: the sanitizer pass runs beside this one; its output follows at the end ($(ASAN_BUILD)/check.log)"
	@$(MAKE) --no-print-directory check-asan >$(ASAN_BUILD)/check.log 2>&1 & asan=$$!; \
	rc=0; tests/services/with-services meson test -C $(BUILD) --print-errorlogs $(if $(TESTS),$(TESTS),--no-suite unsettled) || rc=1; \
	[ $$rc = 0 ] && { tools/check-no-plaintext $(BUILD)/meson-logs/testlog.txt || rc=2; }; \
	arc=0; wait $$asan || arc=1; \
	echo "==== the sanitizer pass ($(ASAN_BUILD)/check.log) ===="; cat $(ASAN_BUILD)/check.log; \
	[ $$rc = 1 ] && { echo "==== the regular pass failed ===="; tools/test-failures $(BUILD); }; \
	[ $$rc = 0 ] && [ $$arc = 0 ]

# The same engine, API and parser tests built with AddressSanitizer and
# UndefinedBehaviorSanitizer.
$(ASAN_BUILD)/build.ninja:
	@meson setup $(ASAN_BUILD) -Db_sanitize=address,undefined -Db_lundef=false $(MESON_ARGS) >/dev/null

# Leak checking (LEAKS=1, `make check-leaks`) is not part of make check:
# LeakSanitizer's own tracer crashes now and then at exit in processes with
# many threads ("Tracer caught signal 11"), which would make CI flaky.
LEAKS ?= 0

check-leaks:
	@$(MAKE) --no-print-directory check-asan LEAKS=1

check-asan: deps $(ASAN_BUILD)/build.ninja
	@ninja -C $(ASAN_BUILD)
	@G_SLICE=always-malloc ASAN_OPTIONS=detect_leaks=$(LEAKS):fast_unwind_on_malloc=0 LSAN_OPTIONS=suppressions=$(CURDIR)/tools/lsan.supp:print_suppressions=0 \
		UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		tests/services/with-services meson test -C $(ASAN_BUILD) --print-errorlogs $(ASAN_SUITES) \
		|| { tools/test-failures $(ASAN_BUILD); exit 1; }
	@tools/check-no-plaintext $(ASAN_BUILD)/meson-logs/testlog.txt

bench: build
	@tests/services/with-services bench/inventory-scale
	@bench/upgrade
	@tests/services/with-services bench/catalog-provision
	@tests/services/with-services bench/vm-clone

# The Debian package, built by dpkg-buildpackage from debian/ on a copy of
# the tracked tree in $(DEB_DIR) (so nothing is written beside the tree),
# then checked by lintian at the error level.  Result: $(DEB_DIR)/drover_*.deb.
DEB_DIR ?= $(BUILD)/deb

deb: deps
	@rm -rf $(DEB_DIR) && mkdir -p $(DEB_DIR)/src
	@git ls-files -co --exclude-standard -z | tar --null -T - -cf - | tar -xf - -C $(DEB_DIR)/src
	@cd $(DEB_DIR)/src && dpkg-buildpackage -b -us -uc -j2 >../build.log 2>&1 \
		|| { tail -30 ../build.log; exit 1; }
	@lintian --fail-on error $(DEB_DIR)/*.changes
	@ls $(DEB_DIR)/*.deb

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) build-fuzz
