# Drover: a thin front to Meson.  See README.md.
BUILD ?= build
STATE_DIR ?= /var/lib/drover
LISTEN ?= 127.0.0.1:8420
MESON_ARGS ?=

.PHONY: all deps build run check bench clean

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
		--add-local-host qemu:///system

check: build
	@tests/services/with-services meson test -C $(BUILD) --print-errorlogs $(TESTS)

bench: build
	@tests/services/with-services bench/inventory-scale

clean:
	rm -rf $(BUILD)
