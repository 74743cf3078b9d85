# The project's entry points. `make demo` and `make test` are the two the
# README promises work on a fresh machine; `make ci` is what CI runs.

CARGO ?= cargo
TARGET := target
BIN := $(TARGET)/release/sidecar
PLUGINS_OUT := $(TARGET)/plugins
TEST_PLUGINS_OUT := $(TARGET)/test-plugins

# Reference plugins: each crate directory is named <name>-v<version>, which is
# also the name of the sealed directory it becomes.
REFERENCE_PLUGINS := iu-cutter-v0.6 iu-cutter-v0.6-o8a
# Deliberately misbehaving builds of tests/plugins/hostile, one per feature.
HOSTILE_VARIANTS := queries well_behaved panic_in_describe abort_in_describe segfault_in_describe hang_in_describe \
	execution_enabled wrong_identity panic_in_phase abort_in_phase unsafe_phase accepts_live \
	flips_execution_enabled invalid_plan broken_cutter nondeterministic snapshot_reader snapshot_reader_late \
	incompatible_abi hang_in_phase allocates_unbounded writes_own_dir reads_secret_env \
	plan_count_mismatch opens_sockets

.PHONY: all build plugins test-plugins abi-fixtures demo demo-pg test pg-virtualenv chromium schema-tools lint ci bench clean

all: plugins

build:
	$(CARGO) build --release --locked -p sidecar

# Builds every reference plugin and assembles target/plugins/<name>-v<version>/
# with the library under its shipped name, a README and a fresh manifest.
plugins: build
	$(CARGO) build --release --locked $(foreach p,$(REFERENCE_PLUGINS),-p $(subst .,-,$(p)))
	@set -e; for p in $(REFERENCE_PLUGINS); do \
	  name=$${p%%-v[0-9]*}; out=$(PLUGINS_OUT)/$$p; \
	  rm -rf $$out; mkdir -p $$out; \
	  cp $(TARGET)/release/lib$$(echo $$p | tr '.-' '__').so $$out/lib$$(echo $$name | tr '-' '_').so; \
	  cp plugins/$$p/README.md $$out/README.md; \
	  $(BIN) seal $$out; \
	done

# Test-only plugins, never part of `make plugins`' output: one library per
# misbehaviour, plus a library with no root module.
test-plugins:
	@set -e; for v in $(HOSTILE_VARIANTS); do \
	  $(CARGO) build --release --locked -q -p sidecar-test-plugin --features $$v; \
	  mkdir -p $(TEST_PLUGINS_OUT)/$$v; \
	  cp $(TARGET)/release/libsidecar_test_plugin.so $(TEST_PLUGINS_OUT)/$$v/; \
	done
	$(CARGO) build --release --locked -q -p no-root-module
	mkdir -p $(TEST_PLUGINS_OUT)/no_root_module
	cp $(TARGET)/release/libno_root_module.so $(TEST_PLUGINS_OUT)/no_root_module/

# The compatibility suite's plugins (tests/tests/abi_matrix.rs), in
# test-plugins/abi_v0_1_0 and abi_v0_2_0: one built against the first
# released interface, frozen in tests/abi-frozen (a workspace of its own), and
# the same sources with that interface's version rewritten to 0.2.0, a
# generation this host must refuse. Both build into the one target directory,
# so abi_stable is compiled once.
ABI_FROZEN := tests/abi-frozen
ABI_V020_SRC := $(TARGET)/abi-v0.2.0-src
FROZEN_CARGO := CARGO_TARGET_DIR=$(abspath $(TARGET)) $(CARGO)
abi-fixtures:
	$(FROZEN_CARGO) build --release --locked -q --manifest-path $(ABI_FROZEN)/Cargo.toml -p frozen-abi-plugin
	mkdir -p $(TEST_PLUGINS_OUT)/abi_v0_1_0
	cp $(TARGET)/release/libfrozen_abi_plugin.so $(TEST_PLUGINS_OUT)/abi_v0_1_0/
	@set -e; rm -rf $(ABI_V020_SRC); cp -R $(ABI_FROZEN) $(ABI_V020_SRC); \
	  sed -i 's/^version = "0\.1\.0"$$/version = "0.2.0"/' $(ABI_V020_SRC)/abi-v0.1.0/Cargo.toml; \
	  sed -i '/^name = "sidecar-abi"$$/{n;s/^version = "0\.1\.0"$$/version = "0.2.0"/}' $(ABI_V020_SRC)/Cargo.lock; \
	  for f in abi-v0.1.0/Cargo.toml Cargo.lock; do \
	    grep -qx 'version = "0.2.0"' $(ABI_V020_SRC)/$$f || { echo "$$f: no version to rewrite to 0.2.0"; exit 1; }; \
	  done
	$(FROZEN_CARGO) build --release --locked -q --manifest-path $(ABI_V020_SRC)/Cargo.toml -p frozen-abi-plugin
	mkdir -p $(TEST_PLUGINS_OUT)/abi_v0_2_0
	cp $(TARGET)/release/libfrozen_abi_plugin.so $(TEST_PLUGINS_OUT)/abi_v0_2_0/

# The main job: verify both reference versions, run the compatibility suite
# on both (the staged one also against its post-deploy assertions), then
# compare the deployed one (A) with the staged one (B) on the embedded
# corpus. Exit 1 from compare means "differences found", which is the
# expected answer here.
demo: plugins
	@echo
	@for p in $(REFERENCE_PLUGINS); do $(BIN) verify $(PLUGINS_OUT)/$$p; done
	@echo
	@$(BIN) compat $(PLUGINS_OUT)/iu-cutter-v0.6
	@echo
	@$(BIN) compat $(PLUGINS_OUT)/iu-cutter-v0.6-o8a --expect plugins/iu-cutter-v0.6-o8a/expect.toml
	@echo
	@$(BIN) compare $(PLUGINS_OUT)/iu-cutter-v0.6 $(PLUGINS_OUT)/iu-cutter-v0.6-o8a --html; \
	  status=$$?; [ $$status -le 1 ] || exit $$status

# The PostgreSQL tests use the server DATABASE_URL or PGHOST names; without
# one, the whole test run is wrapped in Debian's pg_virtualenv, which starts
# a throwaway cluster, exports its PG* variables and removes it afterwards.
PG_WRAP := $(if $(or $(DATABASE_URL),$(PGHOST)),,pg_virtualenv)

# Optional: both reference versions dry-run from PostgreSQL (the embedded
# corpus, read as a SELECT-only role through an env file); see tests/demo-pg.sh.
demo-pg: plugins $(if $(PG_WRAP),pg-virtualenv)
	$(CARGO) build --release --locked -q -p sidecar-tests --bin pg-load
	$(PG_WRAP) env TARGET=$(TARGET) tests/demo-pg.sh

test: plugins test-plugins abi-fixtures chromium schema-tools $(if $(PG_WRAP),pg-virtualenv)
	$(CARGO) build --release --locked --workspace --tests
	$(PG_WRAP) $(CARGO) test --release --locked --workspace

# pg_virtualenv and a server, installed from Debian when missing (as root).
pg-virtualenv:
	@command -v pg_virtualenv >/dev/null || { \
	  echo "installing PostgreSQL for the tests (apt-get)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends postgresql postgresql-common >/dev/null; }

# Debian's Chromium, for the HTML report's test, installed when missing (as root).
chromium:
	@command -v chromium >/dev/null || { \
	  echo "installing Chromium for the tests (apt-get)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends chromium >/dev/null; }

# The frozen interface in tests/abi-frozen is not linted (it is never edited,
# whatever a newer clippy says); the plugin built against it is.
# The validators of the compat reports' schemas (tests/schemas/): xmllint
# for JUnit XML, Python's jsonschema for compat.json; installed when missing.
schema-tools:
	@command -v xmllint >/dev/null || { \
	  echo "installing xmllint for the tests (apt-get)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends libxml2-utils >/dev/null; }
	@python3 -c 'import jsonschema' 2>/dev/null || { \
	  echo "installing jsonschema for the tests (pip)"; \
	  python3 -m pip install -q jsonschema; }

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --release --locked --workspace --all-targets -- -D warnings
	$(CARGO) fmt --manifest-path $(ABI_FROZEN)/Cargo.toml -p frozen-abi-plugin -- --check
	$(FROZEN_CARGO) clippy --release --locked --manifest-path $(ABI_FROZEN)/Cargo.toml -p frozen-abi-plugin -- -D warnings

ci: lint test

# The PostgreSQL section needs a server (and psql): wrapped like `make test`.
bench: plugins $(if $(PG_WRAP),pg-virtualenv)
	$(CARGO) build --release --locked -p sidecar-tests --bin bare-cut --bin pg-load
	$(PG_WRAP) $(CARGO) bench --locked -p sidecar-tests --bench cli

clean:
	$(CARGO) clean
